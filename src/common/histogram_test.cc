#include "src/common/histogram.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace stategate {
namespace {

// The exact percentile of a sorted sample, by the same definition as Histogram::Percentile.
int64_t Reference(const std::vector<int64_t>& sorted, double q) {
  const int64_t rank =
      std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * static_cast<double>(sorted.size()))));
  return sorted[rank - 1];
}

TEST(HistogramTest, EmptyIsZero) {
  Histogram h;
  EXPECT_EQ(h.Count(), 0);
  EXPECT_EQ(h.Percentile(0.5), 0);
  EXPECT_EQ(h.Min(), 0);
  EXPECT_EQ(h.Max(), 0);
}

TEST(HistogramTest, SmallValuesAreExact) {
  Histogram h;
  for (int v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.Percentile(0.5), 50);
  EXPECT_EQ(h.Percentile(0.99), 99);
  EXPECT_EQ(h.Percentile(1.0), 100);
  EXPECT_EQ(h.Percentile(0.0), 1);
  EXPECT_DOUBLE_EQ(h.Mean(), 50.5);
}

TEST(HistogramTest, MatchesSortedReferenceWithinPrecision) {
  std::mt19937_64 rng(42);
  // Log-normal latencies from a few microseconds to seconds, plus extremes.
  std::lognormal_distribution<double> dist(6.0, 2.0);
  std::vector<int64_t> sample = {0, 1, 255, 256, 257, int64_t{1} << 40, (int64_t{1} << 62) + 5};
  for (int i = 0; i < 200'000; ++i) sample.push_back(static_cast<int64_t>(dist(rng)));
  Histogram h;
  for (int64_t v : sample) h.Record(v);
  std::sort(sample.begin(), sample.end());
  EXPECT_EQ(h.Count(), static_cast<int64_t>(sample.size()));
  EXPECT_EQ(h.Min(), sample.front());
  EXPECT_EQ(h.Max(), sample.back());
  for (double q : {0.0, 0.001, 0.1, 0.25, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0}) {
    const int64_t want = Reference(sample, q);
    const int64_t got = h.Percentile(q);
    EXPECT_GE(got, want) << "q=" << q;
    EXPECT_LE(got - want, want / 128) << "q=" << q;
  }
}

TEST(HistogramTest, MergeEqualsRecordingEverything) {
  Histogram a, b, all;
  for (int i = 0; i < 1000; ++i) {
    a.Record(i * 7);
    all.Record(i * 7);
    b.Record(i * 1000 + 3);
    all.Record(i * 1000 + 3);
  }
  a.Merge(b);
  EXPECT_EQ(a.Count(), all.Count());
  EXPECT_EQ(a.Min(), all.Min());
  EXPECT_EQ(a.Max(), all.Max());
  for (double q : {0.1, 0.5, 0.99}) EXPECT_EQ(a.Percentile(q), all.Percentile(q));
}

TEST(HistogramTest, NegativeCountsAsZero) {
  Histogram h;
  h.Record(-5);
  EXPECT_EQ(h.Min(), 0);
  EXPECT_EQ(h.Percentile(0.5), 0);
}

}  // namespace
}  // namespace stategate
