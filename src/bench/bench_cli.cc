#include "src/bench/bench_cli.h"

#include <cmath>
#include <fstream>
#include <initializer_list>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "src/bench/qps_bench.h"
#include "src/bench/report_html.h"
#include "src/bench/vs_redis.h"
#include "src/bench/ycsb_bench.h"

namespace stategate::bench {
namespace {

constexpr int kExitFailure = 2;

int Fail(const absl::Status& status, std::ostream& err) {
  err << absl::StatusCodeToString(status.code()) << ": " << status.message() << "\n";
  return kExitFailure;
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::trunc);
  file << text;
  file.close();
  if (!file) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

// Whether `flag` ("--scenario") is among the arguments, alone or as --flag=VALUE.
bool HasFlag(int argc, const char* const* argv, const std::string& flag) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") return false;
    if (arg == flag || absl::StartsWith(arg, flag + "=")) return true;
  }
  return false;
}

absl::Status CheckSeconds(std::initializer_list<double> seconds) {
  for (double s : seconds) {
    if (!std::isfinite(s) || s < 0 || s > 1e6) {
      return absl::InvalidArgumentError("times must be non-negative and finite");
    }
  }
  return absl::OkStatus();
}

int RunVsRedisCli(int argc, const char* const* argv, std::ostream& out, std::ostream& err,
                  const ClientFactory& connect) {
  VsRedisOptions options;
  double duration_s = absl::ToDoubleSeconds(options.duration);
  double warmup_s = absl::ToDoubleSeconds(options.warmup);
  double timeout_s = absl::ToDoubleSeconds(options.call_timeout);
  std::string json_path;

  CLI::App app{
      "--vs-redis: starts a local Redis Cluster (3 masters, 3 replicas) and one gateway over it "
      "(namespaces default: replicas_ack 0, acked: replicas_ack 1), runs the closed-loop QPS "
      "benchmark (put, get) through it and redis-benchmark --cluster (SET, GET) against the same "
      "cluster at each concurrency, and prints both side by side with their ratios.",
      "stategate-bench"};
  bool vs_redis = false;
  app.add_flag("--vs-redis", vs_redis, "select this mode")->required();
  app.add_option("--concurrency", options.concurrency,
                 "comma-separated levels: stategate threads and redis-benchmark -c")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--duration", duration_s,
                 "measured seconds per stategate op; redis-benchmark runs are sized to it")
      ->capture_default_str();
  app.add_option("--warmup", warmup_s, "unmeasured seconds before each stategate measurement")
      ->capture_default_str();
  app.add_option("--value-bytes", options.value_bytes, "bytes per value, both sides (-d)")
      ->capture_default_str();
  app.add_option("--records", options.records, "keys written and read, both sides (-r)")
      ->capture_default_str();
  app.add_option("--redis-requests", options.redis_requests,
                 "redis-benchmark -n of every run; 0 sizes each from a probe run to last "
                 "--duration")
      ->capture_default_str();
  app.add_option("--timeout", timeout_s, "stategate per-call timeout in seconds")
      ->capture_default_str();
  app.add_option("--server-binary", options.server_binary,
                 "the stategate binary to start (default: the one beside stategate-bench)");
  app.add_option("--redis-benchmark", options.redis_benchmark, "the redis-benchmark binary")
      ->capture_default_str();
  app.add_option("--json", json_path, "also write the table as JSON to this file");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err) == 0 ? 0 : kExitFailure;
  }
  if (absl::Status valid = CheckSeconds({duration_s, warmup_s, timeout_s}); !valid.ok()) {
    return Fail(valid, err);
  }
  options.duration = absl::Seconds(duration_s);
  options.warmup = absl::Seconds(warmup_s);
  options.call_timeout = absl::Seconds(timeout_s);

  absl::StatusOr<VsRedisReport> report = RunVsRedis(options, &err, connect);
  if (!report.ok()) return Fail(report.status(), err);
  out << FormatVsRedisTable(*report);
  out.flush();
  if (!json_path.empty()) {
    if (absl::Status written = WriteFile(json_path, VsRedisJson(*report)); !written.ok()) {
      return Fail(written, err);
    }
  }
  return 0;
}

int RunWorkloadCli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  YcsbBenchOptions options;
  double duration_s = absl::ToDoubleSeconds(options.duration);
  double timeout_s = absl::ToDoubleSeconds(options.timeout);
  double slow_ms = absl::ToDoubleMilliseconds(options.slow_delay);
  std::string record = "10x100";
  std::string out_path;
  std::string report_path;

  CLI::App app{
      "Workload mode: YCSB core workloads against stategate (on RocksDB and on Redis Cluster, "
      "through the reliable client) and, side by side, Redis, Redis Cluster and memcached "
      "directly and a gateway's empty call; under fault scenarios, each with the naive and the "
      "full client. Starts every server it needs on 127.0.0.1 and stops it. Prints a progress "
      "line per second and a table; --out writes JSON, --report an HTML page.",
      "stategate-bench"};
  app.add_option("--workload", options.workloads, "YCSB workloads, comma-separated: a..f")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--target", options.targets,
                 "comma-separated: stategate-rocksdb, stategate-redis, redis, redis-cluster, "
                 "memcached, empty")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--scenario", options.scenarios,
                 "comma-separated: none, slow-replica, error-replica, paused-replica, "
                 "killed-replica, rolling-restart, overload, redis-failover")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--mode", options.modes,
                 "client modes of the stategate targets, comma-separated: naive, full, or one "
                 "mechanism on top of naive: hedging, retries, limiter, balancing, gc-tolerant, "
                 "signalled-timeouts")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--records", options.records, "records loaded before the runs")
      ->capture_default_str();
  app.add_option("--record", record,
                 "record shape FIELDSxBYTES: 10x100 (YCSB's) or 1x1024 (one item of 1 KiB)")
      ->capture_default_str();
  app.add_option("--ops", options.operations,
                 "operations per run: an open loop runs OPS/RATE seconds; a closed loop stops "
                 "at OPS or at --duration, whichever comes first");
  app.add_option("--duration", duration_s, "seconds per run")->capture_default_str();
  CLI::Option* rate =
      app.add_option("--rate", options.rate, "open loop: operations started per second")
          ->capture_default_str();
  CLI::Option* threads =
      app.add_option("--threads", options.threads, "closed loop: workers (instead of --rate)");
  rate->excludes(threads);
  app.add_option("--replicas", options.replicas, "gateways of the stategate targets")
      ->capture_default_str();
  app.add_option("--timeout", timeout_s, "stategate client call timeout in seconds")
      ->capture_default_str();
  app.add_option("--slow-ms", slow_ms, "slow-replica: delay of every call, ms")
      ->capture_default_str();
  app.add_option(
         "--client-threads", options.client_threads,
         "threads each target runs its blocking calls on (stategate: scans and the empty call)")
      ->capture_default_str();
  app.add_option("--overload-factor", options.overload_factor,
                 "overload: offered rate as a multiple of the capacity measured in the run")
      ->capture_default_str();
  app.add_option("--server-niceness", options.server_niceness,
                 "niceness (0..19) of the servers the bench starts, so that on shared cores "
                 "they cannot starve the load generator; 0 runs them as the bench")
      ->capture_default_str();
  app.add_flag("--split-cpus", options.split_cpus,
               "pin the bench to the first half of its CPUs and the servers it starts to the "
               "other half (needs 2 CPUs), so that neither's CPU use shows in the other's "
               "numbers");
  std::string priority_mix;
  app.add_option("--priority-mix", priority_mix,
                 "C,N,S: percent of the stategate targets' calls sent critical, normal and "
                 "sheddable (e.g. 20,50,30); each tier is reported apart. Default: none sent");
  app.add_option("--server-binary", options.server_binary,
                 "the stategate binary to start (default: the one beside stategate-bench)");
  app.add_option("--out", out_path, "write the results as JSON to this file");
  app.add_option("--report", report_path, "write a self-contained HTML report to this file");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err) == 0 ? 0 : kExitFailure;
  }
  if (absl::Status valid = CheckSeconds({duration_s, timeout_s, slow_ms}); !valid.ok()) {
    return Fail(valid, err);
  }
  if (threads->count() > 0 && rate->count() == 0) options.rate = 0;
  if (!priority_mix.empty()) {
    std::vector<std::string> parts = absl::StrSplit(priority_mix, ',');
    double shares[3] = {0, 0, 0};
    if (parts.size() != 3 || !absl::SimpleAtod(parts[0], &shares[0]) ||
        !absl::SimpleAtod(parts[1], &shares[1]) || !absl::SimpleAtod(parts[2], &shares[2])) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
                      "--priority-mix: expected C,N,S percentages such as 20,50,30, got '",
                      priority_mix, "'")),
                  err);
    }
    options.priority_mix = PriorityMix{shares[0] / 100, shares[1] / 100, shares[2] / 100};
  }
  options.duration = absl::Seconds(duration_s);
  options.timeout = absl::Seconds(timeout_s);
  options.slow_delay = absl::Milliseconds(slow_ms);
  if (!absl::SimpleAtoi(record.substr(0, record.find('x')), &options.fields) ||
      record.find('x') == std::string::npos ||
      !absl::SimpleAtoi(record.substr(record.find('x') + 1), &options.field_bytes)) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
                    "--record: expected FIELDSxBYTES such as 10x100, got '", record, "'")),
                err);
  }
  if (absl::Status valid = ValidateYcsbBenchOptions(options); !valid.ok()) return Fail(valid, err);

  std::vector<std::string> words(argv, argv + argc);
  words[0] = "stategate-bench";
  absl::StatusOr<nlohmann::json> results = RunYcsbBench(options, absl::StrJoin(words, " "), err);
  if (!results.ok()) return Fail(results.status(), err);
  out << FormatYcsbTable(*results);
  out.flush();
  if (!out_path.empty()) {
    if (absl::Status written = WriteFile(out_path, results->dump(1)); !written.ok()) {
      return Fail(written, err);
    }
  }
  if (!report_path.empty()) {
    if (absl::Status written = WriteFile(report_path, RenderHtmlReport(*results)); !written.ok()) {
      return Fail(written, err);
    }
  }
  return 0;
}

}  // namespace

int RunBenchCli(int argc, const char* const* argv, std::ostream& out, std::ostream& err,
                const ClientFactory& connect) {
  if (HasFlag(argc, argv, "--vs-redis")) return RunVsRedisCli(argc, argv, out, err, connect);
  for (const char* flag : {"--workload", "--target", "--scenario"}) {
    if (HasFlag(argc, argv, flag)) return RunWorkloadCli(argc, argv, out, err);
  }
  QpsBenchOptions options;
  KvClientOptions client_options;
  double duration_s = absl::ToDoubleSeconds(options.duration);
  double warmup_s = absl::ToDoubleSeconds(options.warmup);
  double timeout_s = absl::ToDoubleSeconds(client_options.timeout);
  std::string json_path;

  CLI::App app{"Closed-loop QPS benchmark of a running stategate gateway.", "stategate-bench"};
  app.add_option("--addr", options.address, "gateway address HOST:PORT")->capture_default_str();
  app.add_option("-n,--namespace", options.ns, "namespace")->capture_default_str();
  app.add_option("--concurrency", options.concurrency, "threads, comma-separated levels")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--duration", duration_s, "measured seconds per op and level")
      ->capture_default_str();
  app.add_option("--warmup", warmup_s, "unmeasured seconds before each measurement")
      ->capture_default_str();
  app.add_option("--value-bytes", options.value_bytes, "bytes per value")->capture_default_str();
  app.add_option("--payload", options.payload, "random | json (JSON-like documents)")
      ->check(CLI::IsMember({"random", "json"}))
      ->capture_default_str();
  app.add_option("--records", options.records, "records written round-robin")
      ->capture_default_str();
  app.add_option("--ops", options.ops, "ops in order: put,get,handshake")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--timeout", timeout_s, "per-call timeout in seconds")->capture_default_str();
  app.add_option("--json", json_path, "also write the results as JSON to this file");
  app.footer(
      "Workloads: with --workload, --target or --scenario, stategate-bench instead runs YCSB "
      "workloads a-f against stategate (RocksDB, Redis Cluster), Redis, Redis Cluster, "
      "memcached and the empty call, under fault scenarios, starting every server it needs. "
      "`stategate-bench --workload a --help` lists its flags.\n"
      "Against Redis: with --vs-redis, stategate-bench instead starts a local Redis Cluster and "
      "one gateway over it and compares put/get with redis-benchmark SET/GET at each "
      "concurrency. `stategate-bench --vs-redis --help` lists its flags.\n");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err) == 0 ? 0 : kExitFailure;
  }
  for (double s : {duration_s, warmup_s, timeout_s}) {
    if (!std::isfinite(s) || s < 0) {
      return Fail(absl::InvalidArgumentError("times must be non-negative seconds"), err);
    }
  }
  options.duration = absl::Seconds(duration_s);
  options.warmup = absl::Seconds(warmup_s);
  client_options.address = options.address;
  client_options.timeout = absl::Seconds(timeout_s);

  absl::StatusOr<std::unique_ptr<KvClient>> client = connect(client_options);
  if (!client.ok()) return Fail(client.status(), err);
  absl::StatusOr<QpsReport> report = RunQpsBenchmark(options, **client);
  if (!report.ok()) return Fail(report.status(), err);
  out << FormatTable(*report);
  out.flush();
  if (!json_path.empty()) {
    if (absl::Status written = WriteFile(json_path, ToJson(*report)); !written.ok()) {
      return Fail(written, err);
    }
  }
  return 0;
}

}  // namespace stategate::bench
