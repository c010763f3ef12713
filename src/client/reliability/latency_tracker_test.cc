#include "src/client/reliability/latency_tracker.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace stategate::reliability {
namespace {

// The exact quantile of a sorted sample, by the definition LatencyTracker::Quantile uses.
int64_t Reference(const std::vector<int64_t>& sorted, double q) {
  const int64_t rank =
      std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * static_cast<double>(sorted.size()))));
  return sorted[rank - 1];
}

TEST(LatencyTrackerTest, NothingUntilMinSamples) {
  FakeClock clock;
  LatencyTracker tracker({}, &clock);
  EXPECT_EQ(tracker.Quantile(0.95), std::nullopt);
  for (int i = 0; i < 19; ++i) tracker.Record(absl::Milliseconds(1));
  EXPECT_EQ(tracker.Quantile(0.95), std::nullopt);
  tracker.Record(absl::Milliseconds(1));
  EXPECT_EQ(tracker.Quantile(0.95), absl::Milliseconds(1));
  EXPECT_EQ(tracker.Count(), 20);
}

TEST(LatencyTrackerTest, SmallValuesAreExact) {
  FakeClock clock;
  LatencyTracker tracker({}, &clock);
  for (int us = 1; us <= 60; ++us) tracker.Record(absl::Microseconds(us));
  EXPECT_EQ(tracker.Quantile(0.5), absl::Microseconds(30));
  EXPECT_EQ(tracker.Quantile(0.95), absl::Microseconds(57));
  EXPECT_EQ(tracker.Quantile(1.0), absl::Microseconds(60));
  EXPECT_EQ(tracker.Quantile(0.0), absl::Microseconds(1));
}

TEST(LatencyTrackerTest, MatchesSortedReferenceWithinBucketPrecision) {
  FakeClock clock;
  LatencyTracker tracker({}, &clock);
  std::mt19937_64 rng(42);
  // Log-normal latencies around 1 ms, from tens of microseconds to about a second.
  std::lognormal_distribution<double> dist(std::log(1000.0), 1.2);
  std::vector<int64_t> values;
  for (int i = 0; i < 50'000; ++i) {
    const int64_t us = static_cast<int64_t>(dist(rng));
    values.push_back(us);
    tracker.Record(absl::Microseconds(us));
    if (i % 5000 == 0) clock.Advance(absl::Milliseconds(900));  // across slices, in window
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0}) {
    const int64_t want = Reference(values, q);
    const int64_t got = absl::ToInt64Microseconds(*tracker.Quantile(q));
    EXPECT_GE(got, want) << q;
    EXPECT_LE(got, want + want / 32 + 1) << q;
  }
}

TEST(LatencyTrackerTest, OldSlicesExpireAsTheClockAdvances) {
  FakeClock clock;
  LatencyTracker tracker({}, &clock);                                     // 10 s in 1 s slices
  for (int i = 0; i < 100; ++i) tracker.Record(absl::Milliseconds(100));  // slice 0
  clock.Advance(absl::Seconds(5));
  for (int i = 0; i < 100; ++i) tracker.Record(absl::Milliseconds(1));  // slice 5
  EXPECT_EQ(tracker.Count(), 200);
  EXPECT_EQ(tracker.Quantile(0.99), absl::Milliseconds(100));

  clock.Advance(absl::Seconds(5) - absl::Microseconds(1));  // slice 0 still in the window
  EXPECT_EQ(tracker.Count(), 200);
  clock.Advance(absl::Microseconds(1));  // slice 10 begins: slice 0 has gone
  EXPECT_EQ(tracker.Count(), 100);
  EXPECT_EQ(tracker.Quantile(0.99), absl::Milliseconds(1));

  clock.Advance(absl::Seconds(5));
  EXPECT_EQ(tracker.Count(), 0);
  EXPECT_EQ(tracker.Quantile(0.5), std::nullopt);
}

TEST(LatencyTrackerTest, ALongSilenceClearsEverythingAndRecordingResumes) {
  FakeClock clock;
  LatencyTracker tracker({.min_samples = 1}, &clock);
  tracker.Record(absl::Milliseconds(7));
  clock.Advance(absl::Hours(3));
  EXPECT_EQ(tracker.Count(), 0);
  tracker.Record(absl::Milliseconds(2));
  EXPECT_EQ(tracker.Quantile(0.5), absl::Milliseconds(2));
  clock.Advance(absl::Seconds(-30));  // time moving back stands still
  tracker.Record(absl::Milliseconds(2));
  EXPECT_EQ(tracker.Count(), 2);
}

TEST(LatencyTrackerTest, OutOfRangeValuesAreClamped) {
  FakeClock clock;
  LatencyTracker tracker({.min_samples = 1}, &clock);
  tracker.Record(absl::Milliseconds(-5));
  EXPECT_EQ(tracker.Quantile(1.0), absl::ZeroDuration());
  tracker.Record(absl::Hours(1000));
  const absl::Duration top = *tracker.Quantile(1.0);
  EXPECT_GT(top, absl::Hours(19));
  EXPECT_LT(top, absl::Hours(20));
}

TEST(LatencyTrackerTest, CustomWindow) {
  FakeClock clock;
  LatencyTracker tracker({.window = absl::Seconds(2), .buckets = 4, .min_samples = 1}, &clock);
  tracker.Record(absl::Milliseconds(3));
  clock.Advance(absl::Milliseconds(1999));
  EXPECT_EQ(tracker.Count(), 1);
  clock.Advance(absl::Milliseconds(1));
  EXPECT_EQ(tracker.Count(), 0);
}

}  // namespace
}  // namespace stategate::reliability
