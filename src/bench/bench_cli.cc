#include "src/bench/bench_cli.h"

#include <cmath>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "src/bench/qps_bench.h"

namespace stategate::bench {
namespace {

constexpr int kExitFailure = 2;

int Fail(const absl::Status& status, std::ostream& err) {
  err << absl::StatusCodeToString(status.code()) << ": " << status.message() << "\n";
  return kExitFailure;
}

}  // namespace

int RunBenchCli(int argc, const char* const* argv, std::ostream& out, std::ostream& err,
                const ClientFactory& connect) {
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
  app.add_option("--records", options.records, "records written round-robin")
      ->capture_default_str();
  app.add_option("--ops", options.ops, "ops in order: put,get,handshake")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--timeout", timeout_s, "per-call timeout in seconds")->capture_default_str();
  app.add_option("--json", json_path, "also write the results as JSON to this file");
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
    std::ofstream file(json_path, std::ios::trunc);
    file << ToJson(*report);
    file.close();
    if (!file) {
      return Fail(absl::UnavailableError(absl::StrCat("cannot write ", json_path)), err);
    }
  }
  return 0;
}

}  // namespace stategate::bench
