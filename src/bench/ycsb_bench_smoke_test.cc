// stategate-bench's workload mode end to end: every target and every scenario, short, with
// real `stategate` processes, a real Redis Cluster, redis-server and memcached started and
// stopped by the bench itself; the JSON must hold every field of every run, and the HTML
// report must be written.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/bench/bench_cli.h"
#include "src/testbed/child_process.h"

namespace stategate::bench {
namespace {

using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class YcsbBenchSmokeTest : public ::testing::Test {
 protected:
  // Runs stategate-bench with `args` (plus --out, --report and the server binary) and
  // returns the JSON it wrote.
  nlohmann::json Bench(std::vector<std::string> args) {
    const std::string dir = ::testing::TempDir();
    const std::string out = dir + "/ycsb_smoke.json";
    const std::string report = dir + "/ycsb_smoke.html";
    std::remove(out.c_str());
    std::remove(report.c_str());
    args.insert(args.begin(), "stategate-bench");
    for (const char* arg : {"--server-binary", STATEGATE_BINARY, "--out"}) args.push_back(arg);
    args.push_back(out);
    args.push_back("--report");
    args.push_back(report);
    std::vector<const char*> argv;
    for (const std::string& arg : args) argv.push_back(arg.c_str());
    std::ostringstream stdout_text;
    std::ostringstream stderr_text;
    const int exit_code =
        RunBenchCli(static_cast<int>(argv.size()), argv.data(), stdout_text, stderr_text);
    EXPECT_EQ(exit_code, 0) << stderr_text.str();
    table_ = stdout_text.str();
    progress_ = stderr_text.str();
    html_ = ReadFile(report);
    EXPECT_THAT(html_, HasSubstr("<svg"));
    return nlohmann::json::parse(ReadFile(out));
  }

  // Every measured run has every field the report and docs rely on.
  static void ExpectComplete(const nlohmann::json& run) {
    SCOPED_TRACE(run.dump().substr(0, 300));
    for (const char* key : {"target",
                            "mode",
                            "scenario",
                            "workload",
                            "loop",
                            "duration_s",
                            "ops",
                            "ok",
                            "error_examples",
                            "errors",
                            "throughput",
                            "p50_us",
                            "p99_us",
                            "p999_us",
                            "max_us",
                            "slo_target_us",
                            "slo_attainment",
                            "slo_targets_us",
                            "attempts_per_op",
                            "hedges",
                            "retries",
                            "bytes_sent",
                            "fault",
                            "series",
                            "cdf",
                            "why_nines"}) {
      EXPECT_TRUE(run.contains(key)) << key;
    }
    EXPECT_GT(run["ops"].get<int64_t>(), 0);
    EXPECT_GT(run["ok"].get<int64_t>(), 0);
    // The empty call sends no record payload.
    EXPECT_EQ(run["bytes_sent"].get<int64_t>() > 0, run["target"] != "empty");
    EXPECT_LE(run["p50_us"].get<int64_t>(), run["p99_us"].get<int64_t>());
    EXPECT_LE(run["p99_us"].get<int64_t>(), run["max_us"].get<int64_t>());
    // One point per second of the run (the last may hold no operations if it is partial).
    EXPECT_GE(run["series"].size(), static_cast<size_t>(run["duration_s"].get<double>()) - 1);
    for (const nlohmann::json& point : run["series"]) {
      for (const char* key : {"t", "ops", "errors", "p50_us", "p99_us", "slo_attainment"}) {
        EXPECT_TRUE(point.contains(key)) << key;
      }
    }
    EXPECT_FALSE(run["cdf"].empty());
    for (const char* key :
         {"blast_radius", "recover_from_onset_s", "recover_from_end_s", "longest_stall_us"}) {
      EXPECT_TRUE(run["why_nines"].contains(key)) << key;
    }
    if (run["scenario"] == "none") {
      EXPECT_TRUE(run["fault"].is_null());
    } else {
      ASSERT_TRUE(run["fault"].is_object());
      EXPECT_GT(run["fault"]["onset_s"].get<double>(), 0);
      EXPECT_GE(run["fault"]["end_s"].get<double>(), run["fault"]["onset_s"].get<double>());
    }
  }

  std::string table_;
  std::string progress_;
  std::string html_;
};

TEST_F(YcsbBenchSmokeTest, EveryGatewayScenarioWithBothModesOnRocksDb) {
  const std::vector<std::string> scenarios = {"none",           "slow-replica",   "error-replica",
                                              "paused-replica", "killed-replica", "rolling-restart",
                                              "overload"};
  const nlohmann::json results =
      Bench({"--workload",
             "a",
             "--target",
             "stategate-rocksdb",
             "--scenario",
             "none,slow-replica,error-replica,paused-replica,killed-replica,rolling-restart,"
             "overload",
             "--mode",
             "naive,full",
             "--records",
             "200",
             "--rate",
             "200",
             "--duration",
             "4",
             "--record",
             "1x1024",
             "--client-threads",
             "16",
             "--priority-mix",
             "20,50,30"});
  ASSERT_EQ(results["runs"].size(), scenarios.size() * 2);
  for (const nlohmann::json& run : results["runs"]) ExpectComplete(run);
  // The faults were really set: a naive client, which sends a third of its calls to gateway
  // 0 and neither retries nor hedges, fails some of them while it fails or is killed. (The
  // full client's retries hide them; whether they always do is for the benchmark to show.)
  for (const nlohmann::json& run : results["runs"]) {
    if (run["mode"] == "naive" &&
        (run["scenario"] == "error-replica" || run["scenario"] == "killed-replica")) {
      EXPECT_GT(run["errors"].value("UNAVAILABLE", 0), 0) << run["scenario"];
    }
    if (run["scenario"] == "none") {
      EXPECT_TRUE(run["errors"].empty()) << run["errors"].dump();
    }
    // Each open-loop run reports its tiers, which together hold every operation.
    ASSERT_TRUE(run.contains("tiers")) << run["scenario"];
    int64_t tier_ops = 0;
    for (const char* tier : {"critical", "normal", "sheddable"}) {
      ASSERT_TRUE(run["tiers"].contains(tier)) << tier;
      EXPECT_GT(run["tiers"][tier]["ops"].get<int64_t>(), 0) << tier;
      tier_ops += run["tiers"][tier]["ops"].get<int64_t>();
    }
    EXPECT_EQ(tier_ops, run["ops"].get<int64_t>()) << run["scenario"];
    // Every call of the full client makes an attempt or more, but under overload: there its
    // concurrency limiter fails calls fast, before any attempt.
    if (run["mode"] == "full" && run["scenario"] != "overload") {
      EXPECT_GE(run["attempts_per_op"].get<double>(), 1.0) << run["scenario"];
    }
    // The gateways' memory, from /proc: a peak at least what they hold at the end.
    ASSERT_TRUE(run.contains("gateway_memory")) << run["scenario"];
    const nlohmann::json& memory = run["gateway_memory"];
    EXPECT_GT(memory["start_bytes"].get<int64_t>(), 0);
    EXPECT_GE(memory["peak_bytes"].get<int64_t>(), memory["end_bytes"].get<int64_t>());
  }
  EXPECT_THAT(progress_, HasSubstr("ops/s, p99"));  // the per-second progress line
  EXPECT_EQ(results["loads"].size(), 1u);
}

TEST_F(YcsbBenchSmokeTest, SplitCpusGivesTheBenchAndItsServersCpusOfTheirOwn) {
  if (std::thread::hardware_concurrency() < 2) GTEST_SKIP() << "needs 2 CPUs";
  const nlohmann::json results =
      Bench({"--workload", "a", "--target", "stategate-rocksdb", "--scenario", "none", "--mode",
             "full", "--records", "100", "--rate", "100", "--duration", "2", "--replicas", "1",
             "--client-threads", "8", "--split-cpus"});
  ASSERT_EQ(results["runs"].size(), 1u);
  ExpectComplete(results["runs"][0]);
  const nlohmann::json& split = results["options"]["split_cpus"];
  ASSERT_TRUE(split.is_object()) << results["options"].dump();
  const std::vector<int> bench = split["bench"].get<std::vector<int>>();
  const std::vector<int> servers = split["servers"].get<std::vector<int>>();
  ASSERT_FALSE(bench.empty());
  ASSERT_FALSE(servers.empty());
  for (int cpu : bench) EXPECT_THAT(servers, ::testing::Not(::testing::Contains(cpu)));
}

TEST_F(YcsbBenchSmokeTest, RedisFailoverOnBothRedisClusterTargets) {
  const nlohmann::json results =
      Bench({"--workload", "b", "--target", "stategate-redis,redis-cluster", "--scenario",
             "none,redis-failover", "--mode", "full", "--records", "200", "--rate", "200",
             "--duration", "6", "--replicas", "2", "--client-threads", "16"});
  ASSERT_EQ(results["runs"].size(), 4u);
  for (const nlohmann::json& run : results["runs"]) ExpectComplete(run);
  EXPECT_EQ(results["runs"][3]["target"], "redis-cluster");
  EXPECT_EQ(results["runs"][3]["mode"], "direct");
  EXPECT_TRUE(results["runs"][3]["attempts_per_op"].is_null());
  // Both saw the failover (a stall), and both came through it.
  for (const nlohmann::json& run : results["runs"]) {
    if (run["scenario"] != "redis-failover") continue;
    EXPECT_GT(run["max_us"].get<int64_t>(), 100'000) << run["target"];
    EXPECT_GT(run["series"].back()["ops"].get<int64_t>(), 0) << run["target"];
  }
}

// Scans page through the gateways: the full client may ask any gateway of the fleet for the
// next page of a scan another began, which works only because the fleet shares one
// page-token key (stategate --page-token-secret-file).
TEST_F(YcsbBenchSmokeTest, DirectTargetsTheEmptyCallAndScansAcrossGatewaysInAClosedLoop) {
  const nlohmann::json results =
      // c before e: the records e inserts through one gateway are only in that gateway's RocksDB.
      Bench({"--workload", "c,e", "--target", "stategate-rocksdb,redis,memcached,empty",
             "--scenario", "none", "--mode", "full", "--replicas", "2", "--records", "300",
             "--threads", "4", "--duration", "2", "--client-threads", "8"});
  ASSERT_EQ(results["runs"].size(), 8u);
  int skipped = 0;
  for (const nlohmann::json& run : results["runs"]) {
    if (run.contains("skipped")) {
      EXPECT_EQ(run["target"], "memcached");
      EXPECT_EQ(run["workload"], "e");
      ++skipped;
      continue;
    }
    ExpectComplete(run);
    EXPECT_EQ(run["loop"], "closed");
    EXPECT_TRUE(run["errors"].empty())
        << run["target"] << " " << run["workload"] << " " << run["error_examples"].dump();
  }
  EXPECT_EQ(skipped, 1);
  EXPECT_THAT(table_, HasSubstr("skipped"));
}

TEST(YcsbBenchCliTest, BadFlagsAreRefusedWithTheirName) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"stategate-bench", "--workload", "z"},
        {"stategate-bench", "--target", "mysql"},
        {"stategate-bench", "--workload", "a", "--record", "ten"},
        {"stategate-bench", "--workload", "a", "--rate", "10", "--threads", "2"}}) {
    std::vector<const char*> argv;
    for (const std::string& arg : args) argv.push_back(arg.c_str());
    std::ostringstream out;
    std::ostringstream err;
    EXPECT_EQ(RunBenchCli(static_cast<int>(argv.size()), argv.data(), out, err), 2);
    EXPECT_FALSE(err.str().empty());
  }
}

}  // namespace
}  // namespace stategate::bench
