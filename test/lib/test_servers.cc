#include "test/lib/test_servers.h"

#include <unistd.h>

#include <cstdlib>
#include <future>
#include <iostream>
#include <memory>
#include <thread>

#include "src/testbed/memcached_server.h"
#include "src/testbed/redis_cluster.h"

namespace stategate::testing {
namespace {

std::string FromEnv(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// Runs `start` on a thread that lives as long as the process and returns its result. The
// servers' processes die with the thread that started them (ChildProcessOptions::
// die_with_parent), and the first caller may be a short-lived thread of a test.
template <typename Start>
auto OnKeeperThread(Start start) {
  std::promise<decltype(start())> promise;
  auto result = promise.get_future();
  std::thread([promise = std::move(promise), start]() mutable {
    promise.set_value(start());
    while (true) ::pause();
  }).detach();
  return result.get();
}

}  // namespace

std::string SharedRedisClusterSeeds() {
  // Started once, on the first call (static initialization is thread-safe), and stopped by
  // the static's destructor at exit; a crashed test process takes its nodes with it.
  static const std::string seeds = [] {
    std::string from_env = FromEnv(kRedisClusterEnv);
    if (!from_env.empty()) return from_env;
    static std::unique_ptr<testbed::RedisCluster> cluster;
    absl::StatusOr<std::unique_ptr<testbed::RedisCluster>> started =
        OnKeeperThread([] { return testbed::RedisCluster::Start(); });
    if (!started.ok()) {
      std::cerr << "cannot start the shared Redis Cluster: " << started.status() << "\n";
      return std::string();
    }
    cluster = *std::move(started);
    return cluster->seed_list();
  }();
  return seeds;
}

std::string SharedMemcachedAddress() {
  static const std::string address = [] {
    std::string from_env = FromEnv(kMemcachedEnv);
    if (!from_env.empty()) return from_env;
    static std::unique_ptr<testbed::MemcachedServer> server;
    absl::StatusOr<std::unique_ptr<testbed::MemcachedServer>> started =
        OnKeeperThread([] { return testbed::MemcachedServer::Start(); });
    if (!started.ok()) {
      std::cerr << "cannot start the shared memcached: " << started.status() << "\n";
      return std::string();
    }
    server = *std::move(started);
    return server->address();
  }();
  return address;
}

}  // namespace stategate::testing
