// MemcachedClient: a small client for ONE memcached server, built for a look-aside cache
// that must never hurt the calls it sits in front of. Every operation is bounded by short
// socket timeouts, and every failure is counted and opens a circuit: for `retry_after` after
// an error the client does not talk to memcached at all (operations fail at once with
// UNAVAILABLE, counted as "skipped"); then one operation probes, and its success closes the
// circuit again. Callers treat every non-OK status as "no cache this time".
//
// Keys are arbitrary bytes: each is sent as key_prefix + the hex XXH3-128 of the key, which
// is always a valid memcached key (short, no spaces or control characters). Values are
// arbitrary bytes.
//
// Thread-safe: each operation takes a connection from a small pool (one is opened when none
// is idle) and returns it; a connection that saw an error is closed, never reused.
#pragma once

#include <atomic>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/common/clock.h"

struct memcached_st;

namespace stategate::cache {

struct MemcachedHandleDeleter {
  void operator()(memcached_st* handle) const;
};
using MemcachedHandle = std::unique_ptr<memcached_st, MemcachedHandleDeleter>;

// A libmemcached handle for the one server host:port, with non-blocking sockets, TCP_NODELAY
// and every wait (connect, poll, send, receive) bounded by `timeout`; null when libmemcached
// cannot allocate it or refuses the server. Not thread-safe: one thread uses a handle.
MemcachedHandle NewMemcachedHandle(const std::string& host, int port, absl::Duration timeout);

struct MemcachedClientOptions {
  // The server, "host:port" (e.g. "127.0.0.1:11211").
  std::string server;
  // Bounds connecting, sending, and each wait for a reply. Default: 5 ms.
  absl::Duration op_timeout = absl::Milliseconds(5);
  // How long the circuit stays open after an error. Default: 1 s.
  absl::Duration retry_after = absl::Seconds(1);
  // Prepended to every hashed key, so several users can share one server. Default: "sg:".
  std::string key_prefix = "sg:";
  // Idle connections kept for reuse; more are closed when returned. Default: 8.
  size_t max_idle_connections = 8;
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

  // Checks the options; does not connect (a cache that is down must not stop a start).
  // INVALID_ARGUMENT if `server` is not "host:port" or a duration is not positive.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<MemcachedClient>> Create(
      MemcachedClientOptions options);

  ~MemcachedClient();
  MemcachedClient(const MemcachedClient&) = delete;
  MemcachedClient& operator=(const MemcachedClient&) = delete;

  // The values of those `keys` that are cached (absent keys are simply not in the map).
  // UNAVAILABLE / DEADLINE_EXCEEDED when memcached could not be asked or answer in time.
  [[nodiscard]] absl::StatusOr<absl::flat_hash_map<std::string, std::string>> MultiGet(
      const std::vector<std::string>& keys);

  // For Add and Set, `ttl` is rounded down to whole seconds (memcached's unit) and capped
  // at 30 days; zero means "no expiry". INVALID_ARGUMENT if it is negative or in (0, 1 s).

  // Stores `value` only if `key` is absent: true if stored, false if the key existed.
  [[nodiscard]] absl::StatusOr<bool> Add(const std::string& key, const std::string& value,
                                         absl::Duration ttl);
  // Stores `value` whether or not `key` exists.
  [[nodiscard]] absl::Status Set(const std::string& key, const std::string& value,
                                 absl::Duration ttl);
  // Removes `key`; OK if it was removed or was not there. Counted as an invalidation.
  [[nodiscard]] absl::Status Delete(const std::string& key);

  Stats stats() const;

 private:
  using Handle = MemcachedHandle;

  // How an operation may proceed given the circuit.
  struct Admission {
    enum Kind { kClosed, kProbe, kSkip } kind;
    int64_t probe_until_us = 0;  // for a probe: the window it set, which its success clears
  };

  MemcachedClient(MemcachedClientOptions options, std::string host, int port);

  // The memcached key for `key`.
  std::string WireKey(const std::string& key) const;
  static absl::StatusOr<time_t> Expiration(absl::Duration ttl);

  Admission Admit();
  // Records how an admitted operation ended. A failure closes `handle` and opens the
  // circuit; a probe's success closes it.
  void Finish(Admission admission, Handle handle, bool ok);

  // Runs op(handle) -> absl::Status on a pooled connection, under the circuit: skipped
  // (UNAVAILABLE) while it is open; op's failure closes the connection and opens it.
  template <typename Op>
  absl::Status WithConnection(Op op);

  // An idle connection, or a new one (connecting lazily, on first use). Null if libmemcached
  // cannot even allocate one.
  Handle Acquire();

  const MemcachedClientOptions options_;
  const std::string host_;
  const int port_;

  absl::Mutex mu_;
  std::vector<Handle> idle_ ABSL_GUARDED_BY(mu_);

  // 0 = closed; otherwise the circuit is open until this time (unix micros).
  std::atomic<int64_t> open_until_us_{0};

  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> errors_{0};
  std::atomic<uint64_t> skipped_{0};
  std::atomic<uint64_t> invalidations_{0};
  std::atomic<uint64_t> invalidation_failures_{0};
};

}  // namespace stategate::cache
