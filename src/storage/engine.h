// StorageEngine: the interface both data abstractions are written against (DESIGN.md,
// "Storage engines"). An engine holds tables; a table holds records, each record a sorted
// map of items (item key -> cell), ordered bytewise by item key.
//
// Last write wins per item. Every write carries a Version; a write to an item applies only
// if it is newer than what is stored for that item (RecordWrite has the exact rules).
// Deletes leave tombstones (point or range) that keep their version for the engine's
// tombstone grace period, so a late retry of an older write cannot resurrect deleted data.
// Applying the same RecordWrite twice leaves the same state as applying it once.
//
// Implementations are thread-safe.
#pragma once

#include <compare>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "src/storage/memory_only.h"

namespace stategate::storage {

// The version of a write: (time_us, nonce) compared lexicographically.
struct Version {
  int64_t time_us = 0;
  std::string nonce;

  friend auto operator<=>(const Version&, const Version&) = default;
  friend bool operator==(const Version&, const Version&) = default;
};

// One operation of a RecordWrite.
struct PutOp {
  std::string key;
  std::string value;
  int64_t expires_at_us = 0;  // 0 = never; otherwise unix micros after which it is gone
};
struct DeleteKeyOp {
  std::string key;
};
// Deletes [start, end); an empty end means "to the end of the record".
struct DeleteRangeOp {
  std::string start;
  std::string end;
};
using WriteOp = std::variant<PutOp, DeleteKeyOp, DeleteRangeOp>;

// An atomic write to one record. The ops are folded in order first (a later op on a key
// replaces an earlier one; a range delete drops earlier ops on keys in its range), then
// applied against the stored record all at once:
//  - a put or point delete of key k applies iff version > the stored cell's version of k
//    (if any) and no stored range tombstone covering k has a version > version;
//  - a range delete is recorded as a range tombstone with this version and removes every
//    stored cell in its range whose version is < version.
// Equal versions mean "the same logical write" (a retry or a hedge): re-applying is a no-op.
struct RecordWrite {
  std::string table;
  std::string record_id;
  Version version;
  std::vector<WriteOp> ops;
  bool sync = true;  // durable (e.g. WAL fsync) before returning
  // Engines with replicas: acknowledged only once this many replicas have the write;
  // UNAVAILABLE (maybe applied; retry with the same version) if they do not in time.
  int replicas_ack = 0;
  // When fewer than replicas_ack replicas are live: acknowledge once every live one has the
  // write (and count it as degraded) instead of failing.
  bool accept_fewer_live_replicas = false;
};

// A live item as read back: never a tombstone, never expired, never covered by a newer
// range tombstone.
struct StoredItem {
  std::string key;
  std::string value;
  Version version;
  int64_t expires_at_us = 0;
};

// Which items of a record to read. Exactly one of `keys` (sorted, unique) or the range
// [start, end) is used: keys when `by_keys` is set. Items with key <= `after` are skipped
// (resuming a page); unset = from the beginning.
struct KeySpan {
  bool by_keys = false;
  std::vector<std::string> keys;
  std::string start;
  std::string end;  // empty = to the end of the record
  std::optional<std::string> after;
};

// Bounds on one read. The engine stops at whichever comes first, but always returns at
// least one item if any remain (so paging makes progress).
struct ReadLimits {
  size_t max_items = SIZE_MAX;
  size_t max_bytes = SIZE_MAX;  // key + value bytes
  absl::Time soft_deadline = absl::InfiniteFuture();
};

struct RecordSlice {
  std::vector<StoredItem> items;
  // Set when the read stopped at a limit and more items may remain: the last key returned.
  std::optional<std::string> resume_after;
};

struct ScannedRecord {
  std::string record_id;
  std::vector<StoredItem> items;
};

// Where a table scan resumes: after item `key` of record `record_id` (or, with no key,
// after the whole record).
struct ScanPosition {
  std::string record_id;
  std::optional<std::string> key;
};

struct TableSlice {
  std::vector<ScannedRecord> records;  // in engine order; a record may span pages
  std::optional<ScanPosition> resume;  // set when more may remain
};

class StorageEngine {
 public:
  virtual ~StorageEngine() = default;

  // Creates the table if it does not exist. Idempotent.
  [[nodiscard]] virtual absl::Status CreateTable(const std::string& table) = 0;
  // Drops the table and all its data. NOT_FOUND if it does not exist.
  [[nodiscard]] virtual absl::Status DropTable(const std::string& table) = 0;
  [[nodiscard]] virtual bool HasTable(const std::string& table) const = 0;

  // Applies `write` atomically. NOT_FOUND if the table does not exist; UNAVAILABLE if the
  // engine cannot be reached (safe to retry with the same version).
  [[nodiscard]] virtual absl::Status Write(const RecordWrite& write) = 0;

  // Reads live items of one record in key order. A missing record reads as empty.
  [[nodiscard]] virtual absl::StatusOr<RecordSlice> Read(const std::string& table,
                                                         const std::string& record_id,
                                                         const KeySpan& span,
                                                         const ReadLimits& limits) = 0;

  // Removes now what no reader can see and no late write can need any more: expired items
  // and tombstones past the grace period. Engines also do this in the background; this is
  // for operators and tests. NOT_FOUND if the table does not exist.
  [[nodiscard]] virtual absl::Status Purge(const std::string& table) = 0;

  // Reads live items of every record of the table, in engine order, starting after
  // `after` (unset = from the start). Records with no live items are skipped.
  [[nodiscard]] virtual absl::StatusOr<TableSlice> Scan(const std::string& table,
                                                        const std::optional<ScanPosition>& after,
                                                        const ReadLimits& limits) = 0;

  // The shard that serves `record_id` of `table` (for Redis Cluster, the address of the
  // master that owns its slot), so that callers can keep each shard's calls apart; "" when
  // the engine is one shard, or does not know yet.
  [[nodiscard]] virtual std::string ShardOf(const std::string& table,
                                            const std::string& record_id) const {
    (void)table;
    (void)record_id;
    return "";
  }

  // Writes acknowledged by fewer replicas than they asked for (accept_fewer_live_replicas)
  // since the engine opened. Engines without replicas have none.
  [[nodiscard]] virtual int64_t DegradedWrites() const { return 0; }

  // ---- Asynchronous forms: no thread waits on the network (DESIGN.md) ----
  // An engine that reaches its data over the network (Redis Cluster) answers these without
  // blocking the calling thread. They are Read, Write and Scan, under `deadline` instead of the
  // thread's CallDeadline(); `done` runs exactly once, on any thread (perhaps before the
  // call returns), and must not block. An engine without them answers
  // WouldBlockError() (memory_only.h) at once, having done nothing: run the blocking form
  // where a thread may wait.
  using ReadDone = absl::AnyInvocable<void(absl::StatusOr<RecordSlice> slice) &&>;
  using WriteDone = absl::AnyInvocable<void(absl::Status status) &&>;
  using ScanDone = absl::AnyInvocable<void(absl::StatusOr<TableSlice> slice) &&>;

  // Whether ReadAsync, WriteAsync and ScanAsync on `table` run without blocking.
  [[nodiscard]] virtual bool IsAsync(const std::string& table) const {
    (void)table;
    return false;
  }
  virtual void ReadAsync(const std::string& table, const std::string& record_id,
                         const KeySpan& span, const ReadLimits& limits, absl::Time deadline,
                         ReadDone done);
  virtual void WriteAsync(const RecordWrite& write, absl::Time deadline, WriteDone done);
  virtual void ScanAsync(const std::string& table, const std::optional<ScanPosition>& after,
                         const ReadLimits& limits, absl::Time deadline, ScanDone done);
};

inline void StorageEngine::ReadAsync(const std::string&, const std::string&, const KeySpan&,
                                     const ReadLimits&, absl::Time, ReadDone done) {
  std::move(done)(WouldBlockError("read (no asynchronous form)"));
}
inline void StorageEngine::WriteAsync(const RecordWrite&, absl::Time, WriteDone done) {
  std::move(done)(WouldBlockError("write (no asynchronous form)"));
}
inline void StorageEngine::ScanAsync(const std::string&, const std::optional<ScanPosition>&,
                                     const ReadLimits&, absl::Time, ScanDone done) {
  std::move(done)(WouldBlockError("scan (no asynchronous form)"));
}

}  // namespace stategate::storage
