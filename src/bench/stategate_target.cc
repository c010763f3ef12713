#include "src/bench/stategate_target.h"

#include <atomic>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "src/common/worker_pool.h"

namespace stategate::bench {
namespace {

// Returned by a scan's visitor to stop after enough records; not an error.
constexpr char kEnoughRecords[] = "scan read enough records";

int64_t PayloadBytes(const TargetOp& op) {
  int64_t bytes = static_cast<int64_t>(op.key.size());
  for (const auto& [field, value] : op.fields) bytes += field.size() + value.size();
  return bytes;
}

class StategateTarget final : public Target {
 public:
  StategateTarget(std::shared_ptr<KvClient> client, std::string ns, int threads, bool empty_calls)
      : client_(std::move(client)), ns_(std::move(ns)), empty_calls_(empty_calls), pool_(threads) {}

  bool Supports(ycsb::OpKind) const override { return true; }

  void Start(TargetOp op, OpDone done) override {
    bytes_sent_ += PayloadBytes(op);
    pool_.Submit([this, op = std::move(op), done = std::move(done)] { done(Run(op)); });
  }

  int64_t payload_bytes_sent() const override { return bytes_sent_.load(); }

 private:
  absl::Status Run(const TargetOp& op) {
    if (empty_calls_) return client_->Handshake({ns_}).status();
    switch (op.kind) {
      case ycsb::OpKind::kRead:
        return Read(op.key);
      case ycsb::OpKind::kUpdate:
      case ycsb::OpKind::kInsert:
        return Write(op);
      case ycsb::OpKind::kReadModifyWrite:
        if (absl::Status read = Read(op.key); !read.ok()) return read;
        return Write(op);
      case ycsb::OpKind::kScan:
        return Scan(op.scan_length);
    }
    return absl::InternalError("unknown operation kind");
  }

  absl::Status Read(const std::string& key) {
    absl::StatusOr<std::vector<StoredItem>> items = client_->GetItems(ns_, key, Predicate::All());
    if (!items.ok()) return items.status();
    if (items->empty()) return absl::NotFoundError(absl::StrCat("no record ", key));
    return absl::OkStatus();
  }

  absl::Status Write(const TargetOp& op) {
    std::vector<Item> items;
    items.reserve(op.fields.size());
    for (const auto& [field, value] : op.fields) items.push_back(Item{field, value});
    return client_->PutItems(ns_, op.key, items);
  }

  absl::Status Scan(int64_t length) {
    int64_t seen = 0;
    const absl::Status scanned = client_->Scan(ns_, [&](const Record&) {
      return ++seen >= length ? absl::CancelledError(kEnoughRecords) : absl::OkStatus();
    });
    if (absl::IsCancelled(scanned) && scanned.message() == kEnoughRecords) {
      return absl::OkStatus();
    }
    return scanned;
  }

  const std::shared_ptr<KvClient> client_;
  const std::string ns_;
  const bool empty_calls_;
  std::atomic<int64_t> bytes_sent_{0};
  WorkerPool pool_;  // last: its destructor runs the tasks still queued, which use the above
};

}  // namespace

std::unique_ptr<Target> MakeStategateTarget(std::shared_ptr<KvClient> client, std::string ns,
                                            int threads) {
  return std::make_unique<StategateTarget>(std::move(client), std::move(ns), threads, false);
}

std::unique_ptr<Target> MakeEmptyCallTarget(std::shared_ptr<KvClient> client, std::string ns,
                                            int threads) {
  return std::make_unique<StategateTarget>(std::move(client), std::move(ns), threads, true);
}

}  // namespace stategate::bench
