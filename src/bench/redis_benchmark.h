// redis-benchmark, the load generator shipped with Redis, run as a child process
// (testbed::ChildProcess: stopped by its PID, bounded in time) with `--csv`, and its output
// parsed: the yardstick stategate-bench --vs-redis puts beside the gateway's numbers.
//
// Functions here are thread-safe; a run blocks its caller until redis-benchmark exits.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace stategate::bench {

struct RedisBenchmarkOptions {
  // The binary: a path, or a name looked up in $PATH. Default: "redis-benchmark".
  std::string binary = "redis-benchmark";
  // The node to connect to (-h, -p); in cluster mode, any node, the rest are discovered.
  std::string host = "127.0.0.1";
  int port = 6379;
  // --cluster: send each key to the master of its slot. Default: true.
  bool cluster = true;
  // Connections (-c). In cluster mode, redis-benchmark 7 opens this many in all, spread
  // round-robin over the masters, with one thread per master. Default: 50.
  int clients = 50;
  // Requests of each test (-n). Default: 100000.
  int64_t requests = 100'000;
  // Bytes of each SET value (-d). Default: 1024.
  int64_t value_bytes = 1024;
  // Random keys from [0, keyspace) (-r). Default: 10000.
  int64_t keyspace = 10'000;
  // Requests in flight per connection (-P); 1 is no pipelining. Default: 1.
  int pipeline = 1;
  // Tests in order (-t), redis-benchmark's names. Default: set, get.
  std::vector<std::string> tests = {"set", "get"};
  // How long the run may take before it is killed (SIGKILL). Default: 60 s.
  absl::Duration timeout = absl::Seconds(60);
};

// One row of `redis-benchmark --csv`; latencies in milliseconds.
struct RedisBenchmarkResult {
  std::string test;  // as redis-benchmark names it: "SET", "GET"
  double rps = 0;
  double avg_ms = 0;
  double min_ms = 0;
  double p50_ms = 0;
  double p95_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
};

// The arguments (argv[0] not included) that RunRedisBenchmark passes.
std::vector<std::string> RedisBenchmarkArgs(const RedisBenchmarkOptions& options);

// Parses redis-benchmark 7's `--csv` output: the header line
// "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
// "p99_latency_ms","max_latency_ms" and a quoted row per test after it. Anything before the
// header (cluster mode prints the masters it found) is skipped; columns are found by name
// ("test", "rps" and "p99_latency_ms" are required). INVALID_ARGUMENT when there is no
// header, no row, or a number does not parse.
[[nodiscard]] absl::StatusOr<std::vector<RedisBenchmarkResult>> ParseRedisBenchmarkCsv(
    const std::string& output);

// `binary --version` ("redis-benchmark 7.0.15"): whether it runs at all, checked before a
// long benchmark needs it. NOT_FOUND when the binary is missing, UNAVAILABLE when it fails
// or does not answer within `timeout`.
[[nodiscard]] absl::StatusOr<std::string> RedisBenchmarkVersion(
    const std::string& binary, absl::Duration timeout = absl::Seconds(10));

// Runs redis-benchmark with `options` and returns its rows. INVALID_ARGUMENT for bad
// options, NOT_FOUND when the binary is missing, DEADLINE_EXCEEDED when it is still running
// after options.timeout (it is killed), UNAVAILABLE when it exits with an error; each
// message quotes the end of its output.
[[nodiscard]] absl::StatusOr<std::vector<RedisBenchmarkResult>> RunRedisBenchmark(
    const RedisBenchmarkOptions& options);

}  // namespace stategate::bench
