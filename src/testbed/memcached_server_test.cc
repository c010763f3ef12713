#include "src/testbed/memcached_server.h"

#include <signal.h>

#include "gtest/gtest.h"

namespace stategate::testbed {
namespace {

TEST(MemcachedServerTest, StartsAnswersAndIsKilled) {
  absl::StatusOr<std::unique_ptr<MemcachedServer>> server = MemcachedServer::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->address(), "127.0.0.1:" + std::to_string((*server)->port()));
  const pid_t pid = (*server)->pid();
  ASSERT_GT(pid, 0);
  absl::StatusOr<std::string> version = MemcachedVersion((*server)->port());
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_FALSE(version->empty());

  (*server)->Kill();
  EXPECT_EQ((*server)->pid(), -1);
  EXPECT_NE(::kill(pid, 0), 0);
  EXPECT_FALSE(MemcachedVersion((*server)->port(), absl::Milliseconds(200)).ok());
}

TEST(MemcachedServerTest, DestructorKillsTheServer) {
  pid_t pid = -1;
  {
    absl::StatusOr<std::unique_ptr<MemcachedServer>> server = MemcachedServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    pid = (*server)->pid();
  }
  EXPECT_NE(::kill(pid, 0), 0);
}

TEST(MemcachedServerTest, MissingBinaryIsNotFound) {
  MemcachedOptions options;
  options.memcached = "no-such-memcached-stategate";
  EXPECT_EQ(MemcachedServer::Start(options).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace stategate::testbed
