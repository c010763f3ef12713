// The fault benchmark of stategate-bench: how each client configuration holds up when one
// replica of a fleet of gateways holding the same data is slow, stopped or failing.
//
// The same records are first written to every gateway (or, when they share one store,
// through the first one). Then, for every fault scenario and
// every client mode, a fresh client over all the gateways runs an open-loop read/write mix
// (open_loop.h: fixed arrival rate, latency from the intended start) while the scenario's
// fault is in force on replica 0; the fault is set after the client's handshake and
// warm-up and cleared once the run is over.
//
// Scenarios: "none"; "slow-replica" (every call to replica 0 delayed by slow_delay);
// "paused-replica" (replica 0 stopped, SIGSTOP, for the run); "error-replica" (every call
// to replica 0 fails UNAVAILABLE).
// Modes: "naive" (ReliabilityOptions::Naive()); "full" (every mechanism, the defaults);
// and one mechanism on top of naive: "hedging", "retries", "limiter", "balancing",
// "gc-tolerant", "signalled-timeouts". Every mode uses the same call timeout.
//
// Not thread-safe: a benchmark drives its fleet from one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "src/bench/fleet.h"
#include "stategate/kv_client.h"

namespace stategate::bench {

struct FaultBenchOptions {
  std::string ns = "default";
  // Default: {"none"}.
  std::vector<std::string> scenarios = {"none"};
  // Default: {"naive", "full"}.
  std::vector<std::string> modes = {"naive", "full"};
  // Operations started per second, and for how long. Default: 500 for 10 s.
  double rate = 500;
  absl::Duration duration = absl::Seconds(10);
  // Share of operations that are Gets; the rest are Puts. Default: 0.9.
  double read_share = 0.9;
  // Records written to every gateway before the runs, and read and overwritten by them
  // (ids "fault-00000000".., one item "v" each). Default: 1000.
  int64_t records = 1000;
  // Size of each value (random bytes). Default: 1024.
  int64_t value_bytes = 1024;
  // Whether the gateways serve their data from one shared store (one Redis Cluster), so that
  // records written through the first are read through every one; otherwise each has its
  // own and the records are written to each. Default: false.
  bool shared_storage = false;
  // The client's call timeout, retries and hedges included; also how long a run waits for
  // operations still out once it stops starting them (plus kDrainMargin). Default: 1 s.
  absl::Duration timeout = absl::Seconds(1);
  // The delay of the slow-replica scenario. Default: 200 ms.
  absl::Duration slow_delay = absl::Milliseconds(200);
};

// Beyond the call timeout, how long a run waits for the callbacks of calls that timed out.
inline constexpr absl::Duration kDrainMargin = absl::Milliseconds(200);

struct FaultRun {
  std::string mode;
  std::string scenario;
  double rate = 0;
  absl::Duration duration;
  int64_t ops = 0;  // operations started
  int64_t ok = 0;
  // Failures by status code name; "UNFINISHED" for operations still out when the run ended.
  std::map<std::string, int64_t> errors;
  // Latency from the intended start of every operation, failed ones included.
  int64_t p50_us = 0;
  int64_t p99_us = 0;
  int64_t p999_us = 0;
  int64_t max_us = 0;
  int64_t slo_target_us = 0;  // the namespace's point-read SLO target, from Handshake
  double slo_attainment = 0;  // share of operations that succeeded within slo_target_us
  double attempts_per_op = 0;
  int64_t hedges = 0;
  int64_t retries = 0;
  int64_t max_issue_lag_us = 0;  // how far the load generator fell behind its schedule
};

struct FaultBenchReport {
  FaultBenchOptions options;
  std::vector<std::string> addresses;
  std::vector<FaultRun> runs;  // scenario-major, in options order
};

// The client reliability settings of `mode`; INVALID_ARGUMENT naming the known modes.
[[nodiscard]] absl::StatusOr<ReliabilityOptions> ModeReliability(std::string_view mode);

// INVALID_ARGUMENT for unusable options (unknown scenario or mode, out-of-range numbers).
[[nodiscard]] absl::Status ValidateFaultBenchOptions(const FaultBenchOptions& options);

// Makes the clients of the runs; KvClient::Connect by default.
using FaultClientFactory =
    std::function<absl::StatusOr<std::unique_ptr<KvClient>>(const KvClientOptions&)>;

// Preloads the records (options.shared_storage: through the first gateway only) and runs every
// scenario × mode against `fleet`, printing a line per run to `progress` if given. The first error
// that stops the benchmark is returned (faults already set are cleared and a paused replica resumed
// first); failed calls during a run are counted, not returned.
[[nodiscard]] absl::StatusOr<FaultBenchReport> RunFaultBench(
    const FaultBenchOptions& options, Fleet& fleet, std::ostream* progress = nullptr,
    const FaultClientFactory& connect = KvClient::Connect);

// A fixed-width table: scenario, mode, ops, ok, p99 and p99.9 (ms), SLO attainment,
// attempts per op, errors.
std::string FormatFaultTable(const FaultBenchReport& report);

// {"runs": [{"mode", "scenario", "ops", "ok", "errors": {code: count}, "p50_us", "p99_us",
// "p999_us", "max_us", "slo_target_us", "slo_attainment", "attempts_per_op", "hedges",
// "retries", "rate", "duration_s", "max_issue_lag_us"}, ...], "addresses": [...],
// "options": {...}}
std::string FaultBenchJson(const FaultBenchReport& report);

}  // namespace stategate::bench
