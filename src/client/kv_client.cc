// The gRPC implementation of KvClient.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "grpc/grpc.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/grpcpp.h"
#include "src/client/chunking.h"
#include "src/client/convert.h"
#include "src/client/kv_client_internal.h"
#include "src/client/reliable_call.h"
#include "src/client/token.h"
#include "src/common/checksum.h"
#include "src/common/grpc_status.h"
#include "src/common/lz4_codec.h"
#include "src/common/metadata_keys.h"
#include "src/common/quote.h"
#include "src/common/status_macros.h"
#include "src/common/worker_pool.h"
#include "stategate/kv_client.h"
#include "stategate/v1/control.grpc.pb.h"
#include "stategate/v1/kv.grpc.pb.h"

namespace stategate::client {
namespace {

// absl::string_view is not std::string_view in this Abseil build.
absl::string_view AsAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string Describe(std::string_view ns, std::string_view id, std::string_view key) {
  return absl::StrCat("namespace ", QuoteInput(AsAbsl(ns)), " id ", QuoteInput(AsAbsl(id)), " key ",
                      QuoteInput(AsAbsl(key)));
}

inline constexpr int kMinAimdLimit = 8;

// A call that carries a priority counts as late to its endpoint's limiter past this
// fraction of its SLO target, not past the target. A client that sends tiers asks for its
// critical calls to keep their SLO under overload; for that the gateways must not run
// saturated (a critical call then waits behind the others for CPU, where no queue orders
// it: 80-87 % of critical calls met their SLO at 2x), so the limit falls at the first sign
// of queueing and the calls it holds back wait here, most important first (PermitQueue).
// Calls without a priority keep the SLO target, so that a client without tiers running
// flat out is not throttled below what meets its SLO.
inline constexpr int kTieredLateDivisor = 8;

// One endpoint's limiter. An AIMD limit never falls below kMinAimdLimit: late answers
// shrink it (CallSpec::late_after), and a burst of them from a healthy gateway's tail (a
// compaction, an fsync) would otherwise leave a lightly loaded client one or two calls
// and refuse the next burst, sheddable calls (half the limit) first. Overload is still
// held off: a gateway answering within its SLO serves far more than that at a time.
reliability::LimiterOptions EndpointLimiter(const KvClientOptions& options) {
  reliability::LimiterOptions limiter;
  limiter.kind = options.reliability.limiter;
  limiter.aimd.min_limit = kMinAimdLimit;
  return limiter;
}

// Starts one RPC of a stub's callback API on an endpoint.
template <typename Request, typename Response>
using AsyncRpc = std::function<void(Endpoint&, grpc::ClientContext*, const Request*, Response*,
                                    std::function<void(grpc::Status)>)>;

// gRPC 1.51 runs every channel's callback calls on one shared completion queue, made when a
// channel first needs it and torn down when the last channel that used it goes. A process
// that makes clients one after another (the CLI's tests, the bench) tore it down and made it
// again each time, and ASan caught a double free in that teardown on a gRPC thread
// (grpc_cq_internal_unref), about one CI run in ten. The first channel that makes a callback
// call is held for the life of the process, so the queue is made once and never torn down.
void KeepCallbackQueue(const std::shared_ptr<grpc::Channel>& channel) {
  if (channel == nullptr) return;  // a test's endpoint without one
  [[maybe_unused]] static const auto* const kept = new std::shared_ptr<grpc::Channel>(channel);
}

// The AsyncRpc of method `method` of the endpoint's `stub` (kv or control).
#define SG_ASYNC(stub, method)                                                          \
  [](Endpoint& endpoint, grpc::ClientContext* ctx, const auto* request, auto* response, \
     std::function<void(grpc::Status)> done) {                                          \
    KeepCallbackQueue(endpoint.channel);                                                \
    endpoint.stub->async()->method(ctx, request, response, std::move(done));            \
  }

class GrpcKvClient final : public KvClient {
 public:
  GrpcKvClient(const KvClientOptions& options, std::vector<std::shared_ptr<grpc::Channel>> channels,
               const Clock* clock)
      : options_(options),
        tokens_(clock),
        caller_(MakeEndpoints(options, std::move(channels), clock), options.reliability, clock) {
    if (options_.handshake_interval > absl::ZeroDuration()) {
      caller_.After(options_.handshake_interval, [this] { RefreshSettings(); });
    }
  }

  KvClientStats stats() const override {
    KvClientStats stats = caller_.stats();
    stats.bytes_before_compression = bytes_before_compression_;
    stats.bytes_after_compression = bytes_after_compression_;
    return stats;
  }

  absl::StatusOr<HandshakeInfo> Handshake(const std::vector<std::string>& namespaces) override {
    v1::HandshakeRequest request;
    for (const std::string& ns : namespaces) request.add_namespaces(ns);
    v1::HandshakeResponse response;
    SG_RETURN_IF_ERROR(
        Call("", AccessPattern::kPointRead, request, &response, SG_ASYNC(control, Handshake)));
    return ApplyHandshake(response);
  }

  absl::Status Put(std::string_view ns, std::string_view id, std::string_view key,
                   std::string_view value, absl::Duration ttl) override {
    return PutViews(ns, id, {ItemView{key, value, ttl}});
  }

  absl::Status PutItems(std::string_view ns, std::string_view id,
                        const std::vector<Item>& items) override {
    std::vector<ItemView> views;
    views.reserve(items.size());
    for (const Item& item : items) views.push_back(ItemView{item.key, item.value, item.ttl});
    return PutViews(ns, id, views);
  }

  absl::StatusOr<std::string> Get(std::string_view ns, std::string_view id,
                                  std::string_view key) override {
    SG_ASSIGN_OR_RETURN(std::vector<StoredItem> items,
                        GetItems(ns, id, Predicate::Keys({std::string(key)})));
    for (StoredItem& item : items) {
      if (item.key == key) return std::move(item.value);
    }
    return absl::NotFoundError(absl::StrCat("no item at ", Describe(ns, id, key)));
  }

  absl::StatusOr<std::vector<StoredItem>> GetItems(std::string_view ns, std::string_view id,
                                                   const Predicate& predicate) override {
    return GetItemsWith(ns, id, predicate, CallOptions{});
  }

  absl::StatusOr<std::vector<StoredItem>> GetItemsWith(std::string_view ns, std::string_view id,
                                                       const Predicate& predicate,
                                                       const CallOptions& call) {
    v1::GetItemsRequest request;
    request.set_namespace_(std::string(ns));
    request.set_id(std::string(id));
    ToProto(predicate, request.mutable_predicate());
    FillSelection(request.mutable_selection());
    std::vector<StoredItem> items;
    while (true) {
      v1::GetItemsResponse response;
      SG_RETURN_IF_ERROR(
          Call(ns, ReadPattern(predicate), request, &response, SG_ASYNC(kv, GetItems), call));
      for (const v1::Item& item : response.items()) {
        SG_ASSIGN_OR_RETURN(std::optional<StoredItem> stored, ReadItem(ns, id, item));
        if (stored.has_value()) items.push_back(*std::move(stored));
      }
      SG_RETURN_IF_ERROR(NextPage(response.next_page_token(), request.mutable_page_token()));
      if (request.page_token().empty()) return items;
    }
  }

  absl::Status Delete(std::string_view ns, std::string_view id) override {
    return DeleteItems(ns, id, Predicate::All());
  }

  absl::Status Delete(std::string_view ns, std::string_view id, std::string_view key) override {
    return DeleteItems(ns, id, Predicate::Keys({std::string(key)}));
  }

  absl::Status DeleteItems(std::string_view ns, std::string_view id,
                           const Predicate& predicate) override {
    const IdempotencyToken token = tokens_.Next();
    v1::DeleteItemsRequest request;
    request.set_namespace_(std::string(ns));
    request.set_id(std::string(id));
    ToProto(predicate, request.mutable_predicate());
    token.ToProto(request.mutable_token());
    v1::DeleteItemsResponse response;
    return Call(ns, AccessPattern::kWrite, std::move(request), &response,
                SG_ASYNC(kv, DeleteItems));
  }

  absl::Status Mutate(std::string_view ns, std::string_view id,
                      const std::vector<Mutation>& mutations) override {
    const IdempotencyToken token = tokens_.Next();
    v1::MutateItemsRequest request;
    request.set_namespace_(std::string(ns));
    request.set_id(std::string(id));
    token.ToProto(request.mutable_token());
    std::optional<NamespaceSettings> settings;  // looked up only if there is a put
    for (const Mutation& mutation : mutations) {
      v1::Mutation* out = request.add_mutations();
      switch (mutation.kind) {
        case Mutation::Kind::kPut:
          if (!settings.has_value()) {
            SG_ASSIGN_OR_RETURN(settings, Settings(ns));
          }
          SG_RETURN_IF_ERROR(PrepareItem(ns, id, mutation.item.key, mutation.item.value,
                                         mutation.item.ttl, request.token(), *settings,
                                         out->mutable_put()));
          break;
        case Mutation::Kind::kDelete:
          ToProto(mutation.predicate, out->mutable_delete_());
          break;
      }
    }
    v1::MutateItemsResponse response;
    const bool chunked = std::any_of(
        request.mutations().begin(), request.mutations().end(),
        [](const v1::Mutation& m) { return m.has_put() && m.put().metadata().chunk_count() > 0; });
    return Call(ns, chunked ? AccessPattern::kChunk : AccessPattern::kWrite, std::move(request),
                &response, SG_ASYNC(kv, MutateItems));
  }

  absl::Status Scan(std::string_view ns, const RecordVisitor& visitor) override {
    v1::ScanItemsRequest request;
    request.set_namespace_(std::string(ns));
    FillSelection(request.mutable_selection());
    // A record larger than a page arrives in parts with the same id; they are joined so
    // that the visitor sees each record once.
    Record current;
    bool have_current = false;
    while (true) {
      v1::ScanItemsResponse response;
      SG_RETURN_IF_ERROR(
          Call(ns, AccessPattern::kRangeRead, request, &response, SG_ASYNC(kv, ScanItems)));
      for (const v1::ScanItemsResponse::Record& record : response.records()) {
        if (have_current && record.id() != current.id) {
          SG_RETURN_IF_ERROR(visitor(current));
          current = Record{};
          have_current = false;
        }
        if (!have_current) {
          current.id = record.id();
          have_current = true;
        }
        for (const v1::Item& item : record.items()) {
          SG_ASSIGN_OR_RETURN(std::optional<StoredItem> stored, ReadItem(ns, record.id(), item));
          if (stored.has_value()) current.items.push_back(*std::move(stored));
        }
      }
      SG_RETURN_IF_ERROR(NextPage(response.next_page_token(), request.mutable_page_token()));
      if (request.page_token().empty()) break;
    }
    if (have_current) return visitor(current);
    return absl::OkStatus();
  }

  void PutAsync(std::string_view ns, std::string_view id, std::string_view key, std::string value,
                StatusCallback done, absl::Duration ttl, const CallOptions& call) override {
    std::vector<Item> items;
    items.push_back(Item{std::string(key), std::move(value), ttl});
    PutItemsAsync(ns, id, std::move(items), std::move(done), call);
  }

  void PutItemsAsync(std::string_view ns, std::string_view id, std::vector<Item> items,
                     StatusCallback done, const CallOptions& call) override {
    std::optional<NamespaceSettings> settings = CachedSettings(ns);
    const bool inline_only =
        settings.has_value() && std::all_of(items.begin(), items.end(), [&](const Item& item) {
          return FitsInline(*settings, item.value.size());
        });
    if (!inline_only) {
      // The namespace's settings must be learned first (a handshake), or a value takes
      // several RPCs in order (chunks, then the commit): either way the blocking form runs
      // off this thread, so the caller never waits.
      return Offload([this, ns = std::string(ns), id = std::string(id), items = std::move(items),
                      call, done = std::move(done)] {
        std::vector<ItemView> views;
        views.reserve(items.size());
        for (const Item& item : items) views.push_back(ItemView{item.key, item.value, item.ttl});
        done(PutViews(ns, id, views, call));
      });
    }
    const IdempotencyToken token = tokens_.Next();
    v1::PutItemsRequest request;
    request.set_namespace_(std::string(ns));
    request.set_id(std::string(id));
    token.ToProto(request.mutable_token());
    for (const Item& item : items) {
      if (absl::Status s = PrepareItem(ns, id, item.key, item.value, item.ttl, request.token(),
                                       *settings, request.add_items());
          !s.ok()) {
        return done(s);
      }
    }
    CallAsync<v1::PutItemsRequest, v1::PutItemsResponse>(
        ns, AccessPattern::kWrite, std::move(request), SG_ASYNC(kv, PutItems),
        [done = std::move(done)](absl::Status status, v1::PutItemsResponse) { done(status); },
        call);
  }

  void GetItemsAsync(std::string_view ns, std::string_view id, Predicate predicate,
                     ItemsCallback done, const CallOptions& call) override {
    v1::GetItemsRequest request;
    request.set_namespace_(std::string(ns));
    request.set_id(std::string(id));
    ToProto(predicate, request.mutable_predicate());
    FillSelection(request.mutable_selection());
    CallAsync<v1::GetItemsRequest, v1::GetItemsResponse>(
        ns, ReadPattern(predicate), std::move(request), SG_ASYNC(kv, GetItems),
        [this, ns = std::string(ns), id = std::string(id), predicate = std::move(predicate), call,
         done = std::move(done)](absl::Status status, v1::GetItemsResponse response) mutable {
          if (!status.ok()) return done(status);
          const bool whole =
              response.next_page_token().empty() &&
              std::none_of(response.items().begin(), response.items().end(),
                           [](const v1::Item& item) {
                             return item.metadata().chunk_count() > 0 && item.value().empty();
                           });
          if (!whole) {
            // More pages or chunks take more RPCs, in order: read it all off the gRPC thread.
            return Offload(
                [this, ns = std::move(ns), id = std::move(id), predicate = std::move(predicate),
                 call, done = std::move(done)] { done(GetItemsWith(ns, id, predicate, call)); });
          }
          std::vector<StoredItem> items;
          items.reserve(response.items_size());
          for (const v1::Item& item : response.items()) {
            absl::StatusOr<std::optional<StoredItem>> stored = ReadItem(ns, id, item);
            if (!stored.ok()) return done(stored.status());
            if (stored->has_value()) items.push_back(**std::move(stored));
          }
          done(std::move(items));
        },
        call);
  }

  void GetAsync(std::string_view ns, std::string_view id, std::string_view key, ValueCallback done,
                const CallOptions& call) override {
    v1::GetItemsRequest request;
    request.set_namespace_(std::string(ns));
    request.set_id(std::string(id));
    request.mutable_predicate()->mutable_keys()->add_keys(std::string(key));
    FillSelection(request.mutable_selection());
    CallAsync<v1::GetItemsRequest, v1::GetItemsResponse>(
        ns, AccessPattern::kPointRead, std::move(request), SG_ASYNC(kv, GetItems),
        [this, ns = std::string(ns), id = std::string(id), key = std::string(key), call,
         done = std::move(done)](absl::Status status, v1::GetItemsResponse response) mutable {
          if (!status.ok()) return done(status);
          if (response.items_size() == 0) {
            return done(absl::NotFoundError(absl::StrCat("no item at ", Describe(ns, id, key))));
          }
          const v1::Item& item = response.items(0);
          if (item.metadata().chunk_count() == 0 || !item.value().empty()) {
            return done(DecodeValue(item.value(), item.metadata(), Describe(ns, id, key)));
          }
          // A chunked value takes more RPCs: fetch it off the gRPC thread.
          Offload([this, ns = std::move(ns), id = std::move(id), key = std::move(key), call,
                   done = std::move(done)] {
            absl::StatusOr<std::vector<StoredItem>> items =
                GetItemsWith(ns, id, Predicate::Keys({key}), call);
            if (!items.ok()) return done(items.status());
            for (StoredItem& item : *items) {
              if (item.key == key) return done(std::move(item.value));
            }
            done(absl::NotFoundError(absl::StrCat("no item at ", Describe(ns, id, key))));
          });
        },
        call);
  }

  void DeleteAsync(std::string_view ns, std::string_view id, std::string_view key,
                   StatusCallback done, const CallOptions& call) override {
    const IdempotencyToken token = tokens_.Next();
    v1::DeleteItemsRequest request;
    request.set_namespace_(std::string(ns));
    request.set_id(std::string(id));
    request.mutable_predicate()->mutable_keys()->add_keys(std::string(key));
    token.ToProto(request.mutable_token());
    CallAsync<v1::DeleteItemsRequest, v1::DeleteItemsResponse>(
        ns, AccessPattern::kWrite, std::move(request), SG_ASYNC(kv, DeleteItems),
        [done = std::move(done)](absl::Status status, v1::DeleteItemsResponse) { done(status); },
        call);
  }

  absl::StatusOr<std::vector<Record>> ScanAll(std::string_view ns) override {
    std::vector<Record> records;
    SG_RETURN_IF_ERROR(Scan(ns, [&records](const Record& record) {
      records.push_back(record);
      return absl::OkStatus();
    }));
    return records;
  }

 private:
  // An item to write, referring to the caller's bytes (values can be large: no copies).
  struct ItemView {
    std::string_view key;
    std::string_view value;
    absl::Duration ttl;
  };

  absl::Status PutViews(std::string_view ns, std::string_view id,
                        const std::vector<ItemView>& items, const CallOptions& call = {}) {
    SG_ASSIGN_OR_RETURN(const NamespaceSettings settings, Settings(ns));
    const IdempotencyToken token = tokens_.Next();
    v1::PutItemsRequest request;
    request.set_namespace_(std::string(ns));
    request.set_id(std::string(id));
    token.ToProto(request.mutable_token());
    for (const ItemView& item : items) {
      SG_RETURN_IF_ERROR(PrepareItem(ns, id, item.key, item.value, item.ttl, request.token(),
                                     settings, request.add_items()));
    }
    v1::PutItemsResponse response;
    const AccessPattern pattern =
        CommitsChunks(request.items()) ? AccessPattern::kChunk : AccessPattern::kWrite;
    return Call(ns, pattern, std::move(request), &response, SG_ASYNC(kv, PutItems), call);
  }

  // Committing a chunked value makes the server read and hash all of it: bulk work, not
  // held to the write SLO's per-attempt timeout.
  static bool CommitsChunks(const google::protobuf::RepeatedPtrField<v1::Item>& items) {
    return std::any_of(items.begin(), items.end(),
                       [](const v1::Item& item) { return item.metadata().chunk_count() > 0; });
  }

  // Runs one logical RPC through the ReliableCaller (hedges, retries, limits, load
  // unbalancing, GC-tolerant deadline); `done` gets the outcome. Every RPC goes through here;
  // every attempt sends `request` unchanged, so the same idempotency token. `ns` (empty for
  // Handshake) selects the SLO and latency history that set the hedge delay and timeout.
  template <typename Request, typename Response>
  void CallAsync(std::string_view ns, AccessPattern pattern, Request request,
                 std::type_identity_t<AsyncRpc<Request, Response>> rpc,
                 std::function<void(absl::Status, Response)> done, const CallOptions& call = {}) {
    if (call.timeout < absl::ZeroDuration()) {
      return done(
          absl::InvalidArgumentError(absl::StrCat("CallOptions.timeout must not be negative, got ",
                                                  absl::FormatDuration(call.timeout))),
          Response{});
    }
    CallSpec spec;
    spec.pattern = pattern;
    spec.timeout = call.timeout > absl::ZeroDuration() ? call.timeout : options_.timeout;
    spec.priority = call.priority.has_value() ? call.priority : options_.priority;
    if (!ns.empty() && pattern != AccessPattern::kChunk) {
      absl::MutexLock lock(&mu_);
      auto it = settings_.find(AsAbsl(ns));
      // The namespace says whether hedging suits it; no SLO target, no hedge.
      if (it != settings_.end() && it->second.hedging) {
        spec.slo_target = SloOf(it->second, pattern).target;
      }
      if (it != settings_.end() && options_.reliability.signalled_timeouts) {
        spec.attempt_timeout = SloOf(it->second, pattern).max;
      }
      if (it != settings_.end()) {
        spec.late_after = SloOf(it->second, pattern).target /
                          (spec.priority.has_value() ? kTieredLateDivisor : 1);
      }
      spec.latencies = &Latencies(ns, pattern);
    }
    // Attempts may outlive the call (a cancelled hedge): they share the request.
    auto shared_request = std::make_shared<const Request>(std::move(request));
    caller_.Call<Response>(
        spec,
        [this, shared_request, rpc](Endpoint& endpoint, grpc::ClientContext* ctx,
                                    Response* attempt_response,
                                    std::function<void(grpc::Status)> attempt_done) {
          rpc(endpoint, ctx, shared_request.get(), attempt_response,
              [this, ctx, attempt_done = std::move(attempt_done)](grpc::Status status) {
                ObserveConfigVersion(*ctx);
                attempt_done(std::move(status));
              });
        },
        std::move(done));
  }

  // CallAsync, waited for.
  template <typename Request, typename Response>
  absl::Status Call(std::string_view ns, AccessPattern pattern, Request request, Response* response,
                    std::type_identity_t<AsyncRpc<Request, Response>> rpc,
                    const CallOptions& call = {}) {
    absl::Notification done;
    absl::Status result;
    CallAsync<Request, Response>(
        ns, pattern, std::move(request), std::move(rpc),
        [&](absl::Status status, Response winner) {
          result = std::move(status);
          *response = std::move(winner);
          done.Notify();
        },
        call);
    done.WaitForNotification();
    return result;
  }

  HandshakeInfo ApplyHandshake(const v1::HandshakeResponse& response) {
    HandshakeInfo info = FromProto(response);
    absl::MutexLock lock(&mu_);
    if (config_version_ != info.config_version) settings_.clear();
    config_version_ = info.config_version;
    for (const NamespaceSettings& ns : info.namespaces) settings_[ns.name] = ns;
    return info;
  }

  // Handshakes again, in the background, for every namespace in use, then schedules the next
  // refresh: settings change on the server without every client noticing a new version.
  void RefreshSettings() {
    if (caller_.stopping()) return;
    v1::HandshakeRequest request;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [name, settings] : settings_) request.add_namespaces(name);
    }
    if (request.namespaces_size() > 0) {
      CallAsync<v1::HandshakeRequest, v1::HandshakeResponse>(
          "", AccessPattern::kPointRead, std::move(request), SG_ASYNC(control, Handshake),
          [this](absl::Status status, v1::HandshakeResponse response) {
            // A failed refresh keeps the settings it has; the next one tries again.
            if (status.ok()) ApplyHandshake(response);
          });
    }
    caller_.After(options_.handshake_interval, [this] { RefreshSettings(); });
  }

  // Whether a value of `size` bytes travels in one PutItems (no chunks, even uncompressed).
  static bool FitsInline(const NamespaceSettings& settings, size_t size) {
    const int64_t chunk_bytes =
        settings.chunk_bytes > 0 ? settings.chunk_bytes : kDefaultChunkBytes;
    return static_cast<int64_t>(size) <= chunk_bytes;
  }

  // Runs multi-RPC work of an asynchronous call on the client's own threads.
  void Offload(std::function<void()> task) { offload_.Submit(std::move(task)); }

  static AccessPattern ReadPattern(const Predicate& predicate) {
    return predicate.kind == Predicate::Kind::kKeys && predicate.keys.size() == 1
               ? AccessPattern::kPointRead
               : AccessPattern::kRangeRead;
  }

  static LatencySlo SloOf(const NamespaceSettings& settings, AccessPattern pattern) {
    switch (pattern) {
      case AccessPattern::kPointRead:
        return settings.point_read_slo;
      case AccessPattern::kRangeRead:
        return settings.range_read_slo;
      case AccessPattern::kWrite:
        return settings.write_slo;
      case AccessPattern::kChunk:
        break;
    }
    return LatencySlo{};
  }

  // The latency history of a namespace × access pattern; lives as long as the client.
  reliability::LatencyTracker& Latencies(std::string_view ns, AccessPattern pattern)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto& trackers = latencies_[AsAbsl(ns)];
    if (trackers == nullptr) {
      trackers = std::make_unique<std::array<reliability::LatencyTracker, 4>>();
    }
    return (*trackers)[static_cast<size_t>(pattern)];
  }

  static std::vector<std::unique_ptr<Endpoint>> MakeEndpoints(
      const KvClientOptions& options, std::vector<std::shared_ptr<grpc::Channel>> channels,
      const Clock* clock) {
    std::vector<std::unique_ptr<Endpoint>> endpoints;
    for (auto& channel : channels) {
      auto endpoint = std::make_unique<Endpoint>();
      endpoint->channel = std::move(channel);
      endpoint->kv = v1::KeyValue::NewStub(endpoint->channel);
      endpoint->control = v1::Control::NewStub(endpoint->channel);
      endpoint->health = grpc::health::v1::Health::NewStub(endpoint->channel);
      endpoint->load =
          std::make_unique<reliability::EndpointLoad>(reliability::PeakEwmaOptions{}, clock);
      endpoint->limiter =
          *reliability::MakeLimiter(EndpointLimiter(options));  // checked by Connect
      endpoints.push_back(std::move(endpoint));
    }
    return endpoints;
  }

  // Forgets cached namespace settings when the server says its config changed, so that the
  // next call that needs them handshakes again.
  void ObserveConfigVersion(const grpc::ClientContext& ctx) {
    const auto& trailers = ctx.GetServerTrailingMetadata();
    auto it = trailers.find(kConfigVersionKey);
    if (it == trailers.end()) return;
    uint64_t version = 0;
    if (!absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &version)) {
      return;
    }
    absl::MutexLock lock(&mu_);
    if (version != config_version_) {
      settings_.clear();
      config_version_ = version;
    }
  }

  // The namespace's settings if a handshake has brought them and they are current.
  std::optional<NamespaceSettings> CachedSettings(std::string_view ns) {
    absl::MutexLock lock(&mu_);
    auto it = settings_.find(AsAbsl(ns));
    if (it == settings_.end()) return std::nullopt;
    return it->second;
  }

  // The namespace's settings, from the cached handshake (made now if needed).
  absl::StatusOr<NamespaceSettings> Settings(std::string_view ns) {
    if (std::optional<NamespaceSettings> cached = CachedSettings(ns)) return *cached;
    SG_ASSIGN_OR_RETURN(const HandshakeInfo info, Handshake({std::string(ns)}));
    for (const NamespaceSettings& settings : info.namespaces) {
      if (settings.name == ns) return settings;
    }
    return absl::NotFoundError(
        absl::StrCat("namespace ", QuoteInput(AsAbsl(ns)), " is not served"));
  }

  void FillSelection(v1::Selection* selection) const {
    selection->set_page_size_bytes(options_.page_size_bytes);
    // Large values come as metadata; ReadItem fetches their chunks one RPC at a time.
    selection->set_include_large_values(false);
  }

  // Fills `out` with an item to write under `token`: metadata for the uncompressed value,
  // and the value inline or, when larger than chunk_bytes, written now as chunks.
  absl::Status PrepareItem(std::string_view ns, std::string_view id, std::string_view key,
                           std::string_view value, absl::Duration ttl,
                           const v1::IdempotencyToken& token, const NamespaceSettings& settings,
                           v1::Item* out) {
    if (ttl < absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat("ttl must not be negative, got ", absl::FormatDuration(ttl)));
    }
    // Refused before any chunk is uploaded, not after max_value_bytes of them.
    if (settings.max_value_bytes > 0 &&
        static_cast<int64_t>(value.size()) > settings.max_value_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("value of ", Describe(ns, id, key), " is ", value.size(),
                       " bytes; the limit is ", settings.max_value_bytes, " (max_value_bytes)"));
    }
    const int64_t chunk_bytes =
        settings.chunk_bytes > 0 ? settings.chunk_bytes : kDefaultChunkBytes;
    out->set_key(std::string(key));
    out->set_ttl_us(absl::ToInt64Microseconds(ttl));
    // Fewer bytes is more reliable: compress what the namespace says is worth it, when it
    // shrinks. The checksum is always of the uncompressed value, checked after decoding.
    std::optional<std::string> compressed;
    if (options_.compression && settings.compression_threshold_bytes > 0 &&
        static_cast<int64_t>(value.size()) >= settings.compression_threshold_bytes) {
      compressed = Lz4CompressIfSmaller(value);
    }
    const std::string_view stored = compressed.has_value() ? *compressed : value;
    bytes_before_compression_ += static_cast<int64_t>(value.size());
    bytes_after_compression_ += static_cast<int64_t>(stored.size());
    v1::ValueMetadata* metadata = out->mutable_metadata();
    metadata->set_codec(compressed.has_value() ? v1::VALUE_CODEC_LZ4 : v1::VALUE_CODEC_NONE);
    metadata->set_uncompressed_size(value.size());
    metadata->set_stored_size(stored.size());
    metadata->set_checksum(Xxh64(value));
    SG_ASSIGN_OR_RETURN(const uint32_t chunk_count, ChunkCount(stored.size(), chunk_bytes));
    if (chunk_count == 0) {
      out->set_value(std::string(stored));
      return absl::OkStatus();
    }
    const std::vector<std::string_view> chunks = SplitIntoChunks(stored, chunk_bytes);
    for (uint32_t index = 0; index < chunks.size(); ++index) {
      v1::PutChunkRequest request;
      request.set_namespace_(std::string(ns));
      request.set_id(std::string(id));
      request.set_key(std::string(key));
      *request.mutable_token() = token;
      request.set_index(index);
      request.set_data(std::string(chunks[index]));
      v1::PutChunkResponse response;
      SG_RETURN_IF_ERROR(
          Call(ns, AccessPattern::kChunk, std::move(request), &response, SG_ASYNC(kv, PutChunk)));
    }
    metadata->set_chunk_count(chunk_count);
    return absl::OkStatus();
  }

  // The item read, its value fetched in chunks if it has them and verified; nullopt if it
  // was deleted while its chunks were being fetched.
  absl::StatusOr<std::optional<StoredItem>> ReadItem(std::string_view ns, std::string_view id,
                                                     const v1::Item& item) {
    // The chunks of a value superseded (or deleted) after its metadata was read may be
    // collected before they are fetched: then read the item again, a few times at most.
    constexpr int kMaxRereads = 3;
    v1::Item current = item;
    for (int attempt = 0;; ++attempt) {
      absl::StatusOr<StoredItem> read = ReadItemOnce(ns, id, current);
      if (read.ok()) return *std::move(read);
      if (read.status().code() != absl::StatusCode::kNotFound || attempt == kMaxRereads) {
        return read.status();
      }
      v1::GetItemsRequest request;
      request.set_namespace_(std::string(ns));
      request.set_id(std::string(id));
      request.mutable_predicate()->mutable_keys()->add_keys(item.key());
      FillSelection(request.mutable_selection());
      v1::GetItemsResponse response;
      SG_RETURN_IF_ERROR(
          Call(ns, AccessPattern::kPointRead, request, &response, SG_ASYNC(kv, GetItems)));
      if (response.items_size() == 0) return std::nullopt;
      current = response.items(0);
    }
  }

  absl::StatusOr<StoredItem> ReadItemOnce(std::string_view ns, std::string_view id,
                                          const v1::Item& item) {
    StoredItem out = StoredItemWithoutValue(item);
    const v1::ValueMetadata& metadata = item.metadata();
    const std::string what = Describe(ns, id, item.key());
    if (metadata.codec() != v1::VALUE_CODEC_NONE && metadata.codec() != v1::VALUE_CODEC_LZ4) {
      return absl::UnimplementedError(absl::StrCat("value codec ", metadata.codec(), " of ", what,
                                                   " is not supported by this client"));
    }
    if (metadata.chunk_count() == 0 || !item.value().empty()) {
      SG_ASSIGN_OR_RETURN(out.value, DecodeValue(item.value(), metadata, what));
      return out;
    }
    std::vector<std::string> chunks;
    chunks.reserve(metadata.chunk_count());
    for (uint32_t index = 0; index < metadata.chunk_count(); ++index) {
      v1::GetChunkRequest request;
      request.set_namespace_(std::string(ns));
      request.set_id(std::string(id));
      request.set_key(item.key());
      *request.mutable_version() = metadata.version();
      request.set_index(index);
      v1::GetChunkResponse response;
      SG_RETURN_IF_ERROR(
          Call(ns, AccessPattern::kChunk, request, &response, SG_ASYNC(kv, GetChunk)));
      chunks.push_back(std::move(*response.mutable_data()));
    }
    SG_ASSIGN_OR_RETURN(const std::string stored,
                        JoinChunks(chunks, metadata.stored_size(), /*checksum=*/0, what));
    SG_ASSIGN_OR_RETURN(out.value, DecodeValue(stored, metadata, what));
    return out;
  }

  // The application's bytes of a stored value: decompressed if need be, then checked
  // against the checksum of the uncompressed value (DATA_LOSS on any mismatch).
  static absl::StatusOr<std::string> DecodeValue(const std::string& stored,
                                                 const v1::ValueMetadata& metadata,
                                                 const std::string& what) {
    std::string value;
    if (metadata.codec() == v1::VALUE_CODEC_LZ4) {
      SG_ASSIGN_OR_RETURN(value, Lz4Decompress(stored, metadata.uncompressed_size(), what));
    } else {
      value = stored;
    }
    if (metadata.checksum() != 0) {
      SG_RETURN_IF_ERROR(VerifyChecksum(value, metadata.checksum(), what));
    }
    return value;
  }

  // Moves to the next page; INTERNAL if the server hands back the token it was given, which
  // would otherwise loop forever.
  static absl::Status NextPage(const std::string& next, std::string* page_token) {
    if (!next.empty() && next == *page_token) {
      return absl::InternalError("server returned the same page token twice");
    }
    *page_token = next;
    return absl::OkStatus();
  }

  const KvClientOptions options_;
  const TokenGenerator tokens_;
  std::atomic<int64_t> bytes_before_compression_{0};
  std::atomic<int64_t> bytes_after_compression_{0};

  absl::Mutex mu_;
  // Settings of the namespaces handshaken since the config version last changed.
  absl::flat_hash_map<std::string, NamespaceSettings> settings_ ABSL_GUARDED_BY(mu_);
  uint64_t config_version_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, std::unique_ptr<std::array<reliability::LatencyTracker, 4>>>
      latencies_ ABSL_GUARDED_BY(mu_);

  // Destroyed before the members above, so no attempt's callback outlives what it uses.
  ReliableCaller caller_;
  // Destroyed first of all: offloaded work may still start calls through caller_.
  WorkerPool offload_{4};
};

}  // namespace

std::unique_ptr<KvClient> NewKvClient(const KvClientOptions& options,
                                      std::shared_ptr<grpc::Channel> channel, const Clock* clock) {
  return NewKvClient(options, std::vector<std::shared_ptr<grpc::Channel>>{std::move(channel)},
                     clock);
}

std::unique_ptr<KvClient> NewKvClient(const KvClientOptions& options,
                                      std::vector<std::shared_ptr<grpc::Channel>> channels,
                                      const Clock* clock) {
  return std::make_unique<GrpcKvClient>(options, std::move(channels), clock);
}

}  // namespace stategate::client

namespace stategate {

absl::StatusOr<std::unique_ptr<KvClient>> KvClient::Connect(const KvClientOptions& options) {
  if (options.address.empty()) return absl::InvalidArgumentError("address must not be empty");
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("timeout must be positive, got ", absl::FormatDuration(options.timeout)));
  }
  if (options.page_size_bytes < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size_bytes must not be negative, got ", options.page_size_bytes));
  }
  SG_RETURN_IF_ERROR(reliability::MakeLimiter(client::EndpointLimiter(options)).status());
  // gRPC 1.51 shuts its library down when its last object is destroyed, on whichever thread
  // drops it. A process that exits right after its last call (the CLI) raced that shutdown:
  // ASan saw a double free in grpc_cq_internal_unref on a gRPC thread. Initialised once more
  // for the life of the process, the library is never shut down under a running exit.
  [[maybe_unused]] static const bool grpc_kept_initialised = [] {
    grpc_init();
    return true;
  }();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  // A restarted gateway is dialled again within ~100 ms, not after gRPC's default backoff of
  // 1 s growing to 2 min: in a rolling restart the others are drained soon after it.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  channels.push_back(
      grpc::CreateCustomChannel(options.address, grpc::InsecureChannelCredentials(), args));
  for (const std::string& address : options.more_addresses) {
    channels.push_back(
        grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
  }
  return client::NewKvClient(options, std::move(channels));
}

}  // namespace stategate
