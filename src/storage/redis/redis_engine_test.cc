#include "src/storage/redis/redis_engine.h"

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/common/clock.h"
#include "src/redis/cluster_client.h"
#include "src/storage/conformance_test_suite.h"
#include "test/lib/test_servers.h"

namespace stategate::storage {
namespace {

RedisClusterEngineOptions Options(Clock* clock, absl::Duration grace) {
  RedisClusterEngineOptions options;
  options.cluster.seeds = absl::StrSplit(testing::SharedRedisClusterSeeds(), ',');
  options.clock = clock;
  options.tombstone_grace = grace;
  options.replicas_ack_timeout = absl::Seconds(1);
  return options;
}

std::unique_ptr<StorageEngine> MakeRedis(Clock* clock, absl::Duration tombstone_grace) {
  absl::StatusOr<std::unique_ptr<StorageEngine>> engine =
      OpenRedisClusterEngine(Options(clock, tombstone_grace));
  if (!engine.ok()) {
    ADD_FAILURE() << "OpenRedisClusterEngine: " << engine.status();
    return nullptr;
  }
  return *std::move(engine);
}

}  // namespace

// The same suite as RocksDB, unchanged, against a real 3-master, 3-replica cluster. Tests
// work in tables unique to them, so they share the cluster.
INSTANTIATE_TEST_SUITE_P(RedisCluster, StorageEngineConformance,
                         ::testing::Values(EngineFactory{"redis_cluster", MakeRedis, nullptr}),
                         EngineFactoryName);

namespace {

using ::testing::ElementsAre;

class RedisClusterEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<StorageEngine>> engine =
        OpenRedisClusterEngine(Options(&clock_, absl::Hours(1)));
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    // Unique per run: test processes share the cluster.
    table_ = "redis_engine_test_" + std::to_string(std::random_device()());
    ASSERT_TRUE(engine_->CreateTable(table_).ok());
  }
  void TearDown() override {
    if (engine_ != nullptr) {
      EXPECT_TRUE(engine_->DropTable(table_).ok());
    }
  }

  RecordWrite Put(const std::string& id, const std::string& key, const std::string& value,
                  int64_t time_us) {
    RecordWrite write;
    write.table = table_;
    write.record_id = id;
    write.version = Version{time_us, "n"};
    write.ops.push_back(PutOp{key, value, 0});
    return write;
  }

  std::vector<std::string> Values(const std::string& id) {
    absl::StatusOr<RecordSlice> slice = engine_->Read(table_, id, KeySpan{}, ReadLimits{});
    EXPECT_TRUE(slice.ok()) << slice.status();
    std::vector<std::string> out;
    if (slice.ok()) {
      for (const StoredItem& item : slice->items) out.push_back(item.value);
    }
    return out;
  }

  FakeClock clock_{absl::FromUnixSeconds(1'800'000'000)};
  std::unique_ptr<StorageEngine> engine_;
  std::string table_;
};

TEST_F(RedisClusterEngineTest, ReplicasAckWaitsForAReplica) {
  RecordWrite write = Put("r1", "k", "v1", clock_.NowMicros());
  write.replicas_ack = 1;  // every master of the test cluster has one replica
  ASSERT_TRUE(engine_->Write(write).ok());
  EXPECT_THAT(Values("r1"), ElementsAre("v1"));
}

// A write that may degrade (replica_shortfall: degrade) to a master it has not written to
// before first waits only briefly and asks the master how many replicas it has; having
// one, the write then waits for it as any other, and does not count as degraded.
TEST_F(RedisClusterEngineTest, ADegradingWriteStillWaitsForALiveReplica) {
  for (int i = 0; i < 20; ++i) {  // every master, most of them for the first time
    RecordWrite write = Put("d" + std::to_string(i), "k", "v", clock_.NowMicros());
    write.replicas_ack = 1;
    write.accept_fewer_live_replicas = true;
    ASSERT_TRUE(engine_->Write(write).ok());
  }
  EXPECT_EQ(engine_->DegradedWrites(), 0);
}

TEST_F(RedisClusterEngineTest, ReplicasAckFailsRetryablyWhenReplicasAreMissing) {
  RecordWrite write = Put("r2", "k", "v1", clock_.NowMicros());
  write.replicas_ack = 3;  // more replicas than a master has
  const absl::Status status = engine_->Write(write);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(status.message(), ::testing::HasSubstr("replicas_ack"));
  // Applied on the master all the same; the retry with one replica is idempotent.
  write.replicas_ack = 1;
  EXPECT_TRUE(engine_->Write(write).ok());
  EXPECT_THAT(Values("r2"), ElementsAre("v1"));
}

TEST_F(RedisClusterEngineTest, RecordsSpreadOverEveryMaster) {
  // 256 buckets over the cluster's slots: a few hundred records reach every master.
  std::vector<int> slots;
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(engine_->Write(Put("rec" + std::to_string(i), "k", "v", clock_.NowMicros())).ok());
  }
  absl::StatusOr<TableSlice> scan = engine_->Scan(table_, std::nullopt, ReadLimits{});
  ASSERT_TRUE(scan.ok()) << scan.status();
  EXPECT_EQ(scan->records.size(), 300u);
  EXPECT_FALSE(scan->resume.has_value());
}

TEST_F(RedisClusterEngineTest, UnreachableClusterIsUnavailable) {
  RedisClusterEngineOptions options;
  options.cluster.seeds = {"127.0.0.1:1"};
  const absl::StatusOr<std::unique_ptr<StorageEngine>> engine = OpenRedisClusterEngine(options);
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kUnavailable) << engine.status();
}

}  // namespace
}  // namespace stategate::storage
