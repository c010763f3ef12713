// TableRouter: one StorageEngine in front of several, each table placed on one of them by
// whoever owns the tables (the gateway places a namespace's tables on the engine, and
// cache, its config names). A call on a table that was never placed fails
// FAILED_PRECONDITION. Placing a table again moves later calls; data does not move.
// Thread-safe; the engines must outlive the router.
#pragma once

#include <map>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "src/storage/engine.h"

namespace stategate::storage {

class TableRouter : public StorageEngine {
 public:
  void Place(const std::string& table, StorageEngine* engine) {
    absl::MutexLock lock(&mu_);
    tables_[table] = engine;
  }

  absl::Status CreateTable(const std::string& table) override {
    return Route(table, [&](StorageEngine& e) { return e.CreateTable(table); });
  }
  absl::Status DropTable(const std::string& table) override {
    return Route(table, [&](StorageEngine& e) { return e.DropTable(table); });
  }
  bool HasTable(const std::string& table) const override {
    StorageEngine* engine = Find(table);
    return engine != nullptr && engine->HasTable(table);
  }
  std::string ShardOf(const std::string& table, const std::string& record_id) const override {
    StorageEngine* engine = Find(table);
    return engine == nullptr ? "" : engine->ShardOf(table, record_id);
  }
  absl::Status Write(const RecordWrite& write) override {
    return Route(write.table, [&](StorageEngine& e) { return e.Write(write); });
  }
  absl::Status Purge(const std::string& table) override {
    return Route(table, [&](StorageEngine& e) { return e.Purge(table); });
  }
  absl::StatusOr<RecordSlice> Read(const std::string& table, const std::string& record_id,
                                   const KeySpan& span, const ReadLimits& limits) override {
    return Route(table, [&](StorageEngine& e) { return e.Read(table, record_id, span, limits); });
  }
  bool IsAsync(const std::string& table) const override {
    StorageEngine* engine = Find(table);
    return engine != nullptr && engine->IsAsync(table);
  }
  void ReadAsync(const std::string& table, const std::string& record_id, const KeySpan& span,
                 const ReadLimits& limits, absl::Time deadline, ReadDone done) override {
    StorageEngine* engine = Find(table);
    if (engine == nullptr) return std::move(done)(Unplaced(table));
    engine->ReadAsync(table, record_id, span, limits, deadline, std::move(done));
  }
  void WriteAsync(const RecordWrite& write, absl::Time deadline, WriteDone done) override {
    StorageEngine* engine = Find(write.table);
    if (engine == nullptr) return std::move(done)(Unplaced(write.table));
    engine->WriteAsync(write, deadline, std::move(done));
  }
  void ScanAsync(const std::string& table, const std::optional<ScanPosition>& after,
                 const ReadLimits& limits, absl::Time deadline, ScanDone done) override {
    StorageEngine* engine = Find(table);
    if (engine == nullptr) return std::move(done)(Unplaced(table));
    engine->ScanAsync(table, after, limits, deadline, std::move(done));
  }
  absl::StatusOr<TableSlice> Scan(const std::string& table,
                                  const std::optional<ScanPosition>& after,
                                  const ReadLimits& limits) override {
    return Route(table, [&](StorageEngine& e) { return e.Scan(table, after, limits); });
  }

 private:
  // f(the table's engine), or FAILED_PRECONDITION if the table was never placed.
  template <typename F>
  auto Route(const std::string& table, F f) -> decltype(f(std::declval<StorageEngine&>())) {
    StorageEngine* engine = Find(table);
    if (engine == nullptr) return Unplaced(table);
    return f(*engine);
  }

  StorageEngine* Find(const std::string& table) const {
    absl::MutexLock lock(&mu_);
    auto it = tables_.find(table);
    return it == tables_.end() ? nullptr : it->second;
  }

  static absl::Status Unplaced(const std::string& table) {
    return absl::FailedPreconditionError(absl::StrCat("table ", table, " is on no engine"));
  }

  mutable absl::Mutex mu_;
  std::map<std::string, StorageEngine*> tables_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stategate::storage
