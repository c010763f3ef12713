#include "src/kv/kv_store.h"

#include <algorithm>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "src/common/checksum.h"
#include "src/common/quote.h"
#include "src/common/status_macros.h"
#include "stategate/internal/stored.pb.h"

namespace stategate::kv {
namespace {

constexpr size_t kNonceBytes = 16;
// Longest TTL accepted (100 years): keeps now + ttl far from overflow.
constexpr int64_t kMaxTtlUs = 100LL * 365 * 24 * 3600 * 1'000'000;

// Whether `size` exceeds `limit`. Every size a request carries is unsigned (a length, or a
// uint64 field such as ValueMetadata.uncompressed_size) and is compared as unsigned: a cast
// to int64 would turn 2^63 and above into negative numbers that pass any limit.
bool OverLimit(uint64_t size, int64_t limit) {
  return limit < 0 || size > static_cast<uint64_t>(limit);
}

absl::Status TooBig(const std::string& field, uint64_t size, int64_t limit,
                    std::string_view limit_name) {
  return absl::InvalidArgumentError(absl::StrCat(field, " is ", size, " bytes; the limit is ",
                                                 limit, " (", std::string(limit_name), ")"));
}

absl::Status CheckId(const NamespaceConfig& ns, const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("id is empty; it must be 1 or more bytes");
  if (OverLimit(id.size(), ns.limits.max_key_bytes)) {
    return TooBig("id", id.size(), ns.limits.max_key_bytes, "max_key_bytes");
  }
  return absl::OkStatus();
}

absl::Status CheckKey(const NamespaceConfig& ns, const std::string& key, const std::string& field) {
  if (OverLimit(key.size(), ns.limits.max_key_bytes)) {
    return TooBig(field, key.size(), ns.limits.max_key_bytes, "max_key_bytes");
  }
  return absl::OkStatus();
}

absl::Status CheckCount(const NamespaceConfig& ns, int count, const std::string& field,
                        bool allow_empty) {
  if (count == 0 && !allow_empty) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is empty; give at least one"));
  }
  if (count > ns.limits.max_items_per_call) {
    return absl::InvalidArgumentError(absl::StrCat(field, " has ", count, " entries; the limit is ",
                                                   ns.limits.max_items_per_call,
                                                   " (max_items_per_call)"));
  }
  return absl::OkStatus();
}

absl::Status CheckRange(const NamespaceConfig& ns, const v1::KeyRange& range,
                        const std::string& field) {
  SG_RETURN_IF_ERROR(CheckKey(ns, range.start(), field + ".start"));
  SG_RETURN_IF_ERROR(CheckKey(ns, range.end(), field + ".end"));
  if (!range.end().empty() && range.end() <= range.start()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".end must be after ", field, ".start (or empty for no end)"));
  }
  return absl::OkStatus();
}

// Chunk record ids: [u32 id length][id][u32 key length][key][i64 version][nonce].
void AppendLengthPrefixed(std::string& out, const std::string& bytes) {
  const uint32_t n = static_cast<uint32_t>(bytes.size());
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(n >> shift));
  out.append(bytes);
}

bool ReadLengthPrefixed(std::string_view& in, std::string& out) {
  if (in.size() < 4) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  const size_t n = (size_t{p[0]} << 24) | (size_t{p[1]} << 16) | (size_t{p[2]} << 8) | p[3];
  if (in.size() < 4 + n) return false;
  out.assign(in.substr(4, n));
  in.remove_prefix(4 + n);
  return true;
}

bool ParseChunkRecordId(std::string_view in, std::string& id, std::string& key,
                        storage::Version& version) {
  if (!ReadLengthPrefixed(in, id) || !ReadLengthPrefixed(in, key) || in.size() < 8) return false;
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  version.time_us = static_cast<int64_t>(v);
  version.nonce.assign(in.substr(8));
  return true;
}

v1::IdempotencyToken ToToken(const storage::Version& version) {
  v1::IdempotencyToken token;
  token.set_generation_time_us(version.time_us);
  token.set_nonce(version.nonce);
  return token;
}

storage::Version ToVersion(const v1::IdempotencyToken& token) {
  return storage::Version{token.generation_time_us(), token.nonce()};
}

absl::Status CheckNonce(const v1::IdempotencyToken& token, const std::string& field) {
  if (token.nonce().size() != kNonceBytes) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".nonce is ", token.nonce().size(),
                                                   " bytes; it must be exactly ", kNonceBytes));
  }
  return absl::OkStatus();
}

// The chunks of a committed value are exactly indexes [0, chunk_count): readers read that
// span and nothing past it, so no chunk written after the fact reaches them.
storage::KeySpan DeclaredChunks(uint32_t chunk_count) {
  storage::KeySpan span;
  span.start = ChunkIndexKey(0);
  span.end = ChunkIndexKey(chunk_count);  // chunk_count <= UINT32_MAX: index count-1 fits
  return span;
}

int64_t ChunkCountFor(uint64_t stored_size, int64_t chunk_bytes) {
  return static_cast<int64_t>((stored_size + chunk_bytes - 1) / chunk_bytes);
}

absl::Status CheckChunkIndex(const NamespaceConfig& ns, uint32_t index) {
  const int64_t max_chunks = ChunkCountFor(ns.limits.max_value_bytes, ns.client.chunk_bytes);
  if (index >= max_chunks) {
    return absl::InvalidArgumentError(absl::StrCat("index is ", index, "; it must be below ",
                                                   max_chunks, " (max_value_bytes / chunk_bytes)"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string ChunkTable(const std::string& ns) { return ns + ".chunks"; }

std::string ChunkRecordId(const std::string& id, const std::string& key,
                          const storage::Version& version) {
  std::string out;
  AppendLengthPrefixed(out, id);
  AppendLengthPrefixed(out, key);
  const uint64_t v = static_cast<uint64_t>(version.time_us);
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
  out.append(version.nonce);
  return out;
}

std::string ChunkIndexKey(uint32_t index) {
  std::string out;
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(index >> shift));
  return out;
}

absl::Status CheckRequestBytes(const NamespaceConfig& ns, size_t request_bytes) {
  if (OverLimit(request_bytes, ns.limits.max_request_bytes)) {
    return TooBig("request", request_bytes, ns.limits.max_request_bytes, "max_request_bytes");
  }
  return absl::OkStatus();
}

KvStore::KvStore(storage::StorageEngine* engine, Clock* clock, KvStoreOptions options)
    : engine_(engine),
      clock_(clock),
      options_(std::move(options)),
      signer_(options_.page_token_secret) {}

absl::Status KvStore::Prepare(const NamespaceConfig& ns) {
  SG_RETURN_IF_ERROR(engine_->CreateTable(ns.name));
  return engine_->CreateTable(ChunkTable(ns.name));
}

absl::StatusOr<storage::Version> KvStore::CheckToken(const v1::IdempotencyToken& token,
                                                     const std::string& field) const {
  SG_RETURN_IF_ERROR(CheckNonce(token, field));
  const absl::Duration skew =
      absl::Microseconds(token.generation_time_us()) - absl::Microseconds(clock_->NowMicros());
  if (absl::AbsDuration(skew) > options_.max_clock_skew) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".generation_time_us is ", absl::FormatDuration(skew),
                     " from the server's clock; the limit is ",
                     absl::FormatDuration(options_.max_clock_skew), " (max_clock_skew)"));
  }
  return ToVersion(token);
}

absl::Status KvStore::CheckItem(const NamespaceConfig& ns, const v1::Item& item,
                                const std::string& field) const {
  SG_RETURN_IF_ERROR(CheckKey(ns, item.key(), field + ".key"));
  if (item.ttl_us() < 0 || item.ttl_us() > kMaxTtlUs) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".ttl_us is ", item.ttl_us(), "; it must be in [0, ", kMaxTtlUs, "]"));
  }
  const v1::ValueMetadata& meta = item.metadata();
  if (!v1::ValueCodec_IsValid(meta.codec())) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".metadata.codec ", meta.codec(), " is not a known codec"));
  }
  if (OverLimit(meta.uncompressed_size(), ns.limits.max_value_bytes)) {
    return TooBig(field + ".metadata.uncompressed_size", meta.uncompressed_size(),
                  ns.limits.max_value_bytes, "max_value_bytes");
  }
  if (meta.chunk_count() == 0) {
    if (OverLimit(item.value().size(), ns.client.chunk_bytes)) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".value is ", item.value().size(), " bytes; values above ", ns.client.chunk_bytes,
          " bytes (chunk_bytes) must be written with PutChunk"));
    }
    // With no codec, a checksum the client sent must match what arrived.
    if (meta.codec() == v1::VALUE_CODEC_NONE && meta.checksum() != 0 &&
        meta.checksum() != Xxh64(item.value())) {
      return absl::DataLossError(absl::StrCat(field, ".value does not match its checksum"));
    }
    return absl::OkStatus();
  }

  // A chunked value: every chunk of this version must be stored and add up.
  if (!item.value().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".value must be empty when metadata.chunk_count is set"));
  }
  if (OverLimit(meta.stored_size(), ns.limits.max_value_bytes)) {
    return TooBig(field + ".metadata.stored_size", meta.stored_size(), ns.limits.max_value_bytes,
                  "max_value_bytes");
  }
  if (meta.chunk_count() != ChunkCountFor(meta.stored_size(), ns.client.chunk_bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ".metadata.chunk_count is ", meta.chunk_count(), " but stored_size ",
        meta.stored_size(), " needs ", ChunkCountFor(meta.stored_size(), ns.client.chunk_bytes),
        " chunks of chunk_bytes ", ns.client.chunk_bytes));
  }
  return absl::OkStatus();
}

absl::StatusOr<storage::PutOp> KvStore::ToPutOp(const NamespaceConfig& ns, const v1::Item& item,
                                                const std::string& field) const {
  SG_RETURN_IF_ERROR(CheckItem(ns, item, field));
  const v1::ValueMetadata& meta = item.metadata();
  internal::StoredValue stored;
  stored.set_codec(meta.codec());
  stored.set_chunk_count(meta.chunk_count());
  if (meta.chunk_count() == 0) {
    stored.set_data(item.value());
    stored.set_stored_size(item.value().size());
    if (meta.codec() == v1::VALUE_CODEC_NONE) {
      stored.set_uncompressed_size(item.value().size());
      stored.set_checksum(meta.checksum() != 0 ? meta.checksum() : Xxh64(item.value()));
    } else {
      stored.set_uncompressed_size(meta.uncompressed_size());
      stored.set_checksum(meta.checksum());
    }
  } else {
    stored.set_stored_size(meta.stored_size());
    stored.set_uncompressed_size(meta.codec() == v1::VALUE_CODEC_NONE ? meta.stored_size()
                                                                      : meta.uncompressed_size());
    stored.set_checksum(meta.checksum());
  }
  storage::PutOp op;
  op.key = item.key();
  op.value = stored.SerializeAsString();
  if (item.ttl_us() > 0) op.expires_at_us = clock_->NowMicros() + item.ttl_us();
  return op;
}

absl::Status KvStore::AppendDeleteOps(const NamespaceConfig& ns, const v1::Predicate& predicate,
                                      const std::string& field,
                                      std::vector<storage::WriteOp>& ops) const {
  switch (predicate.match_case()) {
    case v1::Predicate::kAll:
      ops.push_back(storage::DeleteRangeOp{"", ""});
      return absl::OkStatus();
    case v1::Predicate::kKeys: {
      SG_RETURN_IF_ERROR(CheckCount(ns, predicate.keys().keys_size(), field + ".keys.keys", false));
      for (int i = 0; i < predicate.keys().keys_size(); ++i) {
        SG_RETURN_IF_ERROR(
            CheckKey(ns, predicate.keys().keys(i), absl::StrCat(field, ".keys.keys[", i, "]")));
        ops.push_back(storage::DeleteKeyOp{predicate.keys().keys(i)});
      }
      return absl::OkStatus();
    }
    case v1::Predicate::kRange:
      SG_RETURN_IF_ERROR(CheckRange(ns, predicate.range(), field + ".range"));
      ops.push_back(storage::DeleteRangeOp{predicate.range().start(), predicate.range().end()});
      return absl::OkStatus();
    case v1::Predicate::MATCH_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(field,
                   " is not set; say all, keys or range (deleting a whole record is "
                   "predicate.all)"));
}

// Chunked items commit only when every chunk of their version is stored and, without a
// codec, the chunks hash to the declared checksum.
absl::Status KvStore::CheckChunksCommit(const NamespaceConfig& ns, const PlannedWrite& planned) {
  if (!planned.commits_chunks) return absl::OkStatus();
  for (const storage::WriteOp& op : planned.ops) {
    const auto* put = std::get_if<storage::PutOp>(&op);
    if (put == nullptr) continue;
    internal::StoredValue stored;
    stored.ParseFromString(put->value);
    if (stored.chunk_count() == 0) continue;
    storage::KeySpan all;
    storage::ReadLimits limits;
    SG_ASSIGN_OR_RETURN(
        storage::RecordSlice chunks,
        engine_->Read(ChunkTable(ns.name), ChunkRecordId(planned.id, put->key, planned.version),
                      all, limits));
    uint64_t total = 0;
    Xxh64Stream hash;
    for (uint32_t i = 0; i < chunks.items.size(); ++i) {
      if (chunks.items[i].key != ChunkIndexKey(i)) break;
      total += chunks.items[i].value.size();
      hash.Update(chunks.items[i].value);
    }
    const std::string where = absl::StrCat("item ", QuoteInput(put->key));
    if (chunks.items.size() != stored.chunk_count() ||
        chunks.items.back().key != ChunkIndexKey(stored.chunk_count() - 1)) {
      return absl::FailedPreconditionError(absl::StrCat(
          where, " declares ", stored.chunk_count(), " chunks but ", chunks.items.size(),
          " were uploaded with this token; PutChunk them all "
          "before committing"));
    }
    if (total != stored.stored_size()) {
      return absl::InvalidArgumentError(absl::StrCat(where, " declares stored_size ",
                                                     stored.stored_size(), " but its chunks hold ",
                                                     total, " bytes"));
    }
    if (stored.codec() == v1::VALUE_CODEC_NONE && stored.checksum() != 0 &&
        hash.Digest() != stored.checksum()) {
      return absl::DataLossError(absl::StrCat(where, ": chunks do not match the checksum"));
    }
  }
  return absl::OkStatus();
}

storage::RecordWrite KvStore::RecordWriteOf(const NamespaceConfig& ns, PlannedWrite planned) {
  storage::RecordWrite write;
  write.table = ns.name;
  write.record_id = std::move(planned.id);
  write.version = std::move(planned.version);
  write.ops = std::move(planned.ops);
  write.sync = ns.durability == Durability::kSync;
  write.replicas_ack = ns.replicas_ack;
  write.accept_fewer_live_replicas = ns.replica_shortfall == ReplicaShortfall::kDegrade;
  return write;
}

absl::Status KvStore::Write(const NamespaceConfig& ns, PlannedWrite planned) {
  SG_RETURN_IF_ERROR(CheckChunksCommit(ns, planned));
  return engine_->Write(RecordWriteOf(ns, std::move(planned)));
}

template <typename Response>
void KvStore::WriteAsync(const NamespaceConfig& ns, absl::StatusOr<PlannedWrite> planned,
                         absl::Time deadline, Done<Response> done) {
  if (!planned.ok()) return std::move(done)(planned.status());
  if (planned->commits_chunks) {
    return std::move(done)(storage::WouldBlockError("a commit of chunked values"));
  }
  engine_->WriteAsync(RecordWriteOf(ns, *std::move(planned)), deadline,
                      [done = std::move(done)](absl::Status status) mutable {
                        if (!status.ok()) return std::move(done)(std::move(status));
                        std::move(done)(Response());
                      });
}

absl::StatusOr<KvStore::PlannedWrite> KvStore::PlanPutItems(
    const NamespaceConfig& ns, const v1::PutItemsRequest& request) const {
  SG_RETURN_IF_ERROR(CheckId(ns, request.id()));
  SG_RETURN_IF_ERROR(CheckCount(ns, request.items_size(), "items", false));
  PlannedWrite planned;
  planned.id = request.id();
  SG_ASSIGN_OR_RETURN(planned.version, CheckToken(request.token(), "token"));
  planned.ops.reserve(request.items_size());
  for (int i = 0; i < request.items_size(); ++i) {
    SG_ASSIGN_OR_RETURN(storage::PutOp op,
                        ToPutOp(ns, request.items(i), absl::StrCat("items[", i, "]")));
    planned.ops.push_back(std::move(op));
    planned.commits_chunks |= request.items(i).metadata().chunk_count() > 0;
  }
  return planned;
}

absl::StatusOr<KvStore::PlannedWrite> KvStore::PlanDeleteItems(
    const NamespaceConfig& ns, const v1::DeleteItemsRequest& request) const {
  SG_RETURN_IF_ERROR(CheckId(ns, request.id()));
  PlannedWrite planned;
  planned.id = request.id();
  SG_ASSIGN_OR_RETURN(planned.version, CheckToken(request.token(), "token"));
  SG_RETURN_IF_ERROR(AppendDeleteOps(ns, request.predicate(), "predicate", planned.ops));
  return planned;
}

absl::StatusOr<KvStore::PlannedWrite> KvStore::PlanMutateItems(
    const NamespaceConfig& ns, const v1::MutateItemsRequest& request) const {
  SG_RETURN_IF_ERROR(CheckId(ns, request.id()));
  SG_RETURN_IF_ERROR(CheckCount(ns, request.mutations_size(), "mutations", false));
  PlannedWrite planned;
  planned.id = request.id();
  SG_ASSIGN_OR_RETURN(planned.version, CheckToken(request.token(), "token"));
  std::vector<storage::WriteOp>& ops = planned.ops;
  for (int i = 0; i < request.mutations_size(); ++i) {
    const v1::Mutation& mutation = request.mutations(i);
    const std::string field = absl::StrCat("mutations[", i, "]");
    switch (mutation.op_case()) {
      case v1::Mutation::kPut: {
        SG_ASSIGN_OR_RETURN(storage::PutOp op, ToPutOp(ns, mutation.put(), field + ".put"));
        ops.push_back(std::move(op));
        planned.commits_chunks |= mutation.put().metadata().chunk_count() > 0;
        break;
      }
      case v1::Mutation::kDelete:
        SG_RETURN_IF_ERROR(AppendDeleteOps(ns, mutation.delete_(), field + ".delete", ops));
        break;
      case v1::Mutation::OP_NOT_SET:
        return absl::InvalidArgumentError(field + " has neither put nor delete");
    }
  }
  if (OverLimit(ops.size(), ns.limits.max_items_per_call)) {
    return absl::InvalidArgumentError(
        absl::StrCat("mutations touch ", ops.size(), " keys; the limit is ",
                     ns.limits.max_items_per_call, " (max_items_per_call)"));
  }
  return planned;
}

absl::StatusOr<v1::PutItemsResponse> KvStore::PutItems(const NamespaceConfig& ns,
                                                       const v1::PutItemsRequest& request) {
  SG_ASSIGN_OR_RETURN(PlannedWrite planned, PlanPutItems(ns, request));
  SG_RETURN_IF_ERROR(Write(ns, std::move(planned)));
  return v1::PutItemsResponse();
}
absl::StatusOr<v1::DeleteItemsResponse> KvStore::DeleteItems(
    const NamespaceConfig& ns, const v1::DeleteItemsRequest& request) {
  SG_ASSIGN_OR_RETURN(PlannedWrite planned, PlanDeleteItems(ns, request));
  SG_RETURN_IF_ERROR(Write(ns, std::move(planned)));
  return v1::DeleteItemsResponse();
}
absl::StatusOr<v1::MutateItemsResponse> KvStore::MutateItems(
    const NamespaceConfig& ns, const v1::MutateItemsRequest& request) {
  SG_ASSIGN_OR_RETURN(PlannedWrite planned, PlanMutateItems(ns, request));
  SG_RETURN_IF_ERROR(Write(ns, std::move(planned)));
  return v1::MutateItemsResponse();
}

void KvStore::PutItemsAsync(const NamespaceConfig& ns, const v1::PutItemsRequest& request,
                            absl::Time deadline, Done<v1::PutItemsResponse> done) {
  WriteAsync(ns, PlanPutItems(ns, request), deadline, std::move(done));
}
void KvStore::DeleteItemsAsync(const NamespaceConfig& ns, const v1::DeleteItemsRequest& request,
                               absl::Time deadline, Done<v1::DeleteItemsResponse> done) {
  WriteAsync(ns, PlanDeleteItems(ns, request), deadline, std::move(done));
}
void KvStore::MutateItemsAsync(const NamespaceConfig& ns, const v1::MutateItemsRequest& request,
                               absl::Time deadline, Done<v1::MutateItemsResponse> done) {
  WriteAsync(ns, PlanMutateItems(ns, request), deadline, std::move(done));
}

absl::StatusOr<std::string> KvStore::ReadChunkedValue(const NamespaceConfig& ns,
                                                      const std::string& id, const std::string& key,
                                                      const storage::Version& version,
                                                      uint32_t chunk_count) {
  SG_ASSIGN_OR_RETURN(storage::RecordSlice chunks,
                      engine_->Read(ChunkTable(ns.name), ChunkRecordId(id, key, version),
                                    DeclaredChunks(chunk_count), storage::ReadLimits()));
  if (chunks.items.size() != chunk_count) {
    return absl::DataLossError(absl::StrCat("item ", QuoteInput(key), " has ", chunks.items.size(),
                                            " of its ", chunk_count, " chunks"));
  }
  std::string value;
  for (const storage::StoredItem& chunk : chunks.items) value += chunk.value;
  return value;
}

namespace {

storage::KeySpan OneKey(std::string key) {
  storage::KeySpan span;
  span.by_keys = true;
  span.keys.push_back(std::move(key));
  return span;
}

}  // namespace

absl::StatusOr<std::optional<KvStore::CommittedItem>> KvStore::CommittedFrom(
    const std::string& key, absl::StatusOr<storage::RecordSlice> slice) {
  if (!slice.ok()) return slice.status();
  if (slice->items.empty()) return std::nullopt;
  CommittedItem item;
  item.version = std::move(slice->items.front().version);
  if (!item.value.ParseFromString(slice->items.front().value)) {
    return absl::DataLossError(absl::StrCat("stored item ", QuoteInput(key), " is corrupt"));
  }
  return item;
}

absl::StatusOr<std::optional<KvStore::CommittedItem>> KvStore::ReadCommitted(
    const NamespaceConfig& ns, const std::string& id, const std::string& key) {
  return CommittedFrom(key, engine_->Read(ns.name, id, OneKey(key), storage::ReadLimits()));
}

void KvStore::ReadCommittedAsync(const NamespaceConfig& ns, const std::string& id,
                                 const std::string& key, absl::Time deadline,
                                 Done<std::optional<CommittedItem>> done) {
  engine_->ReadAsync(
      ns.name, id, OneKey(key), storage::ReadLimits(), deadline,
      [key, done = std::move(done)](absl::StatusOr<storage::RecordSlice> slice) mutable {
        std::move(done)(CommittedFrom(key, std::move(slice)));
      });
}

namespace {

absl::StatusOr<internal::StoredValue> DecodeStored(const storage::StoredItem& stored) {
  internal::StoredValue value;
  if (!value.ParseFromString(stored.value)) {
    return absl::DataLossError(absl::StrCat("stored item ", QuoteInput(stored.key), " is corrupt"));
  }
  return value;
}

// What a page may still take (DESIGN.md, "Fixed units of work"). The engine stopped at its
// own limits counting the bytes it stores, which for a chunked value is its metadata only;
// this counts what the response really carries (the key and every value byte, chunked
// values included when the selection asks for them), and stops before a chunk read once
// the page's time is up. The first item is always taken, so paging makes progress.
class PageBudget {
 public:
  PageBudget(const storage::ReadLimits& limits, bool include_large_values, Clock* clock)
      : limits_(limits), include_large_values_(include_large_values), clock_(clock) {}

  // Whether the page takes `stored` (decoded as `value`); if so, counts it.
  bool Take(const storage::StoredItem& stored, const internal::StoredValue& value) {
    const bool reads_chunks = value.chunk_count() > 0 && include_large_values_;
    const uint64_t value_bytes = value.chunk_count() == 0 ? value.data().size()
                                 : reads_chunks           ? value.stored_size()
                                                          : 0;
    const uint64_t bytes = stored.key.size() + value_bytes;
    if (taken_ > 0 && (bytes > limits_.max_bytes - bytes_ ||
                       (reads_chunks && clock_->Now() >= limits_.soft_deadline))) {
      return false;
    }
    ++taken_;
    bytes_ += std::min<uint64_t>(bytes, limits_.max_bytes - bytes_);
    return true;
  }

 private:
  const storage::ReadLimits limits_;
  const bool include_large_values_;
  Clock* const clock_;
  uint64_t bytes_ = 0;  // <= limits_.max_bytes
  int64_t taken_ = 0;
};

}  // namespace

absl::Status KvStore::ToItem(const NamespaceConfig& ns, const std::string& id,
                             const storage::StoredItem& stored, internal::StoredValue value,
                             bool include_large_values, v1::Item& item) {
  item.set_key(stored.key);
  v1::ValueMetadata* meta = item.mutable_metadata();
  meta->set_codec(static_cast<v1::ValueCodec>(value.codec()));
  meta->set_uncompressed_size(value.uncompressed_size());
  meta->set_checksum(value.checksum());
  meta->set_chunk_count(value.chunk_count());
  meta->set_stored_size(value.stored_size());
  *meta->mutable_version() = ToToken(stored.version);
  meta->set_expires_at_us(stored.expires_at_us);
  if (value.chunk_count() == 0) {
    item.set_value(std::move(*value.mutable_data()));
  } else if (include_large_values) {
    SG_ASSIGN_OR_RETURN(*item.mutable_value(),
                        ReadChunkedValue(ns, id, stored.key, stored.version, value.chunk_count()));
  }
  return absl::OkStatus();
}

namespace {

// Page size and item limit of a read, checked against the namespace's limits.
absl::StatusOr<storage::ReadLimits> PageLimits(const NamespaceConfig& ns,
                                               const v1::Selection& selection,
                                               absl::Time deadline) {
  storage::ReadLimits limits;
  if (selection.page_size_bytes() < 0 || selection.page_size_bytes() > ns.limits.max_page_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("selection.page_size_bytes is ", selection.page_size_bytes(),
                     "; it must be in [0, ", ns.limits.max_page_bytes,
                     "] (max_page_bytes; 0 = the default ", ns.client.page_size_bytes, ")"));
  }
  if (selection.item_limit() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("selection.item_limit is ", selection.item_limit(), "; it must be >= 0"));
  }
  limits.max_bytes =
      selection.page_size_bytes() > 0 ? selection.page_size_bytes() : ns.client.page_size_bytes;
  if (selection.item_limit() > 0) limits.max_items = selection.item_limit();
  limits.soft_deadline = deadline;
  return limits;
}

uint64_t RequestHash(const google::protobuf::Message& predicate, const v1::Selection& selection) {
  // Stable across processes, so that a token from one gateway works on another.
  return Xxh64(predicate.SerializeAsString() + selection.SerializeAsString());
}

}  // namespace

absl::StatusOr<KvStore::ReadPlan> KvStore::PlanGetItems(const NamespaceConfig& ns,
                                                        const v1::GetItemsRequest& request) const {
  const absl::Time start = clock_->Now();
  SG_RETURN_IF_ERROR(CheckId(ns, request.id()));

  ReadPlan plan;
  storage::KeySpan& span = plan.span;
  const v1::Predicate& predicate = request.predicate();
  const Slo* slo = &ns.range_read;
  switch (predicate.match_case()) {
    case v1::Predicate::kKeys: {
      SG_RETURN_IF_ERROR(
          CheckCount(ns, predicate.keys().keys_size(), "predicate.keys.keys", false));
      for (int i = 0; i < predicate.keys().keys_size(); ++i) {
        SG_RETURN_IF_ERROR(
            CheckKey(ns, predicate.keys().keys(i), absl::StrCat("predicate.keys.keys[", i, "]")));
      }
      span.by_keys = true;
      span.keys.assign(predicate.keys().keys().begin(), predicate.keys().keys().end());
      std::sort(span.keys.begin(), span.keys.end());
      span.keys.erase(std::unique(span.keys.begin(), span.keys.end()), span.keys.end());
      if (span.keys.size() == 1) slo = &ns.point_read;
      break;
    }
    case v1::Predicate::kRange:
      SG_RETURN_IF_ERROR(CheckRange(ns, predicate.range(), "predicate.range"));
      span.start = predicate.range().start();
      span.end = predicate.range().end();
      break;
    case v1::Predicate::kAll:
    case v1::Predicate::MATCH_NOT_SET:
      break;
  }
  const absl::Time deadline = start + slo->target * options_.page_time_share;
  SG_ASSIGN_OR_RETURN(plan.limits, PageLimits(ns, request.selection(), deadline));
  plan.request_hash = RequestHash(predicate, request.selection());

  if (!request.page_token().empty()) {
    SG_ASSIGN_OR_RETURN(std::string payload, signer_.Verify(request.page_token(), "page_token"));
    internal::PageToken token;
    if (!token.ParseFromString(payload) || token.scan() || token.namespace_() != ns.name ||
        token.id() != request.id() || token.request_hash() != plan.request_hash ||
        !token.has_after_key()) {
      return absl::InvalidArgumentError(
          "page_token belongs to another request (namespace, id, predicate or selection differ)");
    }
    span.after = token.after_key();
  }

  return plan;
}

absl::StatusOr<v1::GetItemsResponse> KvStore::AnswerGetItems(const NamespaceConfig& ns,
                                                             const v1::GetItemsRequest& request,
                                                             const ReadPlan& plan,
                                                             storage::RecordSlice slice) {
  v1::GetItemsResponse response;
  const bool include_large_values = request.selection().include_large_values();
  PageBudget budget(plan.limits, include_large_values, clock_);
  for (const storage::StoredItem& stored : slice.items) {
    SG_ASSIGN_OR_RETURN(internal::StoredValue value, DecodeStored(stored));
    if (!budget.Take(stored, value)) {
      slice.resume_after = response.items(response.items_size() - 1).key();
      break;
    }
    SG_RETURN_IF_ERROR(ToItem(ns, request.id(), stored, std::move(value), include_large_values,
                              *response.add_items()));
  }
  if (slice.resume_after.has_value()) {
    internal::PageToken token;
    token.set_namespace_(ns.name);
    token.set_id(request.id());
    token.set_request_hash(plan.request_hash);
    token.set_after_key(*slice.resume_after);
    token.set_has_after_key(true);
    response.set_next_page_token(signer_.Sign(token.SerializeAsString()));
  }
  return response;
}

absl::StatusOr<v1::GetItemsResponse> KvStore::GetItems(const NamespaceConfig& ns,
                                                       const v1::GetItemsRequest& request) {
  SG_ASSIGN_OR_RETURN(ReadPlan plan, PlanGetItems(ns, request));
  SG_ASSIGN_OR_RETURN(storage::RecordSlice slice,
                      engine_->Read(ns.name, request.id(), plan.span, plan.limits));
  return AnswerGetItems(ns, request, plan, std::move(slice));
}

void KvStore::GetItemsAsync(const NamespaceConfig& ns, const v1::GetItemsRequest& request,
                            absl::Time deadline, Done<v1::GetItemsResponse> done) {
  // Large values are read from their chunks, which the blocking form does.
  if (request.selection().include_large_values()) {
    return std::move(done)(storage::WouldBlockError("a read that includes large values"));
  }
  absl::StatusOr<ReadPlan> plan = PlanGetItems(ns, request);
  if (!plan.ok()) return std::move(done)(plan.status());
  auto shared = std::make_shared<const ReadPlan>(*std::move(plan));
  engine_->ReadAsync(ns.name, request.id(), shared->span, shared->limits, deadline,
                     [this, &ns, &request, shared,
                      done = std::move(done)](absl::StatusOr<storage::RecordSlice> slice) mutable {
                       if (!slice.ok()) return std::move(done)(slice.status());
                       std::move(done)(AnswerGetItems(ns, request, *shared, *std::move(slice)));
                     });
}

absl::StatusOr<KvStore::ScanPlan> KvStore::PlanScanItems(
    const NamespaceConfig& ns, const v1::ScanItemsRequest& request) const {
  ScanPlan plan;
  const absl::Time start = clock_->Now();
  SG_ASSIGN_OR_RETURN(
      plan.limits,
      PageLimits(ns, request.selection(), start + ns.range_read.target * options_.page_time_share));
  plan.request_hash = RequestHash(v1::Predicate(), request.selection());
  if (!request.page_token().empty()) {
    SG_ASSIGN_OR_RETURN(std::string payload, signer_.Verify(request.page_token(), "page_token"));
    internal::PageToken token;
    if (!token.ParseFromString(payload) || !token.scan() || token.namespace_() != ns.name ||
        token.request_hash() != plan.request_hash) {
      return absl::InvalidArgumentError(
          "page_token belongs to another request (namespace or selection differ)");
    }
    plan.after = storage::ScanPosition{token.id(), std::nullopt};
    if (token.has_after_key()) plan.after->key = token.after_key();
  }
  return plan;
}

absl::StatusOr<v1::ScanItemsResponse> KvStore::AnswerScanItems(const NamespaceConfig& ns,
                                                               const v1::ScanItemsRequest& request,
                                                               const ScanPlan& plan,
                                                               storage::TableSlice slice) {
  v1::ScanItemsResponse response;
  const bool include_large_values = request.selection().include_large_values();
  PageBudget budget(plan.limits, include_large_values, clock_);
  bool page_full = false;
  for (const storage::ScannedRecord& record : slice.records) {
    v1::ScanItemsResponse::Record* out = nullptr;
    for (const storage::StoredItem& stored : record.items) {
      SG_ASSIGN_OR_RETURN(internal::StoredValue value, DecodeStored(stored));
      if (!budget.Take(stored, value)) {
        // Resume after the last item taken, in its record.
        const v1::ScanItemsResponse::Record& last = response.records(response.records_size() - 1);
        slice.resume = storage::ScanPosition{last.id(), last.items(last.items_size() - 1).key()};
        page_full = true;
        break;
      }
      if (out == nullptr) {
        out = response.add_records();
        out->set_id(record.record_id);
      }
      SG_RETURN_IF_ERROR(ToItem(ns, record.record_id, stored, std::move(value),
                                include_large_values, *out->add_items()));
    }
    if (page_full) break;
  }
  if (slice.resume.has_value()) {
    internal::PageToken token;
    token.set_namespace_(ns.name);
    token.set_scan(true);
    token.set_id(slice.resume->record_id);
    token.set_request_hash(plan.request_hash);
    if (slice.resume->key.has_value()) {
      token.set_after_key(*slice.resume->key);
      token.set_has_after_key(true);
    }
    response.set_next_page_token(signer_.Sign(token.SerializeAsString()));
  }
  return response;
}

absl::StatusOr<v1::ScanItemsResponse> KvStore::ScanItems(const NamespaceConfig& ns,
                                                         const v1::ScanItemsRequest& request) {
  SG_ASSIGN_OR_RETURN(const ScanPlan plan, PlanScanItems(ns, request));
  SG_ASSIGN_OR_RETURN(storage::TableSlice slice, engine_->Scan(ns.name, plan.after, plan.limits));
  return AnswerScanItems(ns, request, plan, std::move(slice));
}

void KvStore::ScanItemsAsync(const NamespaceConfig& ns, const v1::ScanItemsRequest& request,
                             absl::Time deadline, Done<v1::ScanItemsResponse> done) {
  // Large values are read from their chunks, which the blocking form does.
  if (request.selection().include_large_values()) {
    return std::move(done)(storage::WouldBlockError("a scan that includes large values"));
  }
  absl::StatusOr<ScanPlan> plan = PlanScanItems(ns, request);
  if (!plan.ok()) return std::move(done)(plan.status());
  auto shared = std::make_shared<const ScanPlan>(*std::move(plan));
  engine_->ScanAsync(ns.name, shared->after, shared->limits, deadline,
                     [this, &ns, &request, shared,
                      done = std::move(done)](absl::StatusOr<storage::TableSlice> slice) mutable {
                       if (!slice.ok()) return std::move(done)(slice.status());
                       std::move(done)(AnswerScanItems(ns, request, *shared, *std::move(slice)));
                     });
}

std::string KvStore::ShardOf(const NamespaceConfig& ns, const v1::PutItemsRequest& r) const {
  return engine_->ShardOf(ns.name, r.id());
}
std::string KvStore::ShardOf(const NamespaceConfig& ns, const v1::GetItemsRequest& r) const {
  return engine_->ShardOf(ns.name, r.id());
}
std::string KvStore::ShardOf(const NamespaceConfig& ns, const v1::DeleteItemsRequest& r) const {
  return engine_->ShardOf(ns.name, r.id());
}
std::string KvStore::ShardOf(const NamespaceConfig& ns, const v1::MutateItemsRequest& r) const {
  return engine_->ShardOf(ns.name, r.id());
}
std::string KvStore::ShardOf(const NamespaceConfig&, const v1::ScanItemsRequest&) const {
  return "";
}
std::string KvStore::ShardOf(const NamespaceConfig& ns, const v1::PutChunkRequest& r) const {
  return engine_->ShardOf(ChunkTable(ns.name),
                          ChunkRecordId(r.id(), r.key(), ToVersion(r.token())));
}
std::string KvStore::ShardOf(const NamespaceConfig& ns, const v1::GetChunkRequest& r) const {
  return engine_->ShardOf(ChunkTable(ns.name),
                          ChunkRecordId(r.id(), r.key(), ToVersion(r.version())));
}

absl::StatusOr<storage::Version> KvStore::CheckPutChunk(const NamespaceConfig& ns,
                                                        const v1::PutChunkRequest& request) const {
  SG_RETURN_IF_ERROR(CheckId(ns, request.id()));
  SG_RETURN_IF_ERROR(CheckKey(ns, request.key(), "key"));
  SG_ASSIGN_OR_RETURN(storage::Version version, CheckToken(request.token(), "token"));
  if (request.data().empty()) return absl::InvalidArgumentError("data is empty");
  if (OverLimit(request.data().size(), ns.client.chunk_bytes)) {
    return TooBig("data", request.data().size(), ns.client.chunk_bytes, "chunk_bytes");
  }
  SG_RETURN_IF_ERROR(CheckChunkIndex(ns, request.index()));
  return version;
}

// The chunks of a committed version are immutable. (A chunk that races its own commit and
// lands after it lies outside what the commit declared, or repeats a stored index with the
// same version, which is a no-op: readers never see it either way.) Nullopt: store it.
std::optional<absl::Status> KvStore::CommittedAnswersPutChunk(
    const v1::PutChunkRequest& request, const storage::Version& version,
    const std::optional<CommittedItem>& committed) {
  if (!committed.has_value() || committed->version != version) return std::nullopt;
  // A replay of the upload (a retried whole write) changes nothing: its chunks are stored
  // with this version already, and an equal version is a no-op. Past what the commit
  // declared there is nothing to replay.
  if (request.index() < committed->value.chunk_count()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "item ", QuoteInput(request.key()), " of id ", QuoteInput(request.id()),
      " is already committed with this token and ", committed->value.chunk_count(),
      " chunks; the chunks of a committed value cannot change (write a new value with a new "
      "token)"));
}

storage::RecordWrite KvStore::ChunkWrite(const NamespaceConfig& ns,
                                         const v1::PutChunkRequest& request,
                                         const storage::Version& version) {
  storage::RecordWrite write;
  write.table = ChunkTable(ns.name);
  write.record_id = ChunkRecordId(request.id(), request.key(), version);
  write.version = version;
  write.ops.push_back(storage::PutOp{ChunkIndexKey(request.index()), request.data(), 0});
  write.sync = ns.durability == Durability::kSync;
  write.replicas_ack = ns.replicas_ack;  // the commit that refers to it relies on it
  write.accept_fewer_live_replicas = ns.replica_shortfall == ReplicaShortfall::kDegrade;
  return write;
}

absl::StatusOr<v1::PutChunkResponse> KvStore::PutChunk(const NamespaceConfig& ns,
                                                       const v1::PutChunkRequest& request) {
  SG_ASSIGN_OR_RETURN(const storage::Version version, CheckPutChunk(ns, request));
  SG_ASSIGN_OR_RETURN(std::optional<CommittedItem> committed,
                      ReadCommitted(ns, request.id(), request.key()));
  if (std::optional<absl::Status> answer = CommittedAnswersPutChunk(request, version, committed)) {
    SG_RETURN_IF_ERROR(*answer);
    return v1::PutChunkResponse();
  }
  SG_RETURN_IF_ERROR(engine_->Write(ChunkWrite(ns, request, version)));
  return v1::PutChunkResponse();
}

void KvStore::PutChunkAsync(const NamespaceConfig& ns, const v1::PutChunkRequest& request,
                            absl::Time deadline, Done<v1::PutChunkResponse> done) {
  absl::StatusOr<storage::Version> version = CheckPutChunk(ns, request);
  if (!version.ok()) return std::move(done)(version.status());
  ReadCommittedAsync(
      ns, request.id(), request.key(), deadline,
      [this, &ns, &request, version = *std::move(version), deadline,
       done = std::move(done)](absl::StatusOr<std::optional<CommittedItem>> committed) mutable {
        if (!committed.ok()) return std::move(done)(committed.status());
        if (std::optional<absl::Status> answer =
                CommittedAnswersPutChunk(request, version, *committed)) {
          if (!answer->ok()) return std::move(done)(*std::move(answer));
          return std::move(done)(v1::PutChunkResponse());
        }
        engine_->WriteAsync(ChunkWrite(ns, request, version), deadline,
                            [done = std::move(done)](absl::Status status) mutable {
                              if (!status.ok()) return std::move(done)(std::move(status));
                              std::move(done)(v1::PutChunkResponse());
                            });
      });
}

absl::StatusOr<storage::Version> KvStore::CheckGetChunk(const NamespaceConfig& ns,
                                                        const v1::GetChunkRequest& request) const {
  SG_RETURN_IF_ERROR(CheckId(ns, request.id()));
  SG_RETURN_IF_ERROR(CheckKey(ns, request.key(), "key"));
  SG_RETURN_IF_ERROR(CheckNonce(request.version(), "version"));
  SG_RETURN_IF_ERROR(CheckChunkIndex(ns, request.index()));
  return ToVersion(request.version());
}

// Only chunks of the version the item holds now, and only those its commit declared:
// uploads never committed, and anything written after the commit, stay unreadable.
absl::Status KvStore::CommittedAllowsGetChunk(const v1::GetChunkRequest& request,
                                              const storage::Version& version,
                                              const std::optional<CommittedItem>& committed) {
  if (!committed.has_value() || committed->version != version ||
      request.index() >= committed->value.chunk_count()) {
    return absl::NotFoundError(absl::StrCat("no chunk ", request.index(),
                                            " of that version of the item (superseded, or "
                                            "past its chunk_count?)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::GetChunkResponse> KvStore::ChunkFrom(
    const v1::GetChunkRequest& request, absl::StatusOr<storage::RecordSlice> slice) {
  if (!slice.ok()) return slice.status();
  if (slice->items.empty()) {
    return absl::DataLossError(absl::StrCat("chunk ", request.index(), " of committed item ",
                                            QuoteInput(request.key()), " is missing"));
  }
  v1::GetChunkResponse response;
  response.set_data(std::move(slice->items.front().value));
  return response;
}

absl::StatusOr<v1::GetChunkResponse> KvStore::GetChunk(const NamespaceConfig& ns,
                                                       const v1::GetChunkRequest& request) {
  SG_ASSIGN_OR_RETURN(const storage::Version version, CheckGetChunk(ns, request));
  SG_ASSIGN_OR_RETURN(std::optional<CommittedItem> committed,
                      ReadCommitted(ns, request.id(), request.key()));
  SG_RETURN_IF_ERROR(CommittedAllowsGetChunk(request, version, committed));
  return ChunkFrom(
      request,
      engine_->Read(ChunkTable(ns.name), ChunkRecordId(request.id(), request.key(), version),
                    OneKey(ChunkIndexKey(request.index())), storage::ReadLimits()));
}

void KvStore::GetChunkAsync(const NamespaceConfig& ns, const v1::GetChunkRequest& request,
                            absl::Time deadline, Done<v1::GetChunkResponse> done) {
  absl::StatusOr<storage::Version> version = CheckGetChunk(ns, request);
  if (!version.ok()) return std::move(done)(version.status());
  ReadCommittedAsync(
      ns, request.id(), request.key(), deadline,
      [this, &ns, &request, version = *std::move(version), deadline,
       done = std::move(done)](absl::StatusOr<std::optional<CommittedItem>> committed) mutable {
        if (!committed.ok()) return std::move(done)(committed.status());
        if (absl::Status allowed = CommittedAllowsGetChunk(request, version, *committed);
            !allowed.ok()) {
          return std::move(done)(std::move(allowed));
        }
        engine_->ReadAsync(
            ChunkTable(ns.name), ChunkRecordId(request.id(), request.key(), version),
            OneKey(ChunkIndexKey(request.index())), storage::ReadLimits(), deadline,
            [&request, done = std::move(done)](absl::StatusOr<storage::RecordSlice> slice) mutable {
              std::move(done)(ChunkFrom(request, std::move(slice)));
            });
      });
}

absl::StatusOr<int64_t> KvStore::CollectChunks(const NamespaceConfig& ns) {
  const int64_t now_us = clock_->NowMicros();
  const int64_t cutoff_us = now_us - 2 * absl::ToInt64Microseconds(options_.max_clock_skew);
  const storage::Version gc_version{now_us, "chunk-collector"};
  int64_t removed = 0;
  std::optional<storage::ScanPosition> after;
  storage::ReadLimits limits;
  limits.max_items = 1024;
  limits.max_bytes = 8 << 20;  // chunks are large: bound the memory a page takes
  do {
    SG_ASSIGN_OR_RETURN(storage::TableSlice slice,
                        engine_->Scan(ChunkTable(ns.name), after, limits));
    for (const storage::ScannedRecord& record : slice.records) {
      std::string id, key;
      storage::Version version;
      if (!ParseChunkRecordId(record.record_id, id, key, version)) continue;
      if (version.time_us >= cutoff_us) continue;  // an upload may still commit
      storage::KeySpan span;
      span.by_keys = true;
      span.keys.push_back(key);
      SG_ASSIGN_OR_RETURN(storage::RecordSlice item,
                          engine_->Read(ns.name, id, span, storage::ReadLimits()));
      if (!item.items.empty() && item.items.front().version == version) continue;  // in use
      storage::RecordWrite write;
      write.table = ChunkTable(ns.name);
      write.record_id = record.record_id;
      write.version = gc_version;
      write.ops.push_back(storage::DeleteRangeOp{"", ""});
      write.sync = false;
      SG_RETURN_IF_ERROR(engine_->Write(write));
      ++removed;
    }
    // A record split across pages was judged by its id already: resume after all of it.
    after = slice.resume;
    if (after.has_value()) after->key.reset();
  } while (after.has_value());
  return removed;
}

}  // namespace stategate::kv
