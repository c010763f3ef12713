#include "src/storage/record_merge.h"

#include <algorithm>

namespace stategate::storage {

FoldedWrite Fold(const std::vector<WriteOp>& ops) {
  FoldedWrite folded;
  for (const WriteOp& op : ops) {
    if (const auto* put = std::get_if<PutOp>(&op)) {
      folded.points[put->key] = *put;
    } else if (const auto* del = std::get_if<DeleteKeyOp>(&op)) {
      folded.points[del->key] = std::nullopt;
    } else {
      const auto& range = std::get<DeleteRangeOp>(op);
      auto it = folded.points.lower_bound(range.start);
      while (it != folded.points.end() && InRange(it->first, range.start, range.end)) {
        it = folded.points.erase(it);
      }
      folded.ranges.push_back(range);
    }
  }
  return folded;
}

bool InRange(const std::string& key, const std::string& start, const std::string& end) {
  return key >= start && (end.empty() || key < end);
}

Version VersionOf(const internal::StoredCell& cell) {
  return Version{cell.version_us(), cell.nonce()};
}

Version VersionOf(const internal::RangeTombstone& tombstone) {
  return Version{tombstone.version_us(), tombstone.nonce()};
}

bool CoveredByNewerTombstone(const internal::RecordMeta& meta, const std::string& key,
                             const Version& version) {
  return std::any_of(meta.range_tombstones().begin(), meta.range_tombstones().end(),
                     [&](const internal::RangeTombstone& t) {
                       return InRange(key, t.start(), t.end()) && VersionOf(t) > version;
                     });
}

namespace {

// Whether [outer_start, outer_end) contains [start, end); empty ends are unbounded.
bool Contains(const std::string& outer_start, const std::string& outer_end,
              const std::string& start, const std::string& end) {
  if (start < outer_start) return false;
  if (outer_end.empty()) return true;
  return !end.empty() && end <= outer_end;
}

}  // namespace

bool AddRangeTombstone(internal::RecordMeta& meta, const DeleteRangeOp& range,
                       const Version& version) {
  auto* tombstones = meta.mutable_range_tombstones();
  for (const auto& t : *tombstones) {
    if (VersionOf(t) >= version && Contains(t.start(), t.end(), range.start, range.end)) {
      return false;  // already recorded, or shadowed by a newer one
    }
  }
  // Older tombstones inside the new range say nothing the new one does not.
  tombstones->erase(std::remove_if(tombstones->begin(), tombstones->end(),
                                   [&](const internal::RangeTombstone& t) {
                                     return VersionOf(t) < version &&
                                            Contains(range.start, range.end, t.start(), t.end());
                                   }),
                    tombstones->end());
  internal::RangeTombstone* added = tombstones->Add();
  added->set_start(range.start);
  added->set_end(range.end);
  added->set_version_us(version.time_us);
  added->set_nonce(version.nonce);
  return true;
}

void PruneRangeTombstones(internal::RecordMeta& meta, int64_t cutoff_us) {
  auto* tombstones = meta.mutable_range_tombstones();
  tombstones->erase(
      std::remove_if(tombstones->begin(), tombstones->end(),
                     [&](const internal::RangeTombstone& t) { return t.version_us() < cutoff_us; }),
      tombstones->end());
}

bool IsLive(const internal::StoredCell& cell, const internal::RecordMeta& meta,
            const std::string& key, int64_t now_us) {
  if (cell.tombstone()) return false;
  if (cell.expires_at_us() != 0 && cell.expires_at_us() <= now_us) return false;
  return !CoveredByNewerTombstone(meta, key, VersionOf(cell));
}

}  // namespace stategate::storage
