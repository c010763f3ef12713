#include "src/server/gateway.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "src/common/delay_queue.h"
#include "src/common/grpc_status.h"
#include "src/common/quote.h"
#include "src/common/status_macros.h"
#include "src/common/worker_pool.h"
#include "src/kv/kv_store.h"
#include "src/server/admin_service.h"
#include "src/server/admission.h"
#include "src/server/control_service.h"
#include "src/server/engine_pools.h"
#include "src/server/engines.h"
#include "src/server/faults.h"
#include "src/server/kv_service.h"
#include "src/server/namespaces.h"

namespace stategate::server {
namespace {

// Requests above every namespace's own limit are refused by gRPC itself; our per-namespace
// check (which names the limit) sees everything up to this.
constexpr int kMaxReceiveBytes = 80 << 20;
// A drain's notice ends once no call has arrived for this long: the clients have moved.
constexpr absl::Duration kDrainQuiet = absl::Milliseconds(100);
// Calls waiting for a thread of one engine lane (EnginePools) before it refuses more.
constexpr size_t kMaxQueuedPerLane = 1024;
// How long calls that arrive during the last moments of a drain may still take.
constexpr absl::Duration kShutdownGrace = absl::Milliseconds(200);
// Admin calls are rare; Pause holds one thread for its duration.
constexpr int kAdminThreads = 2;

class GatewayImpl final : public Gateway {
 public:
  explicit GatewayImpl(GatewayOptions options) : options_(std::move(options)) {}

  ~GatewayImpl() override {
    Drain();
    Wait();
  }

  absl::Status Start() {
    const ServerConfig& config = options_.config;
    SG_RETURN_IF_ERROR(ValidateConfig(config));
    SG_RETURN_IF_ERROR(CheckFaultsAllowed(config));
    engines_ = std::make_unique<Engines>(config, options_.clock);
    SG_RETURN_IF_ERROR(engines_->Place(config.namespaces));

    kv::KvStoreOptions kv_options;
    kv_options.max_clock_skew = config.max_clock_skew;
    kv_options.page_token_secret = config.page_token_secret;
    store_ = std::make_unique<kv::KvStore>(engines_->router(), options_.clock, kv_options);
    for (const NamespaceConfig& ns : config.namespaces) {
      SG_RETURN_IF_ERROR(store_->Prepare(ns));
    }
    namespaces_ =
        std::make_unique<Namespaces>(MakeNamespaceSet(config.namespaces, config.max_clock_skew));

    // Admission's timers run on their own queue: they only refuse calls, never wait.
    timers_ = std::make_unique<DelayQueue>();
    admissions_ = std::make_unique<Admissions>(
        Clock::Real(), [timers = timers_.get()](absl::Duration delay, std::function<void()> task) {
          timers->Schedule(delay, std::move(task));
        });
    LaneOptions lanes;
    lanes.threads = config.worker_threads;
    // Admission bounds the calls each namespace runs on a shard (up to its max_limit, 512 by
    // default); the lane's queue must hold that much, or it would refuse calls admission
    // let in. Its bound is for a shard stalled under many namespaces at once: a queued call
    // is a closure of a few hundred bytes.
    lanes.max_queued = kMaxQueuedPerLane;
    pools_ =
        std::make_unique<EnginePools>(std::vector<std::string>{"rocksdb", "redis-cluster"}, lanes);
    admin_pool_ = std::make_unique<WorkerPool>(kAdminThreads);
    if (options_.fault_injection) {
      faults_ = std::make_unique<FaultInjector>();
      faults_->ReplaceAll(config.faults);
      delays_ = std::make_unique<DelayQueue>();
      spdlog::warn("fault injection is ON (--fault-injection): never run this in production");
      for (const auto& [name, spec] : config.faults) {
        spdlog::warn("fault injection: namespace {}: {}", name, DescribeFaults(spec));
      }
    }
    kv_service_ = std::make_unique<KvService>(store_.get(), namespaces_.get(), admissions_.get(),
                                              pools_.get(), faults_.get(), delays_.get());
    control_service_ = std::make_unique<ControlService>(namespaces_.get(), options_.clock);
    admin_service_ =
        std::make_unique<AdminService>(faults_.get(), namespaces_.get(), admin_pool_.get());

    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder builder;
    builder.AddListeningPort(config.listen, grpc::InsecureServerCredentials(), &port_);
    builder.SetMaxReceiveMessageSize(kMaxReceiveBytes);
    builder.SetMaxSendMessageSize(-1);
    builder.RegisterService(kv_service_.get());
    builder.RegisterService(control_service_.get());
    builder.RegisterService(admin_service_.get());
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port_ == 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", config.listen));
    }
    server_->GetHealthCheckService()->SetServingStatus(true);
    gc_thread_ = std::thread([this] { MaintainUntilStopped(); });
    spdlog::info("stategate serving {} namespaces on port {} (data in {}, config version {})",
                 config.namespaces.size(), port_, config.data_dir, namespaces_->Current()->version);
    return absl::OkStatus();
  }

  int port() const override { return port_; }

  absl::Status Reload() override {
    if (options_.config_path.empty()) {
      return absl::FailedPreconditionError("started without --config: nothing to reload");
    }
    SG_ASSIGN_OR_RETURN(ServerConfig next, LoadConfigFile(options_.config_path));
    SG_RETURN_IF_ERROR(CheckFaultsAllowed(next));
    if (next.data_dir != options_.config.data_dir || next.listen != options_.config.listen) {
      spdlog::warn("reload: listen and data_dir changes take effect only on restart");
    }
    if (next.redis_cluster.seeds != options_.config.redis_cluster.seeds ||
        next.memcached.address != options_.config.memcached.address) {
      spdlog::warn("reload: redis_cluster and memcached changes take effect only on restart");
    }
    SG_RETURN_IF_ERROR(engines_->Place(next.namespaces));
    for (const NamespaceConfig& ns : next.namespaces) {
      SG_RETURN_IF_ERROR(store_->Prepare(ns));
    }
    namespaces_->Replace(MakeNamespaceSet(next.namespaces, options_.config.max_clock_skew));
    if (faults_ != nullptr) {
      // The file is the truth after a reload: faults set at run time are replaced too.
      faults_->ReplaceAll(next.faults);
      for (const auto& [name, spec] : next.faults) {
        spdlog::warn("fault injection: namespace {}: {}", name, DescribeFaults(spec));
      }
    }
    spdlog::info("reloaded {} namespaces, config version {}", next.namespaces.size(),
                 namespaces_->Current()->version);
    return absl::OkStatus();
  }

  void Drain() override {
    if (draining_.exchange(true)) return;
    spdlog::info(
        "draining: health NOT_SERVING and responses say so for up to {} while clients leave, "
        "then up to {} for in-flight calls",
        absl::FormatDuration(options_.config.drain_notice),
        absl::FormatDuration(options_.config.drain_timeout));
    // Delayed calls go on at once: a drain does not wait out injected latency.
    if (delays_ != nullptr) delays_->Stop();
    if (server_ != nullptr) {
      // First the notice: calls are still served, each answer tells its client to go
      // elsewhere, and it ends once none has arrived for kDrainQuiet. Clients with other
      // gateways thus leave before this one refuses anything.
      server_->GetHealthCheckService()->SetServingStatus(false);
      kv_service_->StartDraining();
      if (!kv_service_->WaitQuiet(kDrainQuiet, options_.config.drain_notice)) {
        spdlog::info("drain: calls still arriving after the notice of {}",
                     absl::FormatDuration(options_.config.drain_notice));
      }
      // Then let the calls in flight finish, and stop at once (GOAWAY): gRPC's own
      // Shutdown(deadline) would also wait out the deadline for clients that merely keep a
      // connection open.
      if (!kv_service_->WaitIdle(options_.config.drain_timeout)) {
        spdlog::warn("drain: calls still in flight after {}; cancelling them",
                     absl::FormatDuration(options_.config.drain_timeout));
      }
      server_->Shutdown(absl::ToChronoTime(absl::Now() + kShutdownGrace));
    }
    stop_gc_.Notify();
    if (gc_thread_.joinable()) gc_thread_.join();
    delays_.reset();  // empty: Stop ran everything, and no call arrives after Shutdown
    pools_.reset();   // runs what was queued (and what its calls' slots start), then joins
    admin_pool_.reset();
    admissions_.reset();  // nothing waits in them: every admitted call has run
    timers_.reset();
    server_.reset();
    store_.reset();
    if (engines_ != nullptr) {
      for (const std::string& line : engines_->Report()) spdlog::info("{}", line);
    }
    engines_.reset();  // closes the database last
    drained_.Notify();
    spdlog::info("drained");
  }

  void Wait() override { drained_.WaitForNotification(); }

 private:
  absl::Status CheckFaultsAllowed(const ServerConfig& config) const {
    if (!options_.fault_injection && !config.faults.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the config sets faults (namespace '", config.faults.begin()->first,
          "') but the server was not started with --fault-injection; remove them or add the flag"));
    }
    return absl::OkStatus();
  }

  // Every chunk_gc_interval: collects abandoned chunks, logs cache counts, and every
  // redis_cluster.purge_interval purges what expired on engines that do not do it themselves.
  void MaintainUntilStopped() {
    absl::Time next_purge = absl::Now() + options_.config.redis_cluster.purge_interval;
    while (!stop_gc_.WaitForNotificationWithTimeout(options_.config.chunk_gc_interval)) {
      std::shared_ptr<const NamespaceSet> set = namespaces_->Current();
      for (const auto& [name, ns] : set->by_name) {
        absl::StatusOr<int64_t> removed = store_->CollectChunks(ns);
        if (!removed.ok()) {
          spdlog::warn("chunk collection in {}: {}", name, removed.status().ToString());
        } else if (*removed > 0) {
          spdlog::info("collected {} abandoned chunk sets in {}", *removed, name);
        }
      }
      for (const std::string& line : engines_->Report()) spdlog::info("{}", line);
      for (const std::string& line : admissions_->Report()) spdlog::info("{}", line);
      if (absl::Now() >= next_purge) {
        next_purge = absl::Now() + options_.config.redis_cluster.purge_interval;
        if (absl::Status purged = engines_->PurgeExpired(); !purged.ok()) {
          spdlog::warn("purging expired items: {}", purged.ToString());
        }
      }
    }
  }

  GatewayOptions options_;
  std::unique_ptr<Engines> engines_;
  std::unique_ptr<kv::KvStore> store_;
  std::unique_ptr<Namespaces> namespaces_;
  std::unique_ptr<DelayQueue> timers_;  // admission's queue-wait timers
  std::unique_ptr<Admissions> admissions_;
  std::unique_ptr<EnginePools> pools_;
  std::unique_ptr<WorkerPool> admin_pool_;  // Admin.Pause runs here
  std::unique_ptr<FaultInjector> faults_;   // null without fault injection
  std::unique_ptr<DelayQueue> delays_;      // null without fault injection
  std::unique_ptr<KvService> kv_service_;
  std::unique_ptr<ControlService> control_service_;
  std::unique_ptr<AdminService> admin_service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::thread gc_thread_;
  absl::Notification stop_gc_;
  absl::Notification drained_;
  std::atomic<bool> draining_{false};
};

}  // namespace

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Start(GatewayOptions options) {
  auto gateway = std::make_unique<GatewayImpl>(std::move(options));
  SG_RETURN_IF_ERROR(gateway->Start());
  return gateway;
}

}  // namespace stategate::server
