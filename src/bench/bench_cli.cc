#include "src/bench/bench_cli.h"

#include <cmath>
#include <fstream>
#include <initializer_list>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "src/bench/fault_bench.h"
#include "src/bench/fleet.h"
#include "src/bench/qps_bench.h"
#include "src/bench/vs_redis.h"
#include "src/testbed/memcached_server.h"
#include "src/testbed/redis_cluster.h"

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

int RunFaultCli(int argc, const char* const* argv, std::ostream& out, std::ostream& err,
                const ClientFactory& connect) {
  FaultBenchOptions options;
  LocalFleetOptions fleet_options;
  std::vector<std::string> addresses;
  double duration_s = absl::ToDoubleSeconds(options.duration);
  double timeout_s = absl::ToDoubleSeconds(options.timeout);
  double slow_ms = absl::ToDoubleMilliseconds(options.slow_delay);
  std::string out_path;
  std::string engine = "rocksdb";
  bool memcached = false;

  CLI::App app{
      "Fault mode: an open-loop read/write mix against several gateways holding the same "
      "records, once per fault scenario (on replica 0) and client mode; latency is measured "
      "from each operation's intended start. Prints a table; --out writes JSON.",
      "stategate-bench"};
  app.add_option("--scenario", options.scenarios,
                 "comma-separated: none, slow-replica, paused-replica, error-replica")
      ->delimiter(',')
      ->required();
  app.add_option("--mode", options.modes,
                 "client modes, comma-separated: naive, full, or one mechanism on top of naive: "
                 "hedging, retries, limiter, balancing, gc-tolerant, signalled-timeouts")
      ->delimiter(',')
      ->capture_default_str();
  CLI::Option* replicas = app.add_option("--replicas", fleet_options.replicas,
                                         "local gateways to start (stategate --fault-injection)")
                              ->capture_default_str();
  CLI::Option* binary =
      app.add_option("--server-binary", fleet_options.server_binary,
                     "the stategate binary to start (default: the one beside stategate-bench)");
  CLI::Option* engine_option =
      app.add_option("--engine", engine,
                     "storage of the local gateways: rocksdb (each its own) or redis-cluster (a "
                     "local Redis Cluster, 3 masters + 3 replicas, all of them over it)")
          ->check(CLI::IsMember({"rocksdb", "redis-cluster"}))
          ->capture_default_str();
  CLI::Option* memcached_flag = app.add_flag(
      "--memcached", memcached,
      "with --engine redis-cluster: also start a local memcached and put it in front of "
      "namespace default on every gateway (stategate --memcached)");
  app.add_option("--addr", addresses,
                 "use running gateways A,B,C instead (started with --fault-injection for faults; "
                 "replica 0 is the first)")
      ->delimiter(',')
      ->excludes(replicas)
      ->excludes(binary)
      ->excludes(engine_option)
      ->excludes(memcached_flag);
  app.add_option("-n,--namespace", options.ns, "namespace")->capture_default_str();
  app.add_option("--records", options.records,
                 "records preloaded into every gateway (through one over redis-cluster)")
      ->capture_default_str();
  app.add_option("--value-bytes", options.value_bytes, "bytes per value")->capture_default_str();
  app.add_option("--read-share", options.read_share, "share of operations that are Gets")
      ->capture_default_str();
  app.add_option("--rate", options.rate, "operations started per second")->capture_default_str();
  app.add_option("--duration", duration_s, "seconds of load per run")->capture_default_str();
  app.add_option("--timeout", timeout_s, "client call timeout in seconds, every mode")
      ->capture_default_str();
  app.add_option("--slow-ms", slow_ms, "delay of every call to the slow replica, ms")
      ->capture_default_str();
  app.add_option("--out", out_path, "write {\"runs\": [...]} as JSON to this file");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err) == 0 ? 0 : kExitFailure;
  }
  if (absl::Status valid = CheckSeconds({duration_s, timeout_s, slow_ms}); !valid.ok()) {
    return Fail(valid, err);
  }
  options.duration = absl::Seconds(duration_s);
  options.timeout = absl::Seconds(timeout_s);
  options.slow_delay = absl::Milliseconds(slow_ms);
  if (absl::Status valid = ValidateFaultBenchOptions(options); !valid.ok()) {
    return Fail(valid, err);
  }
  if (memcached && engine != "redis-cluster") {
    // Gateways with a RocksDB each hold different data; one shared cache would mix them up.
    return Fail(absl::InvalidArgumentError("--memcached needs --engine redis-cluster"), err);
  }

  // Declared in start order, so destroyed in reverse on every way out of this function:
  // the gateways stop before the servers they use.
  std::unique_ptr<testbed::RedisCluster> cluster;
  std::unique_ptr<testbed::MemcachedServer> cache;
  if (engine == "redis-cluster") {
    err << "starting a local Redis Cluster (3 masters, 3 replicas)" << std::endl;
    absl::StatusOr<std::unique_ptr<testbed::RedisCluster>> started = testbed::RedisCluster::Start();
    if (!started.ok()) return Fail(started.status(), err);
    cluster = *std::move(started);
    fleet_options.redis_cluster_seeds = cluster->seed_list();
    options.shared_storage = true;
    err << "Redis Cluster up: " << cluster->seed_list() << std::endl;
  }
  if (memcached) {
    absl::StatusOr<std::unique_ptr<testbed::MemcachedServer>> started =
        testbed::MemcachedServer::Start();
    if (!started.ok()) return Fail(started.status(), err);
    cache = *std::move(started);
    fleet_options.memcached_address = cache->address();
    err << "memcached up: " << cache->address() << std::endl;
  }
  absl::StatusOr<std::unique_ptr<Fleet>> fleet =
      addresses.empty() ? Fleet::StartLocal(fleet_options) : Fleet::Attach(addresses);
  if (!fleet.ok()) return Fail(fleet.status(), err);
  absl::StatusOr<FaultBenchReport> report = RunFaultBench(options, **fleet, &err, connect);
  if (!report.ok()) return Fail(report.status(), err);
  out << FormatFaultTable(*report);
  out.flush();
  if (!out_path.empty()) {
    if (absl::Status written = WriteFile(out_path, FaultBenchJson(*report)); !written.ok()) {
      return Fail(written, err);
    }
  }
  if (absl::Status stopped = (*fleet)->Stop(); !stopped.ok()) return Fail(stopped, err);
  return 0;
}

}  // namespace

int RunBenchCli(int argc, const char* const* argv, std::ostream& out, std::ostream& err,
                const ClientFactory& connect) {
  if (HasFlag(argc, argv, "--vs-redis")) return RunVsRedisCli(argc, argv, out, err, connect);
  if (HasFlag(argc, argv, "--scenario")) return RunFaultCli(argc, argv, out, err, connect);
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
      "Fault mode: with --scenario, stategate-bench instead starts --replicas local gateways "
      "(or uses --addr A,B,C), preloads the same records into each and runs an open-loop "
      "read/write mix per fault scenario and client mode. `stategate-bench --scenario none "
      "--help` lists its flags.\n"
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
