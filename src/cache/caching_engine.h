// CachingEngine: a look-aside memcached cache for point reads (the EVCache pattern), as a
// StorageEngine wrapper. Several gateways may wrap one shared store and share one memcached
// server; a read that starts after a write was acknowledged (by any of them) never returns
// what that write replaced, as long as the write's invalidation reached memcached (see
// caching_engine.cc for the argument and for what happens when it does not).
//
// Only point reads are cached: Read() or ReadAsync() of a table with a TTL, by_keys with
// 1..max_keys sorted unique keys and no `after`. Everything else, and every read while memcached is
// unreachable, goes straight to the wrapped engine: the cache changes no result, only how
// fast it comes. Cache failures are never returned to the caller.
//
// In front of an engine with asynchronous forms (Redis Cluster), ReadAsync and WriteAsync
// hold no thread: memcached is asked on its client's loop, the engine on its own.
//
// Thread-safe if the wrapped engine is.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/cache/memcached_client.h"
#include "src/common/clock.h"
#include "src/storage/engine.h"
#include "src/storage/engine_wrapper.h"

namespace stategate::cache {

struct CachingEngineOptions {
  // The cached tables and how long their items may stay cached (at least 1 s): also how long
  // another gateway may serve a stale item after a write whose invalidation failed. Gateways
  // sharing a memcached server must cache the same tables: writes to a table a gateway does
  // not cache invalidate nothing. Default: none.
  absl::flat_hash_map<std::string, absl::Duration> table_ttls;
  // The TTL of every table not in table_ttls; unset = only those tables are cached.
  // Default: unset.
  std::optional<absl::Duration> default_ttl;
  // The wrapped engine's clock: decides item expiry (expires_at_us) and soft deadlines.
  // Default: the real clock.
  Clock* clock = Clock::Real();
  // Reads of more keys than this pass through. Default: 32.
  size_t max_keys = 32;
  // Items whose value is larger are not cached. Default: 256 KiB.
  size_t max_value_bytes = 256 * 1024;
};

class CachingEngine : public storage::StorageEngineWrapper {
 public:
  struct Stats {
    uint64_t hits = 0;               // items served from memcached
    uint64_t misses = 0;             // items of cacheable reads that were read from the engine
    uint64_t fills = 0;              // items stored into memcached
    uint64_t passthrough_reads = 0;  // reads that are not cacheable (not point reads, table)
    uint64_t bypassed_reads = 0;     // cacheable reads that skipped memcached (down, suspended)
    uint64_t suspensions = 0;        // failed invalidations, each suspending its table here
    MemcachedClient::Stats client;
  };

  // INVALID_ARGUMENT if a TTL is under 1 s or `target`, `cache` or the clock is null.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<CachingEngine>> Create(
      std::unique_ptr<storage::StorageEngine> target, std::unique_ptr<MemcachedClient> cache,
      CachingEngineOptions options);

  ~CachingEngine() override;

  // Drops the table, then invalidates every cached item of it.
  absl::Status DropTable(const std::string& table) override;
  // Applies the write, then invalidates every cached item of its record.
  absl::Status Write(const storage::RecordWrite& write) override;
  absl::StatusOr<storage::RecordSlice> Read(const std::string& table, const std::string& record_id,
                                            const storage::KeySpan& span,
                                            const storage::ReadLimits& limits) override;
  // The same without blocking, when the wrapped engine has asynchronous forms (IsAsync is
  // the wrapped engine's): memcached is asked without holding a thread too. Scans pass
  // through, as Scan does.
  void WriteAsync(const storage::RecordWrite& write, absl::Time deadline, WriteDone done) override;
  void ReadAsync(const std::string& table, const std::string& record_id,
                 const storage::KeySpan& span, const storage::ReadLimits& limits,
                 absl::Time deadline, ReadDone done) override;

  Stats stats() const;

 private:
  // What memcached held for a point read, and what its fills must carry.
  struct Lookup {
    absl::Time observed;    // real time, taken before the MultiGet: fills expire within ttl of it
    bool bypassed = false;  // memcached could not be asked: read the engine alone
    std::vector<storage::StoredItem> hits;
    std::vector<std::string> missed;
    // Both set: the items read for `missed` may be cached under them.
    std::optional<std::string> table_stamp;
    std::optional<std::string> record_stamp;
  };
  using LookupDone = absl::AnyInvocable<void(Lookup lookup) &&>;
  using StampDone = absl::AnyInvocable<void(std::optional<std::string> stamp) &&>;

  CachingEngine(std::unique_ptr<storage::StorageEngine> target,
                std::unique_ptr<MemcachedClient> cache, CachingEngineOptions options);

  std::optional<absl::Duration> TtlFor(const std::string& table) const;
  bool IsPointRead(const storage::KeySpan& span) const;
  // Deletes a stamp key after a change; if that fails, suspends caching of `table` here.
  // `done` runs once memcached answered (or could not).
  void Invalidate(const std::string& table, const std::string& stamp_key, absl::Duration ttl,
                  absl::AnyInvocable<void() &&> done);
  void Suspend(const std::string& table, absl::Duration ttl);
  bool Suspended(const std::string& table);
  // Asks memcached for the stamps and `keys` of a point read and, for any miss, makes sure
  // the stamps exist before the engine is read.
  void LookUp(const std::string& table, const std::string& record_id,
              const std::vector<std::string>& keys, absl::Duration ttl, LookupDone done);
  // The rest of LookUp: adds whichever stamp is missing, the table's first.
  void EnsureStamps(std::string table_key, std::string record_key, absl::Duration ttl,
                    Lookup lookup, LookupDone done);
  // The stamp now stored at `key`, adding a fresh one if there is none. Nullopt if memcached
  // cannot tell (then nothing read now may be cached).
  void EnsureStamp(const std::string& key, absl::Duration ttl, StampDone done);
  // Stores the engine's `items` under the lookup's stamps; `done` runs once memcached
  // answered every one (the read's answer does not wait for this).
  void Fill(const std::string& table, const std::string& record_id, const Lookup& lookup,
            absl::Duration ttl, const std::vector<storage::StoredItem>& items,
            absl::AnyInvocable<void() &&> done);
  // `done`, counted in async_calls_ until it has run (for the destructor).
  template <typename Done>
  Done Tracked(Done done);
  // Whether the read is a point read of a cached table not suspended here: its ttl if so.
  std::optional<absl::Duration> CacheableRead(const std::string& table,
                                              const storage::KeySpan& span);

  std::unique_ptr<MemcachedClient> cache_;  // reset first by the destructor
  const CachingEngineOptions options_;

  absl::Mutex mu_;
  // Tables this gateway reads without memcached until the given (real) time.
  absl::flat_hash_map<std::string, absl::Time> suspended_until_ ABSL_GUARDED_BY(mu_);
  // ReadAsync and WriteAsync calls that go through the cache and are not answered yet.
  int async_calls_ ABSL_GUARDED_BY(mu_) = 0;

  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
  std::atomic<uint64_t> fills_{0};
  std::atomic<uint64_t> passthrough_reads_{0};
  std::atomic<uint64_t> bypassed_reads_{0};
  std::atomic<uint64_t> suspensions_{0};
};

}  // namespace stategate::cache
