#include "src/bench/vs_redis.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "src/bench/fleet.h"
#include "src/bench/qps_bench.h"
#include "src/bench/redis_benchmark.h"
#include "src/common/status_macros.h"
#include "src/testbed/child_process.h"

namespace stategate::bench {
namespace {

constexpr char kUnackedNamespace[] = "default";
constexpr char kAckedNamespace[] = "acked";
constexpr int kAckedReplicas = 1;
// Bounds of a probe run and of a sized redis-benchmark run (-n).
constexpr int64_t kMinProbeRequests = 2'000;
constexpr int64_t kMinRequests = 1'000;
constexpr int64_t kMaxRequests = 100'000'000;
// Largest value compared: above it the gateway chunks values, which SET does not.
constexpr int64_t kMaxValueBytes = 1 << 20;

absl::Duration RedisTimeout(const VsRedisOptions& options) {
  return absl::Seconds(30) + 4 * options.duration;
}

// A namespace on engine redis-cluster; the rest of its settings are the defaults.
std::string ConfigYaml(const std::vector<std::string>& seeds) {
  std::string yaml = "redis_cluster:\n  seeds: [";
  absl::StrAppend(&yaml, absl::StrJoin(seeds, ", "), "]\nnamespaces:\n");
  absl::StrAppend(&yaml, "  - name: ", kUnackedNamespace,
                  "\n    storage: {engine: redis-cluster, replicas_ack: 0}\n");
  absl::StrAppend(&yaml, "  - name: ", kAckedNamespace,
                  "\n    storage: {engine: redis-cluster, replicas_ack: ", kAckedReplicas, "}\n");
  return yaml;
}

// Removes a directory on every way out.
struct TempDir {
  std::string path;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

double Ratio(double a, double b) { return b > 0 ? a / b : 0; }

// Runs the closed-loop benchmark for `ops` on `ns` at one concurrency.
absl::StatusOr<QpsReport> RunStategate(const VsRedisOptions& options, const std::string& address,
                                       const std::string& ns, std::vector<std::string> ops,
                                       int concurrency, KvClient& client) {
  QpsBenchOptions qps;
  qps.address = address;
  qps.ns = ns;
  qps.concurrency = {concurrency};
  qps.duration = options.duration;
  qps.warmup = options.warmup;
  qps.value_bytes = options.value_bytes;
  qps.records = options.records;
  qps.ops = std::move(ops);
  absl::StatusOr<QpsReport> report = RunQpsBenchmark(qps, client);
  if (!report.ok()) {
    return absl::Status(report.status().code(), absl::StrCat("stategate on namespace ", ns, ": ",
                                                             report.status().message()));
  }
  return report;
}

const OpResult& Find(const QpsReport& report, const std::string& op) {
  return *std::find_if(report.results.begin(), report.results.end(),
                       [&](const OpResult& r) { return r.op == op; });
}

// Runs one redis-benchmark test (as redis-benchmark names it in -t) with `requests` requests.
absl::StatusOr<RedisBenchmarkResult> RunRedisTest(const RedisBenchmarkOptions& base,
                                                  const std::string& test, int64_t requests) {
  RedisBenchmarkOptions o = base;
  o.tests = {test};
  o.requests = requests;
  SG_ASSIGN_OR_RETURN(std::vector<RedisBenchmarkResult> results, RunRedisBenchmark(o));
  if (results.size() != 1) {
    return absl::InternalError(
        absl::StrCat("redis-benchmark -t ", test, " reported ", results.size(), " tests"));
  }
  return results.front();
}

// -n for a run meant to last `duration` at `rps`.
int64_t SizedRequests(double rps, absl::Duration duration) {
  const double n = std::ceil(rps * absl::ToDoubleSeconds(duration));
  return static_cast<int64_t>(
      std::clamp(n, static_cast<double>(kMinRequests), static_cast<double>(kMaxRequests)));
}

VsRedisRow Row(const OpResult& sg, const std::string& ns, int replicas_ack,
               const RedisBenchmarkResult& redis, int64_t redis_requests) {
  VsRedisRow row;
  row.op = sg.op;
  row.ns = ns;
  row.replicas_ack = replicas_ack;
  row.concurrency = sg.concurrency;
  row.stategate_qps = sg.qps;
  row.stategate_p99_us = sg.p99_us;
  row.stategate_errors = sg.errors;
  row.stategate_first_error = sg.first_error;
  row.redis_test = redis.test;
  row.redis_requests = redis_requests;
  row.redis_qps = redis.rps;
  row.redis_p99_ms = redis.p99_ms;
  row.qps_ratio = Ratio(sg.qps, redis.rps);
  row.p99_ratio = Ratio(sg.p99_us / 1000.0, redis.p99_ms);
  return row;
}

std::string RowLabel(const VsRedisRow& row) {
  if (row.op == "put") return absl::StrCat("put (replicas_ack ", row.replicas_ack, ")");
  return row.op;
}

}  // namespace

absl::Status ValidateVsRedisOptions(const VsRedisOptions& options) {
  if (options.concurrency.empty()) return absl::InvalidArgumentError("no concurrency given");
  for (int c : options.concurrency) {
    if (c < 1 || c > 10'000) {
      return absl::InvalidArgumentError(absl::StrCat("concurrency must be in [1, 10000], got ", c));
    }
  }
  if (options.duration <= absl::ZeroDuration() || options.duration > absl::Hours(1)) {
    return absl::InvalidArgumentError("duration must be in (0, 1 h]");
  }
  if (options.warmup < absl::ZeroDuration() || options.warmup > absl::Hours(1)) {
    return absl::InvalidArgumentError("warmup must be in [0, 1 h]");
  }
  if (options.value_bytes < 1 || options.value_bytes > kMaxValueBytes) {
    return absl::InvalidArgumentError("value bytes must be in [1, 1 MiB]");
  }
  if (options.records < 1) return absl::InvalidArgumentError("records must be positive");
  if (options.redis_requests < 0 || options.redis_requests > kMaxRequests) {
    return absl::InvalidArgumentError("redis requests must be in [0, 1e8] (0: sized by a probe)");
  }
  if (options.call_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout must be positive");
  }
  return absl::OkStatus();
}

absl::StatusOr<VsRedisReport> RunVsRedis(const VsRedisOptions& options, std::ostream* progress,
                                         const VsRedisClientFactory& connect) {
  SG_RETURN_IF_ERROR(ValidateVsRedisOptions(options));
  auto say = [&](const std::string& line) {
    if (progress != nullptr) *progress << line << std::endl;
  };
  VsRedisReport report;
  report.options = options;
  // Before anything starts: a missing redis-benchmark should not cost a whole stategate run.
  SG_ASSIGN_OR_RETURN(report.redis_benchmark_version,
                      RedisBenchmarkVersion(options.redis_benchmark));

  // Declared in start order, so destroyed (stopped) in reverse on every path out.
  say("starting a local Redis Cluster");
  SG_ASSIGN_OR_RETURN(std::unique_ptr<testbed::RedisCluster> cluster,
                      testbed::RedisCluster::Start(options.cluster));
  report.seeds = cluster->seeds();
  const std::vector<testbed::RedisNode> masters = cluster->masters();
  if (masters.empty()) return absl::InternalError("the cluster reports no master");
  report.masters = static_cast<int>(masters.size());
  say(absl::StrCat("Redis Cluster up: ", masters.size(), " masters, ", cluster->replicas().size(),
                   " replicas (", cluster->seed_list(), ")"));

  SG_ASSIGN_OR_RETURN(const std::string dir, testbed::MakeTempDir("stategate-vs-redis-"));
  const TempDir remove_dir{dir};
  LocalFleetOptions fleet_options;
  fleet_options.replicas = 1;
  fleet_options.server_binary = options.server_binary;
  fleet_options.config_path = dir + "/stategate.yaml";
  fleet_options.fault_injection = false;
  {
    std::ofstream config(fleet_options.config_path, std::ios::trunc);
    config << ConfigYaml(report.seeds);
    config.close();
    if (!config) {
      return absl::UnavailableError(absl::StrCat("cannot write ", fleet_options.config_path));
    }
  }
  SG_ASSIGN_OR_RETURN(std::unique_ptr<Fleet> fleet, Fleet::StartLocal(fleet_options));
  report.gateway = fleet->addresses().front();
  say(absl::StrCat("gateway at ", report.gateway, ": namespaces ", kUnackedNamespace,
                   " (replicas_ack 0) and ", kAckedNamespace, " (replicas_ack ", kAckedReplicas,
                   ")"));

  KvClientOptions client_options;
  client_options.address = report.gateway;
  client_options.timeout = options.call_timeout;
  SG_ASSIGN_OR_RETURN(std::unique_ptr<KvClient> client, connect(client_options));

  RedisBenchmarkOptions redis;
  redis.binary = options.redis_benchmark;
  redis.host = "127.0.0.1";
  redis.port = masters.front().port;
  redis.cluster = true;
  redis.value_bytes = options.value_bytes;
  redis.keyspace = options.records;
  redis.pipeline = 1;
  redis.timeout = RedisTimeout(options);

  for (const int concurrency : options.concurrency) {
    SG_ASSIGN_OR_RETURN(const QpsReport unacked,
                        RunStategate(options, report.gateway, kUnackedNamespace, {"put", "get"},
                                     concurrency, *client));
    SG_ASSIGN_OR_RETURN(
        const QpsReport acked,
        RunStategate(options, report.gateway, kAckedNamespace, {"put"}, concurrency, *client));
    const OpResult& put0 = Find(unacked, "put");
    const OpResult& get = Find(unacked, "get");
    const OpResult& put1 = Find(acked, "put");
    say(
        absl::StrFormat("stategate x%d: put %.0f/s (replicas_ack 0), %.0f/s (replicas_ack %d), "
                        "get %.0f/s",
                        concurrency, put0.qps, put1.qps, kAckedReplicas, get.qps));

    redis.clients = concurrency;
    int64_t set_requests = options.redis_requests;
    int64_t get_requests = options.redis_requests;
    if (options.redis_requests == 0) {
      // A probe sizes the runs (and writes most keys before the measured GETs read them).
      RedisBenchmarkOptions probe = redis;
      probe.requests = std::max(kMinProbeRequests, options.records);
      SG_ASSIGN_OR_RETURN(const std::vector<RedisBenchmarkResult> probed, RunRedisBenchmark(probe));
      for (const RedisBenchmarkResult& r : probed) {
        if (r.test == "SET") set_requests = SizedRequests(r.rps, options.duration);
        if (r.test == "GET") get_requests = SizedRequests(r.rps, options.duration);
      }
      if (set_requests == 0 || get_requests == 0) {
        return absl::InternalError("the redis-benchmark probe reported no SET or no GET");
      }
    }
    SG_ASSIGN_OR_RETURN(const RedisBenchmarkResult set, RunRedisTest(redis, "set", set_requests));
    SG_ASSIGN_OR_RETURN(const RedisBenchmarkResult got, RunRedisTest(redis, "get", get_requests));
    say(absl::StrFormat("redis-benchmark -c %d: SET %.0f/s (-n %d), GET %.0f/s (-n %d)",
                        concurrency, set.rps, set_requests, got.rps, get_requests));

    report.rows.push_back(Row(put0, kUnackedNamespace, 0, set, set_requests));
    report.rows.push_back(Row(put1, kAckedNamespace, kAckedReplicas, set, set_requests));
    report.rows.push_back(Row(get, kUnackedNamespace, 0, got, get_requests));
  }

  client.reset();
  SG_RETURN_IF_ERROR(fleet->Stop());
  cluster->Stop();
  return report;
}

std::string VsRedisNotes(const VsRedisReport& report) {
  const VsRedisOptions& o = report.options;
  const std::string sizing =
      o.redis_requests > 0 ? absl::StrCat("-n ", o.redis_requests, " for every run")
                           : absl::StrCat("-n sized from a probe run to last about ",
                                          absl::FormatDuration(o.duration), " (the column -n)");
  std::vector<std::string> lines = {
      "stategate: one gateway over the cluster; C threads making blocking calls back to back",
      absl::StrCat("  through one reliable KvClient (one gRPC channel); ",
                   absl::FormatDuration(o.warmup), " warm-up, ", absl::FormatDuration(o.duration),
                   " measured; p99 of successful calls."),
      absl::StrCat("  Namespace ", kUnackedNamespace, " has replicas_ack 0; ", kAckedNamespace,
                   " has replicas_ack ", kAckedReplicas, ": a write waits for WAIT ",
                   kAckedReplicas, "."),
      absl::StrCat(report.redis_benchmark_version, ": --cluster -c C -d ", o.value_bytes, " -r ",
                   o.records, " -P 1 -t set|get --csv;"),
      absl::StrCat("  ", sizing, "."),
      "  -P 1: no pipelining, one request in flight per connection.",
      absl::StrCat("  -c C with --cluster: C connections in all, not per node, spread round-robin"),
      absl::StrCat("  over the ", report.masters,
                   " masters (one thread per master): at most C requests in flight, as with"),
      "  stategate's C threads.",
      "  It sends no WAIT: its SET is acknowledged by the master alone (compare replicas_ack 0).",
      absl::StrCat("Both: ", o.value_bytes, "-byte values, ", o.records,
                   " keys; Gets read keys the Puts/SETs wrote. stategate's values are"),
      "  random bytes, redis-benchmark's one byte repeated (Redis does not compress).",
      "Ratios are stategate / redis-benchmark (QPS: higher is better; p99: lower is better).",
      absl::StrCat("Everything (load generators, gateway, ", report.seeds.size(),
                   " redis-server processes) shares this machine's ",
                   std::thread::hardware_concurrency(), " CPUs.")};
  return absl::StrJoin(lines, "\n") + "\n";
}

std::string FormatVsRedisTable(const VsRedisReport& report) {
  std::string out = absl::StrFormat("%-20s %5s %10s %10s %6s %10s %10s %12s %10s %9s %8s\n", "op",
                                    "conc", "sg_qps", "sg_p99_ms", "redis", "-n", "redis_qps",
                                    "redis_p99_ms", "qps_ratio", "p99_ratio", "sg_errs");
  std::vector<std::string> errors;
  for (const VsRedisRow& r : report.rows) {
    absl::StrAppendFormat(&out, "%-20s %5d %10.1f %10.3f %6s %10d %10.1f %12.3f %10.3f %9.2f %8d\n",
                          RowLabel(r), r.concurrency, r.stategate_qps, r.stategate_p99_us / 1000.0,
                          r.redis_test, r.redis_requests, r.redis_qps, r.redis_p99_ms, r.qps_ratio,
                          r.p99_ratio, r.stategate_errors);
    if (!r.stategate_first_error.empty()) {
      errors.push_back(
          absl::StrCat(RowLabel(r), " x", r.concurrency, ": ", r.stategate_first_error));
    }
  }
  if (!errors.empty()) {
    absl::StrAppend(&out, "first stategate errors:\n  ", absl::StrJoin(errors, "\n  "), "\n");
  }
  absl::StrAppend(&out, "\n", VsRedisNotes(report));
  return out;
}

std::string VsRedisJson(const VsRedisReport& report) {
  nlohmann::json rows = nlohmann::json::array();
  for (const VsRedisRow& r : report.rows) {
    rows.push_back({{"op", r.op},
                    {"namespace", r.ns},
                    {"replicas_ack", r.replicas_ack},
                    {"concurrency", r.concurrency},
                    {"stategate_qps", r.stategate_qps},
                    {"stategate_p99_us", r.stategate_p99_us},
                    {"stategate_errors", r.stategate_errors},
                    {"stategate_first_error", r.stategate_first_error},
                    {"redis_test", r.redis_test},
                    {"redis_requests", r.redis_requests},
                    {"redis_qps", r.redis_qps},
                    {"redis_p99_ms", r.redis_p99_ms},
                    {"qps_ratio", r.qps_ratio},
                    {"p99_ratio", r.p99_ratio}});
  }
  const VsRedisOptions& o = report.options;
  const nlohmann::json doc = {{"rows", std::move(rows)},
                              {"gateway", report.gateway},
                              {"seeds", report.seeds},
                              {"masters", report.masters},
                              {"redis_benchmark_version", report.redis_benchmark_version},
                              {"options",
                               {{"concurrency", o.concurrency},
                                {"duration_s", absl::ToDoubleSeconds(o.duration)},
                                {"warmup_s", absl::ToDoubleSeconds(o.warmup)},
                                {"value_bytes", o.value_bytes},
                                {"records", o.records},
                                {"redis_requests", o.redis_requests},
                                {"timeout_s", absl::ToDoubleSeconds(o.call_timeout)}}},
                              {"notes", VsRedisNotes(report)}};
  return doc.dump(2) + "\n";
}

}  // namespace stategate::bench
