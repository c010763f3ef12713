// ClusterClient against a real Redis Cluster while a slot moves between masters the way
// `redis-cli --cluster reshard` moves it: IMPORTING/MIGRATING (ASK), MIGRATE, then the new
// owner everywhere (MOVED).
#include "src/redis/cluster_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "src/testbed/redis_cluster.h"

namespace stategate::redis {
namespace {

using testbed::RedisCluster;
using testbed::RedisCommand;
using testbed::RedisNode;

absl::StatusOr<Reply> Send(ClusterClient& client, const Command& command) {
  absl::StatusOr<std::vector<Reply>> replies = client.Pipeline(command[1], {command});
  if (!replies.ok()) return replies.status();
  return (*replies)[0];
}

void Admin(int port, const std::vector<std::string>& args) {
  absl::StatusOr<testbed::RedisReply> reply = RedisCommand(port, args);
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_NE(reply->type, testbed::RedisReply::Type::kError) << args[0] << ": " << reply->str;
}

TEST(ClusterClientTest, FollowsASlotAsItMovesBetweenMasters) {
  absl::StatusOr<std::unique_ptr<RedisCluster>> cluster = RedisCluster::Start();
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ClusterOptions options;
  options.seeds = {(*cluster)->seeds().front()};  // the rest are discovered
  absl::StatusOr<std::unique_ptr<ClusterClient>> client = ClusterClient::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();

  const std::string old_key = "{moving}old";
  const std::string new_key = "{moving}new";
  const int slot = KeySlot(old_key);
  ASSERT_EQ(slot, KeySlot(new_key));
  ASSERT_TRUE(Send(**client, {"SET", old_key, "before the move"}).ok());

  absl::StatusOr<RedisNode> source = (*cluster)->MasterOfSlot(slot);
  ASSERT_TRUE(source.ok()) << source.status();
  RedisNode target;
  for (const RedisNode& master : (*cluster)->masters()) {
    if (master.port != source->port) target = master;
  }
  ASSERT_GT(target.port, 0);

  // Mid-migration: keys still on the source are served there; others are ASKed for on
  // the target.
  Admin(target.port, {"CLUSTER", "SETSLOT", std::to_string(slot), "IMPORTING", source->id});
  Admin(source->port, {"CLUSTER", "SETSLOT", std::to_string(slot), "MIGRATING", target.id});
  absl::StatusOr<Reply> set = Send(**client, {"SET", new_key, "during the move"});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->str, "OK");
  EXPECT_GE((*client)->stats().asks, 1);
  absl::StatusOr<Reply> old_value = Send(**client, {"GET", old_key});
  ASSERT_TRUE(old_value.ok()) << old_value.status();
  EXPECT_EQ(old_value->str, "before the move");

  // The rest moves, and the target owns the slot: the source answers MOVED.
  Admin(source->port,
        {"MIGRATE", "127.0.0.1", std::to_string(target.port), "", "0", "5000", "KEYS", old_key});
  for (const RedisNode& master : (*cluster)->masters()) {
    Admin(master.port, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", target.id});
  }
  const int64_t moved_before = (*client)->stats().moved;
  for (const std::string& key : {old_key, new_key}) {
    absl::StatusOr<Reply> value = Send(**client, {"GET", key});
    ASSERT_TRUE(value.ok()) << value.status();
    EXPECT_EQ(value->type, Reply::Type::kString) << key << ": " << value->str;
  }
  EXPECT_GE((*client)->stats().moved, moved_before + 1);

  // A node that cannot be reached at all is UNAVAILABLE after the retry window, not a hang.
  ClusterOptions nowhere;
  nowhere.seeds = {"127.0.0.1:1"};
  EXPECT_EQ(ClusterClient::Connect(nowhere).status().code(), absl::StatusCode::kUnavailable);
}

TEST(ClusterClientTest, KeySlotMatchesTheSpecification) {
  EXPECT_EQ(KeySlot("123456789"), 0x31C3);  // the CRC16 check value of the spec
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("{user1000}.followers"));
  EXPECT_EQ(KeySlot("foo{}{bar}"), KeySlot(std::string_view("foo{}{bar}")));
  EXPECT_NE(KeySlot("{}a"), KeySlot("{}b"));  // an empty tag: the whole key is hashed
}

}  // namespace
}  // namespace stategate::redis
