#include "src/client/reliability/retry_budget.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace stategate::reliability {
namespace {

int Drain(RetryBudget& budget) {
  int n = 0;
  while (budget.TryWithdraw()) ++n;
  return n;
}

TEST(ExpiringTokenBucketTest, AmountsExpireWithTheirSlice) {
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  ExpiringTokenBucket bucket(absl::Seconds(10), 10, t0);
  bucket.Add(5, t0);                             // slice 0: expires at t0 + 10 s
  bucket.Add(7, t0 + absl::Milliseconds(2500));  // slice 2: expires at t0 + 12 s
  EXPECT_EQ(bucket.Sum(t0 + absl::Seconds(3)), 12);
  EXPECT_EQ(bucket.Sum(t0 + absl::Seconds(10) - absl::Nanoseconds(1)), 12);
  EXPECT_EQ(bucket.Sum(t0 + absl::Seconds(10)), 7);
  EXPECT_EQ(bucket.Sum(t0 + absl::Seconds(12) - absl::Nanoseconds(1)), 7);
  EXPECT_EQ(bucket.Sum(t0 + absl::Seconds(12)), 0);
  bucket.Add(-3, t0 + absl::Seconds(13));
  EXPECT_EQ(bucket.Sum(t0 + absl::Seconds(13)), -3);
  // A jump far ahead clears everything; time moving back is time standing still.
  EXPECT_EQ(bucket.Sum(t0 + absl::Hours(5)), 0);
  bucket.Add(4, t0);
  EXPECT_EQ(bucket.Sum(t0), 4);
}

TEST(RetryBudgetTest, FloorAloneAllowsMinRetriesPerSecondTimesTtl) {
  FakeClock clock;
  RetryBudget budget({}, &clock);  // 0.2, 10/s, 10 s
  EXPECT_EQ(budget.Balance(), 100);
  EXPECT_EQ(Drain(budget), 100);
  EXPECT_EQ(budget.Balance(), 0);
}

TEST(RetryBudgetTest, EveryFiveRequestsEarnOneRetry) {
  FakeClock clock;
  RetryBudget budget({.ratio = 0.2, .min_retries_per_second = 0}, &clock);
  for (int i = 0; i < 4; ++i) budget.OnRequest();
  EXPECT_FALSE(budget.TryWithdraw());  // 0.8 of a token
  budget.OnRequest();
  EXPECT_TRUE(budget.TryWithdraw());  // exactly 1.0
  EXPECT_FALSE(budget.TryWithdraw());
  for (int i = 0; i < 1000; ++i) budget.OnRequest();
  EXPECT_EQ(budget.Balance(), 200);
  EXPECT_EQ(Drain(budget), 200);
}

TEST(RetryBudgetTest, DepositsAndFloorAddUp) {
  FakeClock clock;
  RetryBudget budget({.ratio = 0.2, .min_retries_per_second = 2, .ttl = absl::Seconds(5)}, &clock);
  for (int i = 0; i < 53; ++i) budget.OnRequest();  // 10.6 tokens + reserve 10
  EXPECT_EQ(budget.Balance(), 20);
  EXPECT_EQ(Drain(budget), 20);
  for (int i = 0; i < 2; ++i) budget.OnRequest();  // 0.6 + 0.4 = 1.0
  EXPECT_TRUE(budget.TryWithdraw());
  EXPECT_FALSE(budget.TryWithdraw());
}

TEST(RetryBudgetTest, DepositsExpireAfterTtl) {
  FakeClock clock;
  RetryBudget budget({.ratio = 0.5, .min_retries_per_second = 0}, &clock);
  for (int i = 0; i < 10; ++i) budget.OnRequest();
  EXPECT_EQ(budget.Balance(), 5);
  clock.Advance(absl::Seconds(10) - absl::Microseconds(1));
  EXPECT_EQ(budget.Balance(), 5);
  clock.Advance(absl::Microseconds(1));
  EXPECT_EQ(budget.Balance(), 0);
  EXPECT_FALSE(budget.TryWithdraw());
}

TEST(RetryBudgetTest, WithdrawalsExpireTooSoTheFloorComesBack) {
  FakeClock clock;
  RetryBudget budget({.ratio = 0.2, .min_retries_per_second = 10}, &clock);
  EXPECT_EQ(Drain(budget), 100);
  clock.Advance(absl::Seconds(5));
  EXPECT_FALSE(budget.TryWithdraw());
  clock.Advance(absl::Seconds(5));
  EXPECT_EQ(Drain(budget), 100);
}

TEST(RetryBudgetTest, UnderAnOutageRetriesStayNearTheRatio) {
  // Every request fails and wants a retry: at 1,000 requests/s for 10 s the budget allows
  // 0.2 · 10,000 + 10 · 10 retries in that window, not 10,000.
  FakeClock clock;
  RetryBudget budget({}, &clock);
  int retries = 0;
  for (int ms = 0; ms < 10'000; ++ms) {
    budget.OnRequest();
    if (budget.TryWithdraw()) ++retries;
    clock.Advance(absl::Milliseconds(1));
  }
  EXPECT_EQ(retries, 2000 + 100);
}

TEST(RetryBudgetTest, ConcurrentDepositsAreAllCounted) {
  FakeClock clock;
  RetryBudget budget({.ratio = 0.25, .min_retries_per_second = 0}, &clock);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10'000; ++i) budget.OnRequest();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(Drain(budget), 10'000);
}

TEST(HedgeBudgetTest, NothingUntilRequestsHaveEarnedIt) {
  FakeClock clock;
  HedgeBudget budget({}, &clock);  // 5 %, 10 in flight
  EXPECT_FALSE(budget.TryAcquire());
  for (int i = 0; i < 19; ++i) budget.OnRequest();
  EXPECT_FALSE(budget.TryAcquire());
  budget.OnRequest();  // 20 · 0.05 = 1
  EXPECT_TRUE(budget.TryAcquire());
  EXPECT_EQ(budget.in_flight(), 1);
  EXPECT_FALSE(budget.TryAcquire());
  budget.Release();
  EXPECT_EQ(budget.in_flight(), 0);
  EXPECT_FALSE(budget.TryAcquire());  // the token stays spent
}

TEST(HedgeBudgetTest, InFlightCapHoldsWhateverTheTokens) {
  FakeClock clock;
  HedgeBudget budget({.ratio = 0.05, .max_in_flight = 2}, &clock);
  for (int i = 0; i < 1000; ++i) budget.OnRequest();
  EXPECT_EQ(budget.Balance(), 50);
  EXPECT_TRUE(budget.TryAcquire());
  EXPECT_TRUE(budget.TryAcquire());
  EXPECT_FALSE(budget.TryAcquire());
  EXPECT_EQ(budget.Balance(), 48);  // a refusal spends nothing
  budget.Release();
  EXPECT_TRUE(budget.TryAcquire());
  EXPECT_EQ(budget.in_flight(), 2);
  EXPECT_EQ(budget.Balance(), 47);
}

TEST(HedgeBudgetTest, TokensExpire) {
  FakeClock clock;
  HedgeBudget budget({.ratio = 0.1, .max_in_flight = 100, .ttl = absl::Seconds(1)}, &clock);
  for (int i = 0; i < 30; ++i) budget.OnRequest();
  EXPECT_EQ(budget.Balance(), 3);
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(budget.Balance(), 0);
  EXPECT_FALSE(budget.TryAcquire());
}

}  // namespace
}  // namespace stategate::reliability
