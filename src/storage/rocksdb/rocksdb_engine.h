// RocksDbEngine: the embedded default StorageEngine. One RocksDB database per data
// directory, one column family per table, a write-ahead log, expired items and tombstones
// past their grace purged by a compaction filter, table drop = column family drop.
//
// Within a column family a record's keys are [u32 big-endian id length][id][tag][item key],
// tag 0 holding the record's range tombstones (one key, sorting first) and tag 1 its cells.
// Writes are read-modify-write under a striped per-record lock. Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "src/common/clock.h"
#include "src/storage/engine.h"

namespace stategate::storage {

struct RocksDbOptions {
  std::string path;  // created if missing
  // Source of "now" for expiry and grace. Default: the real clock.
  Clock* clock = Clock::Real();
  // How long tombstones and expired items are kept after their version/expiry so that a
  // late retry of an older write cannot resurrect data. Must be at least the server's
  // max clock skew. Default: 1 hour.
  absl::Duration tombstone_grace = absl::Hours(1);
};

// Opens (or creates) the database at options.path with every table it already has.
[[nodiscard]] absl::StatusOr<std::unique_ptr<StorageEngine>> OpenRocksDbEngine(
    const RocksDbOptions& options);

}  // namespace stategate::storage
