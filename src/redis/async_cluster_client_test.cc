// AsyncClusterClient against a real Redis Cluster: a slot that moves (ASK, then MOVED), a
// stopped master, a master lost for good, many callers at once, and shutting down with
// calls in flight.
#include "src/redis/async_cluster_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "src/testbed/redis_cluster.h"

namespace stategate::redis {
namespace {

using testbed::RedisCluster;
using testbed::RedisCommand;
using testbed::RedisNode;

std::unique_ptr<RedisCluster> StartCluster() {
  absl::StatusOr<std::unique_ptr<RedisCluster>> cluster = RedisCluster::Start();
  EXPECT_TRUE(cluster.ok()) << cluster.status();
  return cluster.ok() ? std::move(*cluster) : nullptr;
}

std::unique_ptr<AsyncClusterClient> ConnectTo(const RedisCluster& cluster) {
  ClusterOptions options;
  options.seeds = {cluster.seeds().front()};  // the rest are discovered
  absl::StatusOr<std::unique_ptr<AsyncClusterClient>> client = AsyncClusterClient::Connect(options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(*client) : nullptr;
}

// Runs one call and waits for its answer (a test may block; the client never does).
struct Answer {
  AsyncClusterClient::Replies replies = absl::UnknownError("not answered");
  std::thread::id thread;
  absl::Duration took;
};
Answer RunPipeline(AsyncClusterClient& client, const std::string& key,
                   std::vector<Command> commands, CallOptions options = {}) {
  Answer answer;
  absl::Notification done;
  const absl::Time start = absl::Now();
  client.Pipeline(key, std::move(commands), options, [&](AsyncClusterClient::Replies replies) {
    answer.replies = std::move(replies);
    answer.thread = std::this_thread::get_id();
    answer.took = absl::Now() - start;
    done.Notify();
  });
  done.WaitForNotification();
  return answer;
}
// One command, on the master of its first argument's slot.
Answer Call(AsyncClusterClient& client, const Command& command, CallOptions options = {}) {
  return RunPipeline(client, command[1], {command}, options);
}

void ExpectReply(const Answer& answer, const std::string& value) {
  ASSERT_TRUE(answer.replies.ok()) << answer.replies.status();
  ASSERT_EQ(answer.replies->size(), 1u);
  EXPECT_EQ((*answer.replies)[0].str, value);
}

void Admin(int port, const std::vector<std::string>& args) {
  absl::StatusOr<testbed::RedisReply> reply = RedisCommand(port, args);
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_NE(reply->type, testbed::RedisReply::Type::kError) << args[0] << ": " << reply->str;
}

// A key whose slot `master` serves.
std::string KeyOn(const RedisNode& master, const std::string& prefix) {
  for (int i = 0;; ++i) {
    std::string key = prefix + std::to_string(i);
    const int slot = KeySlot(key);
    for (const auto& [first, last] : master.slots) {
      if (slot >= first && slot <= last) return key;
    }
  }
}

TEST(AsyncClusterClientTest, AnswersOnItsLoopAndFollowsASlotAsItMoves) {
  std::unique_ptr<RedisCluster> cluster = StartCluster();
  ASSERT_NE(cluster, nullptr);
  std::unique_ptr<AsyncClusterClient> client = ConnectTo(*cluster);
  ASSERT_NE(client, nullptr);

  const std::string old_key = "{moving}old";
  const std::string new_key = "{moving}new";
  const int slot = KeySlot(old_key);
  Answer set = Call(*client, {"SET", old_key, "before the move"});
  ExpectReply(set, "OK");
  EXPECT_NE(set.thread, std::this_thread::get_id());  // the loop's, not the caller's

  absl::StatusOr<RedisNode> source = cluster->MasterOfSlot(slot);
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_EQ(client->MasterOf(old_key), source->address());
  RedisNode target;
  for (const RedisNode& master : cluster->masters()) {
    if (master.port != source->port) target = master;
  }
  ASSERT_GT(target.port, 0);

  // Mid-migration: keys still on the source are served there; others are ASKed for on
  // the target.
  Admin(target.port, {"CLUSTER", "SETSLOT", std::to_string(slot), "IMPORTING", source->id});
  Admin(source->port, {"CLUSTER", "SETSLOT", std::to_string(slot), "MIGRATING", target.id});
  ExpectReply(Call(*client, {"SET", new_key, "during the move"}), "OK");
  EXPECT_GE(client->stats().asks, 1);
  ExpectReply(Call(*client, {"GET", old_key}), "before the move");

  // The rest moves and the target owns the slot: the source answers MOVED.
  Admin(source->port,
        {"MIGRATE", "127.0.0.1", std::to_string(target.port), "", "0", "5000", "KEYS", old_key});
  for (const RedisNode& master : cluster->masters()) {
    Admin(master.port, {"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", target.id});
  }
  const int64_t moved_before = client->stats().moved;
  ExpectReply(Call(*client, {"GET", old_key}), "before the move");
  ExpectReply(Call(*client, {"GET", new_key}), "during the move");
  EXPECT_GE(client->stats().moved, moved_before + 1);
  EXPECT_EQ(client->MasterOf(old_key), target.address());

  // A WAIT holds its connection, not its master: a GET sent while it waits (for more
  // replicas than there are, so for its whole second) is answered on another connection.
  absl::Notification waited;
  client->Pipeline(old_key, {{"WAIT", "5", "1000"}}, {},
                   [&](AsyncClusterClient::Replies) { waited.Notify(); });
  ExpectReply(Call(*client, {"GET", old_key}), "before the move");
  EXPECT_FALSE(waited.HasBeenNotified());
  waited.WaitForNotification();

  // A script the node has not seen is loaded on NOSCRIPT and run.
  const Script script("return ARGV[1] .. redis.call('GET', KEYS[1])");
  absl::Notification ran;
  AsyncClusterClient::Replies replies = absl::UnknownError("not answered");
  PipelineWithScript(*client, old_key,
                     std::make_shared<const std::vector<Command>>(
                         std::vector<Command>{script.EvalSha({old_key}, {"value: "})}),
                     0, script, {}, [&](AsyncClusterClient::Replies r) {
                       replies = std::move(r);
                       ran.Notify();
                     });
  ran.WaitForNotification();
  ASSERT_TRUE(replies.ok()) << replies.status();
  EXPECT_EQ((*replies)[0].str, "value: before the move");

  // No seed that answers: UNAVAILABLE, not a hang.
  ClusterOptions nowhere;
  nowhere.seeds = {"127.0.0.1:1"};
  nowhere.connect_timeout = absl::Milliseconds(100);
  nowhere.io_timeout = absl::Milliseconds(100);
  EXPECT_EQ(AsyncClusterClient::Connect(nowhere).status().code(), absl::StatusCode::kUnavailable);
}

// A stopped master costs its own calls their deadline and nothing else: calls to the other
// masters go on, and no caller's thread waits.
TEST(AsyncClusterClientTest, AStoppedMasterAnswersByTheDeadlineAndDelaysNoOtherShard) {
  std::unique_ptr<RedisCluster> cluster = StartCluster();
  ASSERT_NE(cluster, nullptr);
  std::unique_ptr<AsyncClusterClient> client = ConnectTo(*cluster);
  ASSERT_NE(client, nullptr);
  const std::vector<RedisNode> masters = cluster->masters();
  ASSERT_EQ(masters.size(), 3u);
  const RedisNode& stopped = masters[0];
  const std::string stalled_key = KeyOn(stopped, "stalled");
  const std::string other_keys[] = {KeyOn(masters[1], "other"), KeyOn(masters[2], "other")};
  ExpectReply(Call(*client, {"SET", stalled_key, "x"}), "OK");

  ASSERT_EQ(kill(stopped.pid, SIGSTOP), 0);
  // 64 calls wait on the stopped master, each until its deadline.
  constexpr int kStalled = 64;
  const absl::Duration budget = absl::Milliseconds(300);
  std::atomic<int> unavailable{0};
  std::atomic<int> answered{0};
  absl::Notification all_answered;
  const absl::Time sent = absl::Now();
  for (int i = 0; i < kStalled; ++i) {
    client->Pipeline(stalled_key, {{"GET", stalled_key}}, {.deadline = sent + budget},
                     [&](AsyncClusterClient::Replies replies) {
                       if (absl::IsUnavailable(replies.status())) ++unavailable;
                       if (++answered == kStalled) all_answered.Notify();
                     });
  }
  // Meanwhile the other shards answer every call.
  for (int i = 0; i < 100; ++i) {
    const std::string& key = other_keys[i % 2];
    ExpectReply(Call(*client, {"SET", key, std::to_string(i)}), "OK");
  }
  ASSERT_TRUE(all_answered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  const absl::Duration stalled_for = absl::Now() - sent;
  EXPECT_EQ(unavailable.load(), kStalled);
  EXPECT_GE(stalled_for, budget);  // answered by the deadline, not before it gave up
  ASSERT_EQ(kill(stopped.pid, SIGCONT), 0);

  // Back: its calls succeed again.
  ExpectReply(Call(*client, {"GET", stalled_key}, {.deadline = absl::Now() + absl::Seconds(5)}),
              "x");
}

// A master killed for good: calls to its slots retry on the loop's timers until the
// replica is promoted, then succeed, within their deadline; the other shards never stop.
TEST(AsyncClusterClientTest, RidesOutAFailoverOnTimers) {
  std::unique_ptr<RedisCluster> cluster = StartCluster();
  ASSERT_NE(cluster, nullptr);
  std::unique_ptr<AsyncClusterClient> client = ConnectTo(*cluster);
  ASSERT_NE(client, nullptr);
  const std::vector<RedisNode> masters = cluster->masters();
  const RedisNode lost = masters[0];
  const std::string lost_key = KeyOn(lost, "lost");
  const std::string other_key = KeyOn(masters[1], "other");
  // Written, and on the replica, before the master goes.
  Answer written =
      RunPipeline(*client, lost_key, {{"SET", lost_key, "kept"}, {"WAIT", "1", "1000"}});
  ASSERT_TRUE(written.replies.ok()) << written.replies.status();
  ASSERT_EQ((*written.replies)[1].integer, 1);

  ASSERT_TRUE(cluster->KillNode(lost.port).ok());
  // fail_fast: UNAVAILABLE at once, for the caller to retry on its own timer.
  Answer fast = Call(*client, {"GET", lost_key},
                     {.deadline = absl::Now() + absl::Seconds(20), .fail_fast = true});
  EXPECT_TRUE(absl::IsUnavailable(fast.replies.status())) << fast.replies.status();
  EXPECT_LT(fast.took, absl::Seconds(1));  // not its deadline, nor a failover's wait
  // Started right after the kill, with room for the failover (node timeout 2 s).
  absl::Notification failed_over;
  Answer across;
  const absl::Time sent = absl::Now();
  client->Pipeline(lost_key, {{"GET", lost_key}}, {.deadline = sent + absl::Seconds(20)},
                   [&](AsyncClusterClient::Replies replies) {
                     across.replies = std::move(replies);
                     across.took = absl::Now() - sent;
                     failed_over.Notify();
                   });
  int other_calls = 0;
  while (!failed_over.HasBeenNotified()) {
    ExpectReply(Call(*client, {"SET", other_key, std::to_string(other_calls)}), "OK");
    ++other_calls;
    absl::SleepFor(absl::Milliseconds(5));
  }
  ExpectReply(across, "kept");
  EXPECT_GT(other_calls, 10);
  EXPECT_GT(client->stats().retries, 0);
  EXPECT_NE(client->MasterOf(lost_key), lost.address());
}

TEST(AsyncClusterClientTest, ManyCallersAreEachAnsweredOnceAndShutdownAnswersTheRest) {
  std::unique_ptr<RedisCluster> cluster = StartCluster();
  ASSERT_NE(cluster, nullptr);
  std::unique_ptr<AsyncClusterClient> client = ConnectTo(*cluster);
  ASSERT_NE(client, nullptr);

  constexpr int kThreads = 4;
  constexpr int kCallsEach = 2000;
  std::atomic<int> ok{0};
  std::atomic<int> answers{0};
  absl::Notification all;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsEach; ++i) {
        const std::string key = "many" + std::to_string(t) + ":" + std::to_string(i);
        client->Pipeline(key, {{"SET", key, "v"}, {"GET", key}}, {},
                         [&](AsyncClusterClient::Replies replies) {
                           if (replies.ok() && replies->size() == 2 && (*replies)[1].str == "v") {
                             ++ok;
                           }
                           if (++answers == kThreads * kCallsEach) all.Notify();
                         });
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_TRUE(all.WaitForNotificationWithTimeout(absl::Seconds(60)));
  EXPECT_EQ(ok.load(), kThreads * kCallsEach);
  EXPECT_EQ(answers.load(), kThreads * kCallsEach);

  // Calls on a stopped master when the client goes: each answered, once.
  const RedisNode stopped = cluster->masters()[0];
  const std::string key = KeyOn(stopped, "shutdown");
  ASSERT_EQ(kill(stopped.pid, SIGSTOP), 0);
  std::atomic<int> shut{0};
  for (int i = 0; i < 10; ++i) {
    client->Pipeline(key, {{"GET", key}}, {}, [&](AsyncClusterClient::Replies replies) {
      EXPECT_TRUE(absl::IsUnavailable(replies.status())) << replies.status();
      ++shut;
    });
  }
  absl::SleepFor(absl::Milliseconds(50));
  client.reset();
  EXPECT_EQ(shut.load(), 10);
  ASSERT_EQ(kill(stopped.pid, SIGCONT), 0);
}

}  // namespace
}  // namespace stategate::redis
