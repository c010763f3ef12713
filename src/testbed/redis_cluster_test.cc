#include "src/testbed/redis_cluster.h"
#include "src/redis/cluster_client.h"

#include <signal.h>

#include <filesystem>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace stategate::testbed {
namespace {

std::unique_ptr<RedisCluster> StartCluster() {
  absl::StatusOr<std::unique_ptr<RedisCluster>> cluster = RedisCluster::Start();
  EXPECT_TRUE(cluster.ok()) << cluster.status();
  return cluster.ok() ? *std::move(cluster) : nullptr;
}

TEST(RedisClusterTest, StartsThreeMastersWithOneReplicaEachAndStopsThemAll) {
  std::unique_ptr<RedisCluster> cluster = StartCluster();
  ASSERT_NE(cluster, nullptr);
  ASSERT_EQ(cluster->nodes().size(), 6u);
  EXPECT_EQ(cluster->masters().size(), 3u);
  EXPECT_EQ(cluster->replicas().size(), 3u);
  EXPECT_EQ(cluster->seeds().size(), 6u);
  EXPECT_EQ(cluster->seed_list().find("127.0.0.1:"), 0u);

  int assigned = 0;
  for (const RedisNode& master : cluster->masters()) {
    for (const auto& [first, last] : master.slots) assigned += last - first + 1;
  }
  EXPECT_EQ(assigned, 16384);
  for (const RedisNode& replica : cluster->replicas()) {
    EXPECT_TRUE(replica.slots.empty());
    EXPECT_NE(replica.master_port, 0);
  }

  // KeySlot agrees with the cluster, hash tags included.
  const int port = cluster->nodes()[0].port;
  for (const std::string key : {"foo", "bar", "user:{42}:name", "{}x", "stategate"}) {
    absl::StatusOr<RedisReply> slot = RedisCommand(port, {"CLUSTER", "KEYSLOT", key});
    ASSERT_TRUE(slot.ok()) << slot.status();
    EXPECT_EQ(slot->integer, redis::KeySlot(key)) << key;
  }
  absl::StatusOr<RedisNode> owner = cluster->MasterOfSlot(redis::KeySlot("foo"));
  ASSERT_TRUE(owner.ok()) << owner.status();
  EXPECT_EQ(owner->role, RedisRole::kMaster);
  EXPECT_GT(owner->pid, 0);
  EXPECT_EQ(cluster->MasterOfSlot(16384).status().code(), absl::StatusCode::kInvalidArgument);

  std::vector<pid_t> pids;
  for (const RedisNode& node : cluster->nodes()) pids.push_back(node.pid);
  const std::string dir = cluster->dir();
  cluster.reset();
  for (pid_t pid : pids) EXPECT_NE(::kill(pid, 0), 0) << pid << " still runs";
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(RedisClusterTest, AReplicatedKeySurvivesTheFailoverOfItsMasterWhichRejoinsAsReplica) {
  std::unique_ptr<RedisCluster> cluster = StartCluster();
  ASSERT_NE(cluster, nullptr);
  const std::string key = "stategate:failover";
  const int slot = redis::KeySlot(key);
  absl::StatusOr<RedisNode> old_master = cluster->MasterOfSlot(slot);
  ASSERT_TRUE(old_master.ok()) << old_master.status();

  // On one connection: WAIT counts the acknowledgements of its own connection's writes (on
  // a new one it would return at once with every online replica, the SET's or not).
  absl::StatusOr<std::vector<RedisReply>> set_and_wait = RedisCommands(
      old_master->port, {{"SET", key, "survives"}, {"WAIT", "1", "5000"}}, absl::Seconds(10));
  ASSERT_TRUE(set_and_wait.ok()) << set_and_wait.status();
  const RedisReply& set = (*set_and_wait)[0];
  const RedisReply& wait = (*set_and_wait)[1];
  ASSERT_EQ(set.str, "OK");
  ASSERT_EQ(wait.type, RedisReply::Type::kInteger) << wait.str;
  ASSERT_GE(wait.integer, 1) << "the SET reached no replica";

  const absl::Time killed_at = absl::Now();
  ASSERT_TRUE(cluster->KillNode(old_master->port).ok());
  EXPECT_EQ(cluster->KillNode(old_master->port).code(), absl::StatusCode::kNotFound);
  const absl::Status failover = cluster->WaitForFailover(old_master->port, absl::Seconds(20));
  ASSERT_TRUE(failover.ok()) << failover;
  std::cerr << "failover took " << absl::FormatDuration(absl::Now() - killed_at) << "\n";

  absl::StatusOr<RedisNode> new_master = cluster->MasterOfSlot(slot);
  ASSERT_TRUE(new_master.ok()) << new_master.status();
  EXPECT_NE(new_master->port, old_master->port);
  EXPECT_GT(new_master->pid, 0);
  EXPECT_EQ(cluster->masters().size(), 3u);
  EXPECT_EQ(cluster->replicas().size(), 2u);

  absl::StatusOr<RedisReply> get = RedisCommand(new_master->port, {"GET", key});
  ASSERT_TRUE(get.ok()) << get.status();
  EXPECT_EQ(get->type, RedisReply::Type::kString) << get->str;
  EXPECT_EQ(get->str, "survives");

  // Restarted, the old master rejoins as a replica of its successor.
  EXPECT_EQ(cluster->RestartNode(new_master->port).code(), absl::StatusCode::kFailedPrecondition);
  const absl::Status restarted = cluster->RestartNode(old_master->port);
  ASSERT_TRUE(restarted.ok()) << restarted;
  EXPECT_EQ(cluster->masters().size(), 3u);
  EXPECT_EQ(cluster->replicas().size(), 3u);
  for (const RedisNode& node : cluster->nodes()) {
    if (node.port != old_master->port) continue;
    EXPECT_EQ(node.role, RedisRole::kReplica);
    EXPECT_EQ(node.master_port, new_master->port);
    EXPECT_GT(node.pid, 0);
  }
}

TEST(RedisClusterTest, BadOptionsAndMissingBinariesFailCleanly) {
  RedisClusterOptions two_masters;
  two_masters.masters = 2;
  EXPECT_EQ(RedisCluster::Start(two_masters).status().code(), absl::StatusCode::kInvalidArgument);
  RedisClusterOptions no_server;
  no_server.redis_server = "no-such-redis-server-stategate";
  absl::StatusOr<std::unique_ptr<RedisCluster>> missing = RedisCluster::Start(no_server);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
}

}  // namespace
}  // namespace stategate::testbed
