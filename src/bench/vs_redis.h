// stategate-bench --vs-redis: what one gateway over Redis Cluster costs next to Redis itself.
//
// Starts a local Redis Cluster (testbed::RedisCluster) and one local gateway over it
// (Fleet::StartLocal with a config file) serving two namespaces on engine redis-cluster:
// `default` (replicas_ack 0) and `acked` (replicas_ack 1: every write waits for one replica,
// WAIT). Then, per concurrency level C: the closed-loop QPS benchmark (qps_bench.h) through
// one reliable KvClient, put then get on `default`, put on `acked`; and redis-benchmark
// (redis_benchmark.h) against the same cluster with the same value size, keyspace and C:
// SET, then GET. Everything started is stopped on every path out, the gateway before the
// cluster.
//
// Not thread-safe: RunVsRedis drives its servers from the calling thread.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "src/testbed/redis_cluster.h"
#include "stategate/kv_client.h"

namespace stategate::bench {

struct VsRedisOptions {
  // Closed-loop threads for stategate and connections (-c) for redis-benchmark, one
  // comparison per entry. Default: 16 and 64.
  std::vector<int> concurrency = {16, 64};
  // Measured time of each stategate op, and what each redis-benchmark run is sized to last.
  // Default: 5 s.
  absl::Duration duration = absl::Seconds(5);
  // Unmeasured load before each stategate measurement. Default: 0.5 s.
  absl::Duration warmup = absl::Milliseconds(500);
  // Bytes per value, both sides (stategate: random bytes; redis-benchmark -d). Default: 1024.
  int64_t value_bytes = 1024;
  // Keys, both sides: stategate's records and redis-benchmark's -r, so that Gets hit values
  // written by the Puts on both. Default: 10000.
  int64_t records = 10'000;
  // Requests (-n) of each redis-benchmark run; 0 sizes each run from a short probe run
  // (SET and GET, `records` requests, at least 2000) to last about `duration`. Default: 0.
  int64_t redis_requests = 0;
  // The stategate client's call timeout. Default: 5 s.
  absl::Duration call_timeout = absl::Seconds(5);
  // The `stategate` binary. Default: empty, the one beside this executable.
  std::string server_binary;
  // The redis-benchmark binary: a path or a name in $PATH. Default: "redis-benchmark".
  std::string redis_benchmark = "redis-benchmark";
  // The cluster. Default: 3 masters with a replica each.
  testbed::RedisClusterOptions cluster;
};

// One comparison: a stategate op at one concurrency beside the matching redis-benchmark test.
struct VsRedisRow {
  std::string op;        // "put" or "get"
  std::string ns;        // the stategate namespace
  int replicas_ack = 0;  // that namespace's storage.replicas_ack
  int concurrency = 0;
  double stategate_qps = 0;
  int64_t stategate_p99_us = 0;  // of successful calls
  int64_t stategate_errors = 0;
  std::string stategate_first_error;  // empty if none
  std::string redis_test;             // "SET" or "GET"
  int64_t redis_requests = 0;         // -n of its run
  double redis_qps = 0;
  double redis_p99_ms = 0;
  // stategate / redis-benchmark; 0 when the denominator is 0.
  double qps_ratio = 0;
  double p99_ratio = 0;
};

struct VsRedisReport {
  VsRedisOptions options;
  std::string gateway;             // its address
  std::vector<std::string> seeds;  // every node of the cluster
  int masters = 0;
  std::string redis_benchmark_version;
  // Per concurrency level, in options order: put on `default` vs SET, put on `acked` vs SET,
  // get on `default` vs GET.
  std::vector<VsRedisRow> rows;
};

using VsRedisClientFactory =
    std::function<absl::StatusOr<std::unique_ptr<KvClient>>(const KvClientOptions&)>;

// INVALID_ARGUMENT for unusable options.
[[nodiscard]] absl::Status ValidateVsRedisOptions(const VsRedisOptions& options);

// Runs the comparison, printing a line per step to `progress` if given. Errors: bad options,
// a binary missing (NOT_FOUND), the cluster or gateway not starting, a redis-benchmark run
// failing or overrunning its time limit (30 s + 4 x duration), the gateway not stopping
// cleanly. Failed stategate calls are counted in the rows, not returned.
[[nodiscard]] absl::StatusOr<VsRedisReport> RunVsRedis(
    const VsRedisOptions& options, std::ostream* progress = nullptr,
    const VsRedisClientFactory& connect = KvClient::Connect);

// The table: op, concurrency, stategate QPS and p99 (ms), the redis-benchmark test, its QPS
// and p99 (ms), the two ratios and stategate's errors; then a footer saying how each side
// was measured (VsRedisNotes).
std::string FormatVsRedisTable(const VsRedisReport& report);

// How the two sides were measured, in lines of text.
std::string VsRedisNotes(const VsRedisReport& report);

// {"rows": [{"op", "namespace", "replicas_ack", "concurrency", "stategate_qps",
// "stategate_p99_us", "stategate_errors", "stategate_first_error", "redis_test",
// "redis_requests", "redis_qps", "redis_p99_ms", "qps_ratio", "p99_ratio"}, ...],
// "gateway", "seeds", "redis_benchmark_version", "options": {...}, "notes": "..."}
std::string VsRedisJson(const VsRedisReport& report);

}  // namespace stategate::bench
