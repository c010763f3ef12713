// The fault benchmark's pure parts: client modes, option checks, the JSON and the table.
#include "src/bench/fault_bench.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace stategate::bench {
namespace {

using ::testing::HasSubstr;

TEST(ModeReliabilityTest, NaiveFullAndOneMechanismOnTopOfNaive) {
  const ReliabilityOptions naive = *ModeReliability("naive");
  EXPECT_FALSE(naive.hedging);
  EXPECT_FALSE(naive.retries);
  EXPECT_EQ(naive.limiter, "none");
  EXPECT_FALSE(naive.load_balancing);
  EXPECT_FALSE(naive.gc_tolerant_timeouts);
  EXPECT_FALSE(naive.signalled_timeouts);

  const ReliabilityOptions full = *ModeReliability("full");
  EXPECT_TRUE(full.hedging && full.retries && full.load_balancing && full.gc_tolerant_timeouts &&
              full.signalled_timeouts);
  EXPECT_EQ(full.limiter, ReliabilityOptions{}.limiter);

  EXPECT_TRUE(ModeReliability("hedging")->hedging);
  EXPECT_FALSE(ModeReliability("hedging")->retries);
  EXPECT_TRUE(ModeReliability("retries")->retries);
  EXPECT_FALSE(ModeReliability("retries")->hedging);
  EXPECT_EQ(ModeReliability("limiter")->limiter, "aimd");
  EXPECT_FALSE(ModeReliability("limiter")->load_balancing);
  EXPECT_TRUE(ModeReliability("balancing")->load_balancing);
  EXPECT_TRUE(ModeReliability("gc-tolerant")->gc_tolerant_timeouts);
  EXPECT_FALSE(ModeReliability("gc-tolerant")->signalled_timeouts);
  EXPECT_TRUE(ModeReliability("signalled-timeouts")->signalled_timeouts);

  const absl::Status unknown = ModeReliability("turbo").status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(unknown.message()), HasSubstr("hedging"));
}

TEST(ValidateFaultBenchOptionsTest, AcceptsDefaultsAndRejectsNonsense) {
  EXPECT_TRUE(ValidateFaultBenchOptions(FaultBenchOptions{}).ok());
  FaultBenchOptions all;
  all.scenarios = {"none", "slow-replica", "paused-replica", "error-replica"};
  all.modes = {
      "naive",  "full", "hedging", "retries", "balancing", "gc-tolerant", "signalled-timeouts",
      "limiter"};
  EXPECT_TRUE(ValidateFaultBenchOptions(all).ok());

  auto rejected = [](auto change) {
    FaultBenchOptions o;
    change(o);
    return ValidateFaultBenchOptions(o).code() == absl::StatusCode::kInvalidArgument;
  };
  EXPECT_TRUE(rejected([](FaultBenchOptions& o) { o.scenarios = {"flaky"}; }));
  EXPECT_TRUE(rejected([](FaultBenchOptions& o) { o.scenarios = {}; }));
  EXPECT_TRUE(rejected([](FaultBenchOptions& o) { o.modes = {"naive", "fast"}; }));
  EXPECT_TRUE(rejected([](FaultBenchOptions& o) { o.modes = {}; }));
  EXPECT_TRUE(rejected([](FaultBenchOptions& o) { o.rate = 0; }));
  EXPECT_TRUE(rejected([](FaultBenchOptions& o) { o.duration = absl::ZeroDuration(); }));
  EXPECT_TRUE(rejected([](FaultBenchOptions& o) { o.read_share = 1.5; }));
  EXPECT_TRUE(rejected([](FaultBenchOptions& o) { o.records = 0; }));
  EXPECT_TRUE(rejected([](FaultBenchOptions& o) { o.value_bytes = -1; }));
  EXPECT_TRUE(rejected([](FaultBenchOptions& o) { o.timeout = absl::ZeroDuration(); }));
  EXPECT_TRUE(rejected([](FaultBenchOptions& o) { o.slow_delay = absl::Seconds(61); }));
  EXPECT_TRUE(rejected([](FaultBenchOptions& o) {
    o.rate = 1e6;
    o.duration = absl::Seconds(1000);
  }));
}

FaultBenchReport SampleReport() {
  FaultBenchReport report;
  report.addresses = {"127.0.0.1:1", "127.0.0.1:2"};
  FaultRun run;
  run.mode = "naive";
  run.scenario = "error-replica";
  run.rate = 300;
  run.duration = absl::Seconds(5);
  run.ops = 1500;
  run.ok = 1000;
  run.errors = {{"UNAVAILABLE", 499}, {"UNFINISHED", 1}};
  run.p50_us = 800;
  run.p99_us = 2500;
  run.p999_us = 9000;
  run.max_us = 1'000'000;
  run.slo_target_us = 10'000;
  run.slo_attainment = 0.66;
  run.attempts_per_op = 1.0;
  report.runs.push_back(run);
  run.mode = "full";
  run.errors = {};
  run.ok = 1500;
  run.attempts_per_op = 1.4;
  run.hedges = 12;
  run.retries = 500;
  report.runs.push_back(run);
  return report;
}

TEST(FaultBenchJsonTest, EveryRunHasEveryField) {
  const nlohmann::json json = nlohmann::json::parse(FaultBenchJson(SampleReport()));
  ASSERT_TRUE(json.contains("runs"));
  ASSERT_TRUE(json["runs"].is_array());
  ASSERT_EQ(json["runs"].size(), 2u);
  for (const auto& run : json["runs"]) {
    for (const char* field : {"mode", "scenario", "ops", "ok", "errors", "p50_us", "p99_us",
                              "p999_us", "max_us", "slo_target_us", "slo_attainment",
                              "attempts_per_op", "hedges", "retries", "rate", "duration_s"}) {
      EXPECT_TRUE(run.contains(field)) << field;
    }
    EXPECT_TRUE(run["errors"].is_object());
    EXPECT_TRUE(run["ops"].is_number_integer());
    EXPECT_TRUE(run["slo_attainment"].is_number_float());
  }
  const auto& naive = json["runs"][0];
  EXPECT_EQ(naive["mode"], "naive");
  EXPECT_EQ(naive["scenario"], "error-replica");
  EXPECT_EQ(naive["ops"], 1500);
  EXPECT_EQ(naive["ok"], 1000);
  EXPECT_EQ(naive["errors"]["UNAVAILABLE"], 499);
  EXPECT_EQ(naive["errors"]["UNFINISHED"], 1);
  EXPECT_EQ(naive["p999_us"], 9000);
  EXPECT_EQ(naive["slo_target_us"], 10'000);
  EXPECT_DOUBLE_EQ(naive["slo_attainment"].get<double>(), 0.66);
  EXPECT_DOUBLE_EQ(naive["rate"].get<double>(), 300);
  EXPECT_DOUBLE_EQ(naive["duration_s"].get<double>(), 5);
  const auto& full = json["runs"][1];
  EXPECT_TRUE(full["errors"].empty());
  EXPECT_EQ(full["hedges"], 12);
  EXPECT_EQ(full["retries"], 500);
  EXPECT_DOUBLE_EQ(full["attempts_per_op"].get<double>(), 1.4);
  EXPECT_EQ(json["addresses"].size(), 2u);
}

TEST(FormatFaultTableTest, OneRowPerRun) {
  const std::string table = FormatFaultTable(SampleReport());
  EXPECT_THAT(table, HasSubstr("scenario"));
  EXPECT_THAT(table, HasSubstr("p99.9_ms"));
  EXPECT_THAT(table, HasSubstr("slo_att"));
  EXPECT_THAT(table, HasSubstr("att/op"));
  EXPECT_THAT(table, HasSubstr("UNAVAILABLE=499 UNFINISHED=1"));
  EXPECT_THAT(table, HasSubstr("66.0%"));
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 3);
}

}  // namespace
}  // namespace stategate::bench
