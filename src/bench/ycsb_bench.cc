#include "src/bench/ycsb_bench.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "src/bench/client_modes.h"
#include "src/bench/closed_loop.h"
#include "src/bench/direct_targets.h"
#include "src/bench/fleet.h"
#include "src/bench/open_loop.h"
#include "src/bench/stategate_target.h"
#include "src/bench/target.h"
#include "src/bench/ycsb.h"
#include "src/common/namespace_config.h"
#include "src/common/priority.h"
#include "src/common/status_macros.h"
#include "src/common/worker_pool.h"
#include "src/redis/cluster_client.h"
#include "src/storage/redis/redis_engine.h"
#include "src/testbed/child_process.h"
#include "src/testbed/memcached_server.h"
#include "src/testbed/redis_cluster.h"
#include "src/testbed/redis_server.h"

namespace stategate::bench {
namespace {

// Calls answered OK within their SLO target, per second, over the intervals that lie wholly
// inside [onset, end): what a run delivered while its fault lasted (an overload's goodput).
double GoodputWithin(const LoadRecorder& recorder, absl::Duration onset, absl::Duration end) {
  const int64_t first = absl::Ceil(onset, recorder.interval()) / recorder.interval();
  const int64_t last = absl::Floor(end, recorder.interval()) / recorder.interval();  // excluded
  if (last <= first) return 0;
  int64_t within = 0;
  for (int64_t i = first; i < last; ++i) within += recorder.Interval(i).ok_within_slo;
  return static_cast<double>(within) / absl::ToDoubleSeconds(recorder.interval() * (last - first));
}

using ycsb::OpKind;

constexpr const char* kTargets[] = {"stategate-rocksdb", "stategate-redis", "redis",
                                    "redis-cluster",     "memcached",       "empty"};
constexpr const char* kScenarios[] = {"none",           "slow-replica",   "error-replica",
                                      "paused-replica", "killed-replica", "rolling-restart",
                                      "overload",       "redis-failover"};
constexpr char kNamespace[] = "default";
// Beyond the call timeout, how long a run waits for the callbacks of calls that timed out.
constexpr absl::Duration kDrainMargin = absl::Milliseconds(200);
constexpr char kDirectMode[] = "direct";
constexpr uint64_t kSeed = 0x5eed;
// Distinct random field values each run draws from (making one per operation would cost
// the load generator more than some targets cost per operation).
constexpr int kValuePool = 1024;
// Unmeasured operations each fresh client makes before its run (reads, no fault): it
// connects to every gateway and learns latencies, as a long-lived client would have.
constexpr int64_t kWarmupOps = 200;
// How long the closed loop that measures capacity for the overload scenario runs.
constexpr absl::Duration kCapacityProbe = absl::Seconds(2);
// The closed loops that measure capacity: these worker counts, then client_threads.
constexpr int kCapacityLevels[] = {8, 32};
constexpr double kMaxOverloadFactor = 16;
// The paused-replica scenario's rhythm: stopped this long, then running this long.
constexpr absl::Duration kPausePeriod = absl::Seconds(1);
// Between two gateways of a rolling restart, as an orchestrator waits for health.
constexpr absl::Duration kRollingGap = absl::Seconds(1);
// redis-failover kills the master of this slot; its shard is "the failed shard".
constexpr int kFailedSlot = 0;
// Per-second SLO attainment at which a run counts as recovered.
constexpr double kRecoveredAttainment = 0.999;
// Deadline of load-phase inserts and of the capacity probe's calls.
constexpr absl::Duration kSetupTimeout = absl::Seconds(10);
// Inserts in flight at once in the load phase. More only wait in the gateway's admission
// queue past its max_queue_wait, and are shed: a gateway admits a few dozen calls at a time.
constexpr int kMaxLoadWorkers = 32;
constexpr double kMaxOpsPerRun = 1e8;
// Stategate scan pages hold this many records (YCSB's longest scan, workload E)...
constexpr int64_t kScanPageRecords = 100;
// ...counting this much per item besides its value (key, version, checksum, framing).
constexpr int64_t kItemOverheadBytes = 64;
// The quantiles of each run's latency CDF in the JSON.
constexpr double kCdfQuantiles[] = {0,   0.1, 0.2,  0.3,  0.4,   0.5,   0.6,    0.7,
                                    0.8, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999, 1};

bool Known(std::string_view name, const auto& names) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

bool IsStategate(std::string_view target) {
  return target == "stategate-rocksdb" || target == "stategate-redis";
}
bool OnRedisCluster(std::string_view target) {
  return target == "stategate-redis" || target == "redis-cluster";
}
bool HasModes(std::string_view target) { return IsStategate(target) || target == "empty"; }

// Whether `scenario` can hurt `target` (see the header).
bool Applies(std::string_view scenario, std::string_view target) {
  if (scenario == "none") return true;
  if (scenario == "overload") return target != "empty";
  if (scenario == "redis-failover") return OnRedisCluster(target);
  return IsStategate(target);
}

// The SLO target of an operation: the default namespace's, by what the operation does.
absl::Duration SloTarget(OpKind kind) {
  static const NamespaceConfig defaults;
  switch (kind) {
    case OpKind::kRead:
      return defaults.point_read.target;
    case OpKind::kUpdate:
    case OpKind::kInsert:
      return defaults.write.target;
    case OpKind::kScan:
      return defaults.range_read.target;
    case OpKind::kReadModifyWrite:
      return defaults.point_read.target + defaults.write.target;
  }
  return defaults.point_read.target;
}

// The kind of every operation of a run by index, for its SLO target at completion.
template <typename T>
class IndexLog {
 public:
  void Set(int64_t index, T value) {
    absl::MutexLock lock(&mu_);
    if (static_cast<size_t>(index) >= values_.size()) values_.resize(index + 1);
    values_[index] = value;
  }
  // T{} for an index never set.
  T Get(int64_t index) const {
    absl::MutexLock lock(&mu_);
    return static_cast<size_t>(index) < values_.size() ? values_[index] : T{};
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<T> values_ ABSL_GUARDED_BY(mu_);
};
using KindLog = IndexLog<OpKind>;  // OpKind{} is kRead

// What one target needs running, stopped in reverse order (gateways before their stores).
struct Environment {
  std::string target;
  std::unique_ptr<testbed::RedisCluster> cluster;
  std::unique_ptr<testbed::RedisServer> redis;
  std::unique_ptr<testbed::MemcachedServer> memcached;
  std::unique_ptr<Fleet> fleet;
  // Records that exist: loaded, then grown by acknowledged inserts of the runs.
  int64_t records = 0;
  // About how many bytes a record takes in a page (values, names, per-item metadata).
  int64_t record_bytes = 0;
};

absl::StatusOr<std::unique_ptr<Environment>> StartEnvironment(const std::string& target,
                                                              const YcsbBenchOptions& options,
                                                              std::ostream& progress) {
  auto env = std::make_unique<Environment>();
  env->target = target;
  env->record_bytes = options.fields * (options.field_bytes + kItemOverheadBytes);
  LocalFleetOptions fleet_options;
  fleet_options.server_binary = options.server_binary;
  fleet_options.replicas = options.replicas;
  if (OnRedisCluster(target)) {
    progress << target << ": starting a local Redis Cluster (3 masters, 3 replicas)" << std::endl;
    SG_ASSIGN_OR_RETURN(env->cluster, testbed::RedisCluster::Start());
    fleet_options.redis_cluster_seeds = env->cluster->seed_list();
  }
  if (target == "redis") {
    SG_ASSIGN_OR_RETURN(env->redis, testbed::RedisServer::Start());
  }
  if (target == "memcached") {
    testbed::MemcachedOptions memcached_options;
    // Room for every record: an evicted record would read as NOT_FOUND.
    memcached_options.memory_mb = 1024;
    SG_ASSIGN_OR_RETURN(env->memcached, testbed::MemcachedServer::Start(memcached_options));
  }
  if (IsStategate(target) || target == "empty") {
    if (target == "empty") fleet_options.replicas = 1;
    progress << target << ": starting " << fleet_options.replicas << " gateway(s)" << std::endl;
    SG_ASSIGN_OR_RETURN(env->fleet, Fleet::StartLocal(fleet_options));
  }
  return env;
}

// A target for one run: a fresh client in `mode` over `addresses` for the gateway targets.
struct TargetSession {
  std::shared_ptr<KvClient> client;  // null for the direct targets
  std::unique_ptr<Target> target;
};

absl::StatusOr<TargetSession> ConnectTarget(const Environment& env, const std::string& mode,
                                            const std::vector<std::string>& addresses,
                                            absl::Duration timeout, int threads) {
  TargetSession run;
  // The direct targets wait for a reply as long as the stategate client waits for a call.
  DirectTargetOptions direct;
  direct.io_timeout = timeout;
  direct.cluster_retry_window = timeout;
  if (env.target == "redis") {
    SG_ASSIGN_OR_RETURN(run.target, ConnectRedisTarget(env.redis->address(), threads, direct));
  } else if (env.target == "redis-cluster") {
    SG_ASSIGN_OR_RETURN(run.target,
                        ConnectRedisClusterTarget(env.cluster->seeds(), threads, direct));
  } else if (env.target == "memcached") {
    SG_ASSIGN_OR_RETURN(run.target,
                        ConnectMemcachedTarget(env.memcached->address(), threads, direct));
  } else {
    KvClientOptions client_options;
    client_options.address = addresses[0];
    client_options.more_addresses.assign(addresses.begin() + 1, addresses.end());
    client_options.timeout = timeout;
    // Pages as large as the longest YCSB scan needs, not the namespace's default (2 MiB): a
    // scan that stops after a few records should not fetch megabytes.
    client_options.page_size_bytes = kScanPageRecords * env.record_bytes;
    SG_ASSIGN_OR_RETURN(client_options.reliability, ModeReliability(mode));
    SG_ASSIGN_OR_RETURN(std::unique_ptr<KvClient> client, KvClient::Connect(client_options));
    run.client = std::move(client);
    run.target = env.target == "empty" ? MakeEmptyCallTarget(run.client, kNamespace, threads)
                                       : MakeStategateTarget(run.client, kNamespace, threads);
  }
  return run;
}

// Random field values, and the TargetOp of an Operation.
class OpMaker {
 public:
  OpMaker(int fields, int64_t field_bytes) : fields_(fields) {
    std::mt19937_64 bytes(kSeed);
    values_.resize(kValuePool);
    for (std::string& value : values_) {
      value.resize(field_bytes);
      for (char& c : value) c = static_cast<char>(bytes());  // incompressible, like real data
    }
  }

  TargetOp Make(const ycsb::Operation& op, std::mt19937_64& rng) const {
    TargetOp t;
    t.kind = op.kind;
    t.key = ycsb::RecordKey(op.record);
    switch (op.kind) {
      case OpKind::kInsert:
        for (int f = 0; f < fields_; ++f) t.fields.emplace_back(ycsb::FieldName(f), Value(rng));
        break;
      case OpKind::kUpdate:
      case OpKind::kReadModifyWrite:
        t.fields.emplace_back(ycsb::FieldName(op.field), Value(rng));
        break;
      case OpKind::kScan:
        t.scan_length = op.scan_length;
        break;
      case OpKind::kRead:
        break;
    }
    return t;
  }

 private:
  const std::string& Value(std::mt19937_64& rng) const { return values_[rng() % values_.size()]; }

  int fields_;
  std::vector<std::string> values_;
};

// Inserts records [0, count) through `target` with `threads` workers.
absl::Status Load(Target& target, const OpMaker& maker, int64_t count, int threads,
                  std::ostream& progress, const std::string& what) {
  LoadRecorder recorder;
  ClosedLoadOptions load;
  load.threads = threads;
  load.duration = absl::Hours(1);
  load.max_ops = count;
  load.op_timeout = kSetupTimeout;
  load.slo_target_of = [](int64_t) { return SloTarget(OpKind::kInsert); };
  const absl::Time start = absl::Now();
  RunClosedLoad(
      load,
      [&](int64_t index, std::function<void(absl::Status)> done) {
        std::mt19937_64 rng(kSeed + index);
        target.Start(maker.Make({.kind = OpKind::kInsert, .record = index}, rng), std::move(done));
      },
      recorder);
  const absl::Duration took = absl::Now() - start;
  const LoadStats total = recorder.Total();
  progress << absl::StrFormat("%s: loaded %d records in %.1f s (%.0f inserts/s, p99 %.1f ms)", what,
                              total.ok, absl::ToDoubleSeconds(took),
                              total.ok / std::max(1e-9, absl::ToDoubleSeconds(took)),
                              total.latency_us.Percentile(0.99) / 1000.0)
           << std::endl;
  if (total.error_count() > 0) {
    std::vector<std::string> errors;
    for (const auto& [code, n] : total.errors) {
      auto example = total.error_examples.find(code);
      errors.push_back(absl::StrCat(code, "=", n,
                                    example == total.error_examples.end()
                                        ? ""
                                        : absl::StrCat(", e.g. '", example->second, "'")));
    }
    return absl::UnavailableError(absl::StrCat(what, ": load phase failed for ",
                                               total.error_count(), " of ", count, " records (",
                                               absl::StrJoin(errors, " "), ")"));
  }
  return absl::OkStatus();
}

// Runs a fault scenario's actions from the fault's onset to its end on `actions`, a thread
// that outlives every process it starts: the kernel kills a child started with
// die_with_parent when the thread that started it exits (a restarted gateway or Redis node
// must live on after its scenario).
class FaultController {
 public:
  FaultController(Environment& env, const YcsbBenchOptions& options, std::string scenario,
                  absl::Time run_start, WorkerPool& actions)
      : env_(env), options_(options), scenario_(std::move(scenario)), run_start_(run_start) {
    if (scenario_ == "none" || scenario_ == "overload") {
      acted_.Notify();
      return;
    }
    actions.Submit([this] {
      status_ = Act();
      acted_.Notify();
    });
  }

  // Waits for the actions to finish (the run is over: a waiting step stops at once, and
  // what was set is cleared). Returns the first error.
  // After the run: waits for the action, then undoes what outlasts it on purpose (a
  // master killed for good comes back, as a replica, for the runs that follow).
  absl::Status Finish() {
    run_over_.Notify();
    acted_.WaitForNotification();
    if (killed_master_.has_value()) {
      absl::Status restarted = env_.cluster->RestartNode(*killed_master_);
      if (status_.ok()) status_ = restarted;
    }
    return status_;
  }

  // When the fault began and ended, from the run's start (the planned window for overload).
  std::optional<absl::Duration> onset() const { return onset_; }
  std::optional<absl::Duration> end() const { return end_; }

  static absl::Duration PlannedOnset(const YcsbBenchOptions& o) {
    return o.duration * o.fault_onset;
  }
  static absl::Duration PlannedEnd(const YcsbBenchOptions& o) { return o.duration * o.fault_end; }

 private:
  // Sleeps until `offset` from the run's start; false if the run ended first.
  bool SleepUntil(absl::Duration offset) {
    return !run_over_.WaitForNotificationWithDeadline(run_start_ + offset);
  }
  absl::Duration Elapsed() const { return absl::Now() - run_start_; }
  void MarkOnset() { onset_ = Elapsed(); }
  void MarkEnd() { end_ = Elapsed(); }

  absl::Status Act() {
    if (!SleepUntil(PlannedOnset(options_))) return absl::OkStatus();
    Fleet* fleet = env_.fleet.get();
    MarkOnset();
    absl::Status status;
    if (scenario_ == "slow-replica" || scenario_ == "error-replica") {
      InjectedFaults faults;
      if (scenario_ == "slow-replica") faults.delay = options_.slow_delay;
      if (scenario_ == "error-replica") faults.error_rate = 1.0;
      SG_RETURN_IF_ERROR(fleet->SetFaults(0, kNamespace, faults));
      SleepUntil(PlannedEnd(options_));
      status = fleet->SetFaults(0, kNamespace, InjectedFaults{});
    } else if (scenario_ == "paused-replica") {
      // Stopped for a period, running for a period, until the planned end.
      while (status.ok() && Elapsed() < PlannedEnd(options_)) {
        status = fleet->Pause(0, kPausePeriod);
        const bool run_goes_on =
            SleepUntil(std::min(Elapsed() + kPausePeriod, PlannedEnd(options_)));
        const absl::Status resumed = fleet->Resume(0);
        if (status.ok()) status = resumed;
        if (!run_goes_on || !SleepUntil(std::min(Elapsed() + kPausePeriod, PlannedEnd(options_)))) {
          break;
        }
      }
    } else if (scenario_ == "killed-replica") {
      SG_RETURN_IF_ERROR(fleet->Kill(0));
      SleepUntil(PlannedEnd(options_));
      status = fleet->Restart(0);
    } else if (scenario_ == "rolling-restart") {
      for (size_t r = 0; r < fleet->addresses().size() && status.ok(); ++r) {
        if (r > 0 && !SleepUntil(Elapsed() + kRollingGap)) break;
        status = fleet->Restart(r);
      }
    } else if (scenario_ == "redis-failover") {
      SG_ASSIGN_OR_RETURN(const testbed::RedisNode master, env_.cluster->MasterOfSlot(kFailedSlot));
      SG_RETURN_IF_ERROR(env_.cluster->KillNode(master.port));
      killed_master_ = master.port;
      // Never brought back during the run: the promoted replica serves the shard alone, and its
      // writes are acknowledged without a replica (the `degrade` default of --redis-cluster).
      status = env_.cluster->WaitForFailover(master.port);
    }
    MarkEnd();
    return status;
  }

  Environment& env_;
  const YcsbBenchOptions& options_;
  const std::string scenario_;
  const absl::Time run_start_;
  absl::Notification run_over_;
  absl::Notification acted_;
  // Written by the action before acted_ is notified, read after.
  std::optional<absl::Duration> onset_;
  std::optional<absl::Duration> end_;
  std::optional<int> killed_master_;  // redis-failover: the port of the master it killed
  absl::Status status_;
};

// Prints a line per second while a run goes on.
class ProgressPrinter {
 public:
  ProgressPrinter(const LoadRecorder& recorder, std::ostream& out, std::string label)
      : thread_([this, &recorder, &out, label = std::move(label)] {
          const absl::Time start = absl::Now();
          for (int64_t second = 1;; ++second) {
            if (stop_.WaitForNotificationWithDeadline(start + absl::Seconds(second))) return;
            // The second that just ended, as far as its operations have completed.
            const LoadStats last = recorder.Interval(second - 1);
            const LoadStats total = recorder.Total();
            out << absl::StrFormat("  %4ds %s: %6d ops/s, p99 %7.1f ms, errors %d (run: %d)",
                                   second, label, last.ops,
                                   last.latency_us.Percentile(0.99) / 1000.0, last.error_count(),
                                   total.error_count())
                << std::endl;
          }
        }) {}
  ~ProgressPrinter() {
    stop_.Notify();
    thread_.join();
  }

 private:
  absl::Notification stop_;
  std::thread thread_;
};

nlohmann::json StatsJson(const LoadStats& s) {
  return {{"ops", s.ops},
          {"errors", s.error_count()},
          {"p50_us", s.latency_us.Percentile(0.5)},
          {"p99_us", s.latency_us.Percentile(0.99)},
          {"slo_attainment", s.slo_attainment()}};
}

nlohmann::json OptionalSeconds(std::optional<absl::Duration> d) {
  if (!d.has_value()) return nullptr;
  return absl::ToDoubleSeconds(*d);
}

// For redis-failover on a target whose data is on the cluster: whether a record lives on the
// shard whose master the scenario kills (the master of kFailedSlot now). An empty function
// for every other run.
absl::StatusOr<std::function<bool(const std::string&)>> FailedShardOf(const Environment& env,
                                                                      const std::string& scenario) {
  if (scenario != "redis-failover" || env.cluster == nullptr) {
    return std::function<bool(const std::string&)>();
  }
  SG_ASSIGN_OR_RETURN(const testbed::RedisNode master, env.cluster->MasterOfSlot(kFailedSlot));
  // A stategate record's keys carry its hash tag; the direct target's key is its own.
  const bool tagged = IsStategate(env.target);
  return std::function<bool(const std::string&)>(
      [slots = master.slots, tagged](const std::string& key) {
        const int slot = redis::KeySlot(tagged ? storage::RecordHashTag(key) : key);
        return std::any_of(slots.begin(), slots.end(), [slot](const std::pair<int, int>& range) {
          return slot >= range.first && slot <= range.second;
        });
      });
}

// One shard's (or group of shards') figures of a fault run: as the run's, and when its last
// failed or late operation was, from the fault's end (for redis-failover, the promotion).
nlohmann::json ShardJson(const LoadRecorder& recorder, std::optional<absl::Duration> onset,
                         std::optional<absl::Duration> end) {
  const LoadStats total = recorder.Total();
  const std::vector<LoadStats> series = recorder.Series();
  const WhyNines nines = ComputeWhyNines(series, recorder.interval(), onset, end);
  nlohmann::json errors = nlohmann::json::object();
  for (const auto& [code, count] : total.errors) errors[code] = count;
  // The end of the last second that had a failed operation / one that missed its SLO.
  std::optional<absl::Duration> last_error, last_miss;
  for (size_t t = 0; t < series.size(); ++t) {
    const absl::Duration second_end = recorder.interval() * static_cast<int64_t>(t + 1);
    if (series[t].error_count() > 0) last_error = second_end;
    if (series[t].ok_within_slo < series[t].ops) last_miss = second_end;
  }
  const auto after_end = [&end](std::optional<absl::Duration> at) -> nlohmann::json {
    if (!at.has_value() || !end.has_value()) return nullptr;
    return absl::ToDoubleSeconds(std::max(absl::ZeroDuration(), *at - *end));
  };
  return {{"ops", total.ops},
          {"ok", total.ok},
          {"slo_attainment", total.slo_attainment()},
          {"p99_us", total.latency_us.Percentile(0.99)},
          {"errors", std::move(errors)},
          {"blast_radius", nines.blast_radius},
          {"recover_from_end_s", OptionalSeconds(nines.recover_from_end)},
          {"last_error_after_end_s", after_end(last_error)},
          {"last_miss_after_end_s", after_end(last_miss)}};
}

struct RunSpec {
  std::string workload;
  std::string scenario;
  std::string mode;
};

class Bench {
 public:
  Bench(const YcsbBenchOptions& options, std::ostream& progress)
      : options_(options), progress_(progress), maker_(options.fields, options.field_bytes) {}

  absl::Status RunOnTarget(const std::string& target, nlohmann::json& runs, nlohmann::json& loads) {
    SG_ASSIGN_OR_RETURN(std::unique_ptr<Environment> env,
                        StartEnvironment(target, options_, progress_));
    SG_RETURN_IF_ERROR(LoadPhase(*env, loads));
    std::map<std::string, Capacity> capacity;  // by workload
    for (const std::string& workload : options_.workloads) {
      SG_ASSIGN_OR_RETURN(const ycsb::Workload w, ycsb::StandardWorkload(workload));
      for (const std::string& scenario : options_.scenarios) {
        if (!Applies(scenario, target)) continue;
        const std::vector<std::string> modes =
            HasModes(target) ? options_.modes : std::vector<std::string>{kDirectMode};
        for (const std::string& mode : modes) {
          nlohmann::json run = {
              {"target", target}, {"mode", mode}, {"scenario", scenario}, {"workload", workload}};
          if (!Supported(w, *env)) {
            run["skipped"] =
                absl::StrCat(target, " cannot run every operation of workload ", workload, " (",
                             target == "memcached" ? "no scan" : "", ")");
            progress_ << target << " / " << workload << ": skipped ("
                      << run["skipped"].get<std::string>() << ")" << std::endl;
            runs.push_back(std::move(run));
            continue;
          }
          if (scenario == "overload" && !capacity.contains(workload)) {
            SG_ASSIGN_OR_RETURN(capacity[workload], MeasureCapacity(*env, w));
          }
          const double overload_rate =
              scenario == "overload" ? options_.overload_factor * capacity[workload].throughput : 0;
          if (scenario == "overload") {
            run["capacity"] = capacity[workload].throughput;
            run["capacity_within_slo"] = capacity[workload].within_slo;
          }
          // A run that fails (a fault that cannot be set or cleared) is reported and the
          // others go on: one broken run must not lose the rest.
          if (absl::Status ran = RunOne(*env, w, scenario, mode, overload_rate, run); !ran.ok()) {
            progress_ << "run failed: " << ran << std::endl;
            run = {{"target", target},
                   {"mode", mode},
                   {"scenario", scenario},
                   {"workload", workload},
                   {"skipped", absl::StrCat("failed: ", ran.ToString())}};
          }
          runs.push_back(std::move(run));
        }
      }
    }
    if (env->fleet != nullptr) SG_RETURN_IF_ERROR(env->fleet->Stop());
    return absl::OkStatus();
  }

 private:
  bool Supported(const ycsb::Workload& w, const Environment& env) {
    // Gateways serve every kind (the empty target answers each with the same call).
    if (HasModes(env.target)) return true;
    absl::StatusOr<TargetSession> probe =
        ConnectTarget(env, kDirectMode, Addresses(env), options_.timeout, 1);
    if (!probe.ok()) return true;  // the run will report the error
    for (OpKind kind : ycsb::OperationKinds(w)) {
      if (!probe->target->Supports(kind)) return false;
    }
    return true;
  }

  std::vector<std::string> Addresses(const Environment& env) const {
    return env.fleet != nullptr ? env.fleet->addresses() : std::vector<std::string>{};
  }

  absl::Status LoadPhase(Environment& env, nlohmann::json& loads) {
    const absl::Time start = absl::Now();
    // Gateways with their own RocksDB each get every record; a shared store gets them once.
    std::vector<std::vector<std::string>> writers;
    if (env.target == "stategate-rocksdb") {
      for (const std::string& address : env.fleet->addresses()) writers.push_back({address});
    } else {
      writers.push_back(Addresses(env));
    }
    for (const std::vector<std::string>& addresses : writers) {
      // Retries on (same token, so idempotent), every other mechanism off: a replica that
      // lags a moment behind a freshly started cluster (a write's WAIT past its budget) must
      // not fail the setup. It failed 32 of 200 inserts once in a loaded ctest run.
      const std::string mode = HasModes(env.target) ? "retries" : kDirectMode;
      SG_ASSIGN_OR_RETURN(TargetSession writer, ConnectTarget(env, mode, addresses, kSetupTimeout,
                                                              options_.client_threads));
      const std::string what =
          addresses.size() == 1 ? absl::StrCat(env.target, " (", addresses[0], ")") : env.target;
      SG_RETURN_IF_ERROR(Load(*writer.target, maker_, options_.records,
                              std::min(options_.client_threads, kMaxLoadWorkers), progress_, what));
    }
    env.records = options_.records;
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    loads.push_back(
        {{"target", env.target},
         {"records", options_.records},
         {"copies", writers.size()},
         {"seconds", seconds},
         {"inserts_per_s", options_.records * writers.size() / std::max(seconds, 1e-9)}});
    return absl::OkStatus();
  }

  // What the system can do before an overload run, with the naive client in closed loops
  // of kCapacityLevels workers (client_threads being the last): `throughput`, the most
  // calls answered OK per second at any latency, sets the offered load; `within_slo`, the
  // most answered OK within their SLO target per second at any of the levels, is what an
  // overload's goodput can at best keep (more workers buy throughput with queueing: with
  // 256, every call waits tens of milliseconds and misses a 10 ms SLO).
  struct Capacity {
    double throughput = 0;
    double within_slo = 0;
  };

  absl::StatusOr<Capacity> MeasureCapacity(Environment& env, const ycsb::Workload& w) {
    const std::string mode = HasModes(env.target) ? "naive" : kDirectMode;
    SG_ASSIGN_OR_RETURN(TargetSession probe, ConnectTarget(env, mode, Addresses(env), kSetupTimeout,
                                                           options_.client_threads));
    ycsb::OperationGenerator generator(w, env.records, options_.fields, 0);
    std::mutex generator_mu;  // the workers share the generator
    Capacity capacity;
    std::vector<std::string> levels;
    std::vector<int> probes;
    for (int workers : kCapacityLevels) {
      if (workers < options_.client_threads) probes.push_back(workers);
    }
    probes.push_back(options_.client_threads);
    for (int workers : probes) {
      LoadRecorder recorder;
      ClosedLoadOptions load;
      load.threads = workers;
      load.duration = kCapacityProbe;
      load.op_timeout = kSetupTimeout;
      KindLog probe_kinds;
      load.slo_target_of = [&probe_kinds](int64_t index) {
        return SloTarget(probe_kinds.Get(index));
      };
      RunClosedLoad(
          load,
          [&](int64_t index, std::function<void(absl::Status)> done) {
            std::mt19937_64 rng(kSeed + index);
            TargetOp target_op;
            {
              std::lock_guard<std::mutex> lock(generator_mu);
              ycsb::Operation op = generator.Next(rng);
              if (op.kind == OpKind::kInsert)
                op = {.kind = OpKind::kRead, .record = 0};  // no new keys
              probe_kinds.Set(index, op.kind);
              target_op = maker_.Make(op, rng);
            }
            probe.target->Start(std::move(target_op), std::move(done));
          },
          recorder);
      const LoadStats total = recorder.Total();
      const double seconds = absl::ToDoubleSeconds(kCapacityProbe);
      capacity.throughput = std::max(capacity.throughput, total.ok / seconds);
      capacity.within_slo = std::max(capacity.within_slo, total.ok_within_slo / seconds);
      levels.push_back(absl::StrFormat("%d workers %.0f ok/s, %.0f within SLO", workers,
                                       total.ok / seconds, total.ok_within_slo / seconds));
    }
    progress_ << absl::StrFormat("%s / %s: capacity %.0f ops/s, %.0f ops/s within SLO (%s)",
                                 env.target, w.name, capacity.throughput, capacity.within_slo,
                                 absl::StrJoin(levels, "; "))
              << std::endl;
    if (capacity.throughput <= 0) {
      return absl::UnavailableError(absl::StrCat(env.target, ": capacity 0"));
    }
    return capacity;
  }

  absl::Status RunOne(Environment& env, const ycsb::Workload& w, const std::string& scenario,
                      const std::string& mode, double overload_rate, nlohmann::json& run) {
    SG_ASSIGN_OR_RETURN(TargetSession rt, ConnectTarget(env, mode, Addresses(env), options_.timeout,
                                                        options_.client_threads));
    Target& target = *rt.target;
    Warmup(target, env.records);
    const KvClientStats before = rt.client != nullptr ? rt.client->stats() : KvClientStats{};
    const int64_t bytes_before = target.payload_bytes_sent();

    const bool open = options_.threads == 0 || scenario == "overload";
    const absl::Duration duration = open && options_.operations > 0 && options_.threads == 0
                                        ? absl::Seconds(options_.operations / options_.rate)
                                        : options_.duration;
    YcsbBenchOptions timing = options_;
    timing.duration = duration;
    const int64_t expected_ops =
        open ? static_cast<int64_t>(options_.rate * absl::ToDoubleSeconds(duration))
             : options_.operations;
    ycsb::OperationGenerator generator(w, env.records, options_.fields,
                                       ycsb::ExpectedInserts(w, expected_ops));
    KindLog kinds;
    LoadRecorder recorder;
    // With a priority mix, each tier's operations are also recorded apart (open loop).
    std::array<LoadRecorder, 3> tiers;  // by Priority
    const std::optional<PriorityMix> mix = options_.priority_mix;
    // redis-failover: each operation is also recorded by shard, the failed shard's (its master
    // is the one killed) apart from the healthy shards', for each one's blast radius and time
    // to recover.
    std::array<LoadRecorder, 2> shards;  // [0] the healthy shards, [1] the failed shard
    SG_ASSIGN_OR_RETURN(const std::function<bool(const std::string&)> on_failed_shard,
                        FailedShardOf(env, scenario));
    IndexLog<bool> failed_shard;
    std::mutex rng_mu;
    std::mt19937_64 rng(kSeed);
    const AsyncOp op = [&](int64_t index, std::function<void(absl::Status)> done) {
      ycsb::Operation next;
      TargetOp target_op;
      {
        std::lock_guard<std::mutex> lock(rng_mu);
        next = generator.Next(rng);
        target_op = maker_.Make(next, rng);
      }
      if (mix.has_value()) target_op.priority = mix->TierOf(index);
      kinds.Set(index, next.kind);
      if (on_failed_shard) failed_shard.Set(index, on_failed_shard(target_op.key));
      // A read of a record that is not there is NOT_FOUND, an error, as in YCSB.
      target.Start(std::move(target_op),
                   [&generator, next, done = std::move(done)](absl::Status status) {
                     if (next.kind == OpKind::kInsert) generator.AcknowledgeInsert(next.record);
                     done(std::move(status));
                   });
    };
    const auto slo_of = [&kinds](int64_t index) { return SloTarget(kinds.Get(index)); };

    const std::string label = absl::StrCat(w.name, " ", env.target, "/", mode, " ", scenario);
    progress_ << label << ": "
              << (open ? absl::StrFormat("open loop, %.0f ops/s", options_.rate)
                       : absl::StrFormat("closed loop, %d threads", options_.threads))
              << (overload_rate > 0
                      ? absl::StrFormat(", %.0f ops/s in the fault window", overload_rate)
                      : "")
              << ", " << absl::FormatDuration(duration) << std::endl;
    // The gateways' memory over the run: every queue is bounded, so an overload must not
    // grow it.
    if (env.fleet != nullptr) env.fleet->ResetMemoryPeak();
    const std::optional<GatewayMemory> memory_at_start =
        env.fleet != nullptr ? env.fleet->Memory() : std::nullopt;
    int64_t issued = 0;
    absl::Duration measured = duration;  // a closed loop may stop early, at --ops
    absl::Duration max_issue_lag;
    absl::Status fault_status;
    std::optional<absl::Duration> onset, end;
    std::optional<GatewayMemory> memory_at_end;
    {
      ProgressPrinter printer(recorder, progress_, label);
      const absl::Time start = absl::Now();
      FaultController faults(env, timing, scenario, start, actions_);
      if (open) {
        OpenLoopOptions loop;
        loop.rate = options_.rate;
        loop.duration = duration;
        loop.drain_timeout = options_.timeout + kDrainMargin;
        loop.slo_target_of = slo_of;
        loop.recorder = &recorder;
        if (mix.has_value() || on_failed_shard) {
          loop.also_record_in = [&](int64_t index) {
            std::vector<LoadRecorder*> more;
            if (mix.has_value()) more.push_back(&tiers[static_cast<size_t>(mix->TierOf(index))]);
            if (on_failed_shard) more.push_back(&shards[failed_shard.Get(index) ? 1 : 0]);
            return more;
          };
        }
        if (overload_rate > 0) {
          loop.rate_window = RateWindow{FaultController::PlannedOnset(timing),
                                        FaultController::PlannedEnd(timing), overload_rate};
        }
        const OpenLoopResult result = RunOpenLoop(loop, op);
        issued = result.issued;
        max_issue_lag = result.max_issue_lag;
      } else {
        ClosedLoadOptions loop;
        loop.threads = options_.threads;
        loop.duration = duration;
        loop.max_ops = options_.operations;
        loop.op_timeout = options_.timeout + kDrainMargin;
        loop.slo_target_of = slo_of;
        issued = RunClosedLoad(loop, op, recorder);
        measured = absl::Now() - start;
      }
      fault_status = faults.Finish();
      onset = faults.onset();
      end = faults.end();
      memory_at_end = env.fleet != nullptr ? env.fleet->Memory() : std::nullopt;
      if (scenario == "overload") {
        onset = FaultController::PlannedOnset(timing);
        end = FaultController::PlannedEnd(timing);
      }
    }
    // Payload is counted as requests are issued: what is still queued is never sent.
    const int64_t bytes = target.payload_bytes_sent() - bytes_before;
    rt.target.reset();  // waits for the running operations and cancels the queued ones
    const KvClientStats after = rt.client != nullptr ? rt.client->stats() : KvClientStats{};
    rt.client.reset();
    if (!fault_status.ok()) {
      return absl::Status(fault_status.code(), absl::StrCat(label, ": ", fault_status.message()));
    }
    env.records = std::max(env.records, generator.acknowledged_records());

    const LoadStats total = recorder.Total();
    const std::vector<LoadStats> series = recorder.Series();
    const WhyNines nines = ComputeWhyNines(series, recorder.interval(), onset, end);
    nlohmann::json errors = nlohmann::json::object();
    for (const auto& [code, count] : total.errors) errors[code] = count;
    nlohmann::json series_json = nlohmann::json::array();
    for (size_t t = 0; t < series.size(); ++t) {
      nlohmann::json point = StatsJson(series[t]);
      point["t"] = t;
      series_json.push_back(std::move(point));
    }
    nlohmann::json cdf = nlohmann::json::array();
    for (double q : kCdfQuantiles)
      cdf.push_back({{"q", q}, {"us", total.latency_us.Percentile(q)}});
    const double seconds = absl::ToDoubleSeconds(measured);
    run["loop"] = open ? "open" : "closed";
    run["rate"] = open ? options_.rate : 0.0;
    run["threads"] = open ? 0 : options_.threads;
    run["duration_s"] = seconds;
    run["ops"] = issued;
    run["ok"] = total.ok;
    run["errors"] = std::move(errors);
    run["throughput"] = total.ok / seconds;
    run["p50_us"] = total.latency_us.Percentile(0.5);
    run["p99_us"] = total.latency_us.Percentile(0.99);
    run["p999_us"] = total.latency_us.Percentile(0.999);
    run["max_us"] = total.latency_us.Max();
    // How fast a shed call learns it was shed (RESOURCE_EXHAUSTED, by the client or a gateway).
    if (total.shed_latency_us.Count() > 0) {
      run["shed_p50_us"] = total.shed_latency_us.Percentile(0.5);
      run["shed_p99_us"] = total.shed_latency_us.Percentile(0.99);
    }
    if (memory_at_start.has_value() && memory_at_end.has_value()) {
      run["gateway_memory"] = {{"start_bytes", memory_at_start->resident_bytes},
                               {"peak_bytes", memory_at_end->peak_bytes},
                               {"end_bytes", memory_at_end->resident_bytes}};
    }
    run["slo_target_us"] = absl::ToInt64Microseconds(SloTarget(OpKind::kRead));
    nlohmann::json slo_targets = nlohmann::json::object();
    for (OpKind kind : ycsb::OperationKinds(w)) {
      slo_targets[std::string(ycsb::OpKindName(kind))] = absl::ToInt64Microseconds(SloTarget(kind));
    }
    run["slo_targets_us"] = std::move(slo_targets);
    nlohmann::json examples = nlohmann::json::object();
    for (const auto& [code, message] : total.error_examples) examples[code] = message;
    run["error_examples"] = std::move(examples);
    run["slo_attainment"] = total.slo_attainment();
    // Calls answered OK within their SLO target, per second of the run.
    run["goodput"] = total.ok_within_slo / seconds;
    const bool window = onset.has_value() && end.has_value();
    if (window) run["goodput_in_fault"] = GoodputWithin(recorder, *onset, *end);
    if (mix.has_value() && open) {
      nlohmann::json by_tier = nlohmann::json::object();
      for (Priority tier : {Priority::kCritical, Priority::kNormal, Priority::kSheddable}) {
        const LoadStats stats = tiers[static_cast<size_t>(tier)].Total();
        nlohmann::json tier_errors = nlohmann::json::object();
        for (const auto& [code, count] : stats.errors) tier_errors[code] = count;
        by_tier[std::string(PriorityName(tier))] = {
            {"ops", stats.ops},
            {"ok", stats.ok},
            {"slo_attainment", stats.slo_attainment()},
            {"goodput", stats.ok_within_slo / seconds},
            {"goodput_in_fault",
             window ? nlohmann::json(GoodputWithin(tiers[static_cast<size_t>(tier)], *onset, *end))
                    : nlohmann::json(nullptr)},
            {"p99_us", stats.latency_us.Percentile(0.99)},
            {"errors", std::move(tier_errors)}};
        // Critical calls wait for a permit longer than the others before they are shed.
        if (stats.shed_latency_us.Count() > 0) {
          by_tier[std::string(PriorityName(tier))]["shed_p99_us"] =
              stats.shed_latency_us.Percentile(0.99);
        }
      }
      run["tiers"] = std::move(by_tier);
    }
    if (on_failed_shard && open) {
      nlohmann::json by_shard = nlohmann::json::object();
      for (const auto& [name, recorded] :
           {std::pair{"healthy", &shards[0]}, {"failed", &shards[1]}}) {
        by_shard[name] = ShardJson(*recorded, onset, end);
      }
      run["shards"] = std::move(by_shard);
    }
    // RPCs per logical call of the client (a read-modify-write is two calls, a scan one per
    // page); nothing for the direct targets.
    run["attempts_per_op"] =
        after.calls > before.calls
            ? nlohmann::json(static_cast<double>(after.attempts - before.attempts) /
                             static_cast<double>(after.calls - before.calls))
            : nlohmann::json(nullptr);
    run["hedges"] = after.hedges - before.hedges;
    run["retries"] = after.retries - before.retries;
    run["bytes_sent"] = bytes;
    run["max_issue_lag_us"] = absl::ToInt64Microseconds(max_issue_lag);
    if (overload_rate > 0) run["overload_rate"] = overload_rate;
    run["fault"] = onset.has_value() ? nlohmann::json{{"onset_s", OptionalSeconds(onset)},
                                                      {"end_s", OptionalSeconds(end)}}
                                     : nlohmann::json(nullptr);
    run["series"] = std::move(series_json);
    run["cdf"] = std::move(cdf);
    run["why_nines"] = {{"blast_radius", nines.blast_radius},
                        {"recover_from_onset_s", OptionalSeconds(nines.recover_from_onset)},
                        {"recover_from_end_s", OptionalSeconds(nines.recover_from_end)},
                        {"recovery_mark", nines.recovery_mark},
                        {"longest_stall_us", nines.longest_stall_us}};
    progress_ << absl::StrFormat(
                     "%s: %d ops, %d ok, p99 %.1f ms, SLO %.2f%%, blast radius %.3f%%, longest "
                     "stall %.1f ms",
                     label, issued, total.ok, total.latency_us.Percentile(0.99) / 1000.0,
                     100 * total.slo_attainment(), 100 * nines.blast_radius,
                     nines.longest_stall_us / 1000.0)
              << std::endl;
    return absl::OkStatus();
  }

  // Reads of loaded records, unmeasured.
  void Warmup(Target& target, int64_t records) {
    LoadRecorder ignored;
    ClosedLoadOptions warm;
    warm.threads = 4;
    warm.duration = absl::Seconds(5);
    warm.max_ops = kWarmupOps;
    warm.op_timeout = kSetupTimeout;
    warm.slo_target_of = [](int64_t) { return absl::InfiniteDuration(); };
    RunClosedLoad(
        warm,
        [&](int64_t index, std::function<void(absl::Status)> done) {
          std::mt19937_64 rng(kSeed + index);
          target.Start(maker_.Make({.kind = OpKind::kRead, .record = index % records}, rng),
                       std::move(done));
        },
        ignored);
  }

  const YcsbBenchOptions& options_;
  std::ostream& progress_;
  const OpMaker maker_;
  // The thread of every fault action; see FaultController.
  WorkerPool actions_{1};
};

}  // namespace

absl::Status ValidateYcsbBenchOptions(const YcsbBenchOptions& o) {
  auto check_names = [](const std::vector<std::string>& names, const auto& known,
                        const std::string& flag) -> absl::Status {
    if (names.empty()) return absl::InvalidArgumentError(absl::StrCat(flag, ": none given"));
    for (const std::string& name : names) {
      if (!Known(name, known)) {
        return absl::InvalidArgumentError(absl::StrCat(
            flag, ": unknown '", name, "'; expected one of ", absl::StrJoin(known, ", ")));
      }
    }
    return absl::OkStatus();
  };
  SG_RETURN_IF_ERROR(check_names(o.targets, kTargets, "--target"));
  SG_RETURN_IF_ERROR(check_names(o.scenarios, kScenarios, "--scenario"));
  if (o.workloads.empty()) return absl::InvalidArgumentError("--workload: none given");
  for (const std::string& w : o.workloads) {
    if (absl::Status known = ycsb::StandardWorkload(w).status(); !known.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--workload: ", known.message()));
    }
  }
  if (o.modes.empty()) return absl::InvalidArgumentError("--mode: none given");
  for (const std::string& mode : o.modes) {
    if (absl::Status known = ModeReliability(mode).status(); !known.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--mode: ", known.message()));
    }
  }
  if (o.records < 1 || o.records > 100'000'000) {
    return absl::InvalidArgumentError("--records must be in [1, 1e8]");
  }
  if ((o.rate > 0) == (o.threads > 0)) {
    return absl::InvalidArgumentError("give exactly one of --rate (open loop) and --threads");
  }
  if (!std::isfinite(o.rate) || o.rate < 0 || o.threads < 0 || o.threads > 1024) {
    return absl::InvalidArgumentError("--rate must be positive, --threads in [1, 1024]");
  }
  if (!(o.overload_factor >= 1 && o.overload_factor <= kMaxOverloadFactor)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--overload-factor must be in [1, ", kMaxOverloadFactor, "]"));
  }
  if (o.server_niceness < 0 || o.server_niceness > 19) {
    return absl::InvalidArgumentError("--server-niceness must be in [0, 19]");
  }
  if (o.priority_mix.has_value()) {
    const PriorityMix& m = *o.priority_mix;
    if (!(m.critical >= 0 && m.normal >= 0 && m.sheddable >= 0) ||
        std::abs(m.critical + m.normal + m.sheddable - 1) > 1e-6) {
      return absl::InvalidArgumentError(
          "--priority-mix: the shares of critical, normal and sheddable must be >= 0 and sum "
          "to 100");
    }
  }
  if (o.operations < 0 || o.operations > kMaxOpsPerRun / o.overload_factor) {
    return absl::InvalidArgumentError("--ops must be in [0, 5e7]");
  }
  if (o.operations > 0 && o.rate > 0 && o.operations / o.rate > 86'400) {
    return absl::InvalidArgumentError("--ops / --rate must be at most 24 h");
  }
  if (o.duration <= absl::ZeroDuration() || o.duration > absl::Hours(24)) {
    return absl::InvalidArgumentError("--duration must be in (0, 24 h]");
  }
  if (o.rate * absl::ToDoubleSeconds(o.duration) * o.overload_factor > kMaxOpsPerRun) {
    return absl::InvalidArgumentError("--rate x --duration must be at most 5e7 operations");
  }
  if (o.fields < 1 || o.fields > 1000)
    return absl::InvalidArgumentError("--record: fields must be in [1, 1000]");
  // Each run keeps kValuePool values of this size.
  if (o.field_bytes < 0 || o.field_bytes > (64 << 10)) {
    return absl::InvalidArgumentError("--record: bytes per field must be in [0, 64 KiB]");
  }
  if (o.replicas < 1 || o.replicas > 16) {
    return absl::InvalidArgumentError("--replicas must be in [1, 16]");
  }
  for (const char* gateway_fault :
       {"slow-replica", "error-replica", "paused-replica", "killed-replica", "rolling-restart"}) {
    if (o.replicas < 2 && Known(gateway_fault, o.scenarios)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--scenario ", gateway_fault, " needs --replicas 2 or more (another gateway to serve)"));
    }
  }
  if (o.timeout <= absl::ZeroDuration())
    return absl::InvalidArgumentError("--timeout must be positive");
  if (!(0 <= o.fault_onset && o.fault_onset <= o.fault_end && o.fault_end <= 1)) {
    return absl::InvalidArgumentError("the fault window must satisfy 0 <= onset <= end <= 1");
  }
  if (o.client_threads < 1 || o.client_threads > 4096) {
    return absl::InvalidArgumentError("--client-threads must be in [1, 4096]");
  }
  if (o.threads > o.client_threads) {
    return absl::InvalidArgumentError("--threads must be at most --client-threads");
  }
  if (o.threads > 0 && Known("overload", o.scenarios)) {
    return absl::InvalidArgumentError(
        "--scenario overload offers a rate (a multiple of capacity): it needs --rate, not "
        "--threads");
  }
  return absl::OkStatus();
}

Priority PriorityMix::TierOf(int64_t index) const {
  // Fibonacci hashing: the top 53 bits of index × 2^64/φ, as a fraction in [0, 1).
  const uint64_t mixed = static_cast<uint64_t>(index) * 0x9E3779B97F4A7C15ULL;
  const double draw = static_cast<double>(mixed >> 11) / static_cast<double>(1ULL << 53);
  if (draw < critical) return Priority::kCritical;
  if (draw < critical + normal) return Priority::kNormal;
  return Priority::kSheddable;
}

WhyNines ComputeWhyNines(const std::vector<LoadStats>& series, absl::Duration interval,
                         std::optional<absl::Duration> onset, std::optional<absl::Duration> end) {
  WhyNines nines;
  absl::Duration remainder;
  const int64_t first = onset.has_value() ? absl::IDivDuration(*onset, interval, &remainder) : 0;
  int64_t affected = 0;
  int64_t missed = 0;
  for (size_t t = 0; t < series.size(); ++t) {
    nines.longest_stall_us = std::max(nines.longest_stall_us, series[t].latency_us.Max());
    if (static_cast<int64_t>(t) < first) continue;
    affected += series[t].ops;
    missed += series[t].ops - series[t].ok_within_slo;
  }
  nines.blast_radius = affected == 0 ? 0 : static_cast<double>(missed) / affected;
  if (!onset.has_value()) return nines;
  nines.recovery_mark = kRecoveredAttainment;
  for (int64_t t = 0; t < first && t < static_cast<int64_t>(series.size()); ++t) {
    nines.recovery_mark = std::min(nines.recovery_mark, series[t].slo_attainment());
  }
  // The first second from which every later second is at or above the mark.
  int64_t recovered_at = static_cast<int64_t>(series.size());
  while (recovered_at > 0 && series[recovered_at - 1].slo_attainment() >= nines.recovery_mark) {
    --recovered_at;
  }
  if (recovered_at == static_cast<int64_t>(series.size())) return nines;  // never recovered
  const absl::Duration back = interval * recovered_at;
  nines.recover_from_onset = std::max(absl::ZeroDuration(), back - *onset);
  // A fault that outlasted the run cannot have been recovered from within it.
  if (end.has_value() && *end < interval * static_cast<int64_t>(series.size())) {
    nines.recover_from_end = std::max(absl::ZeroDuration(), back - *end);
  }
  return nines;
}

// --split-cpus: the CPUs this process may use now, the first half for the bench and the rest
// for the servers it starts.
struct CpuSplit {
  std::vector<int> bench;
  std::vector<int> servers;
};

absl::StatusOr<CpuSplit> SplitCpus() {
  SG_ASSIGN_OR_RETURN(const std::vector<int> cpus, testbed::AllowedCpus());
  if (cpus.size() < 2) {
    return absl::FailedPreconditionError(
        absl::StrCat("--split-cpus needs at least 2 CPUs; this process may use ", cpus.size()));
  }
  const auto middle = cpus.begin() + static_cast<std::ptrdiff_t>(cpus.size() / 2);
  return CpuSplit{{cpus.begin(), middle}, {middle, cpus.end()}};
}

absl::StatusOr<nlohmann::json> RunYcsbBench(const YcsbBenchOptions& options,
                                            const std::string& command, std::ostream& progress) {
  SG_RETURN_IF_ERROR(ValidateYcsbBenchOptions(options));
  testbed::SetChildNiceness(options.server_niceness);
  nlohmann::json split = nullptr;
  if (options.split_cpus) {
    SG_ASSIGN_OR_RETURN(const CpuSplit cpus, SplitCpus());
    SG_RETURN_IF_ERROR(testbed::PinThisProcess(cpus.bench));
    SG_RETURN_IF_ERROR(testbed::SetChildCpus(cpus.servers));
    split = {{"bench", cpus.bench}, {"servers", cpus.servers}};
    progress << "CPUs: the bench on " << absl::StrJoin(cpus.bench, ",") << ", its servers on "
             << absl::StrJoin(cpus.servers, ",") << "\n";
  }
  nlohmann::json runs = nlohmann::json::array();
  nlohmann::json loads = nlohmann::json::array();
  Bench bench(options, progress);
  for (const std::string& target : options.targets) {
    SG_RETURN_IF_ERROR(bench.RunOnTarget(target, runs, loads));
  }
  return nlohmann::json{
      {"schema", "stategate-bench/ycsb/1"},
      {"command", command},
      {"started_at", absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone())},
      {"options",
       {{"workloads", options.workloads},
        {"targets", options.targets},
        {"scenarios", options.scenarios},
        {"modes", options.modes},
        {"records", options.records},
        {"operations", options.operations},
        {"duration_s", absl::ToDoubleSeconds(options.duration)},
        {"rate", options.rate},
        {"threads", options.threads},
        {"fields", options.fields},
        {"field_bytes", options.field_bytes},
        {"replicas", options.replicas},
        {"timeout_s", absl::ToDoubleSeconds(options.timeout)},
        {"fault_window", {options.fault_onset, options.fault_end}},
        {"client_threads", options.client_threads},
        {"server_niceness", options.server_niceness},
        {"split_cpus", split},
        {"cores", std::thread::hardware_concurrency()}}},
      {"loads", std::move(loads)},
      {"runs", std::move(runs)}};
}

std::string FormatYcsbTable(const nlohmann::json& results) {
  std::string out = absl::StrFormat("%-2s %-17s %-6s %-15s %9s %8s %8s %9s %9s %8s %8s  %s\n", "wl",
                                    "target", "mode", "scenario", "ops/s", "p50_ms", "p99_ms",
                                    "p99.9_ms", "max_ms", "slo_att", "blast", "errors");
  for (const nlohmann::json& r : results.value("runs", nlohmann::json::array())) {
    const std::string head =
        absl::StrFormat("%-2s %-17s %-6s %-15s", r.value("workload", ""), r.value("target", ""),
                        r.value("mode", ""), r.value("scenario", ""));
    if (r.contains("skipped")) {
      absl::StrAppend(&out, head, " skipped: ", r["skipped"].get<std::string>(), "\n");
      continue;
    }
    std::vector<std::string> errors;
    for (const auto& [code, n] : r["errors"].items())
      errors.push_back(absl::StrCat(code, "=", n.get<int64_t>()));
    absl::StrAppendFormat(&out, "%s %9.0f %8.2f %8.2f %9.2f %9.1f %7.2f%% %7.3f%%  %s\n", head,
                          r["throughput"].get<double>(), r["p50_us"].get<int64_t>() / 1000.0,
                          r["p99_us"].get<int64_t>() / 1000.0, r["p999_us"].get<int64_t>() / 1000.0,
                          r["max_us"].get<int64_t>() / 1000.0,
                          100 * r["slo_attainment"].get<double>(),
                          100 * r["why_nines"]["blast_radius"].get<double>(),
                          errors.empty() ? "-" : absl::StrJoin(errors, " "));
    if (r.contains("capacity")) {
      // While the overload lasted: what the run delivered against what the system can do.
      const double goodput = r.value("goodput_in_fault", r["goodput"].get<double>());
      const double within = r.value("capacity_within_slo", 0.0);
      absl::StrAppendFormat(&out,
                            "   capacity %.0f ops/s (%.0f within SLO), goodput in the overload "
                            "%.0f ops/s (%.0f%% of capacity, %.0f%% of capacity within SLO)\n",
                            r["capacity"].get<double>(), within, goodput,
                            100 * goodput / r["capacity"].get<double>(),
                            within > 0 ? 100 * goodput / within : 0.0);
      std::vector<std::string> more;
      if (r.contains("shed_p99_us")) {
        more.push_back(absl::StrFormat("shed calls answered in p50 %.2f ms, p99 %.2f ms",
                                       r["shed_p50_us"].get<int64_t>() / 1000.0,
                                       r["shed_p99_us"].get<int64_t>() / 1000.0));
      }
      if (r.contains("gateway_memory")) {
        const nlohmann::json& m = r["gateway_memory"];
        const auto mib = [&m](const char* field) { return m[field].get<int64_t>() / 1048576.0; };
        more.push_back(absl::StrFormat(
            "the gateways' memory %.0f MiB at the start, %.0f MiB at the peak, %.0f MiB at the end",
            mib("start_bytes"), mib("peak_bytes"), mib("end_bytes")));
      }
      if (!more.empty()) absl::StrAppend(&out, "   ", absl::StrJoin(more, "; "), "\n");
    }
    if (r.contains("shards")) {
      std::vector<std::string> shards;
      for (const auto& [name, sh] : r["shards"].items()) {
        const auto seconds = [](const nlohmann::json& v) {
          return v.is_null() ? std::string("never") : absl::StrFormat("%.0f s", v.get<double>());
        };
        shards.push_back(absl::StrFormat(
            "%s shard%s %.2f%% within SLO (%d ops, %d failed; last failure %s, last miss %s after "
            "the promotion)",
            name, name == "failed" ? "" : "s", 100 * sh["slo_attainment"].get<double>(),
            sh["ops"].get<int64_t>(), sh["ops"].get<int64_t>() - sh["ok"].get<int64_t>(),
            seconds(sh["last_error_after_end_s"]), seconds(sh["last_miss_after_end_s"])));
      }
      absl::StrAppend(&out, "   ", absl::StrJoin(shards, "; "), "\n");
    }
    if (r.contains("tiers")) {
      std::vector<std::string> tiers;
      for (const auto& [tier, t] : r["tiers"].items()) {
        std::string shed;
        if (t.contains("shed_p99_us")) {
          shed = absl::StrFormat(", shed in p99 %.2f ms", t["shed_p99_us"].get<int64_t>() / 1000.0);
        }
        tiers.push_back(absl::StrFormat("%s %.2f%% within SLO (p99 %.1f ms, %d ops%s)", tier,
                                        100 * t["slo_attainment"].get<double>(),
                                        t["p99_us"].get<int64_t>() / 1000.0,
                                        t["ops"].get<int64_t>(), shed));
      }
      absl::StrAppend(&out, "   ", absl::StrJoin(tiers, "; "), "\n");
    }
  }
  return out;
}

}  // namespace stategate::bench
