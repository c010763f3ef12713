#include "src/storage/redis/redis_engine.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <optional>
#include <random>

#include "absl/base/thread_annotations.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "spdlog/spdlog.h"
#include "src/common/await.h"
#include "src/common/call_deadline.h"
#include "src/common/checksum.h"
#include "src/common/status_macros.h"
#include "src/redis/async_cluster_client.h"
#include "src/storage/memory_only.h"
#include "src/storage/record_merge.h"
#include "src/storage/redis/lua_scripts.h"

namespace stategate::storage {
namespace {

using redis::Command;
using redis::Reply;

constexpr int kBuckets = 256;
constexpr char kTablesKey[] = "stategate:tables";
constexpr size_t kCellHeader = 19;  // flag, version time, expires, nonce length
constexpr int64_t kIdBatch = 64;    // record ids listed at a time by scans and purges
// One WAIT of a write that waits for replicas; it repeats until replicas_ack_timeout.
constexpr absl::Duration kWaitSlice = absl::Milliseconds(250);
constexpr absl::Duration kMinWaitRound = absl::Milliseconds(10);
// The WAIT of a degrading write to a master whose live replicas are not known yet (the
// first write to it, e.g. a replica just promoted, which may have none): long enough for a
// local replica to acknowledge, short enough that a shard left without one does not hold
// every write of the first wave for a whole slice. ROLE then tells the count.
constexpr absl::Duration kProbeWaitSlice = absl::Milliseconds(2);
constexpr absl::Duration kDegradedLogInterval = absl::Seconds(10);

// ---- Encodings shared with lua_scripts.h ----

void AppendBigEndian(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}
uint64_t ReadBigEndian(std::string_view bytes) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(bytes[i]);
  return v;
}

// A signed time as 8 bytes that compare like the numbers they encode.
std::string VersionTime(int64_t time_us) {
  std::string out;
  AppendBigEndian(out, static_cast<uint64_t>(time_us) ^ (uint64_t{1} << 63));
  return out;
}
std::string Micros(int64_t us) {
  std::string out;
  AppendBigEndian(out, static_cast<uint64_t>(std::max<int64_t>(us, 0)));
  return out;
}

std::string VersionBytes(const Version& v) { return VersionTime(v.time_us) + v.nonce; }

std::string Cell(const Version& v, const std::optional<PutOp>& put) {
  std::string out;
  const size_t value_size = put.has_value() ? put->value.size() : 0;
  out.reserve(kCellHeader + v.nonce.size() + value_size);
  out.push_back(put.has_value() ? 'v' : 't');
  out.append(VersionTime(v.time_us));
  AppendBigEndian(out, static_cast<uint64_t>(put.has_value() ? put->expires_at_us : 0));
  out.push_back(static_cast<char>(v.nonce.size() >> 8));
  out.push_back(static_cast<char>(v.nonce.size()));
  out.append(v.nonce);
  if (put.has_value()) out.append(put->value);
  return out;
}

absl::StatusOr<StoredItem> ParseCell(std::string key, const std::string& cell) {
  if (cell.size() < kCellHeader) return absl::DataLossError("redis: short cell");
  const size_t nonce_size =
      (size_t{static_cast<uint8_t>(cell[17])} << 8) | static_cast<uint8_t>(cell[18]);
  if (cell.size() < kCellHeader + nonce_size) return absl::DataLossError("redis: short cell");
  StoredItem item;
  item.key = std::move(key);
  item.version.time_us =
      static_cast<int64_t>(ReadBigEndian(std::string_view(cell).substr(1)) ^ (uint64_t{1} << 63));
  item.expires_at_us = static_cast<int64_t>(ReadBigEndian(std::string_view(cell).substr(9)));
  item.version.nonce = cell.substr(kCellHeader, nonce_size);
  item.value = cell.substr(kCellHeader + nonce_size);
  return item;
}

// ---- Keys ----

int BucketOf(const std::string& record_id) { return static_cast<int>(Xxh64(record_id) % kBuckets); }

// Every key of a bucket starts with its hash tag, so they share one slot.
std::string Tag(int bucket) { return absl::StrFormat("{sg%02x}", bucket); }

struct RecordKeys {
  std::string cells, keys, tombstones, index, replays;
};

RecordKeys KeysOf(const std::string& epoch, const std::string& id) {
  const std::string tag = RecordHashTag(id);
  // The kind letter comes before the fixed-length epoch, so no two kinds or ids collide.
  return RecordKeys{tag + "c" + epoch + id, tag + "z" + epoch + id, tag + "m" + epoch + id,
                    tag + "i" + epoch, tag + "w"};
}

std::string IndexKey(const std::string& epoch, int bucket) { return Tag(bucket) + "i" + epoch; }

absl::Status ScriptError(const Reply& reply, const char* what) {
  return absl::InternalError(absl::StrCat("redis ", what, ": ", reply.str));
}

// Tracks a scan page's limits across the records it reads.
struct PageBudget {
  size_t items = 0;
  size_t bytes = 0;
};

class RedisClusterEngine : public StorageEngine {
 public:
  RedisClusterEngine(const RedisClusterEngineOptions& options,
                     std::unique_ptr<redis::AsyncClusterClient> client)
      : options_(options),
        write_script_(std::string(redis_lua::kCommon) + redis_lua::kWriteBody),
        read_script_(std::string(redis_lua::kCommon) + redis_lua::kReadBody),
        purge_script_(std::string(redis_lua::kCommon) + redis_lua::kPurgeBody),
        client_(std::move(client)) {}

  absl::Status CreateTable(const std::string& table) override {
    if (MemoryOnly()) return WouldBlockError("redis-cluster create table");  // a network store
    if (Epoch(table).ok()) return absl::OkStatus();
    SG_ASSIGN_OR_RETURN(
        std::vector<Reply> replies,
        Run(kTablesKey, {{"HSETNX", kTablesKey, table, NewEpoch()}, {"HGET", kTablesKey, table}}));
    if (replies[1].type != Reply::Type::kString) return ScriptError(replies[1], "create table");
    absl::MutexLock lock(&mu_);
    epochs_[table] = replies[1].str;  // ours, or the one another gateway made first
    return absl::OkStatus();
  }

  absl::Status DropTable(const std::string& table) override {
    if (MemoryOnly()) return WouldBlockError("redis-cluster drop table");  // a network store
    SG_ASSIGN_OR_RETURN(const std::string epoch, Epoch(table));
    SG_ASSIGN_OR_RETURN(std::vector<Reply> replies, Run(kTablesKey, {{"HDEL", kTablesKey, table}}));
    {
      absl::MutexLock lock(&mu_);
      epochs_.erase(table);
    }
    if (replies[0].is_error()) return ScriptError(replies[0], "drop table");
    // The table is gone for readers now; its keys are deleted bucket by bucket.
    for (int bucket = 0; bucket < kBuckets; ++bucket) {
      const std::string index = IndexKey(epoch, bucket);
      for (;;) {
        SG_ASSIGN_OR_RETURN(std::vector<std::string> ids, ListIds(index, "-"));
        std::vector<Command> dels;
        for (const std::string& id : ids) {
          const RecordKeys keys = KeysOf(epoch, id);
          dels.push_back({"DEL", keys.cells, keys.keys, keys.tombstones});
          dels.push_back({"ZREM", index, id});
        }
        if (dels.empty()) break;
        SG_RETURN_IF_ERROR(Run(index, dels).status());
      }
      SG_RETURN_IF_ERROR(Run(index, {{"DEL", index}}).status());
    }
    return absl::OkStatus();
  }

  bool HasTable(const std::string& table) const override { return Epoch(table).ok(); }

  bool IsAsync(const std::string& table) const override {
    (void)table;  // every table: a network store
    return true;
  }

  absl::Status Write(const RecordWrite& write) override {
    if (MemoryOnly()) return WouldBlockError("redis-cluster write");  // a network store
    return Await<absl::Status>(
        [&](WriteDone done) { WriteAsync(write, CallDeadline(), std::move(done)); });
  }

  void WriteAsync(const RecordWrite& write, absl::Time deadline, WriteDone done) override {
    if (std::optional<std::string> epoch = CachedEpoch(write.table)) {
      StartWrite(*epoch, write, deadline, std::move(done));
      return;
    }
    EpochAsync(write.table, deadline,
               [this, write = std::make_shared<RecordWrite>(write), deadline,
                done = std::move(done)](absl::StatusOr<std::string> epoch) mutable {
                 if (!epoch.ok()) return std::move(done)(epoch.status());
                 StartWrite(*epoch, *write, deadline, std::move(done));
               });
  }

  int64_t DegradedWrites() const override { return degraded_writes_.load(); }

  std::string ShardOf(const std::string& table, const std::string& record_id) const override {
    (void)table;  // a record's slot depends on its id alone (RecordHashTag)
    return client_->MasterOf(RecordHashTag(record_id));
  }

  absl::StatusOr<RecordSlice> Read(const std::string& table, const std::string& record_id,
                                   const KeySpan& span, const ReadLimits& limits) override {
    if (MemoryOnly()) return WouldBlockError("redis-cluster read");  // a network store
    return Await<absl::StatusOr<RecordSlice>>([&](ReadDone done) {
      ReadAsync(table, record_id, span, limits, CallDeadline(), std::move(done));
    });
  }

  void ReadAsync(const std::string& table, const std::string& record_id, const KeySpan& span,
                 const ReadLimits& limits, absl::Time deadline, ReadDone done) override {
    ReadLimits effective = limits;
    // The script cannot see our clock: a deadline already passed means one item.
    if (options_.clock->Now() >= limits.soft_deadline) effective.max_items = 1;
    if (std::optional<std::string> epoch = CachedEpoch(table)) {
      ReadRecordAsync(*epoch, record_id, span, effective, PageBudget{}, deadline, std::move(done));
      return;
    }
    EpochAsync(table, deadline,
               [this, record_id, span, effective, deadline,
                done = std::move(done)](absl::StatusOr<std::string> epoch) mutable {
                 if (!epoch.ok()) return std::move(done)(epoch.status());
                 ReadRecordAsync(*epoch, record_id, span, effective, PageBudget{}, deadline,
                                 std::move(done));
               });
  }

  absl::Status Purge(const std::string& table) override {
    if (MemoryOnly()) return WouldBlockError("redis-cluster purge");  // a network store
    SG_ASSIGN_OR_RETURN(const std::string epoch, Epoch(table));
    const int64_t cutoff_us = absl::ToUnixMicros(options_.clock->Now() - options_.tombstone_grace);
    for (int bucket = 0; bucket < kBuckets; ++bucket) {
      const std::string index = IndexKey(epoch, bucket);
      std::string after = "-";
      for (;;) {
        SG_ASSIGN_OR_RETURN(std::vector<std::string> ids, ListIds(index, after));
        if (ids.empty()) break;
        for (const std::string& id : ids) {
          const RecordKeys keys = KeysOf(epoch, id);
          SG_ASSIGN_OR_RETURN(
              std::vector<Reply> replies,
              RunScript(keys.cells,
                        {purge_script_.EvalSha({keys.cells, keys.keys, keys.tombstones, keys.index},
                                               {id, VersionTime(cutoff_us), Micros(cutoff_us)})},
                        purge_script_));
          if (replies[0].is_error()) return ScriptError(replies[0], "purge");
        }
        after = "(" + ids.back();
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<TableSlice> Scan(const std::string& table,
                                  const std::optional<ScanPosition>& after,
                                  const ReadLimits& limits) override {
    if (MemoryOnly()) return WouldBlockError("redis-cluster scan");  // a network store
    return Await<absl::StatusOr<TableSlice>>(
        [&](ScanDone done) { ScanAsync(table, after, limits, CallDeadline(), std::move(done)); });
  }

  // Bucket by bucket, a batch of record ids at a time, one record after another, each step
  // started from the answer to the one before, until the page is full or the table ends.
  void ScanAsync(const std::string& table, const std::optional<ScanPosition>& after,
                 const ReadLimits& limits, absl::Time deadline, ScanDone done) override {
    auto scan = std::make_shared<ScanState>();
    scan->after = after;
    scan->limits = limits;
    scan->deadline = deadline;
    scan->done = std::move(done);
    if (std::optional<std::string> epoch = CachedEpoch(table)) {
      scan->epoch = *std::move(epoch);
      return ScanFrom(std::move(scan));
    }
    EpochAsync(table, deadline, [this, scan](absl::StatusOr<std::string> epoch) mutable {
      if (!epoch.ok()) return std::move(scan->done)(epoch.status());
      scan->epoch = *std::move(epoch);
      ScanFrom(std::move(scan));
    });
  }

 private:
  // ---- Scans ----

  // A scan in flight, carried from one answer to the next step.
  struct ScanState {
    std::string epoch;
    std::optional<ScanPosition> after;
    ReadLimits limits;
    absl::Time deadline;
    TableSlice slice;
    PageBudget budget;
    int bucket = 0;
    std::string from = "-";        // where the bucket's next batch of ids starts
    std::vector<std::string> ids;  // the batch being read
    size_t next = 0;               // into ids
    ScanDone done;
  };

  void ScanFrom(std::shared_ptr<ScanState> scan) {
    if (!scan->after.has_value()) return ScanNextBatch(std::move(scan));
    const ScanPosition& after = *scan->after;
    scan->bucket = BucketOf(after.record_id);
    scan->from = "(" + after.record_id;
    if (!after.key.has_value()) return ScanNextBatch(std::move(scan));
    // The rest of the record the last page stopped in.
    const std::string id = after.record_id;
    KeySpan span;
    span.after = after.key;
    ScanRecord(std::move(scan), id, std::move(span),
               [this](std::shared_ptr<ScanState> scan) { ScanNextBatch(std::move(scan)); });
  }

  // The next batch of ids of the current bucket, or of the next bucket with any.
  void ScanNextBatch(std::shared_ptr<ScanState> scan) {
    if (scan->bucket >= kBuckets) return FinishScan(std::move(scan), /*full=*/false);
    const std::string index = IndexKey(scan->epoch, scan->bucket);
    const std::string from = scan->from;
    const absl::Time deadline = scan->deadline;
    ListIdsAsync(index, from, deadline,
                 [this, scan](absl::StatusOr<std::vector<std::string>> ids) mutable {
                   if (!ids.ok()) return std::move(scan->done)(ids.status());
                   if (ids->empty()) {
                     scan->bucket++;
                     scan->from = "-";
                     return ScanNextBatch(std::move(scan));
                   }
                   scan->from = "(" + ids->back();
                   scan->ids = *std::move(ids);
                   scan->next = 0;
                   ScanNextRecord(std::move(scan));
                 });
  }

  void ScanNextRecord(std::shared_ptr<ScanState> scan) {
    if (scan->next == scan->ids.size()) return ScanNextBatch(std::move(scan));
    const std::string id = scan->ids[scan->next++];
    ScanRecord(std::move(scan), id, KeySpan{},
               [this](std::shared_ptr<ScanState> scan) { ScanNextRecord(std::move(scan)); });
  }

  // Reads record `id` into the page, then goes on with `then`, unless the page is full.
  using ScanStep = absl::AnyInvocable<void(std::shared_ptr<ScanState> scan) &&>;
  void ScanRecord(std::shared_ptr<ScanState> scan, const std::string& id, KeySpan span,
                  ScanStep then) {
    const PageBudget& budget = scan->budget;
    if (budget.items > 0 && (budget.items >= scan->limits.max_items ||
                             options_.clock->Now() >= scan->limits.soft_deadline)) {
      return FinishScan(std::move(scan), /*full=*/true);
    }
    ReadRecordAsync(
        scan->epoch, id, span, scan->limits, scan->budget, scan->deadline,
        [this, scan, id, then = std::move(then)](absl::StatusOr<RecordSlice> part) mutable {
          if (!part.ok()) return std::move(scan->done)(part.status());
          for (const StoredItem& item : part->items) {
            scan->budget.items++;
            scan->budget.bytes += item.key.size() + item.value.size();
          }
          if (!part->items.empty()) {
            scan->slice.records.push_back(ScannedRecord{id, std::move(part->items)});
          }
          if (part->resume_after.has_value()) return FinishScan(std::move(scan), /*full=*/true);
          std::move(then)(std::move(scan));
        });
  }

  // A full page resumes after its last item (a page's first read always takes one).
  void FinishScan(std::shared_ptr<ScanState> scan, bool full) {
    if (full && !scan->slice.records.empty()) {
      const ScannedRecord& last = scan->slice.records.back();
      scan->slice.resume = ScanPosition{last.record_id, last.items.back().key};
    }
    std::move(scan->done)(std::move(scan->slice));
  }

  // How the engine's calls reach the cluster: inside a call (a finite deadline) the client
  // fails fast, so that the gateway answers UNAVAILABLE with pushback at once and the caller
  // retries on its own timer, holding nothing here meanwhile; outside one it retries through
  // a failover for its retry window.
  static redis::CallOptions CallOptionsFor(absl::Time deadline) {
    return {.deadline = deadline, .fail_fast = deadline != absl::InfiniteFuture()};
  }

  // The blocking forms (Await) start the asynchronous one and wait for its answer, which
  // comes by its deadline (CallDeadline(), else the client's retry window). Never on the
  // client's loop thread, which is the one that answers.
  absl::StatusOr<std::vector<Reply>> Run(std::string_view hash_key,
                                         std::vector<Command> commands) const {
    return Await<absl::StatusOr<std::vector<Reply>>>([&](redis::AsyncClusterClient::Done done) {
      client_->Pipeline(hash_key, std::move(commands), CallOptionsFor(CallDeadline()),
                        std::move(done));
    });
  }
  absl::StatusOr<std::vector<Reply>> RunScript(std::string_view hash_key,
                                               std::vector<Command> commands,
                                               const redis::Script& script) const {
    return Await<absl::StatusOr<std::vector<Reply>>>([&](redis::AsyncClusterClient::Done done) {
      redis::PipelineWithScript(*client_, hash_key,
                                std::make_shared<const std::vector<Command>>(std::move(commands)),
                                0, script, CallOptionsFor(CallDeadline()), std::move(done));
    });
  }

  // ---- Writes ----

  // A write in flight, carried from one round's answer to the next.
  struct WriteRounds {
    std::string hash_key;
    // The script; with replicas_ack, then WAIT and (accept_fewer_live_replicas) ROLE.
    // Shared with the client, not copied: a next round, which is rare, makes its own.
    redis::AsyncClusterClient::Commands commands;
    std::string table;
    int64_t replicas_ack = 0;
    bool accept_fewer_live_replicas = false;
    std::string master;  // for accept_fewer_live_replicas
    absl::Time deadline;
    std::optional<absl::Time> give_up;
    WriteDone done;
  };

  void StartWrite(const std::string& epoch, const RecordWrite& write, absl::Time deadline,
                  WriteDone done) {
    const FoldedWrite folded = Fold(write.ops);
    const RecordKeys keys = KeysOf(epoch, write.record_id);
    std::vector<std::string> args = {
        write.record_id, VersionBytes(write.version),
        VersionTime(absl::ToUnixMicros(options_.clock->Now() - options_.tombstone_grace)),
        std::to_string(folded.ranges.size())};
    for (const DeleteRangeOp& range : folded.ranges) {
      args.push_back(range.start);
      args.push_back(range.end);
    }
    for (const auto& [key, put] : folded.points) {
      args.push_back(key);
      args.push_back(Cell(write.version, put));
    }
    auto rounds = std::make_shared<WriteRounds>();
    rounds->hash_key = keys.cells;
    rounds->table = write.table;
    rounds->replicas_ack = write.replicas_ack;
    rounds->accept_fewer_live_replicas = write.accept_fewer_live_replicas;
    rounds->deadline = deadline;
    rounds->done = std::move(done);
    std::vector<Command> commands = {write_script_.EvalSha(
        {keys.cells, keys.keys, keys.tombstones, keys.index, keys.replays}, args)};
    // The replicas a round waits for: replicas_ack, or with accept_fewer_live_replicas no
    // more than the shard's master had live at its last write, so that a shard left
    // without its replica does not spend a whole WAIT slice on every write. (ROLE in the
    // same pipeline tells whether one came back; then the next round waits for it.)
    int64_t wait_for = write.replicas_ack;
    std::string wait_ms = WaitSliceMs(deadline);
    if (write.accept_fewer_live_replicas) {
      rounds->master = client_->MasterOf(keys.cells);
      const std::optional<int64_t> live = KnownLiveReplicas(rounds->master);
      if (live.has_value()) {
        wait_for = std::min(wait_for, *live);
      } else {
        wait_ms = std::to_string(absl::ToInt64Milliseconds(kProbeWaitSlice));
      }
    }
    if (write.replicas_ack > 0) {
      commands.push_back({"WAIT", std::to_string(wait_for), wait_ms});
      // ROLE, right after WAIT on the same master, lists the replicas connected to it now.
      if (write.accept_fewer_live_replicas) commands.push_back({"ROLE"});
    }
    rounds->commands = std::make_shared<const std::vector<Command>>(std::move(commands));
    WriteRound(std::move(rounds));
  }

  // Until enough replicas have it: each round is the script again (a replay, which bumps
  // the replay counter so that WAIT covers the write) and a short WAIT. A shard that lost
  // its replica in a failover gets one back within a few rounds when the node returns.
  void WriteRound(std::shared_ptr<WriteRounds> rounds) {
    const redis::CallOptions options = CallOptionsFor(rounds->deadline);
    const std::string hash_key = rounds->hash_key;
    redis::AsyncClusterClient::Commands commands = rounds->commands;
    redis::PipelineWithScript(
        *client_, hash_key, std::move(commands), 0, write_script_, options,
        [this, rounds = std::move(rounds)](absl::StatusOr<std::vector<Reply>> replies) mutable {
          std::optional<absl::Status> outcome = WriteOutcome(*rounds, replies);
          if (outcome.has_value()) {
            std::move(rounds->done)(*std::move(outcome));
          } else {
            WriteRound(std::move(rounds));
          }
        });
  }

  // The write's outcome after a round's replies, or nullopt when another round is due (for
  // which `rounds.commands` is now set).
  std::optional<absl::Status> WriteOutcome(WriteRounds& rounds,
                                           const absl::StatusOr<std::vector<Reply>>& replies) {
    if (!replies.ok()) return replies.status();
    if ((*replies)[0].is_error()) return ScriptError((*replies)[0], "write");
    if (rounds.replicas_ack == 0) return absl::OkStatus();
    if ((*replies)[1].type != Reply::Type::kInteger) return ScriptError((*replies)[1], "WAIT");
    const int64_t acked = (*replies)[1].integer;
    if (acked >= rounds.replicas_ack) return absl::OkStatus();
    std::vector<Command> next = *rounds.commands;
    if (rounds.accept_fewer_live_replicas) {
      absl::StatusOr<int64_t> live = LiveReplicas((*replies)[2]);
      if (!live.ok()) return live.status();
      RememberLiveReplicas(rounds.master, *live);
      if (acked >= *live) {
        CountDegraded(rounds.table, rounds.replicas_ack, acked, *live);
        return absl::OkStatus();
      }
      // One came back: the next round waits for it.
      next[1][1] = std::to_string(std::min(rounds.replicas_ack, *live));
    }
    next[1][2] = WaitSliceMs(rounds.deadline);
    // Timed from the first short WAIT, not from the start: reaching the slot's master may
    // already have taken a failover's worth of retries.
    if (!rounds.give_up.has_value()) {
      rounds.give_up = std::min(absl::Now() + options_.replicas_ack_timeout, rounds.deadline);
    }
    // A round needs a few milliseconds to come back; one that cannot is not begun.
    if (absl::Now() + kMinWaitRound >= *rounds.give_up) {
      return absl::UnavailableError(absl::StrCat(
          "replicas_ack: ", acked, " of ", rounds.replicas_ack,
          " replicas acknowledged the write within replicas_ack_timeout (",
          absl::FormatDuration(options_.replicas_ack_timeout), ") or before the call's deadline",
          "; it may or may not be applied, retry with the same token"));
    }
    rounds.commands = std::make_shared<const std::vector<Command>>(std::move(next));
    return std::nullopt;
  }

  // A WAIT never outlasts three quarters of what is left before `deadline`, so that its
  // answer, and the one that decides the write, still arrive in time.
  std::string WaitSliceMs(absl::Time deadline) const {
    absl::Duration slice = std::min(kWaitSlice, options_.replicas_ack_timeout);
    if (deadline != absl::InfiniteFuture()) {
      slice = std::min(slice, (deadline - absl::Now()) * 3 / 4);
    }
    return std::to_string(std::max<int64_t>(1, absl::ToInt64Milliseconds(slice)));
  }

  // The number of replicas a master's ROLE reply lists as connected.
  static absl::StatusOr<int64_t> LiveReplicas(const Reply& role) {
    if (role.type != Reply::Type::kArray || role.elements.size() < 3 ||
        role.elements[0].str != "master" || role.elements[2].type != Reply::Type::kArray) {
      return absl::UnavailableError(
          "ROLE: the node written to is no longer a master; retry with the same token");
    }
    return static_cast<int64_t>(role.elements[2].elements.size());
  }

  // The replicas `master` had live at the last write that asked (ROLE); nullopt if none
  // asked yet, or the master is unknown.
  std::optional<int64_t> KnownLiveReplicas(const std::string& master) const {
    if (master.empty()) return std::nullopt;
    absl::MutexLock lock(&mu_);
    auto it = live_replicas_.find(master);
    if (it == live_replicas_.end()) return std::nullopt;
    return it->second;
  }
  void RememberLiveReplicas(const std::string& master, int64_t live) {
    if (master.empty()) return;
    absl::MutexLock lock(&mu_);
    live_replicas_[master] = live;
  }

  // A write acknowledged by fewer than replicas_ack replicas: counted, and logged at most
  // every kDegradedLogInterval so that a long shortfall does not flood the log.
  void CountDegraded(const std::string& table, int64_t replicas_ack, int64_t acked, int64_t live) {
    const int64_t total = degraded_writes_.fetch_add(1) + 1;
    const int64_t now_us = absl::ToUnixMicros(absl::Now());
    int64_t last_us = last_degraded_log_us_.load();
    if (now_us - last_us < absl::ToInt64Microseconds(kDegradedLogInterval) ||
        !last_degraded_log_us_.compare_exchange_strong(last_us, now_us)) {
      return;
    }
    spdlog::warn(
        "replica_shortfall degrade: a write to table {} was acknowledged by {} of {} replicas "
        "({} live on its shard); {} such writes since start",
        table, acked, replicas_ack, live, total);
  }

  // Reads live items of one record under `limits`, less what the page already holds.
  void ReadRecordAsync(const std::string& epoch, const std::string& id, const KeySpan& span,
                       const ReadLimits& limits, const PageBudget& spent, absl::Time deadline,
                       ReadDone done) {
    const RecordKeys keys = KeysOf(epoch, id);
    const size_t items_left = limits.max_items - std::min(limits.max_items, spent.items);
    const size_t bytes_left = limits.max_bytes - std::min(limits.max_bytes, spent.bytes);
    std::vector<std::string> args = {Micros(options_.clock->NowMicros()),
                                     std::to_string(items_left), std::to_string(bytes_left),
                                     std::to_string(spent.items)};
    if (span.by_keys) {
      args.push_back("k");
      auto it = span.keys.begin();
      if (span.after.has_value())
        it = std::upper_bound(span.keys.begin(), span.keys.end(), *span.after);
      args.insert(args.end(), it, span.keys.end());
    } else {
      std::string start = span.start;
      if (span.after.has_value() && *span.after >= start) {
        start = *span.after;
        start.push_back('\0');  // the first key after `after`
      }
      args.push_back("r");
      args.push_back(std::move(start));
      args.push_back(span.end);
    }
    redis::PipelineWithScript(
        *client_, keys.cells,
        std::make_shared<const std::vector<Command>>(std::vector<Command>{
            read_script_.EvalSha({keys.cells, keys.keys, keys.tombstones}, args)}),
        0, read_script_, CallOptionsFor(deadline),
        [after = span.after,
         done = std::move(done)](absl::StatusOr<std::vector<Reply>> replies) mutable {
          std::move(done)(ParseRead(replies, after));
        });
  }

  // The read script's answer: [key, cell, key, cell, ..., more], more != 0 when it stopped
  // at a limit.
  static absl::StatusOr<RecordSlice> ParseRead(const absl::StatusOr<std::vector<Reply>>& replies,
                                               const std::optional<std::string>& after) {
    if (!replies.ok()) return replies.status();
    const Reply& reply = (*replies)[0];
    if (reply.type != Reply::Type::kArray || reply.elements.empty() ||
        reply.elements.size() % 2 != 1) {
      return ScriptError(reply, "read");
    }
    RecordSlice slice;
    for (size_t i = 0; i + 1 < reply.elements.size(); i += 2) {
      SG_ASSIGN_OR_RETURN(StoredItem item,
                          ParseCell(reply.elements[i].str, reply.elements[i + 1].str));
      slice.items.push_back(std::move(item));
    }
    if (reply.elements.back().integer != 0 && !slice.items.empty()) {
      slice.resume_after = slice.items.back().key;
    } else if (reply.elements.back().integer != 0) {
      slice.resume_after = after.value_or("");  // nothing fitted after what the page has
    }
    return slice;
  }

  // Up to kIdBatch record ids of one index after `from` ("-" or "(id").
  using IdsDone = absl::AnyInvocable<void(absl::StatusOr<std::vector<std::string>> ids) &&>;
  absl::StatusOr<std::vector<std::string>> ListIds(const std::string& index,
                                                   const std::string& from) {
    return Await<absl::StatusOr<std::vector<std::string>>>(
        [&](IdsDone done) { ListIdsAsync(index, from, CallDeadline(), std::move(done)); });
  }
  void ListIdsAsync(const std::string& index, const std::string& from, absl::Time deadline,
                    IdsDone done) {
    client_->Pipeline(index,
                      {{"ZRANGEBYLEX", index, from, "+", "LIMIT", "0", std::to_string(kIdBatch)}},
                      CallOptionsFor(deadline),
                      [done = std::move(done)](absl::StatusOr<std::vector<Reply>> replies) mutable {
                        if (!replies.ok()) return std::move(done)(replies.status());
                        if ((*replies)[0].type != Reply::Type::kArray) {
                          return std::move(done)(ScriptError((*replies)[0], "list records"));
                        }
                        std::vector<std::string> ids;
                        for (Reply& element : (*replies)[0].elements)
                          ids.push_back(std::move(element.str));
                        std::move(done)(std::move(ids));
                      });
  }

  // The table's epoch: cached, else read from the cluster. NOT_FOUND if there is no table.
  absl::StatusOr<std::string> Epoch(const std::string& table) const {
    if (std::optional<std::string> cached = CachedEpoch(table)) return *cached;
    return Await<absl::StatusOr<std::string>>(
        [&](EpochDone done) { EpochAsync(table, CallDeadline(), std::move(done)); });
  }
  std::optional<std::string> CachedEpoch(const std::string& table) const {
    absl::MutexLock lock(&mu_);
    auto it = epochs_.find(table);
    if (it == epochs_.end()) return std::nullopt;
    return it->second;
  }
  using EpochDone = absl::AnyInvocable<void(absl::StatusOr<std::string> epoch) &&>;
  void EpochAsync(const std::string& table, absl::Time deadline, EpochDone done) const {
    client_->Pipeline(
        kTablesKey, {{"HGET", kTablesKey, table}}, CallOptionsFor(deadline),
        [this, table, done = std::move(done)](absl::StatusOr<std::vector<Reply>> replies) mutable {
          if (!replies.ok()) return std::move(done)(replies.status());
          if ((*replies)[0].type != Reply::Type::kString) {
            return std::move(done)(absl::NotFoundError(absl::StrCat("no table ", table)));
          }
          {
            absl::MutexLock lock(&mu_);
            epochs_[table] = (*replies)[0].str;
          }
          std::move(done)(std::move((*replies)[0].str));
        });
  }

  static std::string NewEpoch() {
    std::random_device random;
    return absl::StrFormat("%08x%08x", random(), random());
  }

  const RedisClusterEngineOptions options_;
  const redis::Script write_script_;
  const redis::Script read_script_;
  const redis::Script purge_script_;
  mutable absl::Mutex mu_;
  mutable std::map<std::string, std::string> epochs_ ABSL_GUARDED_BY(mu_);
  // By master address: its live replicas as the last ROLE of a degradable write saw them.
  std::map<std::string, int64_t> live_replicas_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> degraded_writes_{0};
  std::atomic<int64_t> last_degraded_log_us_{0};
  // Last, so that it goes first: its destructor answers the calls still in flight, whose
  // callbacks may use the members above.
  const std::unique_ptr<redis::AsyncClusterClient> client_;
};

}  // namespace

std::string RecordHashTag(const std::string& record_id) { return Tag(BucketOf(record_id)); }

absl::StatusOr<std::unique_ptr<StorageEngine>> OpenRedisClusterEngine(
    const RedisClusterEngineOptions& options) {
  SG_ASSIGN_OR_RETURN(std::unique_ptr<redis::AsyncClusterClient> client,
                      redis::AsyncClusterClient::Connect(options.cluster));
  return std::make_unique<RedisClusterEngine>(options, std::move(client));
}

}  // namespace stategate::storage
