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

int64_t FieldBytes(const TargetOp& op) {
  int64_t bytes = 0;
  for (const auto& [field, value] : op.fields) bytes += field.size() + value.size();
  return bytes;
}

// Reads and writes go through the client's asynchronous calls, so the load generator's
// operations are in flight at the gateway, not waiting in a queue of this target: an open
// loop then measures the gateway's admission and shedding, not the bench's threads. Scans
// (paged, blocking in the client) and the empty call (Handshake, blocking) run on a small
// pool of the target's own.
class StategateTarget final : public Target {
 public:
  StategateTarget(std::shared_ptr<KvClient> client, std::string ns, int threads, bool empty_calls)
      : name_(empty_calls ? "empty call" : "stategate"),
        client_(std::move(client)),
        ns_(std::move(ns)),
        empty_calls_(empty_calls),
        blocking_(std::make_unique<WorkerPool>(threads)) {}

  // Waits for the blocking operations running and queued; asynchronous ones complete on
  // the client's threads (the client outlives nothing it still runs).
  ~StategateTarget() override {
    stopping_.store(true);
    blocking_.reset();
  }

  bool Supports(ycsb::OpKind) const override { return true; }

  void Start(TargetOp op, OpDone done) override {
    OpDone named = [this, done = std::move(done)](absl::Status status) {
      done(NameTargetError(name_, std::move(status)));
    };
    if (empty_calls_) {
      RunBlocking([this] { return client_->Handshake({ns_}).status(); }, std::move(named));
      return;
    }
    CallOptions call;
    call.priority = op.priority;
    switch (op.kind) {
      case ycsb::OpKind::kRead:
        Read(op.key, call, std::move(named));
        return;
      case ycsb::OpKind::kUpdate:
      case ycsb::OpKind::kInsert:
        Write(op, call, std::move(named));
        return;
      case ycsb::OpKind::kReadModifyWrite: {
        auto shared = std::make_shared<TargetOp>(std::move(op));
        Read(shared->key, call, [this, shared, call, named = std::move(named)](absl::Status read) {
          if (!read.ok()) {
            named(std::move(read));
            return;
          }
          Write(*shared, call, named);
        });
        return;
      }
      case ycsb::OpKind::kScan: {
        const int64_t length = op.scan_length;
        RunBlocking([this, length] { return Scan(length); }, std::move(named));
        return;
      }
    }
    named(absl::InternalError("unknown operation kind"));
  }

  int64_t payload_bytes_sent() const override { return payload_bytes_.load(); }

 private:
  void Read(const std::string& key, const CallOptions& call, OpDone done) {
    Sent(key.size());
    client_->GetItemsAsync(
        ns_, key, Predicate::All(),
        [key, done = std::move(done)](absl::StatusOr<std::vector<StoredItem>> items) {
          if (!items.ok()) {
            done(items.status());
          } else if (items->empty()) {
            done(absl::NotFoundError(absl::StrCat("no record ", key)));
          } else {
            done(absl::OkStatus());
          }
        },
        call);
  }

  void Write(const TargetOp& op, const CallOptions& call, OpDone done) {
    Sent(op.key.size() + FieldBytes(op));
    std::vector<Item> items;
    items.reserve(op.fields.size());
    for (const auto& [field, value] : op.fields) items.push_back(Item{field, value});
    client_->PutItemsAsync(ns_, op.key, std::move(items), std::move(done), call);
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

  void RunBlocking(std::function<absl::Status()> run, OpDone done) {
    blocking_->Submit([this, run = std::move(run), done = std::move(done)] {
      done(stopping_.load() ? absl::CancelledError("the target is shutting down") : run());
    });
  }

  void Sent(int64_t bytes) { payload_bytes_.fetch_add(bytes, std::memory_order_relaxed); }

  const std::string name_;
  const std::shared_ptr<KvClient> client_;
  const std::string ns_;
  const bool empty_calls_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> payload_bytes_{0};
  std::unique_ptr<WorkerPool> blocking_;
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
