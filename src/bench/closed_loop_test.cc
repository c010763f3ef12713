#include "src/bench/closed_loop.h"

#include <atomic>

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

}  // namespace
}  // namespace stategate::bench
