// The server's configuration: where it listens and stores data, the namespaces it serves,
// and the contract-wide settings (clock skew, tombstone grace). Read from YAML (every field
// is documented in config/stategate.example.yaml) or made from command-line defaults.
#pragma once

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "src/common/namespace_config.h"
#include "src/server/faults.h"

namespace stategate::server {

// Where the redis-cluster engine finds its cluster; empty seeds = no cluster.
struct RedisClusterConfig {
  std::vector<std::string> seeds;  // "host:port" of any nodes
  // How long a write waits for its namespace's replicas_ack replicas.
  absl::Duration replicas_ack_timeout = absl::Seconds(5);
  // How long a call keeps retrying while the cluster fails over before it fails.
  absl::Duration retry_window = absl::Seconds(8);
  // Calls in flight to one shard from this gateway; past it a call fails UNAVAILABLE at
  // once, so that a stalled shard cannot take every redis-cluster worker. 0 = no limit,
  // the default: while engine calls still hold a worker, the limit also turns a failover's
  // short wait into errors for that shard's calls (issue 11 makes the engine asynchronous).
  int max_calls_per_shard = 0;
  // How often a gateway removes expired items and tombstones past their grace from its
  // redis-cluster namespaces (RocksDB does it while compacting).
  absl::Duration purge_interval = absl::Minutes(10);
};

// The memcached that namespaces with `cache: {engine: memcached}` share; empty = none.
struct MemcachedConfig {
  std::string address;  // "host:port"
  // Past this a cache operation is given up and the call goes on without the cache.
  absl::Duration op_timeout = absl::Milliseconds(5);
};

struct ServerConfig {
  std::string listen = "127.0.0.1:7700";
  std::string data_dir = "./stategate-data";
  // Mutations whose token is further than this from the server's clock are rejected.
  absl::Duration max_clock_skew = absl::Seconds(60);
  // How long tombstones outlive their version; at least max_clock_skew.
  absl::Duration tombstone_grace = absl::Hours(1);
  // How often abandoned chunks are collected.
  absl::Duration chunk_gc_interval = absl::Seconds(30);
  // How long SIGTERM keeps serving, with every answer saying the gateway is draining, while
  // clients move to other gateways (it ends sooner once calls stop arriving).
  absl::Duration drain_notice = absl::Seconds(2);
  // How long SIGTERM then waits for in-flight calls before cancelling them.
  absl::Duration drain_timeout = absl::Seconds(10);
  // Threads that run calls (engine work may block on disk).
  int worker_threads = 16;
  // Secret for page tokens; give every gateway of a fleet the same one. Empty = random.
  std::string page_token_secret;
  RedisClusterConfig redis_cluster;
  MemcachedConfig memcached;
  std::vector<NamespaceConfig> namespaces;
  // Faults to inject, by namespace (each namespace's `faults:`). A gateway refuses to start
  // with any unless started with --fault-injection; a reload replaces them all.
  std::map<std::string, FaultSpec> faults;
};

// The configuration used without a config file: one namespace "default" on RocksDB with
// sync durability.
ServerConfig DefaultConfig();

// Parses and validates a YAML document; unknown fields are errors.
[[nodiscard]] absl::StatusOr<ServerConfig> ParseConfig(const std::string& yaml);
[[nodiscard]] absl::StatusOr<ServerConfig> LoadConfigFile(const std::string& path);

// Checks what ParseConfig checks; for configs built in code.
[[nodiscard]] absl::Status ValidateConfig(const ServerConfig& config);

}  // namespace stategate::server
