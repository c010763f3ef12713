// KvService: the stategate.v1.KeyValue gRPC service, the request path of every Key-Value
// call (README, "Admission and priority"), in this order:
//   1. On the gRPC thread: parse the request (bad bytes are INVALID_ARGUMENT; see
//      wire_messages.h), find its namespace in the set current at arrival, apply the
//      request limits every call shares, and read its priority (metadata
//      "stategate-priority", else the namespace's default_priority).
//   2. Faults, when fault injection is on: a delay waits on the delay queue, not on a
//      thread; an injected error finishes the call without running it.
//   3. Admission (admission.h), one per namespace and shard (StorageEngine::ShardOf): its
//      concurrency limit and priority queue admit the call, or shed it at once with
//      RESOURCE_EXHAUSTED and retry pushback.
//   4. The engine. On an asynchronous engine (Redis Cluster: StorageEngine's asynchronous
//      forms) the call's engine work starts on the admitting thread and its answer comes
//      back on the engine's event loop; no thread waits for it. Otherwise a read first runs
//      at once, on the admitting thread, from what the engine holds in memory
//      (memory_only.h: RocksDB's memtables and block cache). What needs a thread that may
//      wait (disk I/O, a chunked value's chunks) runs on the lane of its engine and shard
//      (engine_pools.h), or fails at once when that lane's queue is full. It is dropped if its
//      caller gave up or its deadline passed while it waited (shed, RESOURCE_EXHAUSTED with
//      pushback, when only its SLO budget passed). The engine gives up at the call's deadline: its
//      own, or 90 % of the namespace's SLO max for what it does after admission, whichever
//      comes first (call_deadline.h).
//   5. The answer, with the config version in the trailing metadata. A shard's UNAVAILABLE
//      (a full lane, a failover, a stalled master, missing replicas) carries the namespace's
//      retry pushback and kShardUnavailableKey: the client retries it on its own timer and
//      keeps the gateway for its other calls.
// Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <type_traits>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/common/delay_queue.h"
#include "src/kv/kv_store.h"
#include "src/server/admission.h"
#include "src/server/engine_pools.h"
#include "src/server/faults.h"
#include "src/server/namespaces.h"
#include "stategate/v1/kv.grpc.pb.h"

namespace stategate::server {

// The KeyValue service over gRPC's raw callback methods, so that every request is parsed
// by us and its wire size is known.
using RawKeyValueService = v1::KeyValue::WithRawCallbackMethod_PutItems<
    v1::KeyValue::WithRawCallbackMethod_GetItems<v1::KeyValue::WithRawCallbackMethod_DeleteItems<
        v1::KeyValue::WithRawCallbackMethod_MutateItems<
            v1::KeyValue::WithRawCallbackMethod_ScanItems<
                v1::KeyValue::WithRawCallbackMethod_PutChunk<
                    v1::KeyValue::WithRawCallbackMethod_GetChunk<v1::KeyValue::Service>>>>>>>;

class KvService final : public RawKeyValueService {
 public:
  // `faults` and `delays` are null without fault injection.
  KvService(kv::KvStore* store, Namespaces* namespaces, Admissions* admissions, EnginePools* pools,
            FaultInjector* faults, DelayQueue* delays)
      : store_(store),
        namespaces_(namespaces),
        admissions_(admissions),
        pools_(pools),
        faults_(faults),
        delays_(delays) {}

  grpc::ServerUnaryReactor* PutItems(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                     grpc::ByteBuffer* resp) override;
  grpc::ServerUnaryReactor* GetItems(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                     grpc::ByteBuffer* resp) override;
  grpc::ServerUnaryReactor* DeleteItems(grpc::CallbackServerContext* ctx,
                                        const grpc::ByteBuffer* req,
                                        grpc::ByteBuffer* resp) override;
  grpc::ServerUnaryReactor* MutateItems(grpc::CallbackServerContext* ctx,
                                        const grpc::ByteBuffer* req,
                                        grpc::ByteBuffer* resp) override;
  grpc::ServerUnaryReactor* ScanItems(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                      grpc::ByteBuffer* resp) override;
  grpc::ServerUnaryReactor* PutChunk(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                     grpc::ByteBuffer* resp) override;
  grpc::ServerUnaryReactor* GetChunk(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                     grpc::ByteBuffer* resp) override;

  // From now on every response carries kDrainingKey: clients with other gateways move
  // their next calls there.
  void StartDraining() { draining_.store(true); }
  // Waits until no call has arrived for `quiet` (the clients have moved), or `timeout`;
  // false on timeout. Runs on the draining thread; calls go on meanwhile.
  bool WaitQuiet(absl::Duration quiet, absl::Duration timeout);
  // Waits until no call is in flight, or `timeout`; false on timeout.
  bool WaitIdle(absl::Duration timeout);

 private:
  template <typename Request, typename Response>
  using Method = absl::StatusOr<Response> (kv::KvStore::*)(const NamespaceConfig&, const Request&);
  // The asynchronous form of a Method, for namespaces on an asynchronous engine; null for
  // calls that have none.
  template <typename Request, typename Response>
  using AsyncMethod = void (kv::KvStore::*)(const NamespaceConfig&, const Request&, absl::Time,
                                            kv::KvStore::Done<Response>);
  template <typename Request>
  struct Call;

  template <typename Request, typename Response>
  grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* ctx,
                                  const grpc::ByteBuffer* request_bytes,
                                  grpc::ByteBuffer* response_bytes,
                                  Method<Request, Response> method,
                                  std::type_identity_t<AsyncMethod<Request, Response>> async_method,
                                  Access access, const Slo NamespaceConfig::*slo);
  template <typename Request, typename Response>
  void Admit(std::shared_ptr<Call<Request>> call, Method<Request, Response> method,
             AsyncMethod<Request, Response> async_method);
  template <typename Request, typename Response>
  void RunOnEngine(std::shared_ptr<Call<Request>> call, Admission::Slot slot,
                   Method<Request, Response> method, AsyncMethod<Request, Response> async_method);
  template <typename Request, typename Response>
  void RunOnLane(std::shared_ptr<Call<Request>> call, std::shared_ptr<Admission::Slot> held,
                 Method<Request, Response> method);
  template <typename Request, typename Response>
  void Answer(const std::shared_ptr<Call<Request>>& call, Admission::Slot& slot,
              absl::StatusOr<Response> response);
  // Finishes a call, and counts it out.
  void Finish(grpc::ServerUnaryReactor* reactor, const absl::Status& status);
  void CallStarted();

  kv::KvStore* const store_;
  Namespaces* const namespaces_;
  Admissions* const admissions_;
  EnginePools* const pools_;
  FaultInjector* const faults_;
  DelayQueue* const delays_;
  std::atomic<bool> draining_{false};
  absl::Mutex calls_mu_;
  int calls_in_flight_ ABSL_GUARDED_BY(calls_mu_) = 0;
  absl::Time last_arrival_ ABSL_GUARDED_BY(calls_mu_) = absl::InfinitePast();
};

}  // namespace stategate::server
