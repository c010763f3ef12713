#include "src/storage/rocksdb/rocksdb_engine.h"

#include <algorithm>
#include <array>
#include <map>
#include <mutex>
#include <shared_mutex>

#include "absl/base/thread_annotations.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/compaction_filter.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/options_util.h"
#include "src/common/status_macros.h"
#include "src/storage/memory_only.h"
#include "src/storage/record_merge.h"
#include "stategate/internal/stored.pb.h"

namespace stategate::storage {
namespace {

constexpr char kMetaTag = '\x00';
constexpr char kCellTag = '\x01';

// ---- Key layout: [u32 big-endian id length][id][tag][item key] ----

std::string RecordPrefix(const std::string& id) {
  std::string out;
  out.reserve(4 + id.size() + 1);
  const uint32_t n = static_cast<uint32_t>(id.size());
  out.push_back(static_cast<char>(n >> 24));
  out.push_back(static_cast<char>(n >> 16));
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n));
  out.append(id);
  return out;
}

std::string MetaKey(const std::string& id) { return RecordPrefix(id) + kMetaTag; }

std::string CellKey(const std::string& id, const std::string& item_key) {
  std::string out = RecordPrefix(id);
  out.push_back(kCellTag);
  out.append(item_key);
  return out;
}

// The first key after every key of the record.
std::string RecordEnd(const std::string& id) { return RecordPrefix(id) + '\x02'; }

struct DecodedKey {
  std::string_view id;
  char tag = 0;
  std::string_view item_key;
};

bool DecodeKey(std::string_view key, DecodedKey* out) {
  if (key.size() < 5) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(key.data());
  const size_t n = (size_t{p[0]} << 24) | (size_t{p[1]} << 16) | (size_t{p[2]} << 8) | p[3];
  if (key.size() < 4 + n + 1) return false;
  out->id = key.substr(4, n);
  out->tag = key[4 + n];
  out->item_key = key.substr(4 + n + 1);
  return true;
}

// Column family names carry a prefix so that a table may be called anything, "default"
// included (RocksDB's own default column family is never a table).
constexpr std::string_view kTablePrefix = "t.";

std::string ColumnFamilyName(const std::string& table) { return std::string(kTablePrefix) + table; }

absl::Status ToAbsl(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return absl::OkStatus();
  const std::string message = "rocksdb " + what + ": " + s.ToString();
  // A memory-only read (kBlockCacheTier) that needed a block from disk.
  if (s.IsIncomplete() && MemoryOnly()) return WouldBlockError(what);
  if (s.IsNotFound()) return absl::NotFoundError(message);
  if (s.IsCorruption()) return absl::DataLossError(message);
  if (s.IsInvalidArgument()) return absl::InvalidArgumentError(message);
  if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain() || s.IsIncomplete()) {
    return absl::UnavailableError(message);
  }
  if (s.IsIOError()) return absl::UnavailableError(message);
  return absl::InternalError(message);
}

#define SG_ROCKS_RETURN(expr, what) SG_RETURN_IF_ERROR(ToAbsl((expr), (what)))

// Drops what no reader can see any more and no late write can need: tombstones and
// expired cells whose grace is over, and record metadata whose range tombstones all are.
class PurgeFilter : public rocksdb::CompactionFilter {
 public:
  PurgeFilter(Clock* clock, absl::Duration grace) : clock_(clock), grace_(grace) {}

  bool Filter(int /*level*/, const rocksdb::Slice& key, const rocksdb::Slice& value,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    DecodedKey decoded;
    if (!DecodeKey(std::string_view(key.data(), key.size()), &decoded)) return false;
    const int64_t cutoff_us = absl::ToUnixMicros(clock_->Now() - grace_);
    if (decoded.tag == kMetaTag) {
      internal::RecordMeta meta;
      if (!meta.ParseFromArray(value.data(), static_cast<int>(value.size()))) return false;
      for (const auto& t : meta.range_tombstones()) {
        if (t.version_us() >= cutoff_us) return false;
      }
      return true;
    }
    internal::StoredCell cell;
    if (!cell.ParseFromArray(value.data(), static_cast<int>(value.size()))) return false;
    if (cell.tombstone()) return cell.version_us() < cutoff_us;
    return cell.expires_at_us() != 0 && cell.expires_at_us() < cutoff_us;
  }

  const char* Name() const override { return "stategate.PurgeFilter"; }

 private:
  Clock* const clock_;
  const absl::Duration grace_;
};

class PurgeFilterFactory : public rocksdb::CompactionFilterFactory {
 public:
  PurgeFilterFactory(Clock* clock, absl::Duration grace) : clock_(clock), grace_(grace) {}
  std::unique_ptr<rocksdb::CompactionFilter> CreateCompactionFilter(
      const rocksdb::CompactionFilter::Context& /*context*/) override {
    return std::make_unique<PurgeFilter>(clock_, grace_);
  }
  const char* Name() const override { return "stategate.PurgeFilterFactory"; }

 private:
  Clock* const clock_;
  const absl::Duration grace_;
};

class RocksDbEngine : public StorageEngine {
 public:
  explicit RocksDbEngine(const RocksDbOptions& options) : options_(options) {}

  ~RocksDbEngine() override {
    if (db_ == nullptr) return;
    for (auto& [name, handle] : tables_) {
      db_->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
    }
    db_->DestroyColumnFamilyHandle(default_cf_).PermitUncheckedError();
    db_->Close().PermitUncheckedError();
  }

  absl::Status Open() {
    rocksdb::DBOptions db_options;
    db_options.create_if_missing = true;
    db_options.create_missing_column_families = true;
    db_options.IncreaseParallelism(2);
    std::vector<std::string> names;
    rocksdb::Status s = rocksdb::DB::ListColumnFamilies(db_options, options_.path, &names);
    if (!s.ok()) names = {rocksdb::kDefaultColumnFamilyName};  // a new database
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const std::string& name : names) {
      descriptors.emplace_back(name, TableOptions());
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    SG_ROCKS_RETURN(rocksdb::DB::Open(db_options, options_.path, descriptors, &handles, &db),
                    absl::StrCat("open ", options_.path));
    db_.reset(db);
    for (rocksdb::ColumnFamilyHandle* handle : handles) {
      if (handle->GetName() == rocksdb::kDefaultColumnFamilyName) {
        default_cf_ = handle;
      } else if (handle->GetName().starts_with(kTablePrefix)) {
        tables_[handle->GetName().substr(kTablePrefix.size())] = handle;
      } else {
        db_->DestroyColumnFamilyHandle(handle).PermitUncheckedError();  // not ours
      }
    }
    return absl::OkStatus();
  }

  absl::Status CreateTable(const std::string& table) override {
    if (MemoryOnly()) return WouldBlockError("create table");
    std::unique_lock lock(tables_mu_);
    if (tables_.contains(table)) return absl::OkStatus();
    rocksdb::ColumnFamilyHandle* handle = nullptr;
    SG_ROCKS_RETURN(db_->CreateColumnFamily(TableOptions(), ColumnFamilyName(table), &handle),
                    absl::StrCat("create table ", table));
    tables_[table] = handle;
    return absl::OkStatus();
  }

  absl::Status DropTable(const std::string& table) override {
    if (MemoryOnly()) return WouldBlockError("drop table");
    std::unique_lock lock(tables_mu_);
    auto it = tables_.find(table);
    if (it == tables_.end()) return absl::NotFoundError(absl::StrCat("no table ", table));
    SG_ROCKS_RETURN(db_->DropColumnFamily(it->second), absl::StrCat("drop table ", table));
    db_->DestroyColumnFamilyHandle(it->second).PermitUncheckedError();
    tables_.erase(it);
    return absl::OkStatus();
  }

  bool HasTable(const std::string& table) const override {
    std::shared_lock lock(tables_mu_);
    return tables_.contains(table);
  }

  absl::Status Write(const RecordWrite& write) override {
    if (MemoryOnly()) return WouldBlockError("write");  // a WAL append, maybe an fsync
    // Holding the table lock shared keeps the column family alive during the write.
    std::shared_lock tables_lock(tables_mu_);
    rocksdb::ColumnFamilyHandle* cf = FindTable(write.table);
    if (cf == nullptr) return absl::NotFoundError(absl::StrCat("no table ", write.table));
    std::lock_guard record_lock(RecordMutex(write.table, write.record_id));

    const FoldedWrite folded = Fold(write.ops);
    rocksdb::WriteBatch batch;
    const std::string meta_key = MetaKey(write.record_id);
    internal::RecordMeta meta;
    std::string buffer;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf, meta_key, &buffer);
    if (s.ok()) {
      if (!meta.ParseFromString(buffer)) {
        return absl::DataLossError(absl::StrCat("corrupt record metadata in ", write.table));
      }
    } else if (!s.IsNotFound()) {
      return ToAbsl(s, "read record metadata");
    }

    bool meta_changed = false;
    for (const DeleteRangeOp& range : folded.ranges) {
      if (!AddRangeTombstone(meta, range, write.version)) continue;
      meta_changed = true;
      SG_RETURN_IF_ERROR(RemoveOlderCells(cf, write.record_id, range, write.version, batch));
    }

    for (const auto& [key, put] : folded.points) {
      const std::string cell_key = CellKey(write.record_id, key);
      s = db_->Get(rocksdb::ReadOptions(), cf, cell_key, &buffer);
      if (s.ok()) {
        internal::StoredCell existing;
        if (!existing.ParseFromString(buffer)) {
          return absl::DataLossError(absl::StrCat("corrupt cell in ", write.table));
        }
        if (VersionOf(existing) >= write.version) continue;
      } else if (!s.IsNotFound()) {
        return ToAbsl(s, "read cell");
      }
      if (CoveredByNewerTombstone(meta, key, write.version)) continue;
      internal::StoredCell cell;
      cell.set_version_us(write.version.time_us);
      cell.set_nonce(write.version.nonce);
      if (put.has_value()) {
        cell.set_value(put->value);
        cell.set_expires_at_us(put->expires_at_us);
      } else {
        cell.set_tombstone(true);
      }
      SG_ROCKS_RETURN(batch.Put(cf, cell_key, cell.SerializeAsString()), "batch put");
    }

    const int before = meta.range_tombstones_size();
    PruneRangeTombstones(meta, GraceCutoffMicros());
    meta_changed = meta_changed || meta.range_tombstones_size() != before;
    if (meta_changed) {
      if (meta.range_tombstones_size() == 0) {
        SG_ROCKS_RETURN(batch.Delete(cf, meta_key), "batch delete");
      } else {
        SG_ROCKS_RETURN(batch.Put(cf, meta_key, meta.SerializeAsString()), "batch put");
      }
    }
    if (batch.Count() == 0) return absl::OkStatus();
    rocksdb::WriteOptions write_options;
    write_options.sync = write.sync;
    return ToAbsl(db_->Write(write_options, &batch), "write");
  }

  absl::Status Purge(const std::string& table) override {
    if (MemoryOnly()) return WouldBlockError("purge");
    std::shared_lock tables_lock(tables_mu_);
    rocksdb::ColumnFamilyHandle* cf = FindTable(table);
    if (cf == nullptr) return absl::NotFoundError(absl::StrCat("no table ", table));
    rocksdb::CompactRangeOptions options;
    // The purge filter must see every file, the bottommost level included.
    options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    return ToAbsl(db_->CompactRange(options, cf, nullptr, nullptr), "purge");
  }

  absl::StatusOr<RecordSlice> Read(const std::string& table, const std::string& record_id,
                                   const KeySpan& span, const ReadLimits& limits) override {
    std::shared_lock tables_lock(tables_mu_);
    rocksdb::ColumnFamilyHandle* cf = FindTable(table);
    if (cf == nullptr) return absl::NotFoundError(absl::StrCat("no table ", table));
    // One iterator = one consistent snapshot of the record, metadata and cells alike.
    const std::string upper = RecordEnd(record_id);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions read_options = ReadOptionsForCaller();
    read_options.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, cf));

    internal::RecordMeta meta;
    const std::string meta_key = MetaKey(record_id);
    it->Seek(meta_key);
    if (it->Valid() && it->key() == meta_key) {
      if (!meta.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
        return absl::DataLossError(absl::StrCat("corrupt record metadata in ", table));
      }
    }
    SG_ROCKS_RETURN(it->status(), "read");

    RecordSlice slice;
    Budget budget(limits, options_.clock);
    const int64_t now_us = options_.clock->NowMicros();
    auto visit = [&](const std::string& key, const rocksdb::Slice& value,
                     bool* stop) -> absl::Status {
      internal::StoredCell cell;
      if (!cell.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
        return absl::DataLossError(absl::StrCat("corrupt cell in ", table));
      }
      if (!IsLive(cell, meta, key, now_us)) return absl::OkStatus();
      if (budget.Exhausted(key.size() + cell.value().size())) {
        slice.resume_after = slice.items.back().key;
        *stop = true;
        return absl::OkStatus();
      }
      budget.Spend(key.size() + cell.value().size());
      slice.items.push_back(ToItem(key, cell));
      return absl::OkStatus();
    };

    bool stop = false;
    if (span.by_keys) {
      auto key_it = span.keys.begin();
      if (span.after.has_value()) {
        key_it = std::upper_bound(span.keys.begin(), span.keys.end(), *span.after);
      }
      for (; key_it != span.keys.end() && !stop; ++key_it) {
        it->Seek(CellKey(record_id, *key_it));
        SG_ROCKS_RETURN(it->status(), "read");
        DecodedKey decoded;
        if (!it->Valid() || !DecodeKey(ToView(it->key()), &decoded) ||
            decoded.item_key != *key_it || decoded.tag != kCellTag) {
          continue;
        }
        SG_RETURN_IF_ERROR(visit(*key_it, it->value(), &stop));
      }
      return slice;
    }

    std::string start = span.start;
    if (span.after.has_value() && *span.after >= start) {
      start = *span.after;
      start.push_back('\0');  // the first key after `after`
    }
    for (it->Seek(CellKey(record_id, start)); it->Valid() && !stop; it->Next()) {
      DecodedKey decoded;
      if (!DecodeKey(ToView(it->key()), &decoded) || decoded.tag != kCellTag) continue;
      std::string key(decoded.item_key);
      if (!span.end.empty() && key >= span.end) break;
      SG_RETURN_IF_ERROR(visit(key, it->value(), &stop));
    }
    SG_ROCKS_RETURN(it->status(), "read");
    return slice;
  }

  absl::StatusOr<TableSlice> Scan(const std::string& table,
                                  const std::optional<ScanPosition>& after,
                                  const ReadLimits& limits) override {
    std::shared_lock tables_lock(tables_mu_);
    rocksdb::ColumnFamilyHandle* cf = FindTable(table);
    if (cf == nullptr) return absl::NotFoundError(absl::StrCat("no table ", table));
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ReadOptionsForCaller(), cf));

    TableSlice slice;
    Budget budget(limits, options_.clock);
    const int64_t now_us = options_.clock->NowMicros();
    internal::RecordMeta meta;
    std::string current_id;
    bool in_record = false;

    if (!after.has_value()) {
      it->SeekToFirst();
    } else if (after->key.has_value()) {
      // Resume inside the record: its metadata first, then the cells after the key.
      it->Seek(MetaKey(after->record_id));
      if (it->Valid() && it->key() == MetaKey(after->record_id)) {
        if (!meta.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
          return absl::DataLossError(absl::StrCat("corrupt record metadata in ", table));
        }
      }
      // A metadata read that failed (or needed the disk in memory-only mode) must not read
      // as "no range tombstones".
      SG_ROCKS_RETURN(it->status(), "scan");
      current_id = after->record_id;
      in_record = true;
      it->Seek(CellKey(after->record_id, *after->key + '\0'));
    } else {
      it->Seek(RecordEnd(after->record_id));
    }

    for (; it->Valid(); it->Next()) {
      DecodedKey decoded;
      if (!DecodeKey(ToView(it->key()), &decoded)) continue;
      if (!in_record || decoded.id != current_id) {
        current_id = std::string(decoded.id);
        in_record = true;
        meta.Clear();
      }
      if (decoded.tag == kMetaTag) {
        if (!meta.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
          return absl::DataLossError(absl::StrCat("corrupt record metadata in ", table));
        }
        continue;
      }
      internal::StoredCell cell;
      if (!cell.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
        return absl::DataLossError(absl::StrCat("corrupt cell in ", table));
      }
      std::string key(decoded.item_key);
      if (!IsLive(cell, meta, key, now_us)) continue;
      if (budget.Exhausted(key.size() + cell.value().size())) {
        const ScannedRecord& last = slice.records.back();
        slice.resume = ScanPosition{last.record_id, last.items.back().key};
        return slice;
      }
      budget.Spend(key.size() + cell.value().size());
      if (slice.records.empty() || slice.records.back().record_id != current_id) {
        slice.records.push_back(ScannedRecord{current_id, {}});
      }
      slice.records.back().items.push_back(ToItem(key, cell));
    }
    SG_ROCKS_RETURN(it->status(), "scan");
    return slice;
  }

 private:
  // Tracks a read's limits; "exhausted" only once at least one item was taken.
  class Budget {
   public:
    Budget(const ReadLimits& limits, Clock* clock) : limits_(limits), clock_(clock) {}
    // Whether the next item, of `next_bytes`, must wait for the next page.
    bool Exhausted(size_t next_bytes) const {
      if (items_ == 0) return false;
      return items_ >= limits_.max_items || bytes_ >= limits_.max_bytes ||
             next_bytes > limits_.max_bytes - bytes_ || clock_->Now() >= limits_.soft_deadline;
    }
    void Spend(size_t bytes) {
      ++items_;
      bytes_ += bytes;
    }

   private:
    const ReadLimits& limits_;
    Clock* const clock_;
    size_t items_ = 0;
    size_t bytes_ = 0;
  };

  // A read for the caller's mode (memory_only.h): from memtables and the block cache only,
  // failing Incomplete (WouldBlockError) where a block would come from disk.
  static rocksdb::ReadOptions ReadOptionsForCaller() {
    rocksdb::ReadOptions options;
    if (MemoryOnly()) options.read_tier = rocksdb::kBlockCacheTier;
    return options;
  }

  static std::string_view ToView(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

  static StoredItem ToItem(const std::string& key, const internal::StoredCell& cell) {
    return StoredItem{key, cell.value(), VersionOf(cell), cell.expires_at_us()};
  }

  rocksdb::ColumnFamilyOptions TableOptions() const {
    rocksdb::ColumnFamilyOptions cf_options;
    rocksdb::BlockBasedTableOptions table_options;
    table_options.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table_options));
    cf_options.compaction_filter_factory =
        std::make_shared<PurgeFilterFactory>(options_.clock, options_.tombstone_grace);
    return cf_options;
  }

  int64_t GraceCutoffMicros() const {
    return absl::ToUnixMicros(options_.clock->Now() - options_.tombstone_grace);
  }

  rocksdb::ColumnFamilyHandle* FindTable(const std::string& table) const {
    auto it = tables_.find(table);
    return it == tables_.end() ? nullptr : it->second;
  }

  std::mutex& RecordMutex(const std::string& table, const std::string& id) {
    return record_mutexes_[absl::HashOf(table, id) % record_mutexes_.size()];
  }

  // Deletes the record's cells in `range` older than `version` (a range delete's effect).
  absl::Status RemoveOlderCells(rocksdb::ColumnFamilyHandle* cf, const std::string& id,
                                const DeleteRangeOp& range, const Version& version,
                                rocksdb::WriteBatch& batch) {
    const std::string upper = range.end.empty() ? RecordEnd(id) : CellKey(id, range.end);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions read_options;
    read_options.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, cf));
    for (it->Seek(CellKey(id, range.start)); it->Valid(); it->Next()) {
      internal::StoredCell cell;
      if (!cell.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
        return absl::DataLossError("corrupt cell");
      }
      if (VersionOf(cell) < version) {
        SG_ROCKS_RETURN(batch.Delete(cf, it->key()), "batch delete");
      }
    }
    return ToAbsl(it->status(), "read range");
  }

  const RocksDbOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* default_cf_ = nullptr;
  mutable std::shared_mutex tables_mu_;
  std::map<std::string, rocksdb::ColumnFamilyHandle*> tables_;  // guarded by tables_mu_
  std::array<std::mutex, 1024> record_mutexes_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<StorageEngine>> OpenRocksDbEngine(const RocksDbOptions& options) {
  if (options.path.empty()) return absl::InvalidArgumentError("rocksdb: path is empty");
  auto engine = std::make_unique<RocksDbEngine>(options);
  SG_RETURN_IF_ERROR(engine->Open());
  return engine;
}

}  // namespace stategate::storage
