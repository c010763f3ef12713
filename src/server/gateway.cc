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
#include "src/server/engines.h"
#include "src/server/faults.h"
#include "src/server/namespaces.h"
#include "src/server/pushback.h"
#include "src/server/wire_messages.h"
#include "stategate/v1/control.grpc.pb.h"
#include "stategate/v1/kv.grpc.pb.h"

namespace stategate::server {
namespace {

// Requests above every namespace's own limit are refused by gRPC itself; our per-namespace
// check (which names the limit) sees everything up to this.
constexpr int kMaxReceiveBytes = 80 << 20;
// How long calls that arrive during the last moments of a drain may still take.
constexpr absl::Duration kShutdownGrace = absl::Milliseconds(200);

// The KeyValue service over gRPC's raw callback methods: every request is parsed here
// (bad bytes are INVALID_ARGUMENT; see wire_messages.h).
using RawKeyValueService = v1::KeyValue::WithRawCallbackMethod_PutItems<
    v1::KeyValue::WithRawCallbackMethod_GetItems<v1::KeyValue::WithRawCallbackMethod_DeleteItems<
        v1::KeyValue::WithRawCallbackMethod_MutateItems<
            v1::KeyValue::WithRawCallbackMethod_ScanItems<
                v1::KeyValue::WithRawCallbackMethod_PutChunk<
                    v1::KeyValue::WithRawCallbackMethod_GetChunk<v1::KeyValue::Service>>>>>>>;

// Runs each KeyValue call on the worker pool against the namespace set current at arrival,
// after the faults drawn for it (when fault injection is on): a delay waits on the delay
// queue, not on a worker; an injected error finishes the call without running it. Every
// call passes the same checks before its method runs (Run): deadline, namespace, and the
// request limits every call shares.
class KvService final : public RawKeyValueService {
 public:
  // `faults` and `delays` are null without fault injection.
  KvService(kv::KvStore* store, Namespaces* namespaces, WorkerPool* pool, FaultInjector* faults,
            DelayQueue* delays)
      : store_(store), namespaces_(namespaces), pool_(pool), faults_(faults), delays_(delays) {}

  grpc::ServerUnaryReactor* PutItems(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                     grpc::ByteBuffer* resp) override {
    return Serve(ctx, req, resp, &kv::KvStore::PutItems, Access::kWrite);
  }
  grpc::ServerUnaryReactor* GetItems(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                     grpc::ByteBuffer* resp) override {
    return Serve(ctx, req, resp, &kv::KvStore::GetItems, Access::kRead);
  }
  grpc::ServerUnaryReactor* DeleteItems(grpc::CallbackServerContext* ctx,
                                        const grpc::ByteBuffer* req,
                                        grpc::ByteBuffer* resp) override {
    return Serve(ctx, req, resp, &kv::KvStore::DeleteItems, Access::kWrite);
  }
  grpc::ServerUnaryReactor* MutateItems(grpc::CallbackServerContext* ctx,
                                        const grpc::ByteBuffer* req,
                                        grpc::ByteBuffer* resp) override {
    return Serve(ctx, req, resp, &kv::KvStore::MutateItems, Access::kWrite);
  }
  grpc::ServerUnaryReactor* ScanItems(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                      grpc::ByteBuffer* resp) override {
    return Serve(ctx, req, resp, &kv::KvStore::ScanItems, Access::kRead);
  }
  grpc::ServerUnaryReactor* PutChunk(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                     grpc::ByteBuffer* resp) override {
    return Serve(ctx, req, resp, &kv::KvStore::PutChunk, Access::kWrite);
  }
  grpc::ServerUnaryReactor* GetChunk(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                     grpc::ByteBuffer* resp) override {
    return Serve(ctx, req, resp, &kv::KvStore::GetChunk, Access::kRead);
  }

 private:
  template <typename Request, typename Response>
  using Method = absl::StatusOr<Response> (kv::KvStore::*)(const NamespaceConfig&, const Request&);

  // A call's parsed request, and its size as it arrived.
  template <typename Request>
  struct Parsed {
    Request request;
    size_t wire_bytes = 0;
  };

  template <typename Request, typename Response>
  grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* ctx,
                                  const grpc::ByteBuffer* request_bytes,
                                  grpc::ByteBuffer* response_bytes,
                                  Method<Request, Response> method, Access access) {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    CallStarted();
    auto parsed = std::make_shared<Parsed<Request>>();
    parsed->wire_bytes = request_bytes->Length();
    if (absl::Status status = ParseRequest(*request_bytes, parsed->request); !status.ok()) {
      ctx->AddTrailingMetadata(kConfigVersionKey, std::to_string(namespaces_->Current()->version));
      reactor->Finish(ToGrpcStatus(status));
      CallFinished();
      return reactor;
    }
    auto submit = [=, this] {
      pool_->Submit([=, this] {
        std::shared_ptr<const NamespaceSet> set = namespaces_->Current();
        ctx->AddTrailingMetadata(kConfigVersionKey, std::to_string(set->version));
        absl::StatusOr<Response> response = Run(*set, ctx, *parsed, method);
        absl::Status status = response.status();
        if (status.ok()) status = SerializeResponse(*response, *response_bytes);
        reactor->Finish(ToGrpcStatus(status));
        CallFinished();
      });
    };
    if (faults_ == nullptr) {
      submit();
      return reactor;
    }
    FaultDecision decision = faults_->Decide(parsed->request.namespace_(), access);
    std::function<void()> next = submit;
    if (decision.error.has_value()) {
      next = [this, ctx, reactor, decision] { FinishInjected(ctx, reactor, decision); };
    }
    if (decision.delay > absl::ZeroDuration()) {
      delays_->Schedule(decision.delay, std::move(next));
    } else {
      next();
    }
    return reactor;
  }

  // Finishes a call with its injected error, as a real one would be finished.
  void FinishInjected(grpc::CallbackServerContext* ctx, grpc::ServerUnaryReactor* reactor,
                      const FaultDecision& decision) {
    ctx->AddTrailingMetadata(kConfigVersionKey, std::to_string(namespaces_->Current()->version));
    if (decision.error->code() == absl::StatusCode::kResourceExhausted) {
      SetRetryPushback(*ctx, decision.retry_pushback);
    }
    reactor->Finish(ToGrpcStatus(*decision.error));
    CallFinished();
  }

  void CallStarted() {
    absl::MutexLock lock(&calls_mu_);
    ++calls_in_flight_;
  }
  void CallFinished() {
    absl::MutexLock lock(&calls_mu_);
    --calls_in_flight_;
  }

 public:
  // Waits until no call is in flight, or `timeout`; false on timeout.
  bool WaitIdle(absl::Duration timeout) {
    absl::MutexLock lock(&calls_mu_);
    return calls_mu_.AwaitWithTimeout(absl::Condition(
                                          +[](int* n) { return *n == 0; }, &calls_in_flight_),
                                      timeout);
  }

 private:
  template <typename Request, typename Response>
  absl::StatusOr<Response> Run(const NamespaceSet& set, grpc::CallbackServerContext* ctx,
                               const Parsed<Request>& parsed, Method<Request, Response> method) {
    // Work whose caller has given up is dropped, not done.
    if (ctx->IsCancelled() || ctx->deadline() < std::chrono::system_clock::now()) {
      return absl::DeadlineExceededError("the call's deadline passed before it was run");
    }
    const NamespaceConfig* ns = set.Find(parsed.request.namespace_());
    if (ns == nullptr) {
      return absl::NotFoundError(absl::StrCat("namespace ", QuoteInput(parsed.request.namespace_()),
                                              " is not served here"));
    }
    SG_RETURN_IF_ERROR(kv::CheckRequestBytes(*ns, parsed.wire_bytes));
    return (store_->*method)(*ns, parsed.request);
  }

  kv::KvStore* const store_;
  Namespaces* const namespaces_;
  WorkerPool* const pool_;
  FaultInjector* const faults_;
  DelayQueue* const delays_;
  absl::Mutex calls_mu_;
  int calls_in_flight_ ABSL_GUARDED_BY(calls_mu_) = 0;
};

// Handshake is answered on the gRPC thread: it only copies an immutable snapshot.
class ControlService final : public v1::Control::CallbackService {
 public:
  ControlService(Namespaces* namespaces, Clock* clock) : namespaces_(namespaces), clock_(clock) {}

  grpc::ServerUnaryReactor* Handshake(grpc::CallbackServerContext* ctx,
                                      const v1::HandshakeRequest* request,
                                      v1::HandshakeResponse* response) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    std::shared_ptr<const NamespaceSet> set = namespaces_->Current();
    ctx->AddTrailingMetadata(kConfigVersionKey, std::to_string(set->version));
    if (request->namespaces().empty()) {
      *response = set->handshake;
    } else {
      response->set_config_version(set->version);
      response->set_max_clock_skew_us(set->handshake.max_clock_skew_us());
      for (const std::string& name : request->namespaces()) {
        auto it =
            std::find_if(set->handshake.namespaces().begin(), set->handshake.namespaces().end(),
                         [&](const v1::NamespaceInfo& info) { return info.name() == name; });
        if (it == set->handshake.namespaces().end()) {
          reactor->Finish(ToGrpcStatus(absl::NotFoundError(
              absl::StrCat("namespace ", QuoteInput(name), " is not served here"))));
          return reactor;
        }
        *response->add_namespaces() = *it;
      }
    }
    response->set_server_time_us(clock_->NowMicros());
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  Namespaces* const namespaces_;
  Clock* const clock_;
};

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

    pool_ = std::make_unique<WorkerPool>(config.worker_threads);
    if (options_.fault_injection) {
      faults_ = std::make_unique<FaultInjector>();
      faults_->ReplaceAll(config.faults);
      delays_ = std::make_unique<DelayQueue>();
      spdlog::warn("fault injection is ON (--fault-injection): never run this in production");
      for (const auto& [name, spec] : config.faults) {
        spdlog::warn("fault injection: namespace {}: {}", name, DescribeFaults(spec));
      }
    }
    kv_service_ = std::make_unique<KvService>(store_.get(), namespaces_.get(), pool_.get(),
                                              faults_.get(), delays_.get());
    control_service_ = std::make_unique<ControlService>(namespaces_.get(), options_.clock);
    admin_service_ = std::make_unique<AdminService>(faults_.get(), namespaces_.get(), pool_.get());

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
    spdlog::info("draining: health NOT_SERVING, waiting up to {} for in-flight calls",
                 absl::FormatDuration(options_.config.drain_timeout));
    // Delayed calls go on at once: a drain does not wait out injected latency.
    if (delays_ != nullptr) delays_->Stop();
    if (server_ != nullptr) {
      server_->GetHealthCheckService()->SetServingStatus(false);
      // Let the calls in flight finish, then stop at once: gRPC's own Shutdown(deadline)
      // would also wait out the deadline for clients that merely keep a connection open.
      if (!kv_service_->WaitIdle(options_.config.drain_timeout)) {
        spdlog::warn("drain: calls still in flight after {}; cancelling them",
                     absl::FormatDuration(options_.config.drain_timeout));
      }
      server_->Shutdown(absl::ToChronoTime(absl::Now() + kShutdownGrace));
    }
    stop_gc_.Notify();
    if (gc_thread_.joinable()) gc_thread_.join();
    delays_.reset();  // empty: Stop ran everything, and no call arrives after Shutdown
    pool_.reset();    // runs what was queued, then joins
    server_.reset();
    store_.reset();
    if (engines_ != nullptr) {
      for (const std::string& line : engines_->CacheReport()) spdlog::info("{}", line);
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
      for (const std::string& line : engines_->CacheReport()) spdlog::info("{}", line);
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
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<FaultInjector> faults_;  // null without fault injection
  std::unique_ptr<DelayQueue> delays_;     // null without fault injection
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
