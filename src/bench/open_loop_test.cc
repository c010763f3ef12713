// The open-loop generator on a fake clock: arrival arithmetic, latency from the intended
// start when the generator falls behind, errors, SLO counting and the bounded drain.
#include "src/bench/open_loop.h"

#include <functional>
#include <vector>

#include "gtest/gtest.h"

namespace stategate::bench {
namespace {

TEST(ArrivalScheduleTest, CountsArrivalsInTheWindow) {
  EXPECT_EQ(ArrivalSchedule(300, absl::Seconds(5)).count(), 1500);
  EXPECT_EQ(ArrivalSchedule(200, absl::Seconds(1)).count(), 200);
  EXPECT_EQ(ArrivalSchedule(3, absl::Seconds(1)).count(), 3);        // 0, 1/3, 2/3
  EXPECT_EQ(ArrivalSchedule(2.5, absl::Seconds(1)).count(), 3);      // 0, 0.4, 0.8
  EXPECT_EQ(ArrivalSchedule(10, absl::Milliseconds(1)).count(), 1);  // just the first
  EXPECT_EQ(ArrivalSchedule(1000, absl::ZeroDuration()).count(), 0);
}

TEST(ArrivalScheduleTest, OffsetsAreIndexOverRate) {
  const ArrivalSchedule schedule(300, absl::Seconds(5));
  EXPECT_EQ(schedule.Offset(0), absl::ZeroDuration());
  EXPECT_EQ(schedule.Offset(1), absl::Nanoseconds(3'333'333));
  EXPECT_EQ(schedule.Offset(2), absl::Nanoseconds(6'666'667));
  EXPECT_EQ(schedule.Offset(3), absl::Milliseconds(10));
  EXPECT_EQ(schedule.Offset(1499), absl::Nanoseconds(4'996'666'667));
  // Computed from the index: no drift over a long run.
  EXPECT_EQ(ArrivalSchedule(7, absl::Hours(1)).Offset(7 * 3600), absl::Hours(1));
}

TEST(IntendedStartLatencyTest, IsTimeSinceTheIntendedStartNeverNegative) {
  const absl::Time t = absl::FromUnixSeconds(1000);
  EXPECT_EQ(IntendedStartLatency(t, t + absl::Milliseconds(7)), absl::Milliseconds(7));
  EXPECT_EQ(IntendedStartLatency(t, t), absl::ZeroDuration());
  EXPECT_EQ(IntendedStartLatency(t, t - absl::Milliseconds(1)), absl::ZeroDuration());
}

class OpenLoopTest : public ::testing::Test {
 protected:
  OpenLoopResult Run(const OpenLoopOptions& options, const AsyncOp& op) {
    return RunOpenLoop(options, op, &clock_, [this](absl::Duration d) { clock_.Advance(d); });
  }

  FakeClock clock_;
};

TEST_F(OpenLoopTest, IssuesAtFixedArrivalTimes) {
  const absl::Time start = clock_.Now();
  std::vector<absl::Duration> issued_at;
  OpenLoopOptions options;
  options.rate = 100;
  options.duration = absl::Milliseconds(100);
  options.slo_target = absl::Milliseconds(2);
  const OpenLoopResult r = Run(options, [&](int64_t index, std::function<void(absl::Status)> done) {
    EXPECT_EQ(index, static_cast<int64_t>(issued_at.size()));
    issued_at.push_back(clock_.Now() - start);
    clock_.Advance(absl::Milliseconds(2));  // the call takes 2 ms
    done(absl::OkStatus());
  });
  ASSERT_EQ(issued_at.size(), 10u);
  for (size_t i = 0; i < issued_at.size(); ++i) {
    EXPECT_EQ(issued_at[i], absl::Milliseconds(10) * static_cast<int64_t>(i));
  }
  EXPECT_EQ(r.issued, 10);
  EXPECT_EQ(r.ok, 10);
  EXPECT_EQ(r.ok_within_slo, 10);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.latency_us.Count(), 10);
  EXPECT_EQ(r.latency_us.Min(), 2000);
  EXPECT_EQ(r.latency_us.Max(), 2000);
  EXPECT_EQ(r.max_issue_lag, absl::ZeroDuration());
}

TEST_F(OpenLoopTest, LatencyCountsFromTheIntendedStartWhenIssuingFallsBehind) {
  // Operation 0 holds the issuing thread for 35 ms: 1, 2 and 3 (due at 10, 20, 30 ms) go out
  // late, at 35 ms, and answer at once, but their callers have waited 25, 15 and 5 ms.
  OpenLoopOptions options;
  options.rate = 100;
  options.duration = absl::Milliseconds(50);
  options.slo_target = absl::Milliseconds(10);
  std::vector<int64_t> latencies_us;
  const absl::Time start = clock_.Now();
  const OpenLoopResult r = Run(options, [&](int64_t index, std::function<void(absl::Status)> done) {
    if (index == 0) clock_.Advance(absl::Milliseconds(35));
    latencies_us.push_back(
        absl::ToInt64Microseconds(clock_.Now() - (start + absl::Milliseconds(10) * index)));
    done(absl::OkStatus());
  });
  EXPECT_EQ(latencies_us, (std::vector<int64_t>{35'000, 25'000, 15'000, 5'000, 0}));
  EXPECT_EQ(r.issued, 5);
  EXPECT_EQ(r.ok, 5);
  EXPECT_EQ(r.ok_within_slo, 2);  // 5 ms and 0 ms
  EXPECT_EQ(r.latency_us.Max(), 35'000);
  EXPECT_GE(r.latency_us.Percentile(0.5), 15'000);
  EXPECT_LE(r.latency_us.Percentile(0.5), 15'000 * 129 / 128);  // the histogram's precision
  EXPECT_EQ(r.max_issue_lag, absl::Milliseconds(25));
}

TEST_F(OpenLoopTest, CountsErrorsByCodeAndOperationsStillOutAsUnfinished) {
  OpenLoopOptions options;
  options.rate = 10;
  options.duration = absl::Seconds(1);
  options.drain_timeout = absl::Milliseconds(500);
  options.slo_target = absl::Seconds(1);
  std::vector<std::function<void(absl::Status)>> pending;
  const OpenLoopResult r = Run(options, [&](int64_t index, std::function<void(absl::Status)> done) {
    if (index == 2) return done(absl::UnavailableError("down"));
    if (index % 2 == 1) return pending.push_back(std::move(done));  // never answered in time
    done(absl::OkStatus());
  });
  EXPECT_EQ(r.issued, 10);
  EXPECT_EQ(r.ok, 4);  // 0, 4, 6, 8
  EXPECT_EQ(r.ok_within_slo, 4);
  EXPECT_EQ(r.errors, (std::map<std::string, int64_t>{{"UNAVAILABLE", 1}, {kUnfinished, 5}}));
  EXPECT_EQ(r.latency_us.Count(), 10);
  // The last start is at 900 ms and the drain ends 500 ms later: operation 1, due at 100 ms,
  // had been out 1.3 s.
  EXPECT_EQ(r.latency_us.Max(), 1'300'000);

  // Answers after the run are ignored, and safe.
  for (auto& done : pending) done(absl::OkStatus());
}

TEST_F(OpenLoopTest, DrainEndsAsSoonAsEverythingFinished) {
  OpenLoopOptions options;
  options.rate = 10;
  options.duration = absl::Milliseconds(250);  // 0, 100, 200 ms
  options.drain_timeout = absl::Seconds(30);
  std::function<void(absl::Status)> last;
  const absl::Time start = clock_.Now();
  const OpenLoopResult r = Run(options, [&](int64_t index, std::function<void(absl::Status)> done) {
    if (index == 2) {
      last = std::move(done);
      return;
    }
    done(absl::OkStatus());
  });
  // `last` never completed, so the drain ran to its end.
  EXPECT_EQ(clock_.Now() - start, absl::Milliseconds(200) + absl::Seconds(30));
  EXPECT_EQ(r.errors.at(kUnfinished), 1);

  const absl::Time second_start = clock_.Now();
  const OpenLoopResult all_done = Run(
      options, [&](int64_t, std::function<void(absl::Status)> done) { done(absl::OkStatus()); });
  EXPECT_EQ(clock_.Now() - second_start, absl::Milliseconds(200));
  EXPECT_EQ(all_done.ok, 3);
}

TEST_F(OpenLoopTest, ARateWindowAndPerOperationSloTargetsGoIntoTheCallersRecorder) {
  // 10/s for 2 s with 50/s in [0.5 s, 1 s): 5 + 25 + 10 arrivals. Every call takes 3 ms;
  // operations with an odd index have a 1 ms SLO target (missed), even ones 10 ms.
  LoadRecorder recorder;
  OpenLoopOptions options;
  options.rate = 10;
  options.duration = absl::Seconds(2);
  options.rate_window = RateWindow{absl::Milliseconds(500), absl::Seconds(1), 50};
  options.slo_target_of = [](int64_t index) {
    return index % 2 == 1 ? absl::Milliseconds(1) : absl::Milliseconds(10);
  };
  options.recorder = &recorder;
  const OpenLoopResult r = Run(options, [&](int64_t, std::function<void(absl::Status)> done) {
    clock_.Advance(absl::Milliseconds(3));
    done(absl::OkStatus());
  });
  EXPECT_EQ(r.issued, 40);
  EXPECT_EQ(r.ok, 40);
  EXPECT_EQ(r.ok_within_slo, 20);
  const std::vector<LoadStats> series = recorder.Series();
  ASSERT_EQ(series.size(), 2u);
  EXPECT_EQ(series[0].ops, 30);  // 5 before the window and 25 in it
  EXPECT_EQ(series[1].ops, 10);
  EXPECT_EQ(recorder.Total().ops, 40);
}

}  // namespace
}  // namespace stategate::bench
