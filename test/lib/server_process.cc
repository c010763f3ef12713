#include "test/lib/server_process.h"

#include <grpcpp/grpcpp.h>

#include <memory>
#include <utility>

#include "absl/time/clock.h"
#include "stategate/v1/control.grpc.pb.h"

namespace stategate::testing {

int FreePort() { return testbed::FreePort(); }

ServerProcess::ServerProcess(std::string binary, std::vector<std::string> args,
                             std::string log_path)
    : binary_(std::move(binary)), args_(std::move(args)), log_path_(std::move(log_path)) {}

ServerProcess::~ServerProcess() = default;  // ~ChildProcess SIGKILLs and reaps

bool ServerProcess::Start(absl::Duration timeout) {
  port_ = FreePort();
  return Restart(timeout);
}

bool ServerProcess::Restart(absl::Duration timeout) {
  child_.reset();  // reaps an exited child (SIGKILLs one still running)
  testbed::ChildProcessOptions options;
  options.binary = binary_;
  options.args = args_;
  options.args.push_back("--listen");
  options.args.push_back(address());
  options.log_path = log_path_;
  absl::StatusOr<std::unique_ptr<testbed::ChildProcess>> child =
      testbed::ChildProcess::Start(std::move(options));
  if (!child.ok()) return false;
  child_ = *std::move(child);

  // Probe with quick reconnects: the default backoff would sleep past a fast start.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 100);
  auto channel = grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args);
  auto stub = v1::Control::NewStub(channel);
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (!child_->Running()) return false;
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(500)));
    ctx.set_wait_for_ready(true);
    v1::HandshakeRequest request;
    v1::HandshakeResponse response;
    if (stub->Handshake(&ctx, request, &response).ok()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

std::string ServerProcess::Log() const { return child_ != nullptr ? child_->Log() : ""; }

void ServerProcess::Signal(int signal) {
  if (child_ != nullptr) child_->Signal(signal);
}

int ServerProcess::Wait(absl::Duration timeout) {
  if (child_ == nullptr) return -1;
  return child_->Wait(timeout).value_or(-1);
}

}  // namespace stategate::testing
