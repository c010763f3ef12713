// KvStore against a real RocksDB engine in a temporary directory, with a fake clock.
#include "src/kv/kv_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "src/common/checksum.h"
#include "src/storage/rocksdb/rocksdb_engine.h"
#include "test/lib/temp_dir.h"

namespace stategate::kv {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class KvStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(&clock_); }

  void Open(Clock* clock) {
    store_.reset();
    engine_.reset();
    storage::RocksDbOptions options;
    options.path = dir_.path() + "/db";
    options.clock = clock;
    options.tombstone_grace = absl::Minutes(10);
    engine_ = *storage::OpenRocksDbEngine(options);
    KvStoreOptions kv_options;
    kv_options.max_clock_skew = absl::Minutes(1);
    kv_options.page_token_secret = "test-secret";
    store_ = std::make_unique<KvStore>(engine_.get(), clock, kv_options);
    ns_.name = "ns";
    ns_.client.chunk_bytes = 1024;
    ASSERT_TRUE(store_->Prepare(ns_).ok());
  }

  v1::IdempotencyToken Token(absl::Duration offset = absl::ZeroDuration(), char fill = 'n') {
    v1::IdempotencyToken token;
    token.set_generation_time_us(absl::ToUnixMicros(clock_.Now() + offset));
    token.set_nonce(std::string(16, fill));
    return token;
  }

  absl::Status Put(const std::string& id, const std::string& key, const std::string& value,
                   const v1::IdempotencyToken& token, int64_t ttl_us = 0) {
    v1::PutItemsRequest request;
    request.set_namespace_("ns");
    request.set_id(id);
    v1::Item* item = request.add_items();
    item->set_key(key);
    item->set_value(value);
    item->set_ttl_us(ttl_us);
    *request.mutable_token() = token;
    return store_->PutItems(ns_, request).status();
  }

  absl::Status DeleteKey(const std::string& id, const std::string& key,
                         const v1::IdempotencyToken& token) {
    v1::DeleteItemsRequest request;
    request.set_namespace_("ns");
    request.set_id(id);
    request.mutable_predicate()->mutable_keys()->add_keys(key);
    *request.mutable_token() = token;
    return store_->DeleteItems(ns_, request).status();
  }

  absl::StatusOr<v1::GetItemsResponse> GetAll(const std::string& id, v1::Selection selection = {},
                                              const std::string& page_token = "") {
    v1::GetItemsRequest request;
    request.set_namespace_("ns");
    request.set_id(id);
    request.mutable_predicate()->mutable_all();
    *request.mutable_selection() = selection;
    request.set_page_token(page_token);
    return store_->GetItems(ns_, request);
  }

  // key=value pairs of a record, all pages.
  std::vector<std::string> Contents(const std::string& id) {
    std::vector<std::string> out;
    auto response = GetAll(id);
    EXPECT_TRUE(response.ok()) << response.status();
    if (!response.ok()) return out;
    for (const v1::Item& item : response->items()) out.push_back(item.key() + "=" + item.value());
    return out;
  }

  FakeClock clock_;
  testing::TempDir dir_;
  std::unique_ptr<storage::StorageEngine> engine_;
  std::unique_ptr<KvStore> store_;
  NamespaceConfig ns_;
};

TEST_F(KvStoreTest, PutThenGetReturnsValueWithMetadata) {
  const v1::IdempotencyToken token = Token();
  ASSERT_TRUE(Put("r", "k", "hello", token).ok());
  auto response = GetAll("r");
  ASSERT_TRUE(response.ok());
  ASSERT_EQ(response->items_size(), 1);
  const v1::Item& item = response->items(0);
  EXPECT_EQ(item.value(), "hello");
  EXPECT_EQ(item.metadata().checksum(), Xxh64("hello"));
  EXPECT_EQ(item.metadata().uncompressed_size(), 5u);
  EXPECT_EQ(item.metadata().version().generation_time_us(), token.generation_time_us());
  EXPECT_TRUE(response->next_page_token().empty());
}

TEST_F(KvStoreTest, RejectsBadTokens) {
  v1::IdempotencyToken short_nonce = Token();
  short_nonce.set_nonce("abc");
  absl::Status status = Put("r", "k", "v", short_nonce);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("token.nonce"));

  status = Put("r", "k", "v", Token(-absl::Minutes(2)));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("max_clock_skew"));
  status = Put("r", "k", "v", Token(absl::Minutes(2)));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Contents("r"), ::testing::IsEmpty());
}

TEST_F(KvStoreTest, ReplayOfSameTokenIsIdempotentAndOlderWriteLoses) {
  const v1::IdempotencyToken first = Token(-absl::Seconds(2), 'a');
  const v1::IdempotencyToken second = Token(-absl::Seconds(1), 'b');
  ASSERT_TRUE(Put("r", "k", "one", first).ok());
  ASSERT_TRUE(Put("r", "k", "one", first).ok());  // a retry
  EXPECT_THAT(Contents("r"), ElementsAre("k=one"));
  ASSERT_TRUE(Put("r", "k", "two", second).ok());
  // A hedge of the first write arriving late must not undo the second.
  ASSERT_TRUE(Put("r", "k", "one", first).ok());
  EXPECT_THAT(Contents("r"), ElementsAre("k=two"));
}

TEST_F(KvStoreTest, SameTimeDifferentNonceIsOrderedByNonce) {
  const v1::IdempotencyToken low = Token(absl::ZeroDuration(), 'a');
  const v1::IdempotencyToken high = Token(absl::ZeroDuration(), 'z');
  ASSERT_TRUE(Put("r", "k", "high", high).ok());
  ASSERT_TRUE(Put("r", "k", "low", low).ok());
  EXPECT_THAT(Contents("r"), ElementsAre("k=high"));
}

TEST_F(KvStoreTest, TombstoneBlocksLateOlderWrite) {
  const v1::IdempotencyToken put = Token(-absl::Seconds(2), 'a');
  const v1::IdempotencyToken del = Token(-absl::Seconds(1), 'b');
  ASSERT_TRUE(DeleteKey("r", "k", del).ok());  // the delete overtook the put
  ASSERT_TRUE(Put("r", "k", "zombie", put).ok());
  EXPECT_THAT(Contents("r"), ::testing::IsEmpty());
}

TEST_F(KvStoreTest, RecordDeleteBlocksLateWritesToNewKeys) {
  ASSERT_TRUE(Put("r", "a", "1", Token(-absl::Seconds(3))).ok());
  v1::DeleteItemsRequest request;
  request.set_namespace_("ns");
  request.set_id("r");
  request.mutable_predicate()->mutable_all();
  *request.mutable_token() = Token(-absl::Seconds(1));
  ASSERT_TRUE(store_->DeleteItems(ns_, request).ok());
  ASSERT_TRUE(Put("r", "b", "late", Token(-absl::Seconds(2))).ok());
  EXPECT_THAT(Contents("r"), ::testing::IsEmpty());
  ASSERT_TRUE(Put("r", "c", "new", Token()).ok());
  EXPECT_THAT(Contents("r"), ElementsAre("c=new"));
}

TEST_F(KvStoreTest, DeleteRequiresPredicate) {
  v1::DeleteItemsRequest request;
  request.set_namespace_("ns");
  request.set_id("r");
  *request.mutable_token() = Token();
  absl::Status status = store_->DeleteItems(ns_, request).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("predicate"));
}

TEST_F(KvStoreTest, MutateAppliesInOrderAtomically) {
  ASSERT_TRUE(Put("r", "a", "old", Token(-absl::Seconds(1))).ok());
  v1::MutateItemsRequest request;
  request.set_namespace_("ns");
  request.set_id("r");
  *request.mutable_token() = Token();
  auto put = [&](const std::string& key, const std::string& value) {
    v1::Item* item = request.add_mutations()->mutable_put();
    item->set_key(key);
    item->set_value(value);
  };
  put("b", "x");
  request.add_mutations()->mutable_delete_()->mutable_all();  // clears a and b
  put("c", "y");
  put("d", "z");
  request.add_mutations()->mutable_delete_()->mutable_keys()->add_keys("d");
  ASSERT_TRUE(store_->MutateItems(ns_, request).ok());
  EXPECT_THAT(Contents("r"), ElementsAre("c=y"));
  ASSERT_TRUE(store_->MutateItems(ns_, request).ok());  // replay
  EXPECT_THAT(Contents("r"), ElementsAre("c=y"));
}

TEST_F(KvStoreTest, LimitsNameTheFieldAndTheLimit) {
  ns_.limits.max_key_bytes = 8;
  ns_.limits.max_items_per_call = 2;
  absl::Status status = Put("r", std::string(9, 'k'), "v", Token());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("items[0].key is 9 bytes"));
  EXPECT_THAT(status.message(), HasSubstr("max_key_bytes"));

  status = Put(std::string(9, 'i'), "k", "v", Token());
  EXPECT_THAT(status.message(), HasSubstr("id is 9 bytes"));
  status = Put("", "k", "v", Token());
  EXPECT_THAT(status.message(), HasSubstr("id is empty"));

  v1::PutItemsRequest many;
  many.set_namespace_("ns");
  many.set_id("r");
  *many.mutable_token() = Token();
  for (int i = 0; i < 3; ++i) many.add_items()->set_key(std::to_string(i));
  status = store_->PutItems(ns_, many).status();
  EXPECT_THAT(status.message(), HasSubstr("max_items_per_call"));

  status = Put("r", "k", std::string(1025, 'v'), Token());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("chunk_bytes"));

  ns_.limits.max_request_bytes = 100;
  status = CheckRequestBytes(ns_, 101);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("request is 101 bytes; the limit is 100 (max_request_bytes)"));
  EXPECT_TRUE(CheckRequestBytes(ns_, 100).ok());

  status = Put("r", "k", "v", Token(), -5);
  EXPECT_THAT(status.message(), HasSubstr("items[0].ttl_us"));
}

TEST_F(KvStoreTest, ChecksumMismatchIsDataLoss) {
  v1::PutItemsRequest request;
  request.set_namespace_("ns");
  request.set_id("r");
  *request.mutable_token() = Token();
  v1::Item* item = request.add_items();
  item->set_key("k");
  item->set_value("corrupted in transit");
  item->mutable_metadata()->set_checksum(Xxh64("what the client sent"));
  EXPECT_EQ(store_->PutItems(ns_, request).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(Contents("r"), ::testing::IsEmpty());
}

TEST_F(KvStoreTest, TtlExpiresItems) {
  ASSERT_TRUE(Put("r", "short", "s", Token(), absl::ToInt64Microseconds(absl::Seconds(5))).ok());
  ASSERT_TRUE(Put("r", "forever", "f", Token(absl::Microseconds(1))).ok());
  EXPECT_THAT(Contents("r"), ElementsAre("forever=f", "short=s"));
  clock_.Advance(absl::Seconds(6));
  EXPECT_THAT(Contents("r"), ElementsAre("forever=f"));
}

TEST_F(KvStoreTest, PagesByItemLimitAndBytesWithAuthenticatedTokens) {
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(Put("r", absl::StrCat("k", i), std::string(100, 'v'), Token()).ok());
    clock_.Advance(absl::Microseconds(1));
  }
  v1::Selection selection;
  selection.set_item_limit(3);
  std::vector<std::string> keys;
  std::string page_token;
  int pages = 0;
  do {
    auto page = GetAll("r", selection, page_token);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->items_size(), 3);
    for (const auto& item : page->items()) keys.push_back(item.key());
    page_token = page->next_page_token();
    ++pages;
  } while (!page_token.empty());
  EXPECT_EQ(keys.size(), 10u);
  EXPECT_EQ(pages, 4);

  v1::Selection by_bytes;
  by_bytes.set_page_size_bytes(250);  // two 102-byte items fit, a third would not
  auto page = GetAll("r", by_bytes);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->items_size(), 2);
  ASSERT_FALSE(page->next_page_token().empty());

  std::string tampered = page->next_page_token();
  tampered[2] ^= 1;
  EXPECT_EQ(GetAll("r", by_bytes, tampered).status().code(), absl::StatusCode::kInvalidArgument);
  // A genuine token presented for another record or another selection is foreign.
  EXPECT_EQ(GetAll("other", by_bytes, page->next_page_token()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetAll("r", selection, page->next_page_token()).status().code(),
            absl::StatusCode::kInvalidArgument);

  v1::Selection too_big;
  too_big.set_page_size_bytes(ns_.limits.max_page_bytes + 1);
  EXPECT_THAT(GetAll("r", too_big).status().message(), HasSubstr("max_page_bytes"));
}

TEST_F(KvStoreTest, ReturnsEarlyWhenTheSloBudgetIsSpent) {
  Open(Clock::Real());  // a real clock, so that reading takes time
  ns_.range_read.target = absl::Nanoseconds(1);
  v1::PutItemsRequest request;
  request.set_namespace_("ns");
  request.set_id("r");
  v1::IdempotencyToken token;
  token.set_generation_time_us(Clock::Real()->NowMicros());
  token.set_nonce(std::string(16, 'n'));
  *request.mutable_token() = token;
  for (int i = 0; i < 5; ++i) request.add_items()->set_key(absl::StrCat("k", i));
  ASSERT_TRUE(store_->PutItems(ns_, request).ok());
  auto page = GetAll("r");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->items_size(), 1);  // progress, but no more than the budget allows
  EXPECT_FALSE(page->next_page_token().empty());
}

TEST_F(KvStoreTest, ScanPagesThroughEveryRecord) {
  for (int r = 0; r < 5; ++r) {
    for (int i = 0; i < 3; ++i) {
      ASSERT_TRUE(Put(absl::StrCat("rec", r), absl::StrCat("k", i), "v", Token()).ok());
    }
  }
  v1::ScanItemsRequest request;
  request.set_namespace_("ns");
  request.mutable_selection()->set_item_limit(2);
  std::map<std::string, int> seen;
  do {
    auto page = store_->ScanItems(ns_, request);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& record : page->records()) seen[record.id()] += record.items_size();
    request.set_page_token(page->next_page_token());
  } while (!request.page_token().empty());
  ASSERT_EQ(seen.size(), 5u);
  for (const auto& [id, count] : seen) EXPECT_EQ(count, 3) << id;
}

class KvStoreChunkTest : public KvStoreTest {
 protected:
  // Uploads `value` as chunks of ns_.client.chunk_bytes under token; returns the chunk count.
  uint32_t Upload(const std::string& id, const std::string& key, const std::string& value,
                  const v1::IdempotencyToken& token, uint32_t skip_index = UINT32_MAX) {
    uint32_t index = 0;
    for (size_t offset = 0; offset < value.size(); offset += ns_.client.chunk_bytes, ++index) {
      if (index == skip_index) continue;
      v1::PutChunkRequest chunk;
      chunk.set_namespace_("ns");
      chunk.set_id(id);
      chunk.set_key(key);
      *chunk.mutable_token() = token;
      chunk.set_index(index);
      chunk.set_data(value.substr(offset, ns_.client.chunk_bytes));
      EXPECT_TRUE(store_->PutChunk(ns_, chunk).ok());
    }
    return index;
  }

  absl::Status Commit(const std::string& id, const std::string& key, const std::string& value,
                      const v1::IdempotencyToken& token, uint32_t chunks) {
    v1::PutItemsRequest request;
    request.set_namespace_("ns");
    request.set_id(id);
    *request.mutable_token() = token;
    v1::Item* item = request.add_items();
    item->set_key(key);
    item->mutable_metadata()->set_chunk_count(chunks);
    item->mutable_metadata()->set_stored_size(value.size());
    item->mutable_metadata()->set_checksum(Xxh64(value));
    return store_->PutItems(ns_, request).status();
  }

  std::string ReadWhole(const std::string& id) {
    v1::Selection selection;
    selection.set_include_large_values(true);
    auto response = GetAll(id, selection);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() && response->items_size() == 1 ? response->items(0).value() : "";
  }
};

TEST_F(KvStoreChunkTest, ChunkedValueIsInvisibleUntilCommittedThenWhole) {
  const std::string old_value = "small";
  ASSERT_TRUE(Put("r", "k", old_value, Token(-absl::Seconds(1))).ok());
  std::string big(5000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  const v1::IdempotencyToken token = Token();
  const uint32_t chunks = Upload("r", "k", big, token);
  ASSERT_EQ(chunks, 5u);
  EXPECT_EQ(ReadWhole("r"), old_value);  // readers still see the old value
  ASSERT_TRUE(Commit("r", "k", big, token, chunks).ok());
  EXPECT_EQ(ReadWhole("r"), big);

  // Without include_large_values: metadata only, and the chunks one by one.
  auto meta = GetAll("r");
  ASSERT_TRUE(meta.ok());
  ASSERT_EQ(meta->items_size(), 1);
  EXPECT_TRUE(meta->items(0).value().empty());
  EXPECT_EQ(meta->items(0).metadata().chunk_count(), 5u);
  v1::GetChunkRequest get;
  get.set_namespace_("ns");
  get.set_id("r");
  get.set_key("k");
  *get.mutable_version() = meta->items(0).metadata().version();
  get.set_index(4);
  auto chunk = store_->GetChunk(ns_, get);
  ASSERT_TRUE(chunk.ok());
  EXPECT_EQ(chunk->data(), big.substr(4096));
}

TEST_F(KvStoreChunkTest, CommitOfIncompleteOrWrongUploadIsRefused) {
  const std::string big(3000, 'x');
  const v1::IdempotencyToken token = Token();
  const uint32_t chunks = Upload("r", "k", big, token, /*skip_index=*/1);
  absl::Status status = Commit("r", "k", big, token, chunks);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("3 chunks"));
  Upload("r", "k", big, token);
  EXPECT_EQ(Commit("r", "k", std::string(3000, 'y'), token, chunks).code(),
            absl::StatusCode::kDataLoss);
  EXPECT_THAT(Contents("r"), ::testing::IsEmpty());
  EXPECT_TRUE(Commit("r", "k", big, token, chunks).ok());
}

TEST_F(KvStoreChunkTest, AbandonedAndSupersededChunksAreCollected) {
  const std::string big(3000, 'x');
  const v1::IdempotencyToken committed = Token(-absl::Seconds(2), 'a');
  ASSERT_TRUE(Commit("r", "k", big, committed, Upload("r", "k", big, committed)).ok());
  const v1::IdempotencyToken interrupted = Token(-absl::Seconds(1), 'b');
  Upload("r", "k", big, interrupted, /*skip_index=*/2);  // never committed

  auto removed = store_->CollectChunks(ns_);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 0);  // too young: the upload might still commit

  clock_.Advance(absl::Minutes(3));
  removed = store_->CollectChunks(ns_);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 1);  // the interrupted upload
  EXPECT_EQ(ReadWhole("r"), big);

  ASSERT_TRUE(Put("r", "k", "small now", Token()).ok());  // supersedes the chunked value
  clock_.Advance(absl::Minutes(3));
  removed = store_->CollectChunks(ns_);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 1);
  EXPECT_EQ(ReadWhole("r"), "small now");
}

TEST_F(KvStoreChunkTest, ChunkLimits) {
  v1::PutChunkRequest chunk;
  chunk.set_namespace_("ns");
  chunk.set_id("r");
  chunk.set_key("k");
  *chunk.mutable_token() = Token();
  chunk.set_data(std::string(1025, 'x'));
  absl::Status status = store_->PutChunk(ns_, chunk).status();
  EXPECT_THAT(status.message(), HasSubstr("chunk_bytes"));
  chunk.set_data("x");
  chunk.set_index(1 << 30);
  status = store_->PutChunk(ns_, chunk).status();
  EXPECT_THAT(status.message(), HasSubstr("index"));

  ns_.limits.max_value_bytes = 4096;
  const std::string too_big(4097, 'x');
  const v1::IdempotencyToken token = Token();
  status = Commit("r", "k", too_big, token, Upload("r", "k", too_big.substr(0, 4096), token));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("max_value_bytes"));
  chunk.set_index(4);  // a fifth chunk of 1024 bytes cannot belong to a 4096-byte value
  status = store_->PutChunk(ns_, chunk).status();
  EXPECT_THAT(status.message(), HasSubstr("index"));
}

// Hole 1 of issue 10: a chunk written under the token of a committed value.
TEST_F(KvStoreChunkTest, TheChunksOfACommittedValueCannotChange) {
  const std::string big(1500, 'x');  // two chunks of 1024
  const v1::IdempotencyToken token = Token();
  ASSERT_TRUE(Commit("r", "k", big, token, Upload("r", "k", big, token)).ok());

  v1::PutChunkRequest chunk;
  chunk.set_namespace_("ns");
  chunk.set_id("r");
  chunk.set_key("k");
  *chunk.mutable_token() = token;
  chunk.set_data("extra");
  for (uint32_t index : {2u, 7u}) {
    chunk.set_index(index);
    absl::Status status = store_->PutChunk(ns_, chunk).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << index;
    EXPECT_THAT(status.message(), HasSubstr("already committed")) << index;
  }
  // A declared index under the same token is a replay: OK, and it changes nothing.
  for (uint32_t index : {0u, 1u}) {
    chunk.set_index(index);
    EXPECT_TRUE(store_->PutChunk(ns_, chunk).ok()) << index;
  }
  EXPECT_EQ(ReadWhole("r"), big);
  v1::ScanItemsRequest scan;
  scan.set_namespace_("ns");
  scan.mutable_selection()->set_include_large_values(true);
  auto page = store_->ScanItems(ns_, scan);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->records_size(), 1);
  EXPECT_EQ(page->records(0).items(0).value(), big);
}

// A chunk that raced its commit and landed after it (written here straight into the
// engine, as such a chunk would be) is past what the commit declared: no read returns it.
TEST_F(KvStoreChunkTest, AChunkPastTheDeclaredCountNeverReachesAReader) {
  const std::string big(1500, 'x');
  const v1::IdempotencyToken token = Token();
  ASSERT_TRUE(Commit("r", "k", big, token, Upload("r", "k", big, token)).ok());
  const storage::Version version{token.generation_time_us(), token.nonce()};
  storage::RecordWrite late;
  late.table = ChunkTable("ns");
  late.record_id = ChunkRecordId("r", "k", version);
  late.version = version;
  late.ops.push_back(storage::PutOp{ChunkIndexKey(2), "late", 0});
  ASSERT_TRUE(engine_->Write(late).ok());

  EXPECT_EQ(ReadWhole("r"), big);
  v1::ScanItemsRequest scan;
  scan.set_namespace_("ns");
  scan.mutable_selection()->set_include_large_values(true);
  auto page = store_->ScanItems(ns_, scan);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->records(0).items(0).value(), big);

  v1::GetChunkRequest get;
  get.set_namespace_("ns");
  get.set_id("r");
  get.set_key("k");
  *get.mutable_version() = token;
  get.set_index(1);
  EXPECT_TRUE(store_->GetChunk(ns_, get).ok());
  get.set_index(2);
  EXPECT_EQ(store_->GetChunk(ns_, get).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(KvStoreChunkTest, GetChunkReadsOnlyCommittedVersions) {
  const std::string big(1500, 'x');
  const v1::IdempotencyToken token = Token();
  Upload("r", "k", big, token);  // not committed
  v1::GetChunkRequest get;
  get.set_namespace_("ns");
  get.set_id("r");
  get.set_key("k");
  *get.mutable_version() = token;
  EXPECT_EQ(store_->GetChunk(ns_, get).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(Commit("r", "k", big, token, 2).ok());
  EXPECT_TRUE(store_->GetChunk(ns_, get).ok());
}

// Hole 2 of issue 10: pages carrying large values.
TEST_F(KvStoreChunkTest, PagesCountTheBytesOfTheLargeValuesTheyCarry) {
  const std::string big(3000, 'x');  // three chunks each
  for (const std::string key : {"a", "b", "c"}) {
    const v1::IdempotencyToken token = Token(absl::ZeroDuration(), key[0]);
    ASSERT_TRUE(Commit("r", key, big, token, Upload("r", key, big, token)).ok());
  }
  for (int64_t page_bytes : {1000, 3001, 7000}) {
    const int per_page = page_bytes < 6002 ? 1 : 2;  // at least one, never past the limit
    v1::Selection selection;
    selection.set_include_large_values(true);
    selection.set_page_size_bytes(page_bytes);
    std::string token;
    std::vector<std::string> keys;
    int pages = 0;
    do {
      auto page = GetAll("r", selection, token);
      ASSERT_TRUE(page.ok()) << page.status();
      ++pages;
      EXPECT_LE(page->items_size(), per_page) << page_bytes;
      for (const v1::Item& item : page->items()) {
        keys.push_back(item.key());
        EXPECT_EQ(item.value(), big);
      }
      token = page->next_page_token();
    } while (!token.empty() && pages < 10);
    EXPECT_THAT(keys, ElementsAre("a", "b", "c")) << page_bytes;
  }
  // Without the values a page carries metadata only, and all three fit.
  v1::Selection metadata_only;
  metadata_only.set_page_size_bytes(1000);
  auto page = GetAll("r", metadata_only);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->items_size(), 3);
}

TEST_F(KvStoreChunkTest, ScanPagesCountTheBytesOfTheLargeValuesTheyCarry) {
  const std::string big(3000, 'x');
  for (const std::string id : {"r1", "r2"}) {
    for (const std::string key : {"a", "b"}) {
      const v1::IdempotencyToken token = Token(absl::ZeroDuration(), key[0]);
      ASSERT_TRUE(Commit(id, key, big, token, Upload(id, key, big, token)).ok());
    }
  }
  v1::ScanItemsRequest request;
  request.set_namespace_("ns");
  request.mutable_selection()->set_include_large_values(true);
  request.mutable_selection()->set_page_size_bytes(1000);
  std::vector<std::string> seen;
  int pages = 0;
  do {
    auto page = store_->ScanItems(ns_, request);
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    int items = 0;
    for (const auto& record : page->records()) {
      for (const v1::Item& item : record.items()) {
        ++items;
        seen.push_back(record.id() + "/" + item.key());
        EXPECT_EQ(item.value(), big);
      }
    }
    EXPECT_EQ(items, 1);
    request.set_page_token(page->next_page_token());
  } while (!request.page_token().empty() && pages < 10);
  EXPECT_THAT(seen, ElementsAre("r1/a", "r1/b", "r2/a", "r2/b"));
}

// Hole 4 of issue 10: sizes at or above 2^63 must not wrap past the limit.
TEST_F(KvStoreTest, HugeUnsignedSizesAreRefusedNotWrapped) {
  for (uint64_t size :
       {uint64_t{1} << 63, ~uint64_t{0}, uint64_t(ns_.limits.max_value_bytes) + 1}) {
    v1::PutItemsRequest request;
    request.set_namespace_("ns");
    request.set_id("r");
    *request.mutable_token() = Token();
    v1::Item* item = request.add_items();
    item->set_key("k");
    item->set_value("v");
    item->mutable_metadata()->set_codec(v1::VALUE_CODEC_LZ4);
    item->mutable_metadata()->set_uncompressed_size(size);
    absl::Status status = store_->PutItems(ns_, request).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << size;
    EXPECT_THAT(status.message(), HasSubstr("items[0].metadata.uncompressed_size is " +
                                            std::to_string(size) + " bytes"));
    EXPECT_THAT(status.message(), HasSubstr("max_value_bytes"));

    item->clear_value();
    item->mutable_metadata()->set_uncompressed_size(0);
    item->mutable_metadata()->set_chunk_count(1);
    item->mutable_metadata()->set_stored_size(size);
    status = store_->PutItems(ns_, request).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << size;
    EXPECT_THAT(status.message(), HasSubstr("metadata.stored_size"));
  }
  EXPECT_THAT(Contents("r"), ::testing::IsEmpty());
}

// Hole 5 of issue 10: GetChunk validates what it is given, as every call does.
TEST_F(KvStoreChunkTest, GetChunkValidatesItsVersionAndIndex) {
  v1::GetChunkRequest get;
  get.set_namespace_("ns");
  get.set_id("r");
  get.set_key("k");
  get.mutable_version()->set_generation_time_us(1);
  get.mutable_version()->set_nonce(std::string(300 << 10, 'n'));
  absl::Status status = store_->GetChunk(ns_, get).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("version.nonce is 307200 bytes"));
  get.mutable_version()->set_nonce(std::string(16, 'n'));
  get.set_index(1 << 30);
  status = store_->GetChunk(ns_, get).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("max_value_bytes / chunk_bytes"));
}

// Hole 3 of issue 10: what an error quotes of the caller's input stays short.
TEST_F(KvStoreChunkTest, ErrorsQuoteAShortEscapedPrefixOfLongKeys) {
  std::string key(4096, '\0');
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<char>(i);
  absl::Status status = Commit("r", key, std::string(3000, 'x'), Token(), 3);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("(4096 bytes)"));
  EXPECT_LT(status.message().size(), 400u);
}

}  // namespace
}  // namespace stategate::kv
