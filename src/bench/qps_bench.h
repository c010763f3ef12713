// The closed-loop QPS benchmark of stategate-bench: for each concurrency level, N threads
// issue blocking calls back to back through one shared KvClient (one channel) for a fixed
// time, first Put, then Get of the records written, then Handshake, the empty call that
// shows what the gateway's RPC path alone costs. Put and Get are reported as a ratio of it.
//
// Thread-safe to call; a run takes roughly (warmup + duration) * 3 * concurrency levels.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "stategate/kv_client.h"

namespace stategate::bench {

struct QpsBenchOptions {
  // Reported as-is; the client passed to RunQpsBenchmark decides where calls go.
  std::string address = "127.0.0.1:7700";
  std::string ns = "default";
  // Threads, one run of every op per entry. Default: 16 and 64.
  std::vector<int> concurrency = {16, 64};
  // Measured time per op and concurrency. Default: 5 s.
  absl::Duration duration = absl::Seconds(5);
  // Unmeasured time before it, with the same load. Default: 0.5 s.
  absl::Duration warmup = absl::Milliseconds(500);
  // Size of each value written. Default: 1024.
  int64_t value_bytes = 1024;
  // What values hold: "random" bytes (nothing to compress, so compression cannot flatter the
  // numbers) or "json", JSON-like documents (user records), the realistic compressible
  // payload. Default: "random".
  std::string payload = "random";
  // Records written round-robin (ids "bench-00000000".., one item "v" each). Default: 10000.
  int64_t records = 10'000;
  // Which ops, in order, from "put", "get", "handshake". Default: all three.
  std::vector<std::string> ops = {"put", "get", "handshake"};
};

struct OpResult {
  std::string op;
  int concurrency = 0;
  int64_t ok = 0;           // calls that succeeded within the measured window
  int64_t errors = 0;       // calls that failed within it
  std::string first_error;  // the first failure's status, for diagnosis; empty if none
  absl::Duration elapsed;
  double qps = 0;  // ok / elapsed
  // Latency of successful calls, in microseconds.
  int64_t p50_us = 0;
  int64_t p99_us = 0;
  int64_t p999_us = 0;
  int64_t max_us = 0;
  double mean_us = 0;
  // qps / the Handshake qps at the same concurrency; 0 when that was not measured.
  double vs_handshake = 0;
};

struct QpsReport {
  QpsBenchOptions options;
  std::vector<OpResult> results;  // concurrency-major, ops in options.ops order
  // Value bytes the client wrote before and after its LZ4 compression (KvClientStats).
  int64_t bytes_before_compression = 0;
  int64_t bytes_after_compression = 0;
};

// A JSON-like document of about `bytes` bytes (user records with ids, emails, plans,
// devices and timestamps); `seed` varies the contents.
std::string JsonLikeDocument(int64_t bytes, uint64_t seed);

// Runs the benchmark. INVALID_ARGUMENT for unusable options; the handshake's status when the
// namespace cannot be reached. Failing calls during the run are counted, not returned.
[[nodiscard]] absl::StatusOr<QpsReport> RunQpsBenchmark(const QpsBenchOptions& options,
                                                        KvClient& client);

// A fixed-width table: op, concurrency, QPS, p50_us, p99_us, errors, vs_handshake.
std::string FormatTable(const QpsReport& report);

// The options and every result as one JSON object.
std::string ToJson(const QpsReport& report);

}  // namespace stategate::bench
