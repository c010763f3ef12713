#include "src/client/reliability/backoff.h"

#include <limits>
#include <random>

#include "gtest/gtest.h"

namespace stategate::reliability {
namespace {

TEST(BackoffTest, CeilingDoublesUpToTheCap) {
  const Backoff backoff;  // 25 ms base, 1 s cap
  EXPECT_EQ(backoff.Ceiling(0), absl::Milliseconds(25));
  EXPECT_EQ(backoff.Ceiling(1), absl::Milliseconds(50));
  EXPECT_EQ(backoff.Ceiling(2), absl::Milliseconds(100));
  EXPECT_EQ(backoff.Ceiling(5), absl::Milliseconds(800));
  EXPECT_EQ(backoff.Ceiling(6), absl::Seconds(1));
  EXPECT_EQ(backoff.Ceiling(7), absl::Seconds(1));
}

TEST(BackoffTest, CeilingIsMonotoneAndCapped) {
  const Backoff backoff({.base = absl::Milliseconds(3), .cap = absl::Milliseconds(700)});
  absl::Duration previous = absl::ZeroDuration();
  for (int n = 0; n <= 1000; ++n) {
    const absl::Duration ceiling = backoff.Ceiling(n);
    EXPECT_GE(ceiling, previous) << n;
    EXPECT_LE(ceiling, absl::Milliseconds(700)) << n;
    previous = ceiling;
  }
  EXPECT_EQ(previous, absl::Milliseconds(700));
}

TEST(BackoffTest, NoOverflowAtHugeAttempts) {
  const Backoff backoff;
  std::mt19937_64 rng(7);
  for (int n : {62, 63, 64, 1000, std::numeric_limits<int>::max()}) {
    EXPECT_EQ(backoff.Ceiling(n), absl::Seconds(1)) << n;
    for (int i = 0; i < 100; ++i) {
      const absl::Duration d = backoff.Delay(n, rng);
      EXPECT_GE(d, absl::ZeroDuration());
      EXPECT_LE(d, absl::Seconds(1));
    }
  }
  // A cap that could not be reached by doubling in int64 nanoseconds is still honoured.
  const Backoff huge({.base = absl::Nanoseconds(1), .cap = absl::Hours(1'000'000)});
  EXPECT_EQ(huge.Ceiling(1000), absl::Hours(1'000'000));
}

TEST(BackoffTest, DegenerateOptions) {
  EXPECT_EQ(Backoff({.base = absl::ZeroDuration()}).Ceiling(10), absl::ZeroDuration());
  EXPECT_EQ(Backoff({.base = absl::Seconds(5), .cap = absl::Seconds(1)}).Ceiling(0),
            absl::Seconds(1));
  EXPECT_EQ(Backoff().Ceiling(-3), absl::Milliseconds(25));
  std::mt19937_64 rng(1);
  EXPECT_EQ(Backoff({.base = absl::ZeroDuration()}).Delay(3, rng), absl::ZeroDuration());
}

TEST(BackoffTest, DelaysFillTheWholeJitterRange) {
  const Backoff backoff;
  std::mt19937_64 rng(42);
  constexpr int kDraws = 5000;
  for (int n = 0; n <= 8; ++n) {
    const absl::Duration ceiling = backoff.Ceiling(n);
    absl::Duration min = absl::InfiniteDuration();
    absl::Duration max = absl::ZeroDuration();
    absl::Duration sum;
    for (int i = 0; i < kDraws; ++i) {
      const absl::Duration d = backoff.Delay(n, rng);
      ASSERT_GE(d, absl::ZeroDuration());
      ASSERT_LE(d, ceiling);
      min = std::min(min, d);
      max = std::max(max, d);
      sum += d;
    }
    // Full jitter: uniform over [0, ceiling], so draws reach both ends and average half.
    EXPECT_LT(min, ceiling * 0.01) << n;
    EXPECT_GT(max, ceiling * 0.99) << n;
    const double mean_fraction = absl::FDivDuration(sum / kDraws, ceiling);
    EXPECT_NEAR(mean_fraction, 0.5, 0.03) << n;
  }
}

TEST(BackoffTest, SameSeedSameDelays) {
  const Backoff backoff;
  std::mt19937_64 a(99);
  std::mt19937_64 b(99);
  for (int n = 0; n < 20; ++n) EXPECT_EQ(backoff.Delay(n, a), backoff.Delay(n, b));
}

}  // namespace
}  // namespace stategate::reliability
