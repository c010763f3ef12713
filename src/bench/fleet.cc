#include "src/bench/fleet.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "src/common/grpc_status.h"
#include "src/common/status_macros.h"
#include "src/testbed/child_process.h"
#include "stategate/v1/admin.grpc.pb.h"
#include "stategate/v1/control.grpc.pb.h"

namespace stategate::bench {
namespace {

// A start that fails (most likely: the free port was taken meanwhile) is tried again on a
// new port this many times in all.
constexpr int kStartAttempts = 3;
// How much of a gateway's log an error message quotes.
constexpr size_t kLogTailBytes = 2000;
// Deadline of an Admin.SetFaults call.
constexpr absl::Duration kAdminTimeout = absl::Seconds(5);

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

absl::Status SetFaultsAt(const std::string& address, std::string_view ns,
                         const InjectedFaults& faults) {
  v1::SetFaultsRequest request;
  request.set_namespace_(std::string(ns));
  if (faults.delay > absl::ZeroDuration()) {
    request.mutable_faults()->mutable_latency()->set_delay_us(
        absl::ToInt64Microseconds(faults.delay));
  }
  if (faults.error_rate > 0) {
    request.mutable_faults()->mutable_error()->set_rate(faults.error_rate);
    request.mutable_faults()->mutable_error()->set_code(faults.error_code);
  }
  auto admin = v1::Admin::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + kAdminTimeout));
  v1::SetFaultsResponse response;
  const absl::Status status = FromGrpcStatus(admin->SetFaults(&ctx, request, &response));
  if (!status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat("setting faults on ", address, ": ", status.message()));
  }
  return absl::OkStatus();
}

// VmRSS and VmHWM of process `pid`, in bytes; nullopt if /proc does not say.
std::optional<GatewayMemory> ProcessMemory(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  GatewayMemory memory;
  int found = 0;
  for (std::string line; std::getline(status, line);) {
    for (auto [field, out] :
         {std::pair{"VmRSS:", &memory.resident_bytes}, std::pair{"VmHWM:", &memory.peak_bytes}}) {
      if (line.rfind(field, 0) != 0) continue;
      *out = std::strtoll(line.c_str() + std::strlen(field), nullptr, 10) * 1024;  // "123 kB"
      ++found;
    }
  }
  if (found != 2) return std::nullopt;
  return memory;
}

// ---- Local gateways ----

struct Child {
  std::string data_dir;
  std::string log_path;
  std::string address;
  std::unique_ptr<testbed::ChildProcess> process;  // null until spawned

  pid_t pid() const { return process != nullptr ? process->pid() : -1; }  // -1 once reaped
};

class LocalFleet final : public Fleet {
 public:
  LocalFleet(LocalFleetOptions options, std::string root)
      : options_(std::move(options)), root_(std::move(root)) {}

  ~LocalFleet() override {
    (void)Stop();
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }

  absl::Status Start() {
    // One page-token key for the whole fleet, as a production fleet is configured: a client
    // may ask any gateway for the next page of a scan another one started.
    secret_path_ = absl::StrCat(root_, "/page_token_secret");
    {
      std::ofstream secret(secret_path_, std::ios::trunc);
      std::random_device random;
      for (int i = 0; i < 4; ++i) secret << absl::StrFormat("%08x", random());
      secret << "\n";
      if (!secret) return Errno(absl::StrCat("write ", secret_path_));
    }
    for (int i = 0; i < options_.replicas; ++i) {
      Child child;
      child.data_dir = absl::StrCat(root_, "/replica", i);
      child.log_path = absl::StrCat(root_, "/replica", i, ".log");
      children_.push_back(std::move(child));
    }
    // Start them all, then wait for each: they open their databases in parallel.
    for (Child& child : children_) SG_RETURN_IF_ERROR(Spawn(child));
    for (Child& child : children_) {
      for (int attempt = 1;; ++attempt) {
        const absl::Status ready = WaitUntilReady(child);
        if (ready.ok()) break;
        if (child.pid() > 0 || attempt == kStartAttempts) {
          return absl::Status(ready.code(), absl::StrCat(ready.message(), "; its log:\n",
                                                         child.process->LogTail(kLogTailBytes)));
        }
        SG_RETURN_IF_ERROR(Spawn(child));  // it exited: try another port
      }
      addresses_.push_back(child.address);
    }
    return absl::OkStatus();
  }

  const std::vector<std::string>& addresses() const override { return addresses_; }

  absl::Status SetFaults(size_t replica, std::string_view ns,
                         const InjectedFaults& faults) override {
    SG_RETURN_IF_ERROR(CheckReplica(replica));
    return SetFaultsAt(addresses_[replica], ns, faults);
  }

  absl::Status Pause(size_t replica, absl::Duration) override {
    SG_RETURN_IF_ERROR(CheckReplica(replica));
    children_[replica].process->Signal(SIGSTOP);
    return absl::OkStatus();
  }

  absl::Status Resume(size_t replica) override {
    SG_RETURN_IF_ERROR(CheckReplica(replica));
    children_[replica].process->Signal(SIGCONT);
    return absl::OkStatus();
  }

  absl::Status Kill(size_t replica) override {
    SG_RETURN_IF_ERROR(CheckReplica(replica));
    children_[replica].process->Kill();
    return absl::OkStatus();
  }

  absl::Status Restart(size_t replica) override {
    if (replica >= children_.size()) {
      return absl::InvalidArgumentError(absl::StrCat("no replica ", replica));
    }
    Child& child = children_[replica];
    if (child.pid() > 0) {
      child.process->Signal(SIGCONT);  // a stopped process does not act on SIGTERM
      child.process->Signal(SIGTERM);
      // One that does not drain in time is killed, and started again all the same.
      if (!child.process->Wait(options_.stop_timeout).has_value()) child.process->Kill();
    }
    // The same address: the clients know the fleet by its addresses. The port may still be
    // held for a moment by the old process's sockets, so a failed start is tried again.
    absl::Status ready;
    for (int attempt = 1; attempt <= kStartAttempts; ++attempt) {
      SG_RETURN_IF_ERROR(Spawn(child, child.address));
      ready = WaitUntilReady(child);
      if (ready.ok() || child.pid() > 0) break;
      absl::SleepFor(absl::Milliseconds(200));
    }
    if (!ready.ok()) {
      return absl::Status(ready.code(), absl::StrCat(ready.message(), "; its log:\n",
                                                     child.process->LogTail(kLogTailBytes)));
    }
    return absl::OkStatus();
  }

  std::optional<GatewayMemory> Memory() const override {
    GatewayMemory total;
    for (const Child& child : children_) {
      if (child.pid() <= 0) continue;
      const std::optional<GatewayMemory> memory = ProcessMemory(child.pid());
      if (!memory.has_value()) return std::nullopt;
      total.resident_bytes += memory->resident_bytes;
      total.peak_bytes += memory->peak_bytes;
    }
    return total;
  }

  void ResetMemoryPeak() override {
    for (const Child& child : children_) {
      // "5" resets VmHWM to VmRSS (proc(5)); a kernel without it keeps the older peak.
      if (child.pid() > 0) std::ofstream(absl::StrCat("/proc/", child.pid(), "/clear_refs")) << "5";
    }
  }

  absl::Status Stop() override {
    // SIGCONT first: a stopped process does not act on SIGTERM.
    for (Child& child : children_) {
      if (child.pid() <= 0) continue;
      child.process->Signal(SIGCONT);
      child.process->Signal(SIGTERM);
    }
    std::vector<std::string> problems;
    const absl::Time deadline = absl::Now() + options_.stop_timeout;
    for (Child& child : children_) {
      if (child.pid() <= 0) continue;
      const std::optional<int> status = child.process->Wait(deadline - absl::Now());
      if (!status.has_value()) {
        child.process->Kill();
        problems.push_back(absl::StrCat(child.address, " killed after ",
                                        absl::FormatDuration(options_.stop_timeout)));
      } else if (!(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)) {
        problems.push_back(absl::StrCat(child.address, " ", testbed::DescribeWaitStatus(*status)));
      }
    }
    if (problems.empty()) return absl::OkStatus();
    return absl::InternalError(absl::StrCat("stopping gateways: ", absl::StrJoin(problems, "; ")));
  }

 private:
  absl::Status CheckReplica(size_t replica) const {
    if (replica >= addresses_.size() || children_[replica].pid() <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("no running replica ", replica));
    }
    return absl::OkStatus();
  }

  // Starts `stategate` for `child` on `address`, or on a new free port if it is empty.
  absl::Status Spawn(Child& child, std::string address = "") {
    if (address.empty()) {
      const int port = testbed::FreePort();
      if (port < 0) return Errno("bind to a free port");
      address = absl::StrCat("127.0.0.1:", port);
    }
    child.address = std::move(address);
    testbed::ChildProcessOptions process;
    process.binary = options_.server_binary;
    process.args = {
        "--listen",  child.address, "--data-dir", child.data_dir, "--page-token-secret-file",
        secret_path_};
    if (options_.fault_injection) process.args.push_back("--fault-injection");
    if (!options_.config_path.empty()) {
      process.args.insert(process.args.end(), {"--config", options_.config_path});
    }
    if (!options_.redis_cluster_seeds.empty()) {
      process.args.insert(process.args.end(), {"--redis-cluster", options_.redis_cluster_seeds});
    }
    if (!options_.memcached_address.empty()) {
      process.args.insert(process.args.end(), {"--memcached", options_.memcached_address});
    }
    process.log_path = child.log_path;
    // Dies with the bench, even when the bench is killed and cannot stop it.
    process.die_with_parent = true;
    SG_ASSIGN_OR_RETURN(child.process, testbed::ChildProcess::Start(std::move(process)));
    return absl::OkStatus();
  }

  // Polls Handshake until it answers. On failure, child.pid() is -1 when the child exited
  // (reaped here) and still set when it ran but did not answer in time.
  absl::Status WaitUntilReady(Child& child) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    // Quick reconnects: the default backoff would sleep past a fast start.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 100);
    auto stub = v1::Control::NewStub(
        grpc::CreateCustomChannel(child.address, grpc::InsecureChannelCredentials(), args));
    const absl::Time deadline = absl::Now() + options_.start_timeout;
    while (absl::Now() < deadline) {
      if (!child.process->Running()) {
        return absl::UnavailableError(
            absl::StrCat("gateway at ", child.address, " ",
                         testbed::DescribeWaitStatus(*child.process->wait_status())));
      }
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(500)));
      ctx.set_wait_for_ready(true);
      v1::HandshakeRequest request;
      v1::HandshakeResponse response;
      if (stub->Handshake(&ctx, request, &response).ok()) return absl::OkStatus();
      absl::SleepFor(absl::Milliseconds(50));
    }
    return absl::DeadlineExceededError(absl::StrCat("gateway at ", child.address,
                                                    " did not answer Handshake within ",
                                                    absl::FormatDuration(options_.start_timeout)));
  }

  const LocalFleetOptions options_;
  const std::string root_;
  std::string secret_path_;
  std::vector<Child> children_;
  std::vector<std::string> addresses_;
};

// ---- Gateways running elsewhere ----

class AttachedFleet final : public Fleet {
 public:
  explicit AttachedFleet(std::vector<std::string> addresses)
      : addresses_(std::move(addresses)), pauses_(addresses_.size()) {}

  ~AttachedFleet() override {
    for (Paused& pause : pauses_) {
      if (pause.thread.joinable()) pause.thread.join();
    }
  }

  const std::vector<std::string>& addresses() const override { return addresses_; }

  absl::Status SetFaults(size_t replica, std::string_view ns,
                         const InjectedFaults& faults) override {
    SG_RETURN_IF_ERROR(CheckReplica(replica));
    return SetFaultsAt(addresses_[replica], ns, faults);
  }

  absl::Status Pause(size_t replica, absl::Duration length) override {
    SG_RETURN_IF_ERROR(CheckReplica(replica));
    Paused& pause = pauses_[replica];
    if (pause.thread.joinable()) {
      return absl::FailedPreconditionError(absl::StrCat("replica ", replica, " is paused"));
    }
    // Admin.Pause answers only once the gateway runs again: wait for it on a thread.
    pause.status = absl::OkStatus();
    pause.thread = std::thread([address = addresses_[replica], length, &pause] {
      auto admin =
          v1::Admin::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + length + kAdminTimeout));
      v1::PauseRequest request;
      request.set_duration_us(absl::ToInt64Microseconds(length));
      v1::PauseResponse response;
      pause.status = FromGrpcStatus(admin->Pause(&ctx, request, &response));
    });
    return absl::OkStatus();
  }

  absl::Status Resume(size_t replica) override {
    SG_RETURN_IF_ERROR(CheckReplica(replica));
    Paused& pause = pauses_[replica];
    if (!pause.thread.joinable()) return absl::OkStatus();
    pause.thread.join();
    if (!pause.status.ok()) {
      return absl::Status(pause.status.code(), absl::StrCat("pausing ", addresses_[replica], ": ",
                                                            pause.status.message()));
    }
    return absl::OkStatus();
  }

  absl::Status Kill(size_t) override {
    return absl::UnimplementedError("cannot kill a gateway this benchmark did not start");
  }
  absl::Status Restart(size_t) override {
    return absl::UnimplementedError("cannot restart a gateway this benchmark did not start");
  }

  absl::Status Stop() override { return absl::OkStatus(); }
  std::optional<GatewayMemory> Memory() const override { return std::nullopt; }
  void ResetMemoryPeak() override {}

 private:
  struct Paused {
    std::thread thread;
    absl::Status status;  // written by `thread`, read after joining it
  };

  absl::Status CheckReplica(size_t replica) const {
    if (replica >= addresses_.size()) {
      return absl::InvalidArgumentError(absl::StrCat("no replica ", replica));
    }
    return absl::OkStatus();
  }

  const std::vector<std::string> addresses_;
  std::vector<Paused> pauses_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Fleet>> Fleet::StartLocal(const LocalFleetOptions& options) {
  if (options.replicas < 1 || options.replicas > 64) {
    return absl::InvalidArgumentError(
        absl::StrCat("replicas must be in [1, 64], got ", options.replicas));
  }
  LocalFleetOptions resolved = options;
  if (resolved.server_binary.empty()) {
    SG_ASSIGN_OR_RETURN(resolved.server_binary, ServerBinaryBesideThisOne());
  }
  if (::access(resolved.server_binary.c_str(), X_OK) != 0) {
    return absl::NotFoundError(
        absl::StrCat("server binary ", resolved.server_binary, " is not executable"));
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/stategate-bench-XXXXXX");
  if (::mkdtemp(pattern.data()) == nullptr) return Errno(absl::StrCat("mkdtemp ", pattern));
  auto fleet = std::make_unique<LocalFleet>(std::move(resolved), pattern);
  SG_RETURN_IF_ERROR(fleet->Start());  // on failure, the destructor stops what started
  return fleet;
}

absl::StatusOr<std::unique_ptr<Fleet>> Fleet::Attach(std::vector<std::string> addresses) {
  if (addresses.empty()) return absl::InvalidArgumentError("no gateway addresses given");
  return std::make_unique<AttachedFleet>(std::move(addresses));
}

absl::StatusOr<std::string> ServerBinaryBesideThisOne() {
  std::error_code error;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) {
    return absl::NotFoundError(
        absl::StrCat("cannot read /proc/self/exe (", error.message(), "); pass --server-binary"));
  }
  const std::string binary = (self.parent_path() / "stategate").string();
  if (::access(binary.c_str(), X_OK) != 0) {
    return absl::NotFoundError(
        absl::StrCat("no executable ", binary, " beside this binary; pass --server-binary"));
  }
  return binary;
}

}  // namespace stategate::bench
