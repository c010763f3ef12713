#include "src/testbed/redis_server.h"

#include <hiredis/hiredis.h>
#include <signal.h>

#include <filesystem>
#include <memory>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "src/testbed/redis_cluster.h"

namespace stategate::testbed {
namespace {

struct ContextDeleter {
  void operator()(redisContext* context) const { redisFree(context); }
};
struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};

TEST(RedisServerTest, StartsAnswersPingAndIsKilled) {
  absl::StatusOr<std::unique_ptr<RedisServer>> server = RedisServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  EXPECT_EQ((*server)->address(), "127.0.0.1:" + std::to_string(port));
  const pid_t pid = (*server)->pid();
  ASSERT_GT(pid, 0);

  std::unique_ptr<redisContext, ContextDeleter> context(
      redisConnectWithTimeout("127.0.0.1", port, absl::ToTimeval(absl::Seconds(2))));
  ASSERT_NE(context, nullptr);
  ASSERT_EQ(context->err, 0) << context->errstr;
  std::unique_ptr<redisReply, ReplyDeleter> pong(
      static_cast<redisReply*>(redisCommand(context.get(), "PING")));
  ASSERT_NE(pong, nullptr) << context->errstr;
  EXPECT_EQ(pong->type, REDIS_REPLY_STATUS);
  EXPECT_EQ(std::string(pong->str, pong->len), "PONG");

  // Standalone, and nothing is persisted.
  absl::StatusOr<RedisReply> mode = RedisCommand(port, {"INFO", "server"});
  ASSERT_TRUE(mode.ok()) << mode.status();
  EXPECT_NE(mode->str.find("redis_mode:standalone"), std::string::npos) << mode->str;
  absl::StatusOr<RedisReply> save = RedisCommand(port, {"CONFIG", "GET", "save"});
  ASSERT_TRUE(save.ok()) << save.status();
  ASSERT_EQ(save->elements.size(), 2u);
  EXPECT_EQ(save->elements[1].str, "");
  absl::StatusOr<RedisReply> aof = RedisCommand(port, {"CONFIG", "GET", "appendonly"});
  ASSERT_TRUE(aof.ok()) << aof.status();
  ASSERT_EQ(aof->elements.size(), 2u);
  EXPECT_EQ(aof->elements[1].str, "no");

  // Closed by us first, so the server's side of it leaves no TIME_WAIT holding the port.
  context.reset();
  (*server)->Kill();
  EXPECT_EQ((*server)->pid(), -1);
  EXPECT_NE(::kill(pid, 0), 0);
  EXPECT_FALSE(Listening((*server)->address()));
  EXPECT_TRUE(PortIsFree(port));
  EXPECT_FALSE(RedisCommand(port, {"PING"}, absl::Milliseconds(200)).ok());
  (*server)->Kill();  // idempotent
}

TEST(RedisServerTest, DestructorKillsTheServerAndFreesThePort) {
  pid_t pid = -1;
  int port = 0;
  {
    absl::StatusOr<std::unique_ptr<RedisServer>> server = RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    pid = (*server)->pid();
    port = (*server)->port();
  }
  EXPECT_NE(::kill(pid, 0), 0);
  EXPECT_TRUE(PortIsFree(port));
}

TEST(RedisServerTest, TwoServersGetTwoPorts) {
  absl::StatusOr<std::unique_ptr<RedisServer>> a = RedisServer::Start();
  absl::StatusOr<std::unique_ptr<RedisServer>> b = RedisServer::Start();
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE((*a)->port(), (*b)->port());
  ASSERT_TRUE(RedisCommand((*a)->port(), {"SET", "k", "a"}).ok());
  absl::StatusOr<RedisReply> other = RedisCommand((*b)->port(), {"GET", "k"});
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->type, RedisReply::Type::kNil);
}

TEST(RedisServerTest, MissingBinaryIsNotFound) {
  RedisServerOptions options;
  options.redis_server = "no-such-redis-server-stategate";
  EXPECT_EQ(RedisServer::Start(options).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace stategate::testbed
