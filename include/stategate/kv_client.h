// KvClient: the client of a stategate gateway's Key-Value abstraction
// (namespace -> id -> sorted map of item key -> value; DESIGN.md, "Key-Value").
//
// Every mutation carries one idempotency token, made once per logical call and reused by
// every retry and hedge, so applying it again is harmless; per item, the newest write wins.
// Values are checksummed (xxh64) end to end; values larger than the namespace's chunk size
// travel in chunks and reads follow every page, so no single RPC grows with the data. The
// reliability mechanisms of ReliabilityOptions (hedges, retries, concurrency limits, load
// balancing, pause-tolerant and signalled timeouts, all on by default) act inside each call.
// Calls come in blocking and asynchronous forms.
//
// The status contract of every call (absl's codes are gRPC's; a status from the server
// keeps its code and message):
//   OK                   done: a write is durable as the namespace promises.
//   INVALID_ARGUMENT     the request breaks a rule or a limit of the namespace; the message
//                        names the field and the limit. Never retried.
//   NOT_FOUND            the namespace is not served (every call), or for Get, no such item.
//   FAILED_PRECONDITION  the server refused the call in its current state (e.g. a chunked
//                        value whose chunks were collected before its commit). Not retried.
//   RESOURCE_EXHAUSTED   shed: every gateway stayed at its concurrency limit for
//                        limiter_max_wait, or the servers shed and the retries or their
//                        budget ran out. Nothing was written; try later.
//   UNAVAILABLE          no gateway answered within the attempts. A write may or may not
//                        have been applied; calling again writes a newer version.
//   DEADLINE_EXCEEDED    `timeout` passed; a write may or may not have been applied.
//   DATA_LOSS            a value did not match its checksum (on a read, as read back; on a
//                        write, as it reached the server, which then stored nothing).
// Retries (UNAVAILABLE, RESOURCE_EXHAUSTED, ABORTED, a draining server's CANCELLED) happen
// inside the call; what a caller sees is the status after them.
//
// A KvClient is thread-safe: one instance (one channel per gateway) is meant to be shared by
// all the threads of a process.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "stategate/types.h"

namespace stategate {

// The client's reliability mechanisms (DESIGN.md, "Reliability mechanisms"), each one
// switchable. Defaults: everything on.
struct ReliabilityOptions {
  // A second attempt to another endpoint once the first has been out longer than the
  // observed p95 of the namespace × access pattern (at most its SLO target).
  bool hedging = true;
  // Hedges at most this share of requests, and at most max_hedges_in_flight at once.
  double hedge_share = 0.05;
  int max_hedges_in_flight = 10;
  // Retries of UNAVAILABLE, RESOURCE_EXHAUSTED, ABORTED and a server's CANCELLED (a draining
  // gateway) with the same idempotency token, exponential backoff with full jitter (base,
  // cap), pushback honoured, within a budget of retry_share of requests plus
  // min_retries_per_second.
  bool retries = true;
  int max_attempts = 4;
  absl::Duration backoff_base = absl::Milliseconds(25);
  absl::Duration backoff_cap = absl::Seconds(1);
  double retry_share = 0.2;
  double min_retries_per_second = 10;
  // Adaptive concurrency limit per endpoint: "aimd", "vegas", "gradient2" or "none". Over
  // the limit a call waits briefly for a permit (limiter_max_wait), then fails with
  // RESOURCE_EXHAUSTED instead of queueing longer.
  std::string limiter = "aimd";
  // How long a call may wait for a permit when every endpoint is at its limit, before it
  // fails with RESOURCE_EXHAUSTED. Waiting calls get freed permits the most important
  // priority first, and while one waits a less important call gets none. The default
  // rides out a burst (a gateway restarting, a scheduler hiccup) without turning an
  // overload into a queue: once calls have waited it out in vain for 100 ms on end, calls
  // of their tier and below fail at once, until twice this long (at least 100 ms) passes
  // without such a wait. Zero = fail at once. A closed-loop caller that would rather
  // slow down than fail (e.g. through a failover, when every call stalls) sets seconds.
  absl::Duration limiter_max_wait = absl::Milliseconds(5);
  // Power of two choices by peak-EWMA latency × (outstanding + 1); off = round robin.
  bool load_balancing = true;
  // When a deadline passes while this process was paused (GC, SIGSTOP, scheduler), the
  // answer already on its way gets up to max_pause_grace more.
  bool gc_tolerant_timeouts = true;
  absl::Duration max_pause_grace = absl::Seconds(1);
  // An attempt still out after the namespace's SLO max (from Handshake) is cancelled and,
  // with retries on, retried elsewhere; off = an attempt may use the whole call timeout.
  bool signalled_timeouts = true;

  // Every mechanism off: one attempt, fixed timeout (the "naive" client of the bench).
  static ReliabilityOptions Naive() {
    ReliabilityOptions o;
    o.hedging = false;
    o.retries = false;
    o.limiter = "none";
    o.load_balancing = false;
    o.gc_tolerant_timeouts = false;
    o.signalled_timeouts = false;
    return o;
  }
};

// What the client has done since it was created. Counters only grow.
struct KvClientStats {
  int64_t calls = 0;     // logical calls (RPC-level: a chunked value is several)
  int64_t attempts = 0;  // RPCs sent, hedges and retries included
  int64_t hedges = 0;
  int64_t hedges_won = 0;
  int64_t retries = 0;
  int64_t retry_budget_refusals = 0;
  int64_t hedge_budget_refusals = 0;
  int64_t limiter_refusals = 0;
  int64_t deadline_graces = 0;  // deadlines extended because this process had been paused
  int64_t bytes_before_compression = 0;
  int64_t bytes_after_compression = 0;
};

struct KvClientOptions {
  // The gateway's address, as gRPC takes it ("host:port", "unix:/path", "dns:///name:port").
  // Default: "127.0.0.1:7700".
  std::string address = "127.0.0.1:7700";

  // More gateways holding the same data; with any, calls spread over address and these.
  // Default: none.
  std::vector<std::string> more_addresses = {};

  // Deadline of each RPC, retries and hedges included. A logical call made of several RPCs
  // (pages, chunks) gives each its own deadline. Default: 5 seconds.
  absl::Duration timeout = absl::Seconds(5);

  ReliabilityOptions reliability = {};

  // How often the client handshakes again for the namespaces it uses, in the background, on
  // top of handshaking whenever a response's config version changes. Zero = never.
  // Default: 30 seconds.
  absl::Duration handshake_interval = absl::Seconds(30);

  // Bytes per page asked of reads; 0 lets the namespace decide. Default: 0.
  int64_t page_size_bytes = 0;

  // LZ4-compress values at or above the namespace's signalled threshold when that shrinks
  // them. Values written compressed are readable by every client. Default: true.
  bool compression = true;

  // Largest message the client accepts from the server. Default: 64 MiB.
  int max_receive_message_bytes = 64 << 20;

  // The priority of this client's calls at the gateway, sent with each as metadata
  // "stategate-priority": under overload a gateway sheds sheddable calls first and critical
  // calls last. Unset: the namespace's default_priority. Default: unset.
  std::optional<Priority> priority = std::nullopt;
};

// Per-call settings of the asynchronous forms; what is unset takes the client's options.
struct CallOptions {
  // As KvClientOptions::timeout, for this call. Zero: the client's; negative is
  // INVALID_ARGUMENT. Default: zero.
  absl::Duration timeout = absl::ZeroDuration();
  // As KvClientOptions::priority, for this call. Unset: the client's. Default: unset.
  std::optional<Priority> priority = std::nullopt;
};

class KvClient {
 public:
  // Creates a client for options.address (and more_addresses). Connecting is lazy: an
  // unreachable server shows as UNAVAILABLE on the first call, not here. INVALID_ARGUMENT
  // for unusable options (naming the option).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<KvClient>> Connect(
      const KvClientOptions& options);

  virtual ~KvClient() = default;

  // Asks the server for the settings of the given namespaces (empty: all of them) and
  // caches them for later calls. NOT_FOUND naming a namespace the server does not serve;
  // UNAVAILABLE / DEADLINE_EXCEEDED when no gateway answers.
  [[nodiscard]] virtual absl::StatusOr<HandshakeInfo> Handshake(
      const std::vector<std::string>& namespaces = {}) = 0;

  // Writes one item of record `id`; ttl zero means forever. OK once durable. INVALID_ARGUMENT
  // for a key over max_key_bytes, a value over max_value_bytes (refused before any chunk is
  // sent), a negative ttl, or a request over max_request_bytes; NOT_FOUND for an unknown
  // namespace; otherwise the contract above. A value above chunk_bytes is uploaded in
  // chunks first and becomes visible whole, at once, when committed.
  [[nodiscard]] virtual absl::Status Put(std::string_view ns, std::string_view id,
                                         std::string_view key, std::string_view value,
                                         absl::Duration ttl = absl::ZeroDuration()) = 0;

  // Writes items of one record, atomically: readers see all of them or none. As Put, and
  // INVALID_ARGUMENT for no items or more than max_items_per_call.
  [[nodiscard]] virtual absl::Status PutItems(std::string_view ns, std::string_view id,
                                              const std::vector<Item>& items) = 0;

  // The value of one item. NOT_FOUND when the item does not exist, has expired, or the
  // namespace is unknown; INVALID_ARGUMENT for an empty id or an id or key over
  // max_key_bytes; DATA_LOSS when the value read does not match its checksum; otherwise the
  // contract above.
  [[nodiscard]] virtual absl::StatusOr<std::string> Get(std::string_view ns, std::string_view id,
                                                        std::string_view key) = 0;

  // The items of record `id` that `predicate` matches, in key order, over every page. An
  // absent record has no items (OK, empty). INVALID_ARGUMENT for a bad predicate (a range
  // whose end is not after its start, more keys than max_items_per_call, keys over
  // max_key_bytes), naming it; NOT_FOUND for an unknown namespace; DATA_LOSS as Get.
  [[nodiscard]] virtual absl::StatusOr<std::vector<StoredItem>> GetItems(
      std::string_view ns, std::string_view id, const Predicate& predicate) = 0;

  // Deletes the whole record `id`. Deleting what does not exist is OK. INVALID_ARGUMENT and
  // NOT_FOUND (namespace) as Get; otherwise the contract above. The delete leaves a
  // tombstone, so no late retry of an older write brings the data back.
  [[nodiscard]] virtual absl::Status Delete(std::string_view ns, std::string_view id) = 0;

  // Deletes one item of record `id`. Deleting what does not exist is OK. Statuses as the
  // other Delete.
  [[nodiscard]] virtual absl::Status Delete(std::string_view ns, std::string_view id,
                                            std::string_view key) = 0;

  // Deletes the items of record `id` that `predicate` matches, atomically. Statuses as
  // Delete, and INVALID_ARGUMENT for a bad predicate as GetItems.
  [[nodiscard]] virtual absl::Status DeleteItems(std::string_view ns, std::string_view id,
                                                 const Predicate& predicate) = 0;

  // Applies puts and deletes to record `id` in order, atomically: all of them or none.
  // INVALID_ARGUMENT for no mutations, more than max_items_per_call keys touched, or any
  // put or predicate Put or DeleteItems would refuse (naming it as mutations[i]); otherwise
  // as Put.
  [[nodiscard]] virtual absl::Status Mutate(std::string_view ns, std::string_view id,
                                            const std::vector<Mutation>& mutations) = 0;

  // Calls `visitor` once per record of the namespace, in the server's order, following every
  // page. A visitor that returns non-OK stops the scan, and Scan returns its status.
  // NOT_FOUND for an unknown namespace; DATA_LOSS as Get; otherwise the contract above. A
  // failure part-way leaves the records already visited visited.
  using RecordVisitor = std::function<absl::Status(const Record&)>;
  [[nodiscard]] virtual absl::Status Scan(std::string_view ns, const RecordVisitor& visitor) = 0;

  // Asynchronous forms, with the statuses of their blocking forms. They return at once;
  // `done` runs exactly once, on a client or gRPC thread, and must not block. Thousands may
  // be in flight from one thread. A value that travels in chunks is moved by a client
  // thread, in order, while the caller goes on.
  // `call` sets this call's timeout and priority.
  using StatusCallback = std::function<void(absl::Status)>;
  using ValueCallback = std::function<void(absl::StatusOr<std::string>)>;
  using ItemsCallback = std::function<void(absl::StatusOr<std::vector<StoredItem>>)>;
  virtual void PutAsync(std::string_view ns, std::string_view id, std::string_view key,
                        std::string value, StatusCallback done,
                        absl::Duration ttl = absl::ZeroDuration(),
                        const CallOptions& call = {}) = 0;
  virtual void PutItemsAsync(std::string_view ns, std::string_view id, std::vector<Item> items,
                             StatusCallback done, const CallOptions& call = {}) = 0;
  virtual void GetAsync(std::string_view ns, std::string_view id, std::string_view key,
                        ValueCallback done, const CallOptions& call = {}) = 0;
  virtual void GetItemsAsync(std::string_view ns, std::string_view id, Predicate predicate,
                             ItemsCallback done, const CallOptions& call = {}) = 0;
  virtual void DeleteAsync(std::string_view ns, std::string_view id, std::string_view key,
                           StatusCallback done, const CallOptions& call = {}) = 0;

  // What the client has done so far. Never fails.
  virtual KvClientStats stats() const = 0;

  // Every record of the namespace, in memory. For small namespaces and tests. Statuses as
  // Scan.
  [[nodiscard]] virtual absl::StatusOr<std::vector<Record>> ScanAll(std::string_view ns) = 0;
};

}  // namespace stategate
