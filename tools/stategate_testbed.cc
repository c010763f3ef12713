// stategate-testbed: starts a local Redis Cluster and a memcached on free 127.0.0.1 ports
// (src/testbed/), writes their addresses to STATE_DIR/env, and keeps them until SIGTERM or
// SIGINT, then stops them all and exits 0. Exits 1 (writing no env file) when they cannot
// be started. scripts/test.sh and scripts/test-servers.sh run it; STATE_DIR/env reads:
//
//   STATEGATE_TEST_REDIS_CLUSTER=127.0.0.1:P1,127.0.0.1:P2,...
//   STATEGATE_TEST_MEMCACHED=127.0.0.1:M
//
// The servers' files and logs are kept under STATE_DIR (redis/, memcached.log).
#include <signal.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "src/testbed/memcached_server.h"
#include "src/testbed/redis_cluster.h"

int main(int argc, char** argv) {
  // Blocked before any server starts (its process gets an empty mask); taken by sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  CLI::App app{"stategate-testbed: a local Redis Cluster and memcached for tests"};
  std::string state_dir;
  stategate::testbed::RedisClusterOptions redis;
  int start_timeout_s = 60;
  app.add_option("state_dir", state_dir, "Directory for the env file and the servers' files")
      ->required();
  app.add_option("--masters", redis.masters, "Redis Cluster masters (default 3)");
  app.add_option("--replicas", redis.replicas_per_master, "Replicas per master (default 1)");
  app.add_option("--start-timeout", start_timeout_s, "Seconds to start everything (default 60)");
  CLI11_PARSE(app, argc, argv);

  std::error_code error;
  std::filesystem::create_directories(state_dir, error);
  if (error) {
    spdlog::error("cannot create {}: {}", state_dir, error.message());
    return 1;
  }
  const std::string env_path = state_dir + "/env";
  std::filesystem::remove(env_path, error);

  redis.dir = state_dir + "/redis";
  redis.start_timeout = absl::Seconds(start_timeout_s);
  absl::StatusOr<std::unique_ptr<stategate::testbed::RedisCluster>> cluster =
      stategate::testbed::RedisCluster::Start(redis);
  if (!cluster.ok()) {
    spdlog::error("cannot start the Redis Cluster: {}", cluster.status().ToString());
    return 1;
  }
  stategate::testbed::MemcachedOptions memcached_options;
  memcached_options.log_path = state_dir + "/memcached.log";
  absl::StatusOr<std::unique_ptr<stategate::testbed::MemcachedServer>> memcached =
      stategate::testbed::MemcachedServer::Start(memcached_options);
  if (!memcached.ok()) {
    spdlog::error("cannot start memcached: {}", memcached.status().ToString());
    return 1;
  }

  // Written whole, then renamed: whoever waits for the file never reads half of it.
  const std::string partial = env_path + ".partial";
  {
    std::ofstream env(partial, std::ios::trunc);
    env << "STATEGATE_TEST_REDIS_CLUSTER=" << (*cluster)->seed_list() << "\n"
        << "STATEGATE_TEST_MEMCACHED=" << (*memcached)->address() << "\n";
    if (!env.flush()) {
      spdlog::error("cannot write {}", partial);
      return 1;
    }
  }
  if (std::rename(partial.c_str(), env_path.c_str()) != 0) {
    spdlog::error("cannot rename {} to {}", partial, env_path);
    return 1;
  }
  spdlog::info("Redis Cluster {} and memcached {} are up; stop with SIGTERM (pid {})",
               (*cluster)->seed_list(), (*memcached)->address(), ::getpid());

  int signal = 0;
  while (sigwait(&stop_signals, &signal) != 0) {
  }
  spdlog::info("signal {}: stopping", signal);
  std::filesystem::remove(env_path, error);
  memcached->reset();
  cluster->reset();
  return 0;
}
