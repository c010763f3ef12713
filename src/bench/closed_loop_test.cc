#include "src/bench/closed_loop.h"

#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace stategate::bench {
namespace {

TEST(ClosedLoopTest, CountsSuccessesAndErrorsInTheWindow) {
  std::atomic<int64_t> calls{0};
  LoopResult r = RunClosedLoop(3, absl::Milliseconds(20), absl::Milliseconds(100), [&](int t) {
    EXPECT_GE(t, 0);
    EXPECT_LT(t, 3);
    absl::SleepFor(absl::Microseconds(200));
    return ++calls % 4 == 0 ? absl::UnavailableError("down") : absl::OkStatus();
  });
  EXPECT_GT(r.ok, 0);
  EXPECT_GT(r.errors, 0);
  EXPECT_LT(r.ok + r.errors, calls.load());  // warmup calls are not counted
  EXPECT_EQ(r.latency_us.Count(), r.ok);
  EXPECT_GE(r.latency_us.Percentile(0.5), 200);
  EXPECT_EQ(r.first_error, "UNAVAILABLE: down");
  EXPECT_EQ(r.elapsed, absl::Milliseconds(100));
}

TEST(RunClosedLoadTest, StopsAtMaxOpsAndRecordsEveryOperationWithItsSlo) {
  LoadRecorder recorder;
  ClosedLoadOptions options;
  options.threads = 4;
  options.duration = absl::Seconds(30);
  options.max_ops = 100;
  // Odd operations have a 0 SLO target: they can only miss it.
  options.slo_target_of = [](int64_t index) {
    return index % 2 == 0 ? absl::Seconds(10) : absl::ZeroDuration();
  };
  std::atomic<int64_t> started{0};
  const int64_t count = RunClosedLoad(
      options,
      [&](int64_t index, std::function<void(absl::Status)> done) {
        ++started;
        done(index % 10 == 9 ? absl::UnavailableError("down") : absl::OkStatus());
      },
      recorder);
  EXPECT_EQ(count, 100);
  EXPECT_EQ(started.load(), 100);
  const LoadStats total = recorder.Total();
  EXPECT_EQ(total.ops, 100);
  EXPECT_EQ(total.errors.at("UNAVAILABLE"), 10);
  EXPECT_EQ(total.error_examples.at("UNAVAILABLE"), "down");
  EXPECT_EQ(total.ok_within_slo, 50);  // the even ones, none of which failed
}

TEST(RunClosedLoadTest, AnOperationThatNeverAnswersIsUnfinishedAndItsLateAnswerIgnored) {
  LoadRecorder recorder;
  ClosedLoadOptions options;
  options.threads = 1;
  options.duration = absl::Seconds(30);
  options.max_ops = 2;
  options.op_timeout = absl::Milliseconds(50);
  options.slo_target_of = [](int64_t) { return absl::Seconds(1); };
  std::vector<std::function<void(absl::Status)>> held;
  RunClosedLoad(
      options,
      [&](int64_t, std::function<void(absl::Status)> done) { held.push_back(std::move(done)); },
      recorder);
  ASSERT_EQ(held.size(), 2u);
  for (auto& done : held) done(absl::OkStatus());  // after the run: must change nothing
  const LoadStats total = recorder.Total();
  EXPECT_EQ(total.ops, 2);
  EXPECT_EQ(total.ok, 0);
  EXPECT_EQ(total.errors.at(kUnfinished), 2);
  EXPECT_GE(total.latency_us.Min(), 50'000);
}

}  // namespace
}  // namespace stategate::bench
