// The workload benchmark's pure parts: the recorder, the why-nines figures, option checks,
// the overload schedule and the table.
#include "src/bench/ycsb_bench.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/bench/load_recorder.h"
#include "src/bench/open_loop.h"

namespace stategate::bench {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kSlo = absl::Milliseconds(10);

// A run of `seconds` seconds at 100 operations per second, every one within the SLO except
// in the seconds listed in `bad`, where every operation fails.
std::vector<LoadStats> Series(int seconds, const std::vector<int>& bad) {
  LoadRecorder recorder;
  for (int s = 0; s < seconds; ++s) {
    const bool failing = std::find(bad.begin(), bad.end(), s) != bad.end();
    for (int i = 0; i < 100; ++i) {
      recorder.Record(absl::Seconds(s) + absl::Milliseconds(10 * i), absl::Milliseconds(1),
                      failing ? absl::UnavailableError("down") : absl::OkStatus(), kSlo);
    }
  }
  return recorder.Series();
}

TEST(LoadRecorderTest, CountsByIntervalOfStartAndByCode) {
  LoadRecorder recorder;
  recorder.Record(absl::Milliseconds(100), absl::Milliseconds(5), absl::OkStatus(), kSlo);
  recorder.Record(absl::Milliseconds(900), absl::Milliseconds(50), absl::OkStatus(), kSlo);
  recorder.Record(absl::Milliseconds(2500), absl::Milliseconds(1), absl::UnavailableError("x"),
                  kSlo);
  recorder.RecordUnfinished(absl::Milliseconds(2600), absl::Seconds(2));

  const LoadStats total = recorder.Total();
  EXPECT_EQ(total.ops, 4);
  EXPECT_EQ(total.ok, 2);
  EXPECT_EQ(total.ok_within_slo, 1);  // the 50 ms one succeeded but missed the SLO
  EXPECT_EQ(total.errors.at("UNAVAILABLE"), 1);
  EXPECT_EQ(total.errors.at(kUnfinished), 1);
  EXPECT_EQ(total.error_count(), 2);
  EXPECT_DOUBLE_EQ(total.slo_attainment(), 0.25);
  EXPECT_GE(total.latency_us.Max(), 2'000'000);

  const std::vector<LoadStats> series = recorder.Series();
  ASSERT_EQ(series.size(), 3u);
  EXPECT_EQ(series[0].ops, 2);
  EXPECT_EQ(series[1].ops, 0);  // a quiet second is there, empty
  EXPECT_DOUBLE_EQ(series[1].slo_attainment(), 1.0);
  EXPECT_EQ(series[2].ops, 2);
  EXPECT_EQ(recorder.Interval(7).ops, 0);
}

TEST(LoadRecorderTest, ShedCallsHaveTheirOwnLatencies) {
  LoadRecorder recorder;
  recorder.Record(absl::ZeroDuration(), absl::Milliseconds(40), absl::OkStatus(), kSlo);
  recorder.Record(absl::ZeroDuration(), absl::Microseconds(300),
                  absl::ResourceExhaustedError("shed"), kSlo);
  recorder.Record(absl::ZeroDuration(), absl::Milliseconds(20), absl::UnavailableError("x"), kSlo);
  const LoadStats total = recorder.Total();
  EXPECT_EQ(total.shed_latency_us.Count(), 1);
  EXPECT_LE(total.shed_latency_us.Max(), 1000);  // the shed call alone
  EXPECT_GE(total.latency_us.Max(), 40'000);
}

TEST(WhyNinesTest, NoFaultMeansTheWholeRunIsTheBlastRadiusAndNothingToRecover) {
  const WhyNines nines =
      ComputeWhyNines(Series(10, {4}), absl::Seconds(1), std::nullopt, std::nullopt);
  EXPECT_DOUBLE_EQ(nines.blast_radius, 0.1);
  EXPECT_FALSE(nines.recover_from_onset.has_value());
  EXPECT_FALSE(nines.recover_from_end.has_value());
  EXPECT_EQ(nines.longest_stall_us, 1000);
}

TEST(WhyNinesTest, RecoveryIsMeasuredFromOnsetAndFromEnd) {
  // Fault in [3 s, 6 s); seconds 3..7 fail: back at 8 s.
  const WhyNines nines = ComputeWhyNines(Series(12, {3, 4, 5, 6, 7}), absl::Seconds(1),
                                         absl::Seconds(3), absl::Seconds(6));
  EXPECT_DOUBLE_EQ(nines.blast_radius, 5.0 / 9.0);  // 5 bad seconds of the 9 from the onset
  EXPECT_EQ(nines.recover_from_onset, absl::Seconds(5));
  EXPECT_EQ(nines.recover_from_end, absl::Seconds(2));
}

TEST(WhyNinesTest, RecoveredMeansAsGoodAsTheWorstSecondBeforeTheFault) {
  // 1000 operations a second; second 1 misses 5 (99.5 %), the fault's seconds 4..5 miss
  // 100, the seconds after miss 3 (99.7 %): recovered at 6 s against a 99.5 % mark, which
  // 99.9 % would never call recovered.
  LoadRecorder recorder;
  for (int s = 0; s < 10; ++s) {
    const int misses = s == 1 ? 5 : (s == 4 || s == 5) ? 100 : s >= 6 ? 3 : 0;
    for (int i = 0; i < 1000; ++i) {
      recorder.Record(absl::Seconds(s) + absl::Microseconds(i * 1000),
                      i < misses ? absl::Milliseconds(50) : absl::Milliseconds(1), absl::OkStatus(),
                      kSlo);
    }
  }
  const WhyNines nines =
      ComputeWhyNines(recorder.Series(), absl::Seconds(1), absl::Seconds(4), absl::Seconds(5));
  EXPECT_DOUBLE_EQ(nines.recovery_mark, 0.995);
  EXPECT_EQ(nines.recover_from_onset, absl::Seconds(2));
  EXPECT_EQ(nines.recover_from_end, absl::Seconds(1));
}

TEST(WhyNinesTest, AFaultThatHurtNothingRecoversAtOnce) {
  const WhyNines nines =
      ComputeWhyNines(Series(10, {}), absl::Seconds(1), absl::Seconds(3), absl::Seconds(6));
  EXPECT_DOUBLE_EQ(nines.blast_radius, 0);
  EXPECT_EQ(nines.recover_from_onset, absl::ZeroDuration());
  EXPECT_EQ(nines.recover_from_end, absl::ZeroDuration());
}

TEST(WhyNinesTest, NeverRecoveredWhenTheLastSecondIsBad) {
  const WhyNines nines =
      ComputeWhyNines(Series(10, {4, 9}), absl::Seconds(1), absl::Seconds(3), absl::Seconds(6));
  EXPECT_FALSE(nines.recover_from_onset.has_value());
  EXPECT_FALSE(nines.recover_from_end.has_value());
}

TEST(ArrivalScheduleTest, AWindowChangesTheRateInsideItOnly) {
  // 100/s for 10 s, 300/s in [2 s, 4 s): 200 + 600 + 600 arrivals.
  const ArrivalSchedule schedule(100, absl::Seconds(10),
                                 RateWindow{absl::Seconds(2), absl::Seconds(4), 300});
  ASSERT_EQ(schedule.count(), 1400);
  EXPECT_EQ(schedule.Offset(199), absl::Milliseconds(1990));
  EXPECT_EQ(schedule.Offset(200), absl::Seconds(2));
  EXPECT_EQ(schedule.Offset(203), absl::Seconds(2) + absl::Milliseconds(10));
  EXPECT_EQ(schedule.Offset(800), absl::Seconds(4));
  EXPECT_EQ(schedule.Offset(1399), absl::Milliseconds(9990));
  for (int64_t i = 1; i < schedule.count(); ++i) {
    ASSERT_GT(schedule.Offset(i), schedule.Offset(i - 1)) << i;
  }
}

TEST(ValidateYcsbBenchOptionsTest, AcceptsDefaultsAndNamesTheFieldItRejects) {
  EXPECT_TRUE(ValidateYcsbBenchOptions(YcsbBenchOptions{}).ok());
  YcsbBenchOptions all;
  all.workloads = {"a", "b", "c", "d", "e", "f"};
  all.targets = {"stategate-rocksdb", "stategate-redis", "redis",
                 "redis-cluster",     "memcached",       "empty"};
  all.scenarios = {"none",           "slow-replica",    "error-replica", "paused-replica",
                   "killed-replica", "rolling-restart", "overload",      "redis-failover"};
  EXPECT_TRUE(ValidateYcsbBenchOptions(all).ok());

  auto rejection = [](auto change) {
    YcsbBenchOptions o;
    change(o);
    const absl::Status status = ValidateYcsbBenchOptions(o);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    return std::string(status.message());
  };
  EXPECT_THAT(rejection([](auto& o) { o.workloads = {"g"}; }), HasSubstr("--workload"));
  EXPECT_THAT(rejection([](auto& o) { o.targets = {"mysql"}; }), HasSubstr("--target"));
  EXPECT_THAT(rejection([](auto& o) { o.scenarios = {"flood"}; }), HasSubstr("--scenario"));
  EXPECT_THAT(rejection([](auto& o) { o.modes = {"turbo"}; }), HasSubstr("--mode"));
  EXPECT_THAT(rejection([](auto& o) { o.records = 0; }), HasSubstr("--records"));
  EXPECT_THAT(rejection([](auto& o) { o.threads = 8; }), HasSubstr("--rate"));
  EXPECT_THAT(rejection([](auto& o) {
                o.rate = 0;
                o.threads = 0;
              }),
              HasSubstr("--threads"));
  EXPECT_THAT(rejection([](auto& o) { o.rate = 1e9; }), HasSubstr("--rate"));
  EXPECT_THAT(rejection([](auto& o) { o.fields = 0; }), HasSubstr("--record"));
  EXPECT_THAT(rejection([](auto& o) { o.replicas = 0; }), HasSubstr("--replicas"));
  EXPECT_THAT(rejection([](auto& o) {
                o.replicas = 1;
                o.scenarios = {"none", "killed-replica"};
              }),
              HasSubstr("--replicas 2"));
  EXPECT_THAT(rejection([](auto& o) { o.fault_end = 0.1; }), HasSubstr("fault window"));
  EXPECT_THAT(rejection([](auto& o) { o.overload_factor = 0.5; }),
              HasSubstr("--overload-factor must be in [1, 16]"));
  EXPECT_THAT(rejection([](auto& o) { o.server_niceness = 20; }),
              HasSubstr("--server-niceness must be in [0, 19]"));
  EXPECT_THAT(rejection([](auto& o) {
                o.priority_mix = PriorityMix{0.5, 0.5, 0.5};
              }),
              HasSubstr("--priority-mix"));
  EXPECT_THAT(rejection([](auto& o) {
                o.priority_mix = PriorityMix{-0.2, 0.7, 0.5};
              }),
              HasSubstr("--priority-mix"));
}

TEST(PriorityMixTest, SpreadsOperationsOverTheTiersInTheirShares) {
  const PriorityMix mix{0.2, 0.5, 0.3};
  int counts[3] = {0, 0, 0};
  constexpr int kOps = 100'000;
  for (int64_t i = 0; i < kOps; ++i) ++counts[static_cast<int>(mix.TierOf(i))];
  EXPECT_NEAR(counts[static_cast<int>(Priority::kCritical)], 0.2 * kOps, 0.01 * kOps);
  EXPECT_NEAR(counts[static_cast<int>(Priority::kNormal)], 0.5 * kOps, 0.01 * kOps);
  EXPECT_NEAR(counts[static_cast<int>(Priority::kSheddable)], 0.3 * kOps, 0.01 * kOps);
  // Evenly over the run too: the first tenth of it has the same mix.
  int early_critical = 0;
  for (int64_t i = 0; i < kOps / 10; ++i) early_critical += mix.TierOf(i) == Priority::kCritical;
  EXPECT_NEAR(early_critical, 0.02 * kOps, 0.002 * kOps);
  // All of one tier when its share is 1.
  for (int64_t i = 0; i < 1000; ++i)
    EXPECT_EQ(PriorityMix({0, 0, 1}).TierOf(i), Priority::kSheddable);
}

TEST(FormatYcsbTableTest, OneRowPerRunAndSkippedRunsSaySo) {
  nlohmann::json results = {{"runs",
                             {{{"workload", "a"},
                               {"target", "redis"},
                               {"mode", "direct"},
                               {"scenario", "none"},
                               {"throughput", 500.0},
                               {"p50_us", 300},
                               {"p99_us", 1200},
                               {"p999_us", 2500},
                               {"max_us", 9000},
                               {"slo_attainment", 0.9995},
                               {"errors", {{"UNAVAILABLE", 3}}},
                               {"why_nines", {{"blast_radius", 0.0005}}}},
                              {{"workload", "e"},
                               {"target", "memcached"},
                               {"mode", "direct"},
                               {"scenario", "none"},
                               {"skipped", "no scan"}}}}};
  const std::string table = FormatYcsbTable(results);
  EXPECT_THAT(table, HasSubstr("redis"));
  EXPECT_THAT(table, HasSubstr("1.20"));
  EXPECT_THAT(table, HasSubstr("UNAVAILABLE=3"));
  EXPECT_THAT(table, HasSubstr("skipped: no scan"));
}

}  // namespace
}  // namespace stategate::bench
