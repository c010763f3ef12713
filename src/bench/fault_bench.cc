#include "src/bench/fault_bench.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <ostream>
#include <random>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "src/bench/open_loop.h"
#include "src/common/status_macros.h"

namespace stategate::bench {
namespace {

constexpr char kItemKey[] = "v";
constexpr const char* kScenarios[] = {"none", "slow-replica", "paused-replica", "error-replica"};
constexpr const char* kModes[] = {"naive",   "full",      "hedging",     "retries",
                                  "limiter", "balancing", "gc-tolerant", "signalled-timeouts"};
// Puts in flight at once while preloading a gateway.
constexpr int kPreloadWindow = 64;
// Deadline of each preload Put and of the handshakes before a run.
constexpr absl::Duration kSetupTimeout = absl::Seconds(10);
// Gets each fresh client makes before its measured run (unmeasured, no fault in force): it
// connects to every gateway and learns latencies, as a long-lived client would have.
constexpr int kWarmupGets = 30;
// The same sequence of reads, writes and records in every run, so that modes compare.
constexpr uint64_t kOpSeed = 0x5eed;
// Largest run the open-loop generator keeps per-operation state for.
constexpr double kMaxOpsPerRun = 1e8;

std::string RecordId(int64_t index) { return absl::StrFormat("fault-%08d", index); }

bool Known(std::string_view name, const auto& names) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

// Writes records [0, count) with `value` through `client`, kPreloadWindow at a time.
absl::Status Preload(KvClient& client, const std::string& ns, int64_t count,
                     const std::string& value) {
  // Shared with the callbacks, so that the last one may still be unlocking when this returns.
  struct Window {
    absl::Mutex mu;
    int in_flight = 0;
    absl::Status first_error;
  };
  auto window = std::make_shared<Window>();
  auto has_room = [&] { return window->in_flight < kPreloadWindow; };
  auto all_done = [&] { return window->in_flight == 0; };
  for (int64_t i = 0; i < count; ++i) {
    {
      absl::MutexLock lock(&window->mu);
      window->mu.Await(absl::Condition(&has_room));
      if (!window->first_error.ok()) break;
      ++window->in_flight;
    }
    client.PutAsync(ns, RecordId(i), kItemKey, value, [window](absl::Status status) {
      absl::MutexLock lock(&window->mu);
      --window->in_flight;
      if (!status.ok() && window->first_error.ok()) window->first_error = std::move(status);
    });
  }
  absl::MutexLock lock(&window->mu);
  window->mu.Await(absl::Condition(&all_done));
  return window->first_error;
}

absl::StatusOr<LatencySlo> PointReadSlo(const HandshakeInfo& info, const std::string& ns) {
  for (const NamespaceSettings& settings : info.namespaces) {
    if (settings.name == ns) return settings.point_read_slo;
  }
  return absl::NotFoundError(absl::StrCat("namespace '", ns, "' is not served"));
}

absl::Duration PauseLength(const FaultBenchOptions& options) {
  return options.duration + options.timeout + kDrainMargin;
}

// Puts `scenario`'s fault in force on replica 0.
absl::Status ApplyScenario(Fleet& fleet, const FaultBenchOptions& options,
                           std::string_view scenario) {
  if (scenario == "slow-replica") {
    return fleet.SetFaults(0, options.ns, InjectedFaults{.delay = options.slow_delay});
  }
  if (scenario == "paused-replica") return fleet.Pause(0, PauseLength(options));
  if (scenario == "error-replica") {
    return fleet.SetFaults(0, options.ns,
                           InjectedFaults{.error_rate = 1.0, .error_code = "UNAVAILABLE"});
  }
  return absl::OkStatus();
}

absl::Status ClearScenario(Fleet& fleet, const FaultBenchOptions& options,
                           std::string_view scenario) {
  if (scenario == "slow-replica" || scenario == "error-replica") {
    return fleet.SetFaults(0, options.ns, InjectedFaults{});
  }
  if (scenario == "paused-replica") return fleet.Resume(0);
  return absl::OkStatus();
}

absl::StatusOr<FaultRun> RunOne(const FaultBenchOptions& options, Fleet& fleet,
                                const std::string& scenario, const std::string& mode,
                                const std::string& value, const FaultClientFactory& connect) {
  SG_ASSIGN_OR_RETURN(const ReliabilityOptions reliability, ModeReliability(mode));
  const std::vector<std::string>& addresses = fleet.addresses();
  KvClientOptions client_options;
  client_options.address = addresses[0];
  client_options.more_addresses.assign(addresses.begin() + 1, addresses.end());
  client_options.timeout = options.timeout;
  client_options.reliability = reliability;
  SG_ASSIGN_OR_RETURN(std::unique_ptr<KvClient> client, connect(client_options));

  SG_ASSIGN_OR_RETURN(const HandshakeInfo info, client->Handshake({options.ns}));
  SG_ASSIGN_OR_RETURN(const LatencySlo slo, PointReadSlo(info, options.ns));
  for (int i = 0; i < kWarmupGets; ++i) {
    // Unmeasured; a failure here shows again, measured, in the run.
    (void)client->Get(options.ns, RecordId(i % options.records), kItemKey);
  }
  const KvClientStats before = client->stats();

  if (absl::Status applied = ApplyScenario(fleet, options, scenario); !applied.ok()) {
    (void)ClearScenario(fleet, options, scenario);
    return applied;
  }
  std::mt19937_64 rng(kOpSeed);
  std::uniform_real_distribution<double> share(0.0, 1.0);
  std::uniform_int_distribution<int64_t> record(0, options.records - 1);
  const size_t value_size = value.size();
  OpenLoopOptions loop;
  loop.rate = options.rate;
  loop.duration = options.duration;
  loop.drain_timeout = options.timeout + kDrainMargin;
  loop.slo_target = slo.target;
  const OpenLoopResult result =
      RunOpenLoop(loop, [&](int64_t, std::function<void(absl::Status)> done) {
        const bool read = share(rng) < options.read_share;
        const std::string id = RecordId(record(rng));
        if (read) {
          client->GetAsync(options.ns, id, kItemKey,
                           [done = std::move(done), value_size](absl::StatusOr<std::string> got) {
                             if (got.ok() && got->size() != value_size) {
                               return done(absl::DataLossError("value of the wrong size"));
                             }
                             done(got.status());
                           });
        } else {
          client->PutAsync(options.ns, id, kItemKey, value, std::move(done));
        }
      });
  const absl::Status cleared = ClearScenario(fleet, options, scenario);
  const KvClientStats after = client->stats();
  client.reset();  // waits for the calls still out, now that no replica is held up
  SG_RETURN_IF_ERROR(cleared);

  FaultRun run;
  run.mode = mode;
  run.scenario = scenario;
  run.rate = options.rate;
  run.duration = options.duration;
  run.ops = result.issued;
  run.ok = result.ok;
  run.errors = result.errors;
  run.p50_us = result.latency_us.Percentile(0.50);
  run.p99_us = result.latency_us.Percentile(0.99);
  run.p999_us = result.latency_us.Percentile(0.999);
  run.max_us = result.latency_us.Max();
  run.slo_target_us = absl::ToInt64Microseconds(slo.target);
  if (run.ops > 0) {
    run.slo_attainment = static_cast<double>(result.ok_within_slo) / static_cast<double>(run.ops);
    run.attempts_per_op =
        static_cast<double>(after.attempts - before.attempts) / static_cast<double>(run.ops);
  }
  run.hedges = after.hedges - before.hedges;
  run.retries = after.retries - before.retries;
  run.max_issue_lag_us = absl::ToInt64Microseconds(result.max_issue_lag);
  return run;
}

std::string ErrorSummary(const std::map<std::string, int64_t>& errors) {
  if (errors.empty()) return "-";
  std::vector<std::string> parts;
  for (const auto& [code, count] : errors) parts.push_back(absl::StrCat(code, "=", count));
  return absl::StrJoin(parts, " ");
}

}  // namespace

absl::StatusOr<ReliabilityOptions> ModeReliability(std::string_view mode) {
  ReliabilityOptions o = ReliabilityOptions::Naive();
  if (mode == "naive") return o;
  if (mode == "full") return ReliabilityOptions{};
  if (mode == "hedging") {
    o.hedging = true;
  } else if (mode == "retries") {
    o.retries = true;
  } else if (mode == "limiter") {
    o.limiter = ReliabilityOptions{}.limiter;
  } else if (mode == "balancing") {
    o.load_balancing = true;
  } else if (mode == "gc-tolerant") {
    o.gc_tolerant_timeouts = true;
  } else if (mode == "signalled-timeouts") {
    o.signalled_timeouts = true;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown mode '", std::string(mode), "'; expected one of ", absl::StrJoin(kModes, ", ")));
  }
  return o;
}

absl::Status ValidateFaultBenchOptions(const FaultBenchOptions& options) {
  if (options.scenarios.empty()) return absl::InvalidArgumentError("no scenario given");
  for (const std::string& scenario : options.scenarios) {
    if (!Known(scenario, kScenarios)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown scenario '", scenario, "'; expected one of ", absl::StrJoin(kScenarios, ", ")));
    }
  }
  if (options.modes.empty()) return absl::InvalidArgumentError("no mode given");
  for (const std::string& mode : options.modes) SG_RETURN_IF_ERROR(ModeReliability(mode).status());
  if (options.ns.empty()) return absl::InvalidArgumentError("namespace must not be empty");
  if (!std::isfinite(options.rate) || options.rate <= 0) {
    return absl::InvalidArgumentError("rate must be a positive number of operations per second");
  }
  if (options.duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("duration must be positive");
  }
  if (options.rate * absl::ToDoubleSeconds(options.duration) > kMaxOpsPerRun) {
    return absl::InvalidArgumentError("rate x duration must be at most 1e8 operations");
  }
  if (!(options.read_share >= 0 && options.read_share <= 1)) {
    return absl::InvalidArgumentError("read share must be in [0, 1]");
  }
  if (options.records <= 0) return absl::InvalidArgumentError("records must be positive");
  if (options.value_bytes < 0 || options.value_bytes > (64 << 20)) {
    return absl::InvalidArgumentError("value bytes must be in [0, 64 MiB]");
  }
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout must be positive");
  }
  if (options.slow_delay < absl::ZeroDuration() || options.slow_delay > absl::Seconds(60)) {
    return absl::InvalidArgumentError("slow delay must be in [0, 60 s]");
  }
  return absl::OkStatus();
}

absl::StatusOr<FaultBenchReport> RunFaultBench(const FaultBenchOptions& options, Fleet& fleet,
                                               std::ostream* progress,
                                               const FaultClientFactory& connect) {
  SG_RETURN_IF_ERROR(ValidateFaultBenchOptions(options));
  if (fleet.addresses().empty()) return absl::InvalidArgumentError("the fleet has no gateways");

  std::string value(options.value_bytes, '\0');
  std::mt19937_64 bytes(kOpSeed);
  for (char& c : value) c = static_cast<char>(bytes());  // incompressible, like real payloads

  // The same records on every gateway, each written directly (no client spreads them); over
  // a shared store, writing them through one is enough.
  const size_t writers = options.shared_storage ? 1 : fleet.addresses().size();
  for (size_t i = 0; i < writers; ++i) {
    const std::string& address = fleet.addresses()[i];
    KvClientOptions writer_options;
    writer_options.address = address;
    writer_options.timeout = kSetupTimeout;
    writer_options.reliability = ReliabilityOptions::Naive();
    SG_ASSIGN_OR_RETURN(std::unique_ptr<KvClient> writer, connect(writer_options));
    SG_ASSIGN_OR_RETURN(const HandshakeInfo info, writer->Handshake({options.ns}));
    SG_RETURN_IF_ERROR(PointReadSlo(info, options.ns).status());
    if (absl::Status loaded = Preload(*writer, options.ns, options.records, value); !loaded.ok()) {
      return absl::Status(loaded.code(),
                          absl::StrCat("preloading ", address, ": ", loaded.message()));
    }
  }
  if (progress != nullptr) {
    *progress << "preloaded " << options.records << " records of " << options.value_bytes
              << " bytes "
              << (options.shared_storage
                      ? absl::StrCat("through 1 of ", fleet.addresses().size(),
                                     " gateways sharing one store")
                      : absl::StrCat("into ", fleet.addresses().size(), " gateways"))
              << std::endl;
  }

  FaultBenchReport report;
  report.options = options;
  report.addresses = fleet.addresses();
  for (const std::string& scenario : options.scenarios) {
    for (const std::string& mode : options.modes) {
      absl::StatusOr<FaultRun> run = RunOne(options, fleet, scenario, mode, value, connect);
      if (!run.ok()) {
        return absl::Status(run.status().code(),
                            absl::StrCat(scenario, " / ", mode, ": ", run.status().message()));
      }
      if (progress != nullptr) {
        *progress << absl::StrFormat("%s / %s: %d ops, %d ok, p99 %.1f ms", scenario, mode,
                                     run->ops, run->ok, run->p99_us / 1000.0)
                  << std::endl;
      }
      report.runs.push_back(*std::move(run));
    }
  }
  return report;
}

std::string FormatFaultTable(const FaultBenchReport& report) {
  std::string out =
      absl::StrFormat("%-15s %-18s %7s %7s %9s %9s %8s %8s  %s\n", "scenario", "mode", "ops", "ok",
                      "p99_ms", "p99.9_ms", "slo_att", "att/op", "errors");
  for (const FaultRun& r : report.runs) {
    absl::StrAppendFormat(&out, "%-15s %-18s %7d %7d %9.1f %9.1f %7.1f%% %8.2f  %s\n", r.scenario,
                          r.mode, r.ops, r.ok, r.p99_us / 1000.0, r.p999_us / 1000.0,
                          100.0 * r.slo_attainment, r.attempts_per_op, ErrorSummary(r.errors));
  }
  return out;
}

std::string FaultBenchJson(const FaultBenchReport& report) {
  nlohmann::json runs = nlohmann::json::array();
  for (const FaultRun& r : report.runs) {
    nlohmann::json errors = nlohmann::json::object();
    for (const auto& [code, count] : r.errors) errors[code] = count;
    runs.push_back({{"mode", r.mode},
                    {"scenario", r.scenario},
                    {"ops", r.ops},
                    {"ok", r.ok},
                    {"errors", std::move(errors)},
                    {"p50_us", r.p50_us},
                    {"p99_us", r.p99_us},
                    {"p999_us", r.p999_us},
                    {"max_us", r.max_us},
                    {"slo_target_us", r.slo_target_us},
                    {"slo_attainment", r.slo_attainment},
                    {"attempts_per_op", r.attempts_per_op},
                    {"hedges", r.hedges},
                    {"retries", r.retries},
                    {"rate", r.rate},
                    {"duration_s", absl::ToDoubleSeconds(r.duration)},
                    {"max_issue_lag_us", r.max_issue_lag_us}});
  }
  const FaultBenchOptions& o = report.options;
  const nlohmann::json doc = {{"runs", std::move(runs)},
                              {"addresses", report.addresses},
                              {"options",
                               {{"namespace", o.ns},
                                {"read_share", o.read_share},
                                {"records", o.records},
                                {"value_bytes", o.value_bytes},
                                {"shared_storage", o.shared_storage},
                                {"timeout_s", absl::ToDoubleSeconds(o.timeout)},
                                {"slow_ms", absl::ToDoubleMilliseconds(o.slow_delay)}}}};
  return doc.dump(2) + "\n";
}

}  // namespace stategate::bench
