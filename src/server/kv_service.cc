#include "src/server/kv_service.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "src/common/call_deadline.h"
#include "src/common/grpc_status.h"
#include "src/common/metadata_keys.h"
#include "src/common/priority.h"
#include "src/common/quote.h"
#include "src/common/status_macros.h"
#include "src/server/pushback.h"
#include "src/server/wire_messages.h"
#include "src/storage/memory_only.h"

namespace stategate::server {
namespace {

// The share of its SLO max after which a call is answered, whatever its engine is doing:
// before the reliable client's attempt timer (the SLO max from its own send) cancels it.
constexpr double kAnswerShare = 0.9;

// What a call's answer tells its namespace's concurrency limit.
Admission::Slot::Outcome OutcomeOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kOutOfRange:
      return Admission::Slot::Outcome::kServed;  // answered: its latency is the signal
    case absl::StatusCode::kDeadlineExceeded:
      return Admission::Slot::Outcome::kDropped;  // too slow: overload
    default:
      return Admission::Slot::Outcome::kIgnored;  // the engine's trouble, not our load
  }
}

// The call's priority: its metadata's, else the namespace's default.
absl::StatusOr<Priority> PriorityOf(const grpc::CallbackServerContext& ctx,
                                    const NamespaceConfig& ns) {
  const auto& metadata = ctx.client_metadata();
  auto it = metadata.find(kPriorityMetadataKey);
  if (it == metadata.end()) return ns.admission.default_priority;
  return ParsePriority(absl::string_view(it->second.data(), it->second.size()),
                       absl::StrCat("metadata ", kPriorityMetadataKey));
}

// An UNAVAILABLE that is about `shard` ("" = the engine's own lane), not the gateway: the
// namespace's pushback, and the trailer that tells the client so.
void MarkShardUnavailable(grpc::CallbackServerContext& ctx, const NamespaceConfig& ns,
                          const std::string& shard) {
  SetRetryPushback(ctx, ns.admission.retry_pushback);
  if (!shard.empty()) ctx.AddTrailingMetadata(kShardUnavailableKey, shard);
}

// Whether this thread is reading a call from engine memory (KvService::RunOnEngine).
bool& InMemoryRead() {
  thread_local bool reading = false;
  return reading;
}

}  // namespace

// One call on its way through the request path; shared by the steps that carry it on.
template <typename Request>
struct KvService::Call {
  grpc::CallbackServerContext* ctx = nullptr;
  grpc::ServerUnaryReactor* reactor = nullptr;
  grpc::ByteBuffer* response_bytes = nullptr;
  Request request;
  std::shared_ptr<const NamespaceSet> set;  // current at arrival; holds `ns`
  const NamespaceConfig* ns = nullptr;
  Priority priority = Priority::kNormal;
  // The namespace's SLO max for what it does (infinite for bulk data).
  absl::Duration slo_max = absl::InfiniteDuration();
  // When the engine gives up: the call's deadline, or kAnswerShare of slo_max after its
  // admission, whichever is first.
  absl::Time deadline = absl::InfiniteFuture();
  // Where its engine work goes (StorageEngine::ShardOf): its admission and its lane.
  std::string shard;
  // A read: tried first from the engine's memory on the admitting thread (memory_only.h).
  bool memory_first = false;
};

grpc::ServerUnaryReactor* KvService::PutItems(grpc::CallbackServerContext* ctx,
                                              const grpc::ByteBuffer* req, grpc::ByteBuffer* resp) {
  return Serve(ctx, req, resp, &kv::KvStore::PutItems, &kv::KvStore::PutItemsAsync, Access::kWrite,
               &NamespaceConfig::write);
}
grpc::ServerUnaryReactor* KvService::GetItems(grpc::CallbackServerContext* ctx,
                                              const grpc::ByteBuffer* req, grpc::ByteBuffer* resp) {
  return Serve(ctx, req, resp, &kv::KvStore::GetItems, &kv::KvStore::GetItemsAsync, Access::kRead,
               &NamespaceConfig::point_read);
}
grpc::ServerUnaryReactor* KvService::DeleteItems(grpc::CallbackServerContext* ctx,
                                                 const grpc::ByteBuffer* req,
                                                 grpc::ByteBuffer* resp) {
  return Serve(ctx, req, resp, &kv::KvStore::DeleteItems, &kv::KvStore::DeleteItemsAsync,
               Access::kWrite, &NamespaceConfig::write);
}
grpc::ServerUnaryReactor* KvService::MutateItems(grpc::CallbackServerContext* ctx,
                                                 const grpc::ByteBuffer* req,
                                                 grpc::ByteBuffer* resp) {
  return Serve(ctx, req, resp, &kv::KvStore::MutateItems, &kv::KvStore::MutateItemsAsync,
               Access::kWrite, &NamespaceConfig::write);
}
grpc::ServerUnaryReactor* KvService::ScanItems(grpc::CallbackServerContext* ctx,
                                               const grpc::ByteBuffer* req,
                                               grpc::ByteBuffer* resp) {
  return Serve(ctx, req, resp, &kv::KvStore::ScanItems, &kv::KvStore::ScanItemsAsync, Access::kRead,
               &NamespaceConfig::range_read);
}
grpc::ServerUnaryReactor* KvService::PutChunk(grpc::CallbackServerContext* ctx,
                                              const grpc::ByteBuffer* req, grpc::ByteBuffer* resp) {
  return Serve(ctx, req, resp, &kv::KvStore::PutChunk, &kv::KvStore::PutChunkAsync, Access::kWrite,
               nullptr /* bulk data, no SLO */);
}
grpc::ServerUnaryReactor* KvService::GetChunk(grpc::CallbackServerContext* ctx,
                                              const grpc::ByteBuffer* req, grpc::ByteBuffer* resp) {
  return Serve(ctx, req, resp, &kv::KvStore::GetChunk, &kv::KvStore::GetChunkAsync, Access::kRead,
               nullptr /* bulk data, no SLO */);
}

// Step 1, on the gRPC thread, then step 2.
template <typename Request, typename Response>
grpc::ServerUnaryReactor* KvService::Serve(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request_bytes,
    grpc::ByteBuffer* response_bytes, Method<Request, Response> method,
    std::type_identity_t<AsyncMethod<Request, Response>> async_method, Access access,
    const Slo NamespaceConfig::*slo) {
  CallStarted();
  auto call = std::make_shared<Call<Request>>();
  call->ctx = ctx;
  call->reactor = ctx->DefaultReactor();
  call->response_bytes = response_bytes;
  call->set = namespaces_->Current();
  ctx->AddTrailingMetadata(kConfigVersionKey, std::to_string(call->set->version));
  if (draining_.load()) ctx->AddTrailingMetadata(kDrainingKey, "1");
  absl::Status checked = [&]() -> absl::Status {
    SG_RETURN_IF_ERROR(ParseRequest(*request_bytes, call->request));
    call->ns = call->set->Find(call->request.namespace_());
    if (call->ns == nullptr) {
      return absl::NotFoundError(absl::StrCat("namespace ", QuoteInput(call->request.namespace_()),
                                              " is not served here"));
    }
    SG_RETURN_IF_ERROR(kv::CheckRequestBytes(*call->ns, request_bytes->Length()));
    SG_ASSIGN_OR_RETURN(call->priority, PriorityOf(*ctx, *call->ns));
    if (slo != nullptr) call->slo_max = (call->ns->*slo).max;
    call->memory_first = access == Access::kRead;
    return absl::OkStatus();
  }();
  if (!checked.ok()) {
    Finish(call->reactor, checked);
    return call->reactor;
  }
  if (faults_ == nullptr) {
    Admit(call, method, async_method);
    return call->reactor;
  }
  FaultDecision decision = faults_->Decide(call->request.namespace_(), access);
  std::function<void()> next = [this, call, method, async_method] {
    Admit(call, method, async_method);
  };
  if (decision.error.has_value()) {
    next = [this, call, decision] {
      if (decision.error->code() == absl::StatusCode::kResourceExhausted) {
        SetRetryPushback(*call->ctx, decision.retry_pushback);
      }
      Finish(call->reactor, *decision.error);
    };
  }
  if (decision.delay > absl::ZeroDuration()) {
    delays_->Schedule(decision.delay, std::move(next));
  } else {
    next();
  }
  return call->reactor;
}

// Step 3: the admission of the call's namespace and shard starts the call, queues it, or
// sheds it.
template <typename Request, typename Response>
void KvService::Admit(std::shared_ptr<Call<Request>> call, Method<Request, Response> method,
                      AsyncMethod<Request, Response> async_method) {
  // An answer later than the SLO max has failed its SLO, and the reliable client cancels
  // the attempt then: engine work past it only holds a thread. The gateway answers a little
  // earlier, so that the client learns why (a shard's UNAVAILABLE does not count against
  // the gateway; a cancelled attempt does). Counted from admission, so that an
  // injected delay stands for a slow network in front of the gateway.
  call->deadline =
      std::min(absl::FromChrono(call->ctx->deadline()), absl::Now() + call->slo_max * kAnswerShare);
  // Where the record lives now (a failover moves it).
  call->shard = store_->ShardOf(*call->ns, call->request);
  absl::StatusOr<std::shared_ptr<Admission>> admission = admissions_->For(*call->ns, call->shard);
  if (!admission.ok()) {
    Finish(call->reactor,
           absl::InternalError(absl::StrCat("admission: ", admission.status().message())));
    return;
  }
  (*admission)
      ->Submit(
          call->priority, call->deadline,
          [this, call, method, async_method](Admission::Slot slot) {
            RunOnEngine(call, std::move(slot), method, async_method);
          },
          [this, call](absl::Status status, absl::Duration pushback) {
            if (absl::IsResourceExhausted(status)) SetRetryPushback(*call->ctx, pushback);
            Finish(call->reactor, status);
          });
}

// Step 4: on an asynchronous engine, the call's engine work starts here and its answer
// comes back on the engine's thread; else a read is answered from the engine's memory at
// once, on the admitting thread; anything that needs I/O goes to the lane of its engine
// and shard.
template <typename Request, typename Response>
void KvService::RunOnEngine(std::shared_ptr<Call<Request>> call, Admission::Slot slot,
                            Method<Request, Response> method,
                            AsyncMethod<Request, Response> async_method) {
  // The store is captured by value, not reached through `this`: built with ASan and UBSan,
  // GCC 12 reported `this->store_` inside the lane's lambda as a misaligned access at an
  // address in ASan's shadow memory (not `this`) and aborted every call.
  kv::KvStore* const store = store_;
  if (async_method != nullptr && store->IsAsync(*call->ns)) {
    std::invoke(
        async_method, store, *call->ns, call->request, call->deadline,
        [this, call, slot = std::move(slot), method](absl::StatusOr<Response> response) mutable {
          // Work the asynchronous form cannot do without blocking goes to the lane.
          if (storage::IsWouldBlock(response.status())) {
            RunOnLane(call, std::make_shared<Admission::Slot>(std::move(slot)), method);
            return;
          }
          Answer(call, slot, std::move(response));
        });
    return;
  }
  // Only at the outermost level: a slot this call frees starts the next waiting call on
  // this thread, which must not read inline too (the stack would grow with the queue).
  bool& in_memory_read = InMemoryRead();
  if (call->memory_first && !in_memory_read) {
    in_memory_read = true;
    absl::StatusOr<Response> response = [&] {
      ScopedCallDeadline deadline(call->deadline);
      storage::ScopedMemoryOnly memory_only;
      return std::invoke(method, store, *call->ns, call->request);
    }();
    const bool answered = !storage::IsWouldBlock(response.status());
    if (answered) Answer(call, slot, std::move(response));
    in_memory_read = false;
    if (answered) return;
  }
  RunOnLane(call, std::make_shared<Admission::Slot>(std::move(slot)), method);
}

// Step 4, on a lane: the engine work of a call that may wait for I/O.
template <typename Request, typename Response>
void KvService::RunOnLane(std::shared_ptr<Call<Request>> call,
                          std::shared_ptr<Admission::Slot> held, Method<Request, Response> method) {
  kv::KvStore* const store = store_;
  const std::string& shard = call->shard;
  const EnginePools::Submitted submitted =
      pools_->Submit(call->ns->engine, shard, [this, store, call, held, method] {
        // Work whose caller has given up is dropped, not done.
        if (call->ctx->IsCancelled()) {
          held->Finish(Admission::Slot::Outcome::kIgnored);
          Finish(call->reactor, absl::CancelledError("the caller cancelled the call"));
          return;
        }
        if (call->deadline <= absl::Now()) {
          held->Finish(Admission::Slot::Outcome::kDropped);
          if (absl::FromChrono(call->ctx->deadline()) <= absl::Now()) {
            Finish(call->reactor, absl::DeadlineExceededError(
                                      "the call's deadline passed while it waited for its engine"));
            return;
          }
          // Its SLO is lost, not its caller's patience: shed like a call that waited too
          // long for admission, so that the client may retry it elsewhere.
          SetRetryPushback(*call->ctx, call->ns->admission.retry_pushback);
          Finish(call->reactor,
                 absl::ResourceExhaustedError(absl::StrCat(
                     "shed: the call waited for engine ", call->ns->engine, " past ",
                     static_cast<int>(kAnswerShare * 100), "% of the namespace's SLO max (",
                     absl::FormatDuration(call->slo_max), "); retry after the pushback")));
          return;
        }
        absl::StatusOr<Response> response = [&] {
          ScopedCallDeadline deadline(call->deadline);
          return std::invoke(method, store, *call->ns, call->request);
        }();
        Answer(call, *held, std::move(response));
      });
  switch (submitted) {
    case EnginePools::Submitted::kQueued:
      return;
    case EnginePools::Submitted::kUnknownEngine:
      held->Finish(Admission::Slot::Outcome::kIgnored);
      Finish(call->reactor,
             absl::InternalError(absl::StrCat("no worker lane for engine ", call->ns->engine)));
      return;
    case EnginePools::Submitted::kLaneFull:
      // A stalled shard fills its own lane and fails fast there, never delaying another.
      held->Finish(Admission::Slot::Outcome::kIgnored);
      MarkShardUnavailable(*call->ctx, *call->ns, shard);
      Finish(call->reactor, absl::UnavailableError(absl::StrCat(
                                "engine ", call->ns->engine, shard.empty() ? "" : " shard ", shard,
                                " is behind: ", pools_->options().max_queued,
                                " calls already wait for it; calls to other shards and "
                                "engines go on; retry after the pushback")));
      return;
  }
}

// Step 5: the engine's answer, to the namespace's limit and to the caller.
template <typename Request, typename Response>
void KvService::Answer(const std::shared_ptr<Call<Request>>& call, Admission::Slot& slot,
                       absl::StatusOr<Response> response) {
  absl::Status status = response.status();
  slot.Finish(OutcomeOf(status));
  if (status.ok()) status = SerializeResponse(*response, *call->response_bytes);
  // The gateway is well; one shard behind it is not. The client keeps the gateway for
  // its other calls and retries this one after the pushback, on its own timer: no
  // thread here waits out a failover, and no client permit is held through it.
  if (absl::IsUnavailable(status) && !call->shard.empty()) {
    MarkShardUnavailable(*call->ctx, *call->ns, call->shard);
  }
  Finish(call->reactor, status);
}

void KvService::CallStarted() {
  absl::MutexLock lock(&calls_mu_);
  ++calls_in_flight_;
  last_arrival_ = absl::Now();
}

void KvService::Finish(grpc::ServerUnaryReactor* reactor, const absl::Status& status) {
  reactor->Finish(ToGrpcStatus(status));
  absl::MutexLock lock(&calls_mu_);
  --calls_in_flight_;
}

bool KvService::WaitQuiet(absl::Duration quiet, absl::Duration timeout) {
  const absl::Time give_up = absl::Now() + timeout;
  for (;;) {
    absl::Time quiet_at;
    {
      absl::MutexLock lock(&calls_mu_);
      quiet_at = last_arrival_ + quiet;
    }
    const absl::Time now = absl::Now();
    if (now >= quiet_at) return true;
    if (now >= give_up) return false;
    // Nothing signals "no arrival": look again when the quiet would be complete.
    absl::SleepFor(std::min(quiet_at, give_up) - now);
  }
}

bool KvService::WaitIdle(absl::Duration timeout) {
  absl::MutexLock lock(&calls_mu_);
  return calls_mu_.AwaitWithTimeout(absl::Condition(
                                        +[](int* n) { return *n == 0; }, &calls_in_flight_),
                                    timeout);
}

}  // namespace stategate::server
