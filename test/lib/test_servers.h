// Real servers shared by the tests of one process: a Redis Cluster (3 masters, 3 replicas)
// and a memcached on 127.0.0.1. scripts/test.sh starts one set for the whole run
// (tools/stategate-testbed) and exports their addresses; a test run without it (say, one
// test binary by hand) starts its own on first use, kept until the process exits.
//
// Tests share these servers: they must not stop or fail over their nodes, and should use
// keys of their own (a prefix of the test's name). A test that kills nodes starts its own
// testbed::RedisCluster instead. Thread-safe.
#pragma once

#include <string>

namespace stategate::testing {

// Names of the environment variables that hold the shared servers' addresses.
inline constexpr char kRedisClusterEnv[] = "STATEGATE_TEST_REDIS_CLUSTER";
inline constexpr char kMemcachedEnv[] = "STATEGATE_TEST_MEMCACHED";

// "127.0.0.1:P1,127.0.0.1:P2,...": every node of the shared Redis Cluster. From
// $STATEGATE_TEST_REDIS_CLUSTER when set, else from a cluster started by the first call.
// Empty when none could be started (the reason is written to stderr; callers fail or skip).
std::string SharedRedisClusterSeeds();

// "127.0.0.1:P" of the shared memcached, from $STATEGATE_TEST_MEMCACHED or started by the
// first call. Empty when none could be started (the reason is written to stderr).
std::string SharedMemcachedAddress();

}  // namespace stategate::testing
