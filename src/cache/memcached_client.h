// MemcachedClient: a small client for ONE memcached server, built for a look-aside cache
// that must never hurt the calls it sits in front of, and that holds no thread while
// memcached answers (issue 11: "memcached calls never hold a worker either").
//
// One event-loop thread (libevent) owns one connection and pipelines every operation on it,
// in the order they were handed over: operations one thread makes reach memcached in the
// order it made them (a fill is read back by the next read). Each operation is answered
// exactly once, through its callback, on the loop thread or (when refused at once) on the
// caller's: with memcached's reply, or with an error at most `op_timeout` after it was made.
// A late reply, a broken connection or an unexpected reply closes the connection and fails
// every operation on it; the next operation dials again.
//
// Every failure is counted and opens a circuit: for `retry_after` after an error the client
// does not talk to memcached at all (operations fail at once with UNAVAILABLE, counted as
// "skipped"); then one operation probes, and its success closes the circuit again. Callers
// treat every non-OK status as "no cache this time".
//
// Keys are arbitrary bytes: each is sent as key_prefix + the hex XXH3-128 of the key, which
// is always a valid memcached key (short, no spaces or control characters). Values are
// arbitrary bytes.
//
// Thread-safe. The blocking forms wait for the asynchronous ones (so never call them from a
// callback of this client).
#pragma once

#include <atomic>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "src/common/clock.h"

namespace stategate::cache {

struct MemcachedClientOptions {
  // The server, "host:port" (e.g. "127.0.0.1:11211"); the host is resolved once, by Create.
  std::string server;
  // Bounds each operation from the moment it is made: connecting, sending and the reply.
  // Default: 5 ms.
  absl::Duration op_timeout = absl::Milliseconds(5);
  // How long the circuit stays open after an error. Default: 1 s.
  absl::Duration retry_after = absl::Seconds(1);
  // Prepended to every hashed key, so several users can share one server. Default: "sg:".
  std::string key_prefix = "sg:";
  // Times the circuit. Default: the real clock (timeouts happen in real time).
  Clock* clock = Clock::Real();
};

class MemcachedClient {
 public:
  // What the client has done since it was made. Hits and misses count keys of MultiGet.
  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t errors = 0;                 // operations that failed talking to memcached
    uint64_t skipped = 0;                // operations not attempted because the circuit was open
    uint64_t invalidations = 0;          // Deletes that succeeded (key deleted or absent)
    uint64_t invalidation_failures = 0;  // Deletes that failed or were skipped
  };

  using Found = absl::flat_hash_map<std::string, std::string>;
  using GetDone = absl::AnyInvocable<void(absl::StatusOr<Found> found) &&>;
  using AddDone = absl::AnyInvocable<void(absl::StatusOr<bool> added) &&>;
  using Done = absl::AnyInvocable<void(absl::Status status) &&>;

  // Checks the options, resolves the host and starts the loop; does not connect (a cache
  // that is down must not stop a start). INVALID_ARGUMENT if `server` is not "host:port"
  // of a host that resolves, or a duration is not positive.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<MemcachedClient>> Create(
      MemcachedClientOptions options);

  // Answers every operation still in flight UNAVAILABLE and stops the loop.
  ~MemcachedClient();
  MemcachedClient(const MemcachedClient&) = delete;
  MemcachedClient& operator=(const MemcachedClient&) = delete;

  // The values of those `keys` that are cached (absent keys are simply not in the map).
  // UNAVAILABLE / DEADLINE_EXCEEDED when memcached could not be asked or answer in time.
  void MultiGetAsync(const std::vector<std::string>& keys, GetDone done);

  // For Add and Set, `ttl` is rounded down to whole seconds (memcached's unit) and capped
  // at 30 days; zero means "no expiry". INVALID_ARGUMENT if it is negative or in (0, 1 s).

  // Stores `value` only if `key` is absent: true if stored, false if the key existed.
  void AddAsync(const std::string& key, const std::string& value, absl::Duration ttl, AddDone done);
  // Stores `value` whether or not `key` exists.
  void SetAsync(const std::string& key, const std::string& value, absl::Duration ttl, Done done);
  // Removes `key`; OK if it was removed or was not there. Counted as an invalidation.
  void DeleteAsync(const std::string& key, Done done);

  // The same, waiting for the answer (at most about op_timeout).
  [[nodiscard]] absl::StatusOr<Found> MultiGet(const std::vector<std::string>& keys);
  [[nodiscard]] absl::StatusOr<bool> Add(const std::string& key, const std::string& value,
                                         absl::Duration ttl);
  [[nodiscard]] absl::Status Set(const std::string& key, const std::string& value,
                                 absl::Duration ttl);
  [[nodiscard]] absl::Status Delete(const std::string& key);

  Stats stats() const;

 private:
  class Loop;
  struct Op;

  // How an operation may proceed given the circuit.
  struct Admission {
    enum Kind { kClosed, kProbe, kSkip } kind;
    int64_t probe_until_us = 0;  // for a probe: the window it set, which its success clears
  };

  explicit MemcachedClient(MemcachedClientOptions options);

  // The memcached key for `key`.
  std::string WireKey(const std::string& key) const;

  Admission Admit();
  // Records how an admitted operation ended: a failure opens the circuit; a probe's
  // success closes it.
  void Finish(Admission admission, bool ok);
  // Hands `op` to the loop, under the circuit: answered at once (UNAVAILABLE, skipped)
  // while it is open.
  void Submit(std::unique_ptr<Op> op);
  // Runs storage command `command` ("add", "set") of `value` under `key`: `done` gets
  // whether memcached stored it, or INVALID_ARGUMENT for a bad ttl, or the failure.
  void Store(const char* command, const std::string& key, const std::string& value,
             absl::Duration ttl, AddDone done);

  const MemcachedClientOptions options_;

  // 0 = closed; otherwise the circuit is open until this time (unix micros).
  std::atomic<int64_t> open_until_us_{0};

  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> errors_{0};
  std::atomic<uint64_t> skipped_{0};
  std::atomic<uint64_t> invalidations_{0};
  std::atomic<uint64_t> invalidation_failures_{0};

  // Last: stopped (answering what it still holds) while the counters above still exist.
  std::unique_ptr<Loop> loop_;
};

}  // namespace stategate::cache
