#include "src/bench/qps_bench.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "src/bench/closed_loop.h"
#include "src/common/status_macros.h"

namespace stategate::bench {
namespace {

constexpr char kItemKey[] = "v";

std::string RecordId(int64_t index) { return absl::StrFormat("bench-%08d", index); }

absl::Status Validate(const QpsBenchOptions& options) {
  if (options.concurrency.empty()) return absl::InvalidArgumentError("no concurrency given");
  for (int c : options.concurrency) {
    if (c <= 0 || c > 10'000) {
      return absl::InvalidArgumentError(absl::StrCat("concurrency must be in [1, 10000], got ", c));
    }
  }
  if (options.duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("duration must be positive");
  }
  if (options.warmup < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("warmup must not be negative");
  }
  if (options.value_bytes < 0) return absl::InvalidArgumentError("value bytes must be >= 0");
  if (options.records <= 0) return absl::InvalidArgumentError("records must be positive");
  for (const std::string& op : options.ops) {
    if (op != "put" && op != "get" && op != "handshake") {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown op '", op, "'; expected put, get or handshake"));
    }
  }
  return absl::OkStatus();
}

OpResult ToOpResult(std::string op, int concurrency, const LoopResult& loop) {
  OpResult r;
  r.op = std::move(op);
  r.concurrency = concurrency;
  r.ok = loop.ok;
  r.errors = loop.errors;
  r.first_error = loop.first_error;
  r.elapsed = loop.elapsed;
  r.qps = static_cast<double>(loop.ok) / absl::ToDoubleSeconds(loop.elapsed);
  r.p50_us = loop.latency_us.Percentile(0.50);
  r.p99_us = loop.latency_us.Percentile(0.99);
  r.p999_us = loop.latency_us.Percentile(0.999);
  r.max_us = loop.latency_us.Max();
  r.mean_us = loop.latency_us.Mean();
  return r;
}

}  // namespace

absl::StatusOr<QpsReport> RunQpsBenchmark(const QpsBenchOptions& options, KvClient& client) {
  SG_RETURN_IF_ERROR(Validate(options));
  // Fails early (and warms the client's namespace settings) if the namespace is not served.
  SG_ASSIGN_OR_RETURN(const HandshakeInfo info, client.Handshake({options.ns}));
  if (std::none_of(info.namespaces.begin(), info.namespaces.end(),
                   [&](const NamespaceSettings& ns) { return ns.name == options.ns; })) {
    return absl::NotFoundError(absl::StrCat("namespace '", options.ns, "' is not served"));
  }

  std::string value;
  if (options.payload == "json") {
    value = JsonLikeDocument(options.value_bytes, 1);
  } else {
    value.resize(options.value_bytes);
    absl::BitGen gen;
    for (char& c : value) c = static_cast<char>(absl::Uniform<uint8_t>(gen));
  }
  const KvClientStats before = client.stats();

  QpsReport report;
  report.options = options;
  std::atomic<int64_t> puts_started{0};
  for (const int concurrency : options.concurrency) {
    std::map<std::string, double> qps_by_op;
    const size_t first = report.results.size();
    for (const std::string& op : options.ops) {
      LoopResult loop;
      if (op == "put") {
        loop = RunClosedLoop(concurrency, options.warmup, options.duration, [&](int) {
          const int64_t index = puts_started.fetch_add(1) % options.records;
          return client.Put(options.ns, RecordId(index), kItemKey, value);
        });
      } else if (op == "get") {
        // Records [0, written) have been put (by this run's put phases) unless a put failed,
        // which shows up as a put error, and then as a get error.
        const int64_t written = std::min<int64_t>(puts_started.load(), options.records);
        if (written == 0) {
          return absl::FailedPreconditionError("get needs a put phase before it to write records");
        }
        loop = RunClosedLoop(concurrency, options.warmup, options.duration, [&](int) {
          thread_local absl::InsecureBitGen thread_gen;
          const int64_t index = absl::Uniform<int64_t>(thread_gen, 0, written);
          return client.Get(options.ns, RecordId(index), kItemKey).status();
        });
      } else {
        loop = RunClosedLoop(concurrency, options.warmup, options.duration,
                             [&](int) { return client.Handshake({options.ns}).status(); });
      }
      report.results.push_back(ToOpResult(op, concurrency, loop));
      qps_by_op[op] = report.results.back().qps;
    }
    if (auto it = qps_by_op.find("handshake"); it != qps_by_op.end() && it->second > 0) {
      for (size_t i = first; i < report.results.size(); ++i) {
        report.results[i].vs_handshake = report.results[i].qps / it->second;
      }
    }
  }
  const KvClientStats after = client.stats();
  report.bytes_before_compression =
      after.bytes_before_compression - before.bytes_before_compression;
  report.bytes_after_compression = after.bytes_after_compression - before.bytes_after_compression;
  return report;
}

std::string JsonLikeDocument(int64_t bytes, uint64_t seed) {
  static constexpr const char* kPlans[] = {"basic", "standard", "premium"};
  static constexpr const char* kCountries[] = {"NL", "US", "BR", "JP", "DE", "IN"};
  static constexpr const char* kDevices[] = {"tv", "phone", "tablet", "browser", "console"};
  absl::InsecureBitGen gen(std::seed_seq{seed});
  std::string doc = "[";
  while (static_cast<int64_t>(doc.size()) < bytes) {
    const uint64_t user = absl::Uniform<uint64_t>(gen, 1'000'000, 9'999'999);
    absl::StrAppend(&doc, doc.size() > 1 ? "," : "", "{\"user_id\":", user, ",\"email\":\"user",
                    user, "@example.org\",\"plan\":\"", kPlans[absl::Uniform(gen, 0, 3)],
                    "\",\"country\":\"", kCountries[absl::Uniform(gen, 0, 6)], "\",\"devices\":[\"",
                    kDevices[absl::Uniform(gen, 0, 5)], "\",\"", kDevices[absl::Uniform(gen, 0, 5)],
                    "\"],\"last_seen_us\":",
                    absl::Uniform<uint64_t>(gen, 1'700'000'000'000'000, 1'800'000'000'000'000),
                    ",\"profile\":{\"language\":\"en\",\"autoplay\":",
                    absl::Bernoulli(gen, 0.5) ? "true" : "false",
                    ",\"maturity\":", absl::Uniform(gen, 0, 18), "}}");
  }
  doc.resize(bytes);  // cut to size: still JSON-like bytes, as a stored fragment would be
  return doc;
}

std::string FormatTable(const QpsReport& report) {
  std::string out = absl::StrFormat("%-10s %11s %12s %9s %9s %8s %12s\n", "op", "concurrency",
                                    "QPS", "p50_us", "p99_us", "errors", "vs_handshake");
  std::vector<std::string> errors;
  for (const OpResult& r : report.results) {
    absl::StrAppendFormat(&out, "%-10s %11d %12.1f %9d %9d %8d %12s\n", r.op, r.concurrency, r.qps,
                          r.p50_us, r.p99_us, r.errors,
                          r.vs_handshake > 0 ? absl::StrFormat("%.3f", r.vs_handshake) : "-");
    if (!r.first_error.empty()) {
      errors.push_back(absl::StrCat(r.op, " x", r.concurrency, ": ", r.first_error));
    }
  }
  if (!errors.empty())
    absl::StrAppend(&out, "first errors:\n  ", absl::StrJoin(errors, "\n  "), "\n");
  if (report.bytes_before_compression > 0) {
    absl::StrAppendFormat(&out, "%s values written: %d bytes, %d after LZ4 (%.2fx smaller)\n",
                          report.options.payload, report.bytes_before_compression,
                          report.bytes_after_compression,
                          static_cast<double>(report.bytes_before_compression) /
                              std::max<int64_t>(1, report.bytes_after_compression));
  }
  return out;
}

std::string ToJson(const QpsReport& report) {
  const QpsBenchOptions& o = report.options;
  nlohmann::json results = nlohmann::json::array();
  for (const OpResult& r : report.results) {
    results.push_back({{"op", r.op},
                       {"concurrency", r.concurrency},
                       {"ok", r.ok},
                       {"errors", r.errors},
                       {"elapsed_s", absl::ToDoubleSeconds(r.elapsed)},
                       {"qps", r.qps},
                       {"p50_us", r.p50_us},
                       {"p99_us", r.p99_us},
                       {"p999_us", r.p999_us},
                       {"max_us", r.max_us},
                       {"mean_us", r.mean_us},
                       {"vs_handshake", r.vs_handshake},
                       {"first_error", r.first_error}});
  }
  const nlohmann::json doc = {{"address", o.address},
                              {"namespace", o.ns},
                              {"duration_s", absl::ToDoubleSeconds(o.duration)},
                              {"warmup_s", absl::ToDoubleSeconds(o.warmup)},
                              {"value_bytes", o.value_bytes},
                              {"records", o.records},
                              {"payload", o.payload},
                              {"bytes_before_compression", report.bytes_before_compression},
                              {"bytes_after_compression", report.bytes_after_compression},
                              {"results", std::move(results)}};
  return doc.dump(2) + "\n";
}

}  // namespace stategate::bench
