// The workload benchmark of stategate-bench: YCSB core workloads (ycsb.h) against stategate
// and against what it stands in front of, side by side, under fault scenarios, each with the
// naive and the full client — the tool a user runs to see what stategate delivers on their
// machine and what it costs.
//
// For every target it starts what the target needs on 127.0.0.1 (gateways, a Redis Cluster,
// a redis-server, memcached; all stopped by PID on every way out), loads `records` records
// (the load phase, measured), then for every workload × scenario × mode runs the workload's
// operations (the run phase) in an open loop (a fixed arrival rate, latency from each
// operation's intended start) or a closed loop (N workers), printing a progress line per
// second. Faults are set at fault_onset of the run and cleared at fault_end (or when their
// action is done), so each run has a before, a during and an after:
//
//   none             nothing
//   slow-replica     every call to gateway 0 delayed by slow_delay (Admin.SetFaults)
//   error-replica    every call to gateway 0 fails UNAVAILABLE (Admin.SetFaults)
//   paused-replica   gateway 0 SIGSTOPped for 1 s, SIGCONTed for 1 s, repeatedly
//   killed-replica   gateway 0 SIGKILLed; started again at fault_end
//   rolling-restart  each gateway in turn drained (SIGTERM) and started again
//   overload         offered load at 2x the capacity measured just before (open loop)
//   redis-failover   the master of slot 0 SIGKILLed and never restarted; the cluster fails
//                    over to its replica, which then serves the shard alone
//
// Targets: stategate-rocksdb (`replicas` gateways, each on its own embedded RocksDB, loaded
// with the same records), stategate-redis (`replicas` gateways over one Redis Cluster of 3
// masters + 3 replicas, replicas_ack 1), redis (one redis-server, hiredis), redis-cluster
// (3 + 3, the project's cluster client), memcached (libmemcached), empty (Handshake against
// one gateway: the floor of any gRPC call here). Modes (client mechanisms) apply to the
// stategate targets and empty; the direct targets run as "direct". A scenario runs only on
// the targets it can hurt: gateway faults on stategate targets, overload on every target
// but empty, redis-failover on the Redis Cluster targets.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "src/bench/load_recorder.h"
#include "stategate/types.h"

namespace stategate::bench {

// How a run's operations are spread over the priority tiers.
struct PriorityMix {
  double critical = 0.2;
  double normal = 0.5;
  double sheddable = 0.3;

  // The tier of operation `index`: a fixed, evenly spread draw (a hash of the index), so
  // every tier sees the same mix of reads and writes and of the run's phases.
  Priority TierOf(int64_t index) const;
};

struct YcsbBenchOptions {
  std::vector<std::string> workloads = {"a"};
  std::vector<std::string> targets = {"stategate-rocksdb"};
  std::vector<std::string> scenarios = {"none"};
  std::vector<std::string> modes = {"naive", "full"};
  // Records loaded before the runs.
  int64_t records = 10'000;
  // Each run lasts `duration`, or (when operations > 0) until `operations` have started.
  int64_t operations = 0;
  absl::Duration duration = absl::Seconds(20);
  // Open loop at `rate` operations per second, or (when threads > 0) a closed loop of
  // `threads` workers. Exactly one of them is positive.
  double rate = 500;
  int threads = 0;
  // A record: `fields` fields of `field_bytes` random bytes (YCSB: 10 x 100; or 1 x 1024).
  int fields = 10;
  int64_t field_bytes = 100;
  // Gateways of the stategate targets.
  int replicas = 3;
  // The stategate client's call timeout (retries and hedges included).
  absl::Duration timeout = absl::Seconds(1);
  absl::Duration slow_delay = absl::Milliseconds(200);
  // The fault window, as fractions of the run's duration.
  double fault_onset = 0.3;
  double fault_end = 0.6;
  // Threads each target runs blocking calls on (bounds the operations in flight).
  int client_threads = 256;
  // The `stategate` binary; empty: the one beside this executable.
  std::string server_binary;
  // The overload scenario offers this many times the capacity measured in the same run.
  double overload_factor = 2;
  // The niceness (0..19) of every server the bench starts (gateways, Redis, memcached), so
  // that on shared cores an overloaded server cannot starve the load generator and the
  // clients of the CPU, as it could not on separate machines. 0 runs them as the bench.
  int server_niceness = 10;
  // Pin the bench (the load generator and its clients) to the first half of the CPUs it may
  // use and every server it starts to the other half, so that neither's CPU shows up as the
  // other's latency or capacity (an open loop at 2x its capacity costs the generator far
  // more CPU than the closed loops that measure the capacity). Needs at least 2 CPUs.
  bool split_cpus = false;
  // Shares of the stategate targets' operations sent as critical, normal and sheddable
  // (summing to 1), each tier's results reported apart; unset: no priority is sent.
  std::optional<PriorityMix> priority_mix;
};

// INVALID_ARGUMENT naming the field and its limit.
[[nodiscard]] absl::Status ValidateYcsbBenchOptions(const YcsbBenchOptions& options);

// The seed's "why nines" figures of one run.
struct WhyNines {
  // Share of the operations started from the fault's onset to the end of the run (the whole
  // run when there is no fault) that failed or missed their SLO target.
  double blast_radius = 0;
  // From the fault's onset and from its end until per-second SLO attainment is at or above
  // recovery_mark again and stays there for the rest of the run; nullopt if it never does
  // (or there is no fault, or the fault outlasted the run).
  std::optional<absl::Duration> recover_from_onset;
  std::optional<absl::Duration> recover_from_end;
  // 99.9 %, or the worst whole second before the onset when that was lower: a run is back
  // once it is as good as it was before the fault (on a loaded 2-core machine, steady
  // seconds at 99.5 % would otherwise make every run "never recovered").
  double recovery_mark = 0.999;
  // The longest any operation took (failed and unfinished ones included).
  int64_t longest_stall_us = 0;
};

// `series` is per `interval` from the run's start; onset/end are nullopt without a fault.
WhyNines ComputeWhyNines(const std::vector<LoadStats>& series, absl::Duration interval,
                         std::optional<absl::Duration> onset, std::optional<absl::Duration> end);

// Runs everything and returns the JSON of report_html.h's schema (the runs, the load
// phases, the options); `command` is recorded in it. Progress goes to `progress`.
// Failed operations are counted, not returned; an error is returned only when a target's
// servers cannot start or a fault cannot be set.
[[nodiscard]] absl::StatusOr<nlohmann::json> RunYcsbBench(const YcsbBenchOptions& options,
                                                          const std::string& command,
                                                          std::ostream& progress);

// A fixed-width summary table of the JSON's runs.
std::string FormatYcsbTable(const nlohmann::json& results);

}  // namespace stategate::bench
