#include "src/cache/caching_engine.h"

#include <openssl/rand.h>

#include <algorithm>
#include <functional>
#include <iterator>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "src/common/await.h"
#include "src/common/status_macros.h"
#include "src/storage/memory_only.h"

// How the cache stays correct with several gateways sharing one memcached server.
//
// Keys. Each table has a table stamp T = "t:" + table and each record a record stamp
// R = "r:" + table + id; their values are random 16-byte tokens. An item is cached at
// I = "i:" + table + id + key as (T token, R token, the StoredItem). A cached item is a hit
// only if both tokens equal the current values of T and R, read in the same MultiGet.
//
// Reads. One MultiGet of T, R and every I. For the misses: if T or R is missing, Add a fresh
// token (or, if another reader's Add won, read the winner's); only then read the misses from
// the engine, and Set each item found with the tokens observed before that engine read.
// Writes. Write() commits to the engine and, only after it returns, Deletes R; DropTable()
// drops and then Deletes T. (Also after an error: UNAVAILABLE may still have applied.)
//
// Why a read never returns what an acknowledged write replaced. Let write W be committed
// at c and its Delete of R processed by memcached at d > c, both before a read starts. If
// that read hits item I with token S, its MultiGet saw R == S at some time h > d. The
// Delete removed whatever R held at d, and tokens are random and only ever installed by
// Add of a fresh value, so S was installed after d: it cannot be a token that existed at d.
// The item (S, v) was stored by a reader that saw R == S (so after S was installed, > d)
// and then read v from the engine, so v was read after c and includes W. Items stored
// from an engine read that raced with W carry a token that W's Delete retired: they can
// never hit again, even if their Set lands after the Delete. The same holds for T and
// DropTable. Eviction or expiry of T or R only causes misses. That MultiGet is not an
// atomic snapshot does not matter: only "R == S at some time after d" is used. This needs
// one server: memcached must process each key's operations in one order.
//
// When an invalidation fails (timeout, error, or circuit open) the writer's gateway reads
// nothing from memcached for that table for ttl + kClockSkew (it may have missed the Delete
// of R). Another gateway can still serve a stale item in that case, for at most ttl after
// the write: every item carries `cached_until` = the time its reader's MultiGet started +
// ttl, and is a miss after that, so an item read from the engine before the write is dead
// ttl after the write. This bound holds even if memcached applies a Set late (a stopped
// server works off its socket buffers when it resumes), and its memcached TTL, which only
// frees memory, plays no part in it. It assumes the gateways' clocks agree within
// kClockSkew.

namespace stategate::cache {
namespace {

using storage::KeySpan;
using storage::ReadLimits;
using storage::RecordSlice;
using storage::StoredItem;

constexpr size_t kStampBytes = 16;
constexpr char kFormat = 1;
// How far apart the gateways' real clocks may be (they judge each other's `cached_until`).
constexpr absl::Duration kClockSkew = absl::Seconds(2);

std::string TableStampKey(const std::string& table) { return absl::StrCat("t:", table); }

// Lengths keep ("ab", "c") and ("a", "bc") apart.
std::string RecordStampKey(const std::string& table, const std::string& id) {
  return absl::StrCat("r:", table.size(), ":", table, id);
}

std::string ItemKey(const std::string& table, const std::string& id, const std::string& key) {
  return absl::StrCat("i:", table.size(), ":", table, id.size(), ":", id, key);
}

std::optional<std::string> NewStamp() {
  std::string stamp(kStampBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(stamp.data()), kStampBytes) != 1) {
    return std::nullopt;  // no unique token, no caching: the argument needs uniqueness
  }
  return stamp;
}

// ---- Cached item encoding: format byte, then fields, each fixed-size or length-prefixed ----

void PutFixed64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

void PutBytes(std::string* out, std::string_view bytes) {
  PutFixed64(out, bytes.size());
  out->append(bytes);
}

bool GetFixed64(std::string_view* in, uint64_t* v) {
  if (in->size() < 8) return false;
  *v = 0;
  for (int i = 0; i < 8; ++i) *v |= uint64_t{static_cast<unsigned char>((*in)[i])} << (8 * i);
  in->remove_prefix(8);
  return true;
}

bool GetBytes(std::string_view* in, std::string* bytes) {
  uint64_t size = 0;
  if (!GetFixed64(in, &size) || in->size() < size) return false;
  bytes->assign(in->data(), size);
  in->remove_prefix(size);
  return true;
}

struct CachedItem {
  std::string table_stamp;
  std::string record_stamp;
  int64_t cached_until_us = 0;  // real time; a miss from then on
  StoredItem item;              // without its key, which the cache key already names
};

std::string Encode(const std::string& table_stamp, const std::string& record_stamp,
                   int64_t cached_until_us, const StoredItem& item) {
  std::string out(1, kFormat);
  PutBytes(&out, table_stamp);
  PutBytes(&out, record_stamp);
  PutFixed64(&out, static_cast<uint64_t>(cached_until_us));
  PutFixed64(&out, static_cast<uint64_t>(item.version.time_us));
  PutBytes(&out, item.version.nonce);
  PutFixed64(&out, static_cast<uint64_t>(item.expires_at_us));
  PutBytes(&out, item.value);
  return out;
}

// Nullopt for anything malformed: it is then just a miss.
std::optional<CachedItem> Decode(std::string_view in) {
  if (in.empty() || in[0] != kFormat) return std::nullopt;
  in.remove_prefix(1);
  CachedItem cached;
  uint64_t cached_until_us = 0;
  uint64_t time_us = 0;
  uint64_t expires_at_us = 0;
  if (!GetBytes(&in, &cached.table_stamp) || !GetBytes(&in, &cached.record_stamp) ||
      !GetFixed64(&in, &cached_until_us) || !GetFixed64(&in, &time_us) ||
      !GetBytes(&in, &cached.item.version.nonce) || !GetFixed64(&in, &expires_at_us) ||
      !GetBytes(&in, &cached.item.value) || !in.empty()) {
    return std::nullopt;
  }
  cached.cached_until_us = static_cast<int64_t>(cached_until_us);
  cached.item.version.time_us = static_cast<int64_t>(time_us);
  cached.item.expires_at_us = static_cast<int64_t>(expires_at_us);
  return cached;
}

bool Expired(const StoredItem& item, int64_t now_us) {
  return item.expires_at_us != 0 && item.expires_at_us <= now_us;
}

// Merges cache hits and engine items (each sorted by key, disjoint) and applies `limits`
// exactly as an engine does: at least one item, then stop before the item that would pass
// max_items or max_bytes or once the soft deadline passed; resume_after = last key returned
// when items remain. `engine_resume` is where the engine itself stopped (soft deadline):
// nothing after it is known, so nothing after it is returned.
RecordSlice MergeAndLimit(std::vector<StoredItem> hits, RecordSlice from_engine,
                          const ReadLimits& limits, const Clock& clock) {
  std::vector<StoredItem> all;
  all.reserve(hits.size() + from_engine.items.size());
  std::merge(std::make_move_iterator(hits.begin()), std::make_move_iterator(hits.end()),
             std::make_move_iterator(from_engine.items.begin()),
             std::make_move_iterator(from_engine.items.end()), std::back_inserter(all),
             [](const StoredItem& a, const StoredItem& b) { return a.key < b.key; });
  if (from_engine.resume_after.has_value()) {
    std::erase_if(all,
                  [&](const StoredItem& item) { return item.key > *from_engine.resume_after; });
  }

  RecordSlice out;
  size_t bytes = 0;
  for (StoredItem& item : all) {
    const size_t size = item.key.size() + item.value.size();
    if (!out.items.empty() &&
        (out.items.size() >= limits.max_items || bytes >= limits.max_bytes ||
         size > limits.max_bytes - bytes || clock.Now() >= limits.soft_deadline)) {
      out.resume_after = out.items.back().key;
      return out;
    }
    bytes += size;
    out.items.push_back(std::move(item));
  }
  if (from_engine.resume_after.has_value() && !out.items.empty()) {
    out.resume_after = out.items.back().key;
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CachingEngine>> CachingEngine::Create(
    std::unique_ptr<storage::StorageEngine> target, std::unique_ptr<MemcachedClient> cache,
    CachingEngineOptions options) {
  if (target == nullptr || cache == nullptr || options.clock == nullptr) {
    return absl::InvalidArgumentError("CachingEngine needs an engine, a client and a clock");
  }
  auto check = [](const std::string& what, absl::Duration ttl) -> absl::Status {
    if (ttl < absl::Seconds(1)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cache ttl of ", what, " must be at least 1s, got ", absl::FormatDuration(ttl)));
    }
    return absl::OkStatus();
  };
  for (const auto& [table, ttl] : options.table_ttls) SG_RETURN_IF_ERROR(check(table, ttl));
  if (options.default_ttl.has_value()) {
    SG_RETURN_IF_ERROR(check("the default", *options.default_ttl));
  }
  return std::unique_ptr<CachingEngine>(
      new CachingEngine(std::move(target), std::move(cache), std::move(options)));
}

CachingEngine::CachingEngine(std::unique_ptr<storage::StorageEngine> target,
                             std::unique_ptr<MemcachedClient> cache, CachingEngineOptions options)
    : StorageEngineWrapper(std::move(target)),
      cache_(std::move(cache)),
      options_(std::move(options)) {}

CachingEngine::~CachingEngine() {
  // An asynchronous call still under way calls back into this engine, its client and its
  // target (which may be borrowed, and outlive it): wait for the last to be answered (each
  // is, by its deadline and memcached's op_timeout). Then the client, whose last answers
  // (fills) touch the counters, then the target.
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* calls) { return *calls == 0; }, &async_calls_));
  }
  cache_.reset();
  ResetTarget();
}

template <typename Done>
Done CachingEngine::Tracked(Done done) {
  {
    absl::MutexLock lock(&mu_);
    ++async_calls_;
  }
  return [this, done = std::move(done)](auto result) mutable {
    std::move(done)(std::move(result));
    absl::MutexLock lock(&mu_);  // the destructor waits for this lock and the count
    --async_calls_;
  };
}

std::optional<absl::Duration> CachingEngine::TtlFor(const std::string& table) const {
  auto it = options_.table_ttls.find(table);
  if (it != options_.table_ttls.end()) return it->second;
  return options_.default_ttl;
}

bool CachingEngine::IsPointRead(const KeySpan& span) const {
  if (!span.by_keys || span.after.has_value() || span.keys.empty() ||
      span.keys.size() > options_.max_keys) {
    return false;
  }
  // The contract asks for sorted unique keys; anything else is the engine's to judge.
  return std::adjacent_find(span.keys.begin(), span.keys.end(), std::greater_equal<>()) ==
         span.keys.end();
}

std::optional<absl::Duration> CachingEngine::CacheableRead(const std::string& table,
                                                           const KeySpan& span) {
  const std::optional<absl::Duration> ttl = TtlFor(table);
  if (!ttl.has_value() || !IsPointRead(span)) {
    ++passthrough_reads_;
    return std::nullopt;
  }
  if (Suspended(table)) {
    ++bypassed_reads_;
    return std::nullopt;
  }
  return ttl;
}

void CachingEngine::Invalidate(const std::string& table, const std::string& stamp_key,
                               absl::Duration ttl, absl::AnyInvocable<void() &&> done) {
  cache_->DeleteAsync(stamp_key,
                      [this, table, ttl, done = std::move(done)](absl::Status status) mutable {
                        if (!status.ok()) Suspend(table, ttl);
                        std::move(done)();
                      });
}

void CachingEngine::Suspend(const std::string& table, absl::Duration ttl) {
  // R (or T) may still hold the token of items cached before the change: stop trusting this
  // table's items here until every one of them has expired.
  ++suspensions_;
  const absl::Time until = Clock::Real()->Now() + ttl + kClockSkew;
  absl::MutexLock lock(&mu_);
  absl::Time& current = suspended_until_[table];
  current = std::max(current, until);
}

bool CachingEngine::Suspended(const std::string& table) {
  absl::MutexLock lock(&mu_);
  auto it = suspended_until_.find(table);
  if (it == suspended_until_.end()) return false;
  if (Clock::Real()->Now() < it->second) return true;
  suspended_until_.erase(it);
  return false;
}

void CachingEngine::EnsureStamp(const std::string& key, absl::Duration ttl, StampDone done) {
  std::optional<std::string> fresh = NewStamp();
  if (!fresh.has_value()) {
    std::move(done)(std::nullopt);
    return;
  }
  std::string stamp = *fresh;
  cache_->AddAsync(key, *fresh, ttl,
                   [this, key, stamp = std::move(stamp),
                    done = std::move(done)](absl::StatusOr<bool> added) mutable {
                     if (!added.ok()) {
                       std::move(done)(std::nullopt);
                     } else if (*added) {
                       std::move(done)(std::move(stamp));
                     } else {
                       // Another reader added one first: use theirs.
                       cache_->MultiGetAsync(
                           {key}, [key, done = std::move(done)](
                                      absl::StatusOr<MemcachedClient::Found> again) mutable {
                             auto it = again.ok() ? again->find(key) : again->end();
                             if (!again.ok() || it == again->end()) {
                               // Deleted again meanwhile: do not fill now.
                               std::move(done)(std::nullopt);
                             } else {
                               std::move(done)(std::move(it->second));
                             }
                           });
                     }
                   });
}

void CachingEngine::LookUp(const std::string& table, const std::string& record_id,
                           const std::vector<std::string>& keys, absl::Duration ttl,
                           LookupDone done) {
  Lookup lookup;
  lookup.observed = Clock::Real()->Now();
  std::vector<std::string> cache_keys;
  cache_keys.reserve(keys.size() + 2);
  cache_keys.push_back(TableStampKey(table));
  cache_keys.push_back(RecordStampKey(table, record_id));
  for (const std::string& key : keys) cache_keys.push_back(ItemKey(table, record_id, key));
  cache_->MultiGetAsync(cache_keys, [this, cache_keys, keys, ttl, lookup = std::move(lookup),
                                     done = std::move(done)](
                                        absl::StatusOr<MemcachedClient::Found> cached) mutable {
    if (!cached.ok()) {
      ++bypassed_reads_;
      lookup.bypassed = true;
      std::move(done)(std::move(lookup));
      return;
    }
    auto take = [&](const std::string& cache_key) -> std::optional<std::string> {
      auto it = cached->find(cache_key);
      if (it == cached->end()) return std::nullopt;
      return std::move(it->second);
    };
    lookup.table_stamp = take(cache_keys[0]);
    lookup.record_stamp = take(cache_keys[1]);
    const int64_t now_us = options_.clock->NowMicros();
    const int64_t real_now_us = Clock::Real()->NowMicros();
    for (size_t i = 0; i < keys.size(); ++i) {
      std::optional<std::string> bytes = take(cache_keys[i + 2]);
      std::optional<CachedItem> item = bytes.has_value() ? Decode(*bytes) : std::nullopt;
      if (item.has_value() && lookup.table_stamp.has_value() && lookup.record_stamp.has_value() &&
          item->table_stamp == *lookup.table_stamp && item->record_stamp == *lookup.record_stamp &&
          real_now_us < item->cached_until_us && !Expired(item->item, now_us)) {
        item->item.key = keys[i];
        lookup.hits.push_back(std::move(item->item));
      } else {
        lookup.missed.push_back(keys[i]);
      }
    }
    hits_ += lookup.hits.size();
    misses_ += lookup.missed.size();
    if (lookup.missed.empty()) {
      std::move(done)(std::move(lookup));
      return;
    }
    EnsureStamps(std::move(cache_keys[0]), std::move(cache_keys[1]), ttl, std::move(lookup),
                 std::move(done));
  });
}

void CachingEngine::EnsureStamps(std::string table_key, std::string record_key, absl::Duration ttl,
                                 Lookup lookup, LookupDone done) {
  // The stamps must exist before the engine read, so that a write committed after it
  // retires them. T never expires on its own: it changes only when the table is dropped.
  if (!lookup.table_stamp.has_value()) {
    EnsureStamp(
        table_key, absl::ZeroDuration(),
        [this, table_key, record_key = std::move(record_key), ttl, lookup = std::move(lookup),
         done = std::move(done)](std::optional<std::string> stamp) mutable {
          if (!stamp.has_value()) {
            std::move(done)(std::move(lookup));  // read, but fill nothing
            return;
          }
          lookup.table_stamp = std::move(stamp);
          EnsureStamps(std::move(table_key), std::move(record_key), ttl, std::move(lookup),
                       std::move(done));
        });
    return;
  }
  if (!lookup.record_stamp.has_value()) {
    EnsureStamp(record_key, ttl,
                [lookup = std::move(lookup),
                 done = std::move(done)](std::optional<std::string> stamp) mutable {
                  lookup.record_stamp = std::move(stamp);
                  std::move(done)(std::move(lookup));
                });
    return;
  }
  std::move(done)(std::move(lookup));
}

void CachingEngine::Fill(const std::string& table, const std::string& record_id,
                         const Lookup& lookup, absl::Duration ttl,
                         const std::vector<StoredItem>& items, absl::AnyInvocable<void() &&> done) {
  // `done` runs when the last of these Sets is answered; the one left counts Fill itself.
  struct Pending {
    std::atomic<size_t> left{1};
    absl::AnyInvocable<void() &&> done;
  };
  auto pending = std::make_shared<Pending>();
  pending->done = std::move(done);
  auto finish_one = [pending] {
    if (--pending->left == 0) std::move(pending->done)();
  };
  if (lookup.table_stamp.has_value() && lookup.record_stamp.has_value()) {
    const int64_t cached_until_us = absl::ToUnixMicros(lookup.observed + ttl);
    for (const StoredItem& item : items) {
      if (item.value.size() > options_.max_value_bytes) continue;
      // Correctness rests on cached_until and expires_at_us, checked at every hit; the
      // memcached TTL only frees memory, so it is rounded up to memcached's whole seconds.
      absl::Duration life = ttl - (Clock::Real()->Now() - lookup.observed);
      if (item.expires_at_us != 0) {
        life = std::min(life, absl::Microseconds(item.expires_at_us - options_.clock->NowMicros()));
      }
      if (life <= absl::ZeroDuration()) continue;
      life = absl::Ceil(life, absl::Seconds(1));
      ++pending->left;
      cache_->SetAsync(ItemKey(table, record_id, item.key),
                       Encode(*lookup.table_stamp, *lookup.record_stamp, cached_until_us, item),
                       life, [this, finish_one](absl::Status status) mutable {
                         if (status.ok()) ++fills_;
                         finish_one();
                       });
    }
  }
  finish_one();
}

namespace {

// The engine read of a lookup's misses: unlimited but for the deadline, because the limits
// apply to the merged result (MergeAndLimit).
KeySpan MissSpan(const std::vector<std::string>& missed) {
  KeySpan span;
  span.by_keys = true;
  span.keys = missed;
  return span;
}
ReadLimits MissLimits(const ReadLimits& limits) {
  ReadLimits miss_limits;
  miss_limits.soft_deadline = limits.soft_deadline;
  return miss_limits;
}

}  // namespace

absl::Status CachingEngine::DropTable(const std::string& table) {
  if (storage::MemoryOnly()) return storage::WouldBlockError("drop table");
  absl::Status status = target().DropTable(table);
  if (std::optional<absl::Duration> ttl = TtlFor(table)) {
    AwaitDone([&](auto done) { Invalidate(table, TableStampKey(table), *ttl, std::move(done)); });
  }
  return status;
}

absl::Status CachingEngine::Write(const storage::RecordWrite& write) {
  // Not even tried: its invalidation is a network call to memcached.
  if (storage::MemoryOnly()) return storage::WouldBlockError("write");
  absl::Status status = target().Write(write);
  // Only after the engine returned (also after an error: UNAVAILABLE may still have applied):
  // see the argument at the top of this file.
  if (std::optional<absl::Duration> ttl = TtlFor(write.table)) {
    AwaitDone([&](auto done) {
      Invalidate(write.table, RecordStampKey(write.table, write.record_id), *ttl, std::move(done));
    });
  }
  return status;
}

void CachingEngine::WriteAsync(const storage::RecordWrite& write, absl::Time deadline,
                               WriteDone done) {
  const std::optional<absl::Duration> ttl = TtlFor(write.table);
  if (!ttl.has_value()) {
    target().WriteAsync(write, deadline, std::move(done));
    return;
  }
  done = Tracked(std::move(done));
  target().WriteAsync(
      write, deadline,
      [this, table = write.table, stamp_key = RecordStampKey(write.table, write.record_id),
       ttl = *ttl, done = std::move(done)](absl::Status status) mutable {
        // An engine without an asynchronous form did nothing: nothing to invalidate.
        if (storage::IsWouldBlock(status)) {
          std::move(done)(std::move(status));
          return;
        }
        Invalidate(table, stamp_key, ttl,
                   [status = std::move(status), done = std::move(done)]() mutable {
                     std::move(done)(std::move(status));
                   });
      });
}

absl::StatusOr<RecordSlice> CachingEngine::Read(const std::string& table,
                                                const std::string& record_id, const KeySpan& span,
                                                const ReadLimits& limits) {
  // memcached is across a network; the engine behind it may hold the record in memory. A
  // read of the engine alone is always right (it is the source of truth) and fills nothing.
  if (storage::MemoryOnly()) return target().Read(table, record_id, span, limits);
  const std::optional<absl::Duration> ttl = CacheableRead(table, span);
  if (!ttl.has_value()) return target().Read(table, record_id, span, limits);
  Lookup lookup = Await<Lookup>(
      [&](LookupDone done) { LookUp(table, record_id, span.keys, *ttl, std::move(done)); });
  if (lookup.bypassed) return target().Read(table, record_id, span, limits);
  RecordSlice from_engine;
  if (!lookup.missed.empty()) {
    SG_ASSIGN_OR_RETURN(
        from_engine, target().Read(table, record_id, MissSpan(lookup.missed), MissLimits(limits)));
    // Waited for here only so that a caller that reads again finds what this read stored.
    AwaitDone([&](auto done) {
      Fill(table, record_id, lookup, *ttl, from_engine.items, std::move(done));
    });
  }
  return MergeAndLimit(std::move(lookup.hits), std::move(from_engine), limits, *options_.clock);
}

void CachingEngine::ReadAsync(const std::string& table, const std::string& record_id,
                              const KeySpan& span, const ReadLimits& limits, absl::Time deadline,
                              ReadDone done) {
  // An engine without an asynchronous form answers WouldBlock, and the caller reads again
  // through Read, where the read is counted.
  const std::optional<absl::Duration> ttl =
      target().IsAsync(table) ? CacheableRead(table, span) : std::nullopt;
  if (!ttl.has_value()) {
    target().ReadAsync(table, record_id, span, limits, deadline, std::move(done));
    return;
  }
  done = Tracked(std::move(done));
  LookUp(table, record_id, span.keys, *ttl,
         [this, table, record_id, span, limits, deadline, ttl = *ttl,
          done = std::move(done)](Lookup lookup) mutable {
           if (lookup.bypassed) {
             target().ReadAsync(table, record_id, span, limits, deadline, std::move(done));
             return;
           }
           if (lookup.missed.empty()) {
             std::move(done)(MergeAndLimit(std::move(lookup.hits), {}, limits, *options_.clock));
             return;
           }
           const KeySpan miss_span = MissSpan(lookup.missed);
           target().ReadAsync(
               table, record_id, miss_span, MissLimits(limits), deadline,
               [this, table, record_id, limits, ttl, lookup = std::move(lookup),
                done = std::move(done)](absl::StatusOr<RecordSlice> from_engine) mutable {
                 if (!from_engine.ok()) {
                   std::move(done)(from_engine.status());
                   return;
                 }
                 // The answer does not wait for the fills.
                 Fill(table, record_id, lookup, ttl, from_engine->items, [] {});
                 std::move(done)(MergeAndLimit(std::move(lookup.hits), *std::move(from_engine),
                                               limits, *options_.clock));
               });
         });
}

CachingEngine::Stats CachingEngine::stats() const {
  Stats stats;
  stats.hits = hits_.load();
  stats.misses = misses_.load();
  stats.fills = fills_.load();
  stats.passthrough_reads = passthrough_reads_.load();
  stats.bypassed_reads = bypassed_reads_.load();
  stats.suspensions = suspensions_.load();
  stats.client = cache_->stats();
  return stats;
}

}  // namespace stategate::cache
