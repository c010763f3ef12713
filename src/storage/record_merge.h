// The engine-independent half of RecordWrite's semantics: folding a write's ops in order,
// and range tombstone bookkeeping. Engines that apply a write by read-modify-write under a
// record lock (RocksDB) use these; engines that apply it remotely (a Redis script) must
// implement the same rules, and the conformance suite checks that they do.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "src/storage/engine.h"
#include "stategate/internal/stored.pb.h"

namespace stategate::storage {

// A RecordWrite's ops after folding: the last op per key, and the range deletes. A put in
// `points` may lie inside one of `ranges` when it came after that range delete.
struct FoldedWrite {
  std::map<std::string, std::optional<PutOp>> points;  // nullopt = delete the key
  std::vector<DeleteRangeOp> ranges;
};

FoldedWrite Fold(const std::vector<WriteOp>& ops);

// Whether key lies in [start, end), an empty end meaning unbounded.
bool InRange(const std::string& key, const std::string& start, const std::string& end);

Version VersionOf(const internal::StoredCell& cell);
Version VersionOf(const internal::RangeTombstone& tombstone);

// Whether a range tombstone of `meta` newer than `version` covers `key`.
bool CoveredByNewerTombstone(const internal::RecordMeta& meta, const std::string& key,
                             const Version& version);

// Records a range tombstone; drops older ones it makes redundant. Returns false if an
// equal tombstone was already there (a replay).
bool AddRangeTombstone(internal::RecordMeta& meta, const DeleteRangeOp& range,
                       const Version& version);

// Removes range tombstones whose version is older than cutoff_us (their grace is over).
void PruneRangeTombstones(internal::RecordMeta& meta, int64_t cutoff_us);

// Whether a stored cell is visible to readers at now_us given the record's tombstones.
bool IsLive(const internal::StoredCell& cell, const internal::RecordMeta& meta,
            const std::string& key, int64_t now_us);

}  // namespace stategate::storage
