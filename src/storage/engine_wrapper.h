// StorageEngineWrapper: forwards every call to another engine. Derive from it to change
// one behaviour (inject faults, own resources, count calls) without restating the rest.
// Thread-safe if the wrapped engine is.
#pragma once

#include <memory>

#include "src/storage/engine.h"

namespace stategate::storage {

class StorageEngineWrapper : public StorageEngine {
 public:
  explicit StorageEngineWrapper(std::unique_ptr<StorageEngine> target)
      : owned_(std::move(target)), target_(owned_.get()) {}
  // Forwards to an engine owned elsewhere, which must outlive the wrapper.
  explicit StorageEngineWrapper(StorageEngine* borrowed) : target_(borrowed) {}

  absl::Status CreateTable(const std::string& table) override {
    return target_->CreateTable(table);
  }
  absl::Status DropTable(const std::string& table) override { return target_->DropTable(table); }
  bool HasTable(const std::string& table) const override { return target_->HasTable(table); }
  absl::Status Write(const RecordWrite& write) override { return target_->Write(write); }
  absl::Status Purge(const std::string& table) override { return target_->Purge(table); }
  int64_t DegradedWrites() const override { return target_->DegradedWrites(); }
  std::string ShardOf(const std::string& table, const std::string& record_id) const override {
    return target_->ShardOf(table, record_id);
  }
  absl::StatusOr<RecordSlice> Read(const std::string& table, const std::string& record_id,
                                   const KeySpan& span, const ReadLimits& limits) override {
    return target_->Read(table, record_id, span, limits);
  }
  absl::StatusOr<TableSlice> Scan(const std::string& table,
                                  const std::optional<ScanPosition>& after,
                                  const ReadLimits& limits) override {
    return target_->Scan(table, after, limits);
  }
  bool IsAsync(const std::string& table) const override { return target_->IsAsync(table); }
  void ReadAsync(const std::string& table, const std::string& record_id, const KeySpan& span,
                 const ReadLimits& limits, absl::Time deadline, ReadDone done) override {
    target_->ReadAsync(table, record_id, span, limits, deadline, std::move(done));
  }
  void WriteAsync(const RecordWrite& write, absl::Time deadline, WriteDone done) override {
    target_->WriteAsync(write, deadline, std::move(done));
  }
  void ScanAsync(const std::string& table, const std::optional<ScanPosition>& after,
                 const ReadLimits& limits, absl::Time deadline, ScanDone done) override {
    target_->ScanAsync(table, after, limits, deadline, std::move(done));
  }

 protected:
  StorageEngine& target() { return *target_; }
  // Closes the wrapped engine (if owned) before the wrapper's own members are destroyed.
  void ResetTarget() {
    target_ = nullptr;
    owned_.reset();
  }

 private:
  std::unique_ptr<StorageEngine> owned_;  // null when borrowed
  StorageEngine* target_;
};

// An engine that forwards to `engine` without owning it: to hand an engine that lives on
// elsewhere to something that takes ownership (a CachingEngine in front of a shared one).
inline std::unique_ptr<StorageEngine> Borrow(StorageEngine* engine) {
  return std::make_unique<StorageEngineWrapper>(engine);
}

}  // namespace stategate::storage
