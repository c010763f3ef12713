// KvStore: the Key-Value abstraction (DESIGN.md, "Key-Value" and "API contracts") over
// one StorageEngine. It validates requests against the namespace's limits, turns
// idempotency tokens into write versions, stores item metadata beside values, commits
// chunked values, pages reads by bytes, items and time, and collects abandoned chunks.
//
// A namespace `ns` uses two engine tables: `ns` (the records) and `ns.chunks` (pieces of
// large values, one record per (id, item key, version)). Thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "src/common/clock.h"
#include "src/common/namespace_config.h"
#include "src/common/token_signer.h"
#include "src/storage/engine.h"
#include "stategate/internal/stored.pb.h"
#include "stategate/v1/kv.pb.h"

namespace stategate::kv {

struct KvStoreOptions {
  // Tokens whose generation time is further than this from now are rejected. Default: 60 s.
  absl::Duration max_clock_skew = absl::Seconds(60);
  // Secret for page tokens; empty = random per process. Default: empty.
  std::string page_token_secret;
  // Share of an SLO target a paged read may spend before returning early. Default: 0.8.
  double page_time_share = 0.8;
};

class KvStore {
 public:
  KvStore(storage::StorageEngine* engine, Clock* clock, KvStoreOptions options);

  // Creates the namespace's tables if missing.
  [[nodiscard]] absl::Status Prepare(const NamespaceConfig& ns);

  // Each call validates its request's fields for `ns` (INVALID_ARGUMENT naming the field
  // and limit) and returns the engine's status otherwise. Requests name the namespace too;
  // the caller has resolved it to `ns` and checked CheckRequestBytes.
  absl::StatusOr<v1::PutItemsResponse> PutItems(const NamespaceConfig& ns,
                                                const v1::PutItemsRequest& request);
  absl::StatusOr<v1::GetItemsResponse> GetItems(const NamespaceConfig& ns,
                                                const v1::GetItemsRequest& request);
  absl::StatusOr<v1::DeleteItemsResponse> DeleteItems(const NamespaceConfig& ns,
                                                      const v1::DeleteItemsRequest& request);
  absl::StatusOr<v1::MutateItemsResponse> MutateItems(const NamespaceConfig& ns,
                                                      const v1::MutateItemsRequest& request);
  absl::StatusOr<v1::ScanItemsResponse> ScanItems(const NamespaceConfig& ns,
                                                  const v1::ScanItemsRequest& request);
  absl::StatusOr<v1::PutChunkResponse> PutChunk(const NamespaceConfig& ns,
                                                const v1::PutChunkRequest& request);
  absl::StatusOr<v1::GetChunkResponse> GetChunk(const NamespaceConfig& ns,
                                                const v1::GetChunkRequest& request);

  // ---- Asynchronous forms (StorageEngine, "Asynchronous forms") ----
  // Whether the namespace's engine runs them without blocking; then the request path uses
  // them instead of giving the call a thread that may wait.
  bool IsAsync(const NamespaceConfig& ns) const { return engine_->IsAsync(ns.name); }

  template <typename Response>
  using Done = absl::AnyInvocable<void(absl::StatusOr<Response> response) &&>;
  // As the blocking forms, with `deadline` instead of the thread's CallDeadline(). `done`
  // runs exactly once, on any thread (perhaps before the call returns), and must not
  // block; `ns` and `request` must outlive it. A call that needs blocking engine work — a
  // read that includes large values (their chunks), a write that commits chunked values
  // (its chunk check) — or an engine without asynchronous forms answers WouldBlockError()
  // (memory_only.h) at once, having done nothing: make the blocking call then.
  void GetItemsAsync(const NamespaceConfig& ns, const v1::GetItemsRequest& request,
                     absl::Time deadline, Done<v1::GetItemsResponse> done);
  void PutItemsAsync(const NamespaceConfig& ns, const v1::PutItemsRequest& request,
                     absl::Time deadline, Done<v1::PutItemsResponse> done);
  void DeleteItemsAsync(const NamespaceConfig& ns, const v1::DeleteItemsRequest& request,
                        absl::Time deadline, Done<v1::DeleteItemsResponse> done);
  void MutateItemsAsync(const NamespaceConfig& ns, const v1::MutateItemsRequest& request,
                        absl::Time deadline, Done<v1::MutateItemsResponse> done);
  void PutChunkAsync(const NamespaceConfig& ns, const v1::PutChunkRequest& request,
                     absl::Time deadline, Done<v1::PutChunkResponse> done);
  void GetChunkAsync(const NamespaceConfig& ns, const v1::GetChunkRequest& request,
                     absl::Time deadline, Done<v1::GetChunkResponse> done);
  void ScanItemsAsync(const NamespaceConfig& ns, const v1::ScanItemsRequest& request,
                      absl::Time deadline, Done<v1::ScanItemsResponse> done);

  // The engine shard a call's work goes to (the record it reads or writes; for a chunk, the
  // chunk's record), for the gateway's per-shard bulkheads; "" for a scan, which visits
  // every shard, and on an engine with one shard. Unchecked: a request that fails
  // validation still has a shard, and then fails there without engine work.
  std::string ShardOf(const NamespaceConfig& ns, const v1::PutItemsRequest& request) const;
  std::string ShardOf(const NamespaceConfig& ns, const v1::GetItemsRequest& request) const;
  std::string ShardOf(const NamespaceConfig& ns, const v1::DeleteItemsRequest& request) const;
  std::string ShardOf(const NamespaceConfig& ns, const v1::MutateItemsRequest& request) const;
  std::string ShardOf(const NamespaceConfig& ns, const v1::ScanItemsRequest& request) const;
  std::string ShardOf(const NamespaceConfig& ns, const v1::PutChunkRequest& request) const;
  std::string ShardOf(const NamespaceConfig& ns, const v1::GetChunkRequest& request) const;

  // Deletes chunks no committed item refers to: those of superseded, deleted or expired
  // values, and uploads never committed, once they are older than twice the clock skew
  // (after that no commit can be accepted for them). Returns how many chunk sets it removed.
  absl::StatusOr<int64_t> CollectChunks(const NamespaceConfig& ns);

 private:
  absl::StatusOr<storage::Version> CheckToken(const v1::IdempotencyToken& token,
                                              const std::string& field) const;
  absl::Status CheckItem(const NamespaceConfig& ns, const v1::Item& item,
                         const std::string& field) const;
  absl::StatusOr<storage::PutOp> ToPutOp(const NamespaceConfig& ns, const v1::Item& item,
                                         const std::string& field) const;
  absl::Status AppendDeleteOps(const NamespaceConfig& ns, const v1::Predicate& predicate,
                               const std::string& field, std::vector<storage::WriteOp>& ops) const;
  absl::Status ToItem(const NamespaceConfig& ns, const std::string& id,
                      const storage::StoredItem& stored, internal::StoredValue value,
                      bool include_large_values, v1::Item& item);
  absl::StatusOr<std::string> ReadChunkedValue(const NamespaceConfig& ns, const std::string& id,
                                               const std::string& key,
                                               const storage::Version& version,
                                               uint32_t chunk_count);
  // The live item `key` of record `id`, if any: its version and stored value.
  struct CommittedItem {
    storage::Version version;
    internal::StoredValue value;
  };
  absl::StatusOr<std::optional<CommittedItem>> ReadCommitted(const NamespaceConfig& ns,
                                                             const std::string& id,
                                                             const std::string& key);
  void ReadCommittedAsync(const NamespaceConfig& ns, const std::string& id, const std::string& key,
                          absl::Time deadline, Done<std::optional<CommittedItem>> done);
  static absl::StatusOr<std::optional<CommittedItem>> CommittedFrom(
      const std::string& key, absl::StatusOr<storage::RecordSlice> slice);

  // The parts of PutChunk and GetChunk around their engine calls, shared by both forms.
  absl::StatusOr<storage::Version> CheckPutChunk(const NamespaceConfig& ns,
                                                 const v1::PutChunkRequest& request) const;
  static std::optional<absl::Status> CommittedAnswersPutChunk(
      const v1::PutChunkRequest& request, const storage::Version& version,
      const std::optional<CommittedItem>& committed);
  static storage::RecordWrite ChunkWrite(const NamespaceConfig& ns,
                                         const v1::PutChunkRequest& request,
                                         const storage::Version& version);
  absl::StatusOr<storage::Version> CheckGetChunk(const NamespaceConfig& ns,
                                                 const v1::GetChunkRequest& request) const;
  static absl::Status CommittedAllowsGetChunk(const v1::GetChunkRequest& request,
                                              const storage::Version& version,
                                              const std::optional<CommittedItem>& committed);
  static absl::StatusOr<v1::GetChunkResponse> ChunkFrom(const v1::GetChunkRequest& request,
                                                        absl::StatusOr<storage::RecordSlice> slice);
  // A validated write of one record: what a write request becomes before engine work.
  struct PlannedWrite {
    std::string id;
    storage::Version version;
    std::vector<storage::WriteOp> ops;
    bool commits_chunks = false;  // puts a chunked value: CheckChunksCommit reads its chunks
  };
  absl::StatusOr<PlannedWrite> PlanPutItems(const NamespaceConfig& ns,
                                            const v1::PutItemsRequest& request) const;
  absl::StatusOr<PlannedWrite> PlanDeleteItems(const NamespaceConfig& ns,
                                               const v1::DeleteItemsRequest& request) const;
  absl::StatusOr<PlannedWrite> PlanMutateItems(const NamespaceConfig& ns,
                                               const v1::MutateItemsRequest& request) const;
  absl::Status CheckChunksCommit(const NamespaceConfig& ns, const PlannedWrite& planned);
  static storage::RecordWrite RecordWriteOf(const NamespaceConfig& ns, PlannedWrite planned);
  absl::Status Write(const NamespaceConfig& ns, PlannedWrite planned);
  template <typename Response>
  void WriteAsync(const NamespaceConfig& ns, absl::StatusOr<PlannedWrite> planned,
                  absl::Time deadline, Done<Response> done);

  // A validated GetItems: what it asks of the engine, and what its page token checks.
  struct ReadPlan {
    storage::KeySpan span;
    storage::ReadLimits limits;
    uint64_t request_hash = 0;
  };
  absl::StatusOr<ReadPlan> PlanGetItems(const NamespaceConfig& ns,
                                        const v1::GetItemsRequest& request) const;
  absl::StatusOr<v1::GetItemsResponse> AnswerGetItems(const NamespaceConfig& ns,
                                                      const v1::GetItemsRequest& request,
                                                      const ReadPlan& plan,
                                                      storage::RecordSlice slice);
  // A validated ScanItems: the page's limits, where it starts, and its page token's hash.
  struct ScanPlan {
    storage::ReadLimits limits;
    std::optional<storage::ScanPosition> after;
    uint64_t request_hash = 0;
  };
  absl::StatusOr<ScanPlan> PlanScanItems(const NamespaceConfig& ns,
                                         const v1::ScanItemsRequest& request) const;
  absl::StatusOr<v1::ScanItemsResponse> AnswerScanItems(const NamespaceConfig& ns,
                                                        const v1::ScanItemsRequest& request,
                                                        const ScanPlan& plan,
                                                        storage::TableSlice slice);

  storage::StorageEngine* const engine_;
  Clock* const clock_;
  const KvStoreOptions options_;
  const TokenSigner signer_;
};

// The limits every call of every request type shares, checked before its method runs (by
// the service, on the request's size as it arrived): INVALID_ARGUMENT naming
// max_request_bytes when the request is larger.
[[nodiscard]] absl::Status CheckRequestBytes(const NamespaceConfig& ns, size_t request_bytes);

// The engine table holding a namespace's chunks.
std::string ChunkTable(const std::string& ns);
// The record of ChunkTable holding the chunks of one version of one item:
// [u32 id length][id][u32 key length][key][i64 version][nonce], big-endian.
std::string ChunkRecordId(const std::string& id, const std::string& key,
                          const storage::Version& version);
// The item key of chunk `index` in that record: 4 bytes big-endian, so chunks sort by index.
std::string ChunkIndexKey(uint32_t index);

}  // namespace stategate::kv
