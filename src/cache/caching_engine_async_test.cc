// CachingEngine's asynchronous forms in front of a real Redis Cluster, with a real memcached:
// they answer what the blocking forms answer, the cache serves the second read, a write
// through one gateway is seen at once through another, and a stopped memcached holds no
// caller's thread.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "src/cache/caching_engine.h"
#include "src/cache/memcached_client.h"
#include "src/storage/redis/redis_engine.h"
#include "src/testbed/memcached_server.h"
#include "src/testbed/redis_cluster.h"

namespace stategate::cache {
namespace {

using storage::KeySpan;
using storage::RecordSlice;
using storage::StorageEngine;
using storage::StoredItem;
using Item = std::pair<std::string, std::string>;

KeySpan Keys(std::vector<std::string> keys) {
  KeySpan span;
  span.by_keys = true;
  span.keys = std::move(keys);
  return span;
}

std::vector<Item> Items(const RecordSlice& slice) {
  std::vector<Item> items;
  for (const StoredItem& item : slice.items) items.emplace_back(item.key, item.value);
  return items;
}

// An asynchronous answer and the thread it came on.
template <typename Result>
struct Answer {
  Result result;
  std::thread::id thread;
};

class CachingEngineAsyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<testbed::MemcachedServer>> memcached =
        testbed::MemcachedServer::Start();
    ASSERT_TRUE(memcached.ok()) << memcached.status();
    memcached_ = *std::move(memcached);
    absl::StatusOr<std::unique_ptr<testbed::RedisCluster>> cluster = testbed::RedisCluster::Start();
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    storage::RedisClusterEngineOptions options;
    options.cluster.seeds = cluster_->seeds();
    absl::StatusOr<std::unique_ptr<StorageEngine>> engine =
        storage::OpenRedisClusterEngine(options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    store_ = *std::move(engine);
    ASSERT_TRUE(store_->CreateTable("t").ok());
  }

  // A gateway: a cache in front of the shared cluster, caching table "t".
  std::unique_ptr<CachingEngine> NewGateway(absl::Duration op_timeout = absl::Milliseconds(200)) {
    MemcachedClientOptions client_options;
    client_options.server = memcached_->address();
    client_options.op_timeout = op_timeout;
    absl::StatusOr<std::unique_ptr<MemcachedClient>> client =
        MemcachedClient::Create(client_options);
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return nullptr;
    CachingEngineOptions options;
    options.table_ttls["t"] = absl::Seconds(30);
    absl::StatusOr<std::unique_ptr<CachingEngine>> gateway =
        CachingEngine::Create(storage::Borrow(store_.get()), *std::move(client), options);
    EXPECT_TRUE(gateway.ok()) << gateway.status();
    return gateway.ok() ? *std::move(gateway) : nullptr;
  }

  static absl::Time Deadline() { return absl::Now() + absl::Seconds(5); }

  Answer<absl::Status> Put(CachingEngine& gateway, const std::string& key,
                           const std::string& value) {
    storage::RecordWrite write;
    write.table = "t";
    write.record_id = "r";
    write.version = storage::Version{absl::ToUnixMicros(absl::Now()), ""};
    write.ops.push_back(storage::PutOp{key, value, 0});
    Answer<absl::Status> answer;
    absl::Notification done;
    gateway.WriteAsync(write, Deadline(), [&](absl::Status status) {
      answer = {std::move(status), std::this_thread::get_id()};
      done.Notify();
    });
    done.WaitForNotification();
    return answer;
  }

  static Answer<absl::StatusOr<RecordSlice>> Get(CachingEngine& gateway,
                                                 std::vector<std::string> keys) {
    Answer<absl::StatusOr<RecordSlice>> answer{absl::UnknownError("not answered"), {}};
    absl::Notification done;
    gateway.ReadAsync("t", "r", Keys(std::move(keys)), {}, Deadline(),
                      [&](absl::StatusOr<RecordSlice> slice) {
                        answer = {std::move(slice), std::this_thread::get_id()};
                        done.Notify();
                      });
    done.WaitForNotification();
    return answer;
  }

  // Fills are not waited for by the read that makes them.
  static void WaitForFills(const CachingEngine& gateway, uint64_t fills) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (gateway.stats().fills < fills && absl::Now() < deadline)
      absl::SleepFor(absl::Milliseconds(1));
    ASSERT_GE(gateway.stats().fills, fills);
  }

  std::unique_ptr<testbed::MemcachedServer> memcached_;
  std::unique_ptr<testbed::RedisCluster> cluster_;
  std::unique_ptr<StorageEngine> store_;
};

TEST_F(CachingEngineAsyncTest, ReadsAndWritesGoThroughTheCacheOnTheLoops) {
  std::unique_ptr<CachingEngine> one = NewGateway();
  std::unique_ptr<CachingEngine> two = NewGateway();
  ASSERT_NE(one, nullptr);
  ASSERT_NE(two, nullptr);
  EXPECT_TRUE(one->IsAsync("t"));

  const Answer<absl::Status> put_a = Put(*one, "a", "1");
  ASSERT_TRUE(put_a.result.ok()) << put_a.result;
  // Answered once its invalidation was: on memcached's loop, not the caller's thread.
  EXPECT_NE(put_a.thread, std::this_thread::get_id());
  ASSERT_TRUE(Put(*one, "b", "2").result.ok());

  Answer<absl::StatusOr<RecordSlice>> first = Get(*one, {"a", "b", "c"});
  ASSERT_TRUE(first.result.ok()) << first.result.status();
  EXPECT_THAT(Items(*first.result), ::testing::ElementsAre(Item("a", "1"), Item("b", "2")));
  EXPECT_NE(first.thread, std::this_thread::get_id());
  EXPECT_EQ(one->stats().misses, 3u);
  WaitForFills(*one, 2);  // the absent "c" is not cached

  // Served from memcached alone, through either gateway: the store is not asked.
  Answer<absl::StatusOr<RecordSlice>> second = Get(*two, {"a", "b"});
  ASSERT_TRUE(second.result.ok()) << second.result.status();
  EXPECT_THAT(Items(*second.result), ::testing::ElementsAre(Item("a", "1"), Item("b", "2")));
  EXPECT_EQ(two->stats().hits, 2u);
  EXPECT_EQ(two->stats().misses, 0u);

  // A write through one gateway is seen at once through the other.
  ASSERT_TRUE(Put(*one, "a", "3").result.ok());
  Answer<absl::StatusOr<RecordSlice>> after = Get(*two, {"a", "b"});
  ASSERT_TRUE(after.result.ok()) << after.result.status();
  EXPECT_THAT(Items(*after.result), ::testing::ElementsAre(Item("a", "3"), Item("b", "2")));

  // The blocking forms agree with the asynchronous ones.
  absl::StatusOr<RecordSlice> blocking = two->Read("t", "r", Keys({"a", "b"}), {});
  ASSERT_TRUE(blocking.ok()) << blocking.status();
  EXPECT_EQ(Items(*blocking), Items(*after.result));
  EXPECT_EQ(one->stats().client.errors + two->stats().client.errors, 0u);
}

TEST_F(CachingEngineAsyncTest, AStoppedMemcachedHoldsNoCallerThread) {
  std::unique_ptr<CachingEngine> gateway = NewGateway(absl::Milliseconds(100));
  ASSERT_NE(gateway, nullptr);
  ASSERT_TRUE(Put(*gateway, "a", "1").result.ok());
  ASSERT_EQ(::kill(memcached_->pid(), SIGSTOP), 0);

  // The first read waits for memcached's op_timeout; its caller does not.
  absl::Notification answered;
  absl::StatusOr<RecordSlice> slice = absl::UnknownError("not answered");
  const absl::Time start = absl::Now();
  gateway->ReadAsync("t", "r", Keys({"a"}), {}, Deadline(), [&](absl::StatusOr<RecordSlice> got) {
    slice = std::move(got);
    answered.Notify();
  });
  EXPECT_FALSE(answered.HasBeenNotified());
  ASSERT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(100));
  ASSERT_TRUE(slice.ok()) << slice.status();
  EXPECT_THAT(Items(*slice), ::testing::ElementsAre(Item("a", "1")));

  // Then the circuit is open: reads and writes go to the store alone, and stay right.
  const Answer<absl::Status> put = Put(*gateway, "a", "2");
  EXPECT_TRUE(put.result.ok()) << put.result;
  Answer<absl::StatusOr<RecordSlice>> again = Get(*gateway, {"a"});
  ASSERT_TRUE(again.result.ok()) << again.result.status();
  EXPECT_THAT(Items(*again.result), ::testing::ElementsAre(Item("a", "2")));
  const CachingEngine::Stats stats = gateway->stats();
  EXPECT_GT(stats.client.errors, 0u);
  EXPECT_GT(stats.bypassed_reads, 0u);
  EXPECT_GT(stats.suspensions, 0u);  // the write's invalidation could not be made
  ASSERT_EQ(::kill(memcached_->pid(), SIGCONT), 0);
}

// A gateway destroyed while its calls wait for memcached waits for their answers: nothing
// calls back into a destroyed engine (ASan would say so), and every caller is answered.
TEST_F(CachingEngineAsyncTest, DestroyedWithCallsUnderWayItAnswersThemFirst) {
  std::unique_ptr<CachingEngine> gateway = NewGateway(absl::Milliseconds(200));
  ASSERT_NE(gateway, nullptr);
  ASSERT_TRUE(Put(*gateway, "a", "1").result.ok());
  ASSERT_EQ(::kill(memcached_->pid(), SIGSTOP), 0);
  constexpr int kCalls = 20;
  std::atomic<int> answered{0}, ok{0};
  for (int i = 0; i < kCalls; ++i) {
    gateway->ReadAsync("t", "r", Keys({"a"}), {}, Deadline(),
                       [&](absl::StatusOr<RecordSlice> slice) {
                         if (slice.ok()) ++ok;
                         ++answered;
                       });
  }
  EXPECT_LT(answered.load(), kCalls);  // they wait for memcached's op_timeout
  gateway.reset();
  EXPECT_EQ(answered.load(), kCalls);
  EXPECT_EQ(ok.load(), kCalls);  // from the store, once memcached did not answer
  ASSERT_EQ(::kill(memcached_->pid(), SIGCONT), 0);
}

}  // namespace
}  // namespace stategate::cache
