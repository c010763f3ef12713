#include "src/server/engine_pools.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"

namespace stategate::server {
namespace {

LaneOptions OneThreadTwoQueued() {
  LaneOptions options;
  options.threads = 1;
  options.max_queued = 2;
  options.max_lanes_per_engine = 2;
  return options;
}

// Notifies on every way out of a test body, a failed ASSERT included, so that a task held
// on `release` never keeps a pool's destructor waiting.
struct ReleaseOnExit {
  absl::Notification& release;
  ~ReleaseOnExit() {
    if (!release.HasBeenNotified()) release.Notify();
  }
};

// Queues a task that holds the lane's one thread until `release`, and returns once it runs
// (so it no longer counts as queued).
void HoldTheThread(EnginePools& pools, const std::string& engine, const std::string& shard,
                   absl::Notification& release) {
  absl::Notification running;
  ASSERT_EQ(pools.Submit(engine, shard,
                         [&] {
                           running.Notify();
                           release.WaitForNotification();
                         }),
            EnginePools::Submitted::kQueued);
  ASSERT_TRUE(running.WaitForNotificationWithTimeout(absl::Seconds(30)));
}

TEST(EnginePoolsTest, AStalledShardFillsItsOwnLaneOnlyAndIsRefusedThere) {
  absl::Notification release;
  std::atomic<int> ran{0};
  {
    EnginePools pools({"redis-cluster", "rocksdb"}, OneThreadTwoQueued());
    ReleaseOnExit guard{release};
    // The stalled shard: one call holds its only thread, two wait, the next is refused.
    ASSERT_NO_FATAL_FAILURE(HoldTheThread(pools, "redis-cluster", "a:1", release));
    for (int i = 0; i < 2; ++i) {
      ASSERT_EQ(pools.Submit("redis-cluster", "a:1", [&] { ++ran; }),
                EnginePools::Submitted::kQueued);
    }
    EXPECT_EQ(pools.Submit("redis-cluster", "a:1", [&] { ++ran; }),
              EnginePools::Submitted::kLaneFull);
    // Another shard, the engine's own lane and another engine run meanwhile.
    for (const auto& [engine, shard] : std::vector<std::pair<std::string, std::string>>{
             {"redis-cluster", "b:2"}, {"redis-cluster", ""}, {"rocksdb", ""}}) {
      absl::Notification done;
      ASSERT_EQ(pools.Submit(engine, shard, [&] { done.Notify(); }),
                EnginePools::Submitted::kQueued);
      EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)))
          << engine << " " << shard << " waited behind the stalled shard";
    }
    EXPECT_EQ(ran.load(), 0);
  }  // the destructor runs what was queued
  EXPECT_EQ(ran.load(), 2);
}

TEST(EnginePoolsTest, AnUnknownEngineIsRefusedAndShardsPastTheCapShareTheEngineLane) {
  // Outlive the pools, whose destructor runs what is queued.
  absl::Notification release;
  std::atomic<int> ran{0};
  EnginePools pools({"rocksdb"}, OneThreadTwoQueued());
  ReleaseOnExit guard{release};
  EXPECT_EQ(pools.Submit("nope", "", [] {}), EnginePools::Submitted::kUnknownEngine);
  EXPECT_EQ(pools.Submit("nope", "a:1", [] {}), EnginePools::Submitted::kUnknownEngine);
  // Two shard lanes at most; a third shard's calls run on the engine's own lane.
  ASSERT_NO_FATAL_FAILURE(HoldTheThread(pools, "rocksdb", "", release));
  for (const char* shard : {"a:1", "b:2"}) {
    absl::Notification done;
    ASSERT_EQ(pools.Submit("rocksdb", shard, [&] { done.Notify(); }),
              EnginePools::Submitted::kQueued);
    EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30))) << shard;
  }
  // The engine lane is held, so the third shard's calls queue there: two, then refused.
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(pools.Submit("rocksdb", "c:3", [&] { ++ran; }), EnginePools::Submitted::kQueued);
  }
  EXPECT_EQ(pools.Submit("rocksdb", "c:3", [&] { ++ran; }), EnginePools::Submitted::kLaneFull);
}

}  // namespace
}  // namespace stategate::server
