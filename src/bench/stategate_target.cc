#include "src/bench/stategate_target.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "src/bench/pooled_target.h"

namespace stategate::bench {
namespace {

// Returned by a scan's visitor to stop after enough records; not an error.
constexpr char kEnoughRecords[] = "scan read enough records";

int64_t FieldBytes(const TargetOp& op) {
  int64_t bytes = 0;
  for (const auto& [field, value] : op.fields) bytes += field.size() + value.size();
  return bytes;
}

class StategateTarget final : public PooledTarget {
 public:
  StategateTarget(std::shared_ptr<KvClient> client, std::string ns, int threads, bool empty_calls)
      : PooledTarget(empty_calls ? "empty call" : "stategate", threads),
        client_(std::move(client)),
        ns_(std::move(ns)),
        empty_calls_(empty_calls) {}

  ~StategateTarget() override { StopWorkers(); }

  bool Supports(ycsb::OpKind) const override { return true; }

 private:
  absl::Status Run(const TargetOp& op) override {
    if (empty_calls_) return client_->Handshake({ns_}).status();  // no payload
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
    Sent(key.size());
    absl::StatusOr<std::vector<StoredItem>> items = client_->GetItems(ns_, key, Predicate::All());
    if (!items.ok()) return items.status();
    if (items->empty()) return absl::NotFoundError(absl::StrCat("no record ", key));
    return absl::OkStatus();
  }

  absl::Status Write(const TargetOp& op) {
    Sent(op.key.size() + FieldBytes(op));
    std::vector<Item> items;
    items.reserve(op.fields.size());
    for (const auto& [field, value] : op.fields) items.push_back(Item{field, value});
    return client_->PutItems(ns_, op.key, items);
  }

  // The start key is not sent (see the header); the scan's payload is nothing.
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
