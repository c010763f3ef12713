// KvStore's asynchronous forms on a real Redis Cluster (which answers them on its client's
// event loop) and on RocksDB (which has none): what they answer, on which thread, and that
// a stopped master never holds the caller.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "src/kv/kv_store.h"
#include "src/redis/cluster_client.h"
#include "src/storage/redis/redis_engine.h"
#include "src/storage/rocksdb/rocksdb_engine.h"
#include "src/testbed/redis_cluster.h"
#include "test/lib/temp_dir.h"

namespace stategate::kv {
namespace {

using testbed::RedisCluster;
using testbed::RedisNode;

v1::IdempotencyToken Token(char fill) {
  v1::IdempotencyToken token;
  token.set_generation_time_us(absl::ToUnixMicros(absl::Now()));
  token.set_nonce(std::string(16, fill));
  return token;
}

// An answer of an asynchronous form, and the thread it came on.
template <typename Response>
struct Answer {
  absl::StatusOr<Response> response = absl::UnknownError("not answered");
  std::thread::id thread;
};

// Starts an asynchronous call and waits for its answer (a test may wait; the store does
// not).
template <typename Response, typename Start>
Answer<Response> Await(Start start) {
  Answer<Response> answer;
  absl::Notification done;
  start([&](absl::StatusOr<Response> response) {
    answer.response = std::move(response);
    answer.thread = std::this_thread::get_id();
    done.Notify();
  });
  done.WaitForNotification();
  return answer;
}

class KvStoreAsyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<RedisCluster>> cluster = RedisCluster::Start();
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster);
    storage::RedisClusterEngineOptions options;
    options.cluster.seeds = cluster_->seeds();
    absl::StatusOr<std::unique_ptr<storage::StorageEngine>> engine =
        storage::OpenRedisClusterEngine(options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
    KvStoreOptions kv_options;
    kv_options.page_token_secret = "test-secret";
    store_ = std::make_unique<KvStore>(engine_.get(), Clock::Real(), kv_options);
    ns_.name = "async";
    ns_.replicas_ack = 1;
    ns_.client.chunk_bytes = 1024;
    ASSERT_TRUE(store_->Prepare(ns_).ok());
  }

  v1::PutItemsRequest PutRequest(const std::string& id, const std::string& key,
                                 const std::string& value, char token) {
    v1::PutItemsRequest request;
    request.set_namespace_(ns_.name);
    request.set_id(id);
    v1::Item* item = request.add_items();
    item->set_key(key);
    item->set_value(value);
    *request.mutable_token() = Token(token);
    return request;
  }
  v1::GetItemsRequest GetRequest(const std::string& id) {
    v1::GetItemsRequest request;
    request.set_namespace_(ns_.name);
    request.set_id(id);
    request.mutable_predicate()->mutable_all();
    return request;
  }
  absl::Time Deadline() { return absl::Now() + absl::Seconds(5); }

  std::unique_ptr<RedisCluster> cluster_;
  std::unique_ptr<storage::StorageEngine> engine_;
  std::unique_ptr<KvStore> store_;
  NamespaceConfig ns_;
};

TEST_F(KvStoreAsyncTest, RedisAnswersEveryFormOnItsEngineThread) {
  ASSERT_TRUE(store_->IsAsync(ns_));
  const v1::PutItemsRequest put = PutRequest("r1", "a", "one", 'p');
  Answer<v1::PutItemsResponse> put_answer = Await<v1::PutItemsResponse>(
      [&](auto done) { store_->PutItemsAsync(ns_, put, Deadline(), std::move(done)); });
  ASSERT_TRUE(put_answer.response.ok()) << put_answer.response.status();
  EXPECT_NE(put_answer.thread, std::this_thread::get_id());

  v1::MutateItemsRequest mutate;
  mutate.set_namespace_(ns_.name);
  mutate.set_id("r1");
  v1::Item* b = mutate.add_mutations()->mutable_put();
  b->set_key("b");
  b->set_value("two");
  *mutate.mutable_token() = Token('m');
  Answer<v1::MutateItemsResponse> mutated = Await<v1::MutateItemsResponse>(
      [&](auto done) { store_->MutateItemsAsync(ns_, mutate, Deadline(), std::move(done)); });
  ASSERT_TRUE(mutated.response.ok()) << mutated.response.status();

  const v1::GetItemsRequest get = GetRequest("r1");
  Answer<v1::GetItemsResponse> read = Await<v1::GetItemsResponse>(
      [&](auto done) { store_->GetItemsAsync(ns_, get, Deadline(), std::move(done)); });
  ASSERT_TRUE(read.response.ok()) << read.response.status();
  ASSERT_EQ(read.response->items_size(), 2);
  EXPECT_EQ(read.response->items(0).value(), "one");
  EXPECT_EQ(read.response->items(1).value(), "two");
  EXPECT_NE(read.thread, std::this_thread::get_id());
  // The blocking form reads the same.
  absl::StatusOr<v1::GetItemsResponse> blocking = store_->GetItems(ns_, get);
  ASSERT_TRUE(blocking.ok()) << blocking.status();
  EXPECT_EQ(blocking->SerializeAsString(), read.response->SerializeAsString());

  v1::DeleteItemsRequest del;
  del.set_namespace_(ns_.name);
  del.set_id("r1");
  del.mutable_predicate()->mutable_keys()->add_keys("a");
  *del.mutable_token() = Token('d');
  Answer<v1::DeleteItemsResponse> deleted = Await<v1::DeleteItemsResponse>(
      [&](auto done) { store_->DeleteItemsAsync(ns_, del, Deadline(), std::move(done)); });
  ASSERT_TRUE(deleted.response.ok()) << deleted.response.status();
  read = Await<v1::GetItemsResponse>(
      [&](auto done) { store_->GetItemsAsync(ns_, get, Deadline(), std::move(done)); });
  ASSERT_TRUE(read.response.ok()) << read.response.status();
  ASSERT_EQ(read.response->items_size(), 1);
  EXPECT_EQ(read.response->items(0).key(), "b");

  // Bad input is answered as the blocking form answers it, naming the field.
  v1::PutItemsRequest bad = PutRequest("", "a", "x", 'b');
  Answer<v1::PutItemsResponse> refused = Await<v1::PutItemsResponse>(
      [&](auto done) { store_->PutItemsAsync(ns_, bad, Deadline(), std::move(done)); });
  EXPECT_EQ(refused.response.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.response.status(), store_->PutItems(ns_, bad).status());
}

// A large value's chunks go up and come back without a thread waiting: the upload, its
// commit (which checks the chunks, on the blocking form), then each chunk read.
TEST_F(KvStoreAsyncTest, ChunksGoUpAndComeBackAsynchronously) {
  const v1::IdempotencyToken token = Token('k');
  const std::string chunks[] = {std::string(1024, 'x'), std::string(976, 'y')};
  for (uint32_t i = 0; i < 2; ++i) {
    v1::PutChunkRequest put;
    put.set_namespace_(ns_.name);
    put.set_id("big");
    put.set_key("v");
    *put.mutable_token() = token;
    put.set_index(i);
    put.set_data(chunks[i]);
    Answer<v1::PutChunkResponse> stored = Await<v1::PutChunkResponse>(
        [&](auto done) { store_->PutChunkAsync(ns_, put, Deadline(), std::move(done)); });
    ASSERT_TRUE(stored.response.ok()) << stored.response.status();
    EXPECT_NE(stored.thread, std::this_thread::get_id());
  }
  v1::PutItemsRequest commit = PutRequest("big", "v", "", 'k');
  *commit.mutable_token() = token;
  commit.mutable_items(0)->mutable_metadata()->set_chunk_count(2);
  commit.mutable_items(0)->mutable_metadata()->set_stored_size(2000);
  ASSERT_TRUE(store_->PutItems(ns_, commit).ok());

  v1::GetChunkRequest get;
  get.set_namespace_(ns_.name);
  get.set_id("big");
  get.set_key("v");
  *get.mutable_version() = token;
  for (uint32_t i = 0; i < 2; ++i) {
    get.set_index(i);
    Answer<v1::GetChunkResponse> read = Await<v1::GetChunkResponse>(
        [&](auto done) { store_->GetChunkAsync(ns_, get, Deadline(), std::move(done)); });
    ASSERT_TRUE(read.response.ok()) << read.response.status();
    EXPECT_EQ(read.response->data(), chunks[i]);
  }
  // Another version's chunk is not there; a committed version's chunks cannot change.
  *get.mutable_version() = Token('o');
  get.set_index(0);
  Answer<v1::GetChunkResponse> other = Await<v1::GetChunkResponse>(
      [&](auto done) { store_->GetChunkAsync(ns_, get, Deadline(), std::move(done)); });
  EXPECT_EQ(other.response.status().code(), absl::StatusCode::kNotFound);
  v1::PutChunkRequest late;
  late.set_namespace_(ns_.name);
  late.set_id("big");
  late.set_key("v");
  *late.mutable_token() = token;
  late.set_index(2);
  late.set_data("z");
  Answer<v1::PutChunkResponse> refused = Await<v1::PutChunkResponse>(
      [&](auto done) { store_->PutChunkAsync(ns_, late, Deadline(), std::move(done)); });
  EXPECT_EQ(refused.response.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.response.status(), store_->PutChunk(ns_, late).status());
}

// A scan pages through every record of every shard, answered on the engine's thread, and
// its pages are the blocking form's: the same records, the same page tokens.
TEST_F(KvStoreAsyncTest, ScansPageThroughEveryRecordAsTheBlockingFormDoes) {
  constexpr int kRecords = 25;
  for (int i = 0; i < kRecords; ++i) {
    const std::string id = absl::StrCat("scan-", i);
    ASSERT_TRUE(store_->PutItems(ns_, PutRequest(id, "a", "one", 'a')).ok());
    ASSERT_TRUE(store_->PutItems(ns_, PutRequest(id, "b", "two", 'b')).ok());
  }
  v1::ScanItemsRequest scan;
  scan.set_namespace_(ns_.name);
  scan.mutable_selection()->set_item_limit(3);  // pages end inside records too
  ns_.range_read.target = absl::Seconds(10);    // and only there, however slow the machine
  std::set<std::string> seen;
  int items = 0, pages = 0;
  do {
    Answer<v1::ScanItemsResponse> page = Await<v1::ScanItemsResponse>(
        [&](auto done) { store_->ScanItemsAsync(ns_, scan, Deadline(), std::move(done)); });
    ASSERT_TRUE(page.response.ok()) << page.response.status();
    EXPECT_NE(page.thread, std::this_thread::get_id());
    absl::StatusOr<v1::ScanItemsResponse> blocking = store_->ScanItems(ns_, scan);
    ASSERT_TRUE(blocking.ok()) << blocking.status();
    EXPECT_EQ(page.response->SerializeAsString(), blocking->SerializeAsString());
    for (const auto& record : page.response->records()) {
      seen.insert(record.id());
      items += record.items_size();
    }
    scan.set_page_token(page.response->next_page_token());
    ASSERT_LT(++pages, 100);
  } while (!scan.page_token().empty());
  EXPECT_EQ(seen.size(), static_cast<size_t>(kRecords));
  EXPECT_EQ(items, 2 * kRecords);
}

TEST_F(KvStoreAsyncTest, WorkThatWouldBlockIsHandedBackUndone) {
  // A read that includes large values reads their chunks: the blocking form's work.
  v1::GetItemsRequest large = GetRequest("r2");
  large.mutable_selection()->set_include_large_values(true);
  Answer<v1::GetItemsResponse> read = Await<v1::GetItemsResponse>(
      [&](auto done) { store_->GetItemsAsync(ns_, large, Deadline(), std::move(done)); });
  EXPECT_TRUE(storage::IsWouldBlock(read.response.status())) << read.response.status();
  v1::ScanItemsRequest large_scan;
  large_scan.set_namespace_(ns_.name);
  large_scan.mutable_selection()->set_include_large_values(true);
  Answer<v1::ScanItemsResponse> scanned = Await<v1::ScanItemsResponse>(
      [&](auto done) { store_->ScanItemsAsync(ns_, large_scan, Deadline(), std::move(done)); });
  EXPECT_TRUE(storage::IsWouldBlock(scanned.response.status())) << scanned.response.status();

  // So is a commit of a chunked value (its chunks are checked first); nothing is written.
  v1::PutItemsRequest chunked = PutRequest("r2", "big", "", 'c');
  chunked.mutable_items(0)->mutable_metadata()->set_chunk_count(2);
  chunked.mutable_items(0)->mutable_metadata()->set_stored_size(2000);
  Answer<v1::PutItemsResponse> put = Await<v1::PutItemsResponse>(
      [&](auto done) { store_->PutItemsAsync(ns_, chunked, Deadline(), std::move(done)); });
  EXPECT_TRUE(storage::IsWouldBlock(put.response.status())) << put.response.status();
  absl::StatusOr<v1::GetItemsResponse> after = store_->GetItems(ns_, GetRequest("r2"));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->items_size(), 0);

  // RocksDB has no asynchronous forms: every call is handed back.
  stategate::testing::TempDir dir;
  storage::RocksDbOptions options;
  options.path = dir.path() + "/db";
  std::unique_ptr<storage::StorageEngine> rocksdb = *storage::OpenRocksDbEngine(options);
  KvStoreOptions kv_options;
  kv_options.page_token_secret = "test-secret";
  KvStore local(rocksdb.get(), Clock::Real(), kv_options);
  ASSERT_TRUE(local.Prepare(ns_).ok());
  EXPECT_FALSE(local.IsAsync(ns_));
  const v1::PutItemsRequest plain = PutRequest("r3", "a", "x", 'r');
  Answer<v1::PutItemsResponse> local_put = Await<v1::PutItemsResponse>(
      [&](auto done) { local.PutItemsAsync(ns_, plain, Deadline(), std::move(done)); });
  EXPECT_TRUE(storage::IsWouldBlock(local_put.response.status())) << local_put.response.status();
}

// The caller's thread is never the one that waits: a call to a stopped master returns at
// once, and its answer (UNAVAILABLE) comes by its deadline, on the engine's thread.
TEST_F(KvStoreAsyncTest, AStoppedMasterHoldsNoCallerThread) {
  const std::string id = "stalled";
  const v1::PutItemsRequest put = PutRequest(id, "a", "x", 's');
  ASSERT_TRUE(store_->PutItems(ns_, put).ok());
  const int slot = redis::KeySlot(storage::RecordHashTag(id));
  absl::StatusOr<RedisNode> master = cluster_->MasterOfSlot(slot);
  ASSERT_TRUE(master.ok()) << master.status();
  ASSERT_EQ(kill(master->pid, SIGSTOP), 0);

  const v1::GetItemsRequest get = GetRequest(id);
  absl::Notification answered;
  absl::StatusOr<v1::GetItemsResponse> response = absl::UnknownError("not answered");
  const absl::Time deadline = absl::Now() + absl::Milliseconds(300);
  store_->GetItemsAsync(ns_, get, deadline, [&](absl::StatusOr<v1::GetItemsResponse> r) {
    response = std::move(r);
    answered.Notify();
  });
  EXPECT_FALSE(answered.HasBeenNotified());  // returned before its master could answer
  ASSERT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_GE(absl::Now(), deadline);
  EXPECT_TRUE(absl::IsUnavailable(response.status())) << response.status();
  ASSERT_EQ(kill(master->pid, SIGCONT), 0);
}

}  // namespace
}  // namespace stategate::kv
