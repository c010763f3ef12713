#include "src/bench/redis_benchmark.h"

#include <sys/wait.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "src/common/status_macros.h"
#include "src/testbed/child_process.h"

namespace stategate::bench {
namespace {

// How much of redis-benchmark's output an error message quotes.
constexpr size_t kOutputTailBytes = 1500;

// The fields of one CSV line, quotes removed (redis-benchmark quotes every field and puts no
// comma or quote inside one).
std::vector<std::string> CsvFields(absl::string_view line) {
  std::vector<std::string> fields;
  for (absl::string_view field : absl::StrSplit(line, ',')) {
    field = absl::StripAsciiWhitespace(field);
    if (field.size() >= 2 && field.front() == '"' && field.back() == '"') {
      field = field.substr(1, field.size() - 2);
    }
    fields.emplace_back(field);
  }
  return fields;
}

// Removes a directory (the output file in it) on every way out.
struct TempDir {
  std::string path;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

absl::Status Validate(const RedisBenchmarkOptions& o) {
  if (o.binary.empty() || o.host.empty()) {
    return absl::InvalidArgumentError("redis-benchmark: binary and host must be set");
  }
  if (o.port <= 0 || o.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("redis-benchmark: bad port ", o.port));
  }
  if (o.clients < 1 || o.requests < 1 || o.value_bytes < 1 || o.keyspace < 1 || o.pipeline < 1) {
    return absl::InvalidArgumentError(
        "redis-benchmark: clients, requests, value bytes, keyspace and pipeline must be >= 1");
  }
  if (o.tests.empty()) return absl::InvalidArgumentError("redis-benchmark: no test given");
  if (o.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("redis-benchmark: timeout must be positive");
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> RedisBenchmarkArgs(const RedisBenchmarkOptions& o) {
  std::vector<std::string> args;
  if (o.cluster) args.push_back("--cluster");
  args.insert(args.end(), {"-h", o.host, "-p", absl::StrCat(o.port), "-c", absl::StrCat(o.clients),
                           "-n", absl::StrCat(o.requests), "-d", absl::StrCat(o.value_bytes), "-r",
                           absl::StrCat(o.keyspace), "-P", absl::StrCat(o.pipeline), "-t",
                           absl::StrJoin(o.tests, ","), "--csv"});
  return args;
}

absl::StatusOr<std::vector<RedisBenchmarkResult>> ParseRedisBenchmarkCsv(
    const std::string& output) {
  std::vector<absl::string_view> lines = absl::StrSplit(output, absl::ByAnyChar("\r\n"));
  size_t i = 0;
  while (i < lines.size() && !absl::StartsWith(lines[i], "\"test\"")) ++i;
  if (i == lines.size()) {
    return absl::InvalidArgumentError("no \"test\",\"rps\",... header in redis-benchmark's output");
  }
  std::map<std::string, size_t> column;
  const std::vector<std::string> header = CsvFields(lines[i]);
  for (size_t c = 0; c < header.size(); ++c) column[header[c]] = c;
  for (const char* required : {"test", "rps", "p99_latency_ms"}) {
    if (!column.contains(required)) {
      return absl::InvalidArgumentError(
          absl::StrCat("redis-benchmark's CSV header has no column \"", required, "\""));
    }
  }
  std::vector<RedisBenchmarkResult> results;
  for (++i; i < lines.size(); ++i) {
    if (!absl::StartsWith(lines[i], "\"")) continue;  // blank lines, anything else it printed
    const std::vector<std::string> fields = CsvFields(lines[i]);
    if (fields.size() != header.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("redis-benchmark CSV row '", lines[i], "' does not match the header"));
    }
    RedisBenchmarkResult result;
    result.test = fields[column["test"]];
    const std::pair<const char*, double*> numbers[] = {{"rps", &result.rps},
                                                       {"avg_latency_ms", &result.avg_ms},
                                                       {"min_latency_ms", &result.min_ms},
                                                       {"p50_latency_ms", &result.p50_ms},
                                                       {"p95_latency_ms", &result.p95_ms},
                                                       {"p99_latency_ms", &result.p99_ms},
                                                       {"max_latency_ms", &result.max_ms}};
    for (const auto& [name, value] : numbers) {
      auto it = column.find(name);
      if (it == column.end()) continue;
      if (!absl::SimpleAtod(fields[it->second], value)) {
        return absl::InvalidArgumentError(
            absl::StrCat("redis-benchmark CSV row '", lines[i], "': ", name, " is not a number"));
      }
    }
    results.push_back(std::move(result));
  }
  if (results.empty()) return absl::InvalidArgumentError("redis-benchmark's CSV has no rows");
  return results;
}

absl::StatusOr<std::string> RedisBenchmarkVersion(const std::string& binary,
                                                  absl::Duration timeout) {
  SG_ASSIGN_OR_RETURN(const std::string dir, testbed::MakeTempDir("stategate-redis-benchmark-"));
  const TempDir remove_dir{dir};
  testbed::ChildProcessOptions process;
  process.binary = binary;
  process.args = {"--version"};
  process.log_path = dir + "/output.txt";
  SG_ASSIGN_OR_RETURN(std::unique_ptr<testbed::ChildProcess> child,
                      testbed::ChildProcess::Start(std::move(process)));
  const std::optional<int> status = child->Wait(timeout);
  if (!status.has_value()) {
    child->Kill();
    return absl::UnavailableError(
        absl::StrCat(binary, " --version did not answer within ", absl::FormatDuration(timeout)));
  }
  if (!(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)) {
    return absl::UnavailableError(absl::StrCat(binary, " --version ",
                                               testbed::DescribeWaitStatus(*status), ": ",
                                               child->LogTail(kOutputTailBytes)));
  }
  return std::string(absl::StripAsciiWhitespace(child->Log()));
}

absl::StatusOr<std::vector<RedisBenchmarkResult>> RunRedisBenchmark(
    const RedisBenchmarkOptions& options) {
  SG_RETURN_IF_ERROR(Validate(options));
  SG_ASSIGN_OR_RETURN(const std::string dir, testbed::MakeTempDir("stategate-redis-benchmark-"));
  const TempDir remove_dir{dir};

  testbed::ChildProcessOptions process;
  process.binary = options.binary;
  process.args = RedisBenchmarkArgs(options);
  process.log_path = dir + "/output.txt";
  SG_ASSIGN_OR_RETURN(std::unique_ptr<testbed::ChildProcess> child,
                      testbed::ChildProcess::Start(std::move(process)));
  const std::string command =
      absl::StrCat(options.binary, " ", absl::StrJoin(child->options().args, " "));
  const std::optional<int> status = child->Wait(options.timeout);
  if (!status.has_value()) {
    child->Kill();
    return absl::DeadlineExceededError(
        absl::StrCat(command, " did not finish within ", absl::FormatDuration(options.timeout),
                     " and was killed; its output:\n", child->LogTail(kOutputTailBytes)));
  }
  if (!(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)) {
    return absl::UnavailableError(absl::StrCat(command, " ", testbed::DescribeWaitStatus(*status),
                                               "; its output:\n",
                                               child->LogTail(kOutputTailBytes)));
  }
  absl::StatusOr<std::vector<RedisBenchmarkResult>> results = ParseRedisBenchmarkCsv(child->Log());
  if (!results.ok()) {
    return absl::Status(results.status().code(),
                        absl::StrCat(command, ": ", results.status().message(), "; its output:\n",
                                     child->LogTail(kOutputTailBytes)));
  }
  return results;
}

}  // namespace stategate::bench
