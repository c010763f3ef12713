#include "src/client/reliability/limiter.h"

#include <atomic>
#include <functional>
#include <limits>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace stategate::reliability {
namespace {

using Permit = ConcurrencyLimiter::Permit;

// Admits as many calls as the limiter allows, then finishes each with `finish`: a closed-loop
// client that keeps the limiter full.
void Round(ConcurrencyLimiter& limiter, const std::function<void(Permit&)>& finish) {
  std::vector<Permit> permits;
  while (std::optional<Permit> p = limiter.TryAcquire()) permits.push_back(std::move(*p));
  ASSERT_EQ(limiter.in_flight(), limiter.limit());
  for (Permit& p : permits) finish(p);
  ASSERT_EQ(limiter.in_flight(), 0);
}

void Rounds(ConcurrencyLimiter& limiter, int n, const std::function<void(Permit&)>& finish) {
  for (int i = 0; i < n; ++i) Round(limiter, finish);
}

std::function<void(Permit&)> Succeed(absl::Duration rtt) {
  return [rtt](Permit& p) { p.OnSuccess(rtt); };
}

const auto kDrop = [](Permit& p) { p.OnDropped(); };

// --- The permit contract, for every kind ---

class AnyLimiterTest : public testing::TestWithParam<std::string> {
 protected:
  std::unique_ptr<ConcurrencyLimiter> Make() {
    LimiterOptions options{.kind = GetParam()};
    options.aimd.initial_limit = 5;
    options.vegas.initial_limit = 5;
    options.gradient2.initial_limit = 5;
    options.gradient2.min_limit = 5;
    auto limiter = MakeLimiter(options);
    EXPECT_TRUE(limiter.ok()) << limiter.status();
    return *std::move(limiter);
  }
  // What limit() reads before any sample.
  int initial_limit() const { return GetParam() == "none" ? std::numeric_limits<int>::max() : 5; }
};

// The same, for the kinds that do limit.
class AdaptiveLimiterTest : public AnyLimiterTest {};

TEST_P(AdaptiveLimiterTest, RefusesOnceInFlightReachesTheLimit) {
  auto limiter = Make();
  EXPECT_EQ(limiter->name(), GetParam());
  ASSERT_EQ(limiter->limit(), 5);
  std::vector<Permit> permits;
  for (int i = 0; i < 5; ++i) {
    std::optional<Permit> p = limiter->TryAcquire();
    ASSERT_TRUE(p.has_value()) << i;
    permits.push_back(std::move(*p));
  }
  EXPECT_EQ(limiter->in_flight(), 5);
  EXPECT_FALSE(limiter->TryAcquire().has_value());
  EXPECT_EQ(limiter->in_flight(), 5);
  permits.back().OnIgnore();
  EXPECT_EQ(limiter->in_flight(), 4);
  EXPECT_TRUE(limiter->TryAcquire().has_value());  // and its destructor frees it again
  EXPECT_EQ(limiter->in_flight(), 4);
}

TEST_P(AdaptiveLimiterTest, ACallWithAShareMayFillOnlyThatShareOfTheLimit) {
  auto limiter = Make();
  ASSERT_EQ(limiter->limit(), 5);
  std::vector<Permit> permits;
  // Half of 5 rounds up to 3 slots; the other two stay for calls with a larger share.
  while (std::optional<Permit> p = limiter->TryAcquire(0.5)) permits.push_back(std::move(*p));
  EXPECT_EQ(permits.size(), 3u);
  std::optional<Permit> more = limiter->TryAcquire(0.8);  // 4 slots
  ASSERT_TRUE(more.has_value());
  EXPECT_FALSE(limiter->TryAcquire(0.8).has_value());
  EXPECT_TRUE(limiter->TryAcquire(1.0).has_value());
  // Even the smallest share gets one slot of an idle limiter.
  permits.clear();
  more.reset();
  EXPECT_TRUE(limiter->TryAcquire(0.01).has_value());
}

TEST(AimdLimitTest, ALateAnswerShrinksTheLimitOnlyWhenTheLimitWasBusy) {
  AimdOptions options;
  options.initial_limit = 10;
  AimdLimit limiter(options);
  {
    // One call out of 10: the lateness is the server's own, not congestion we cause.
    std::optional<Permit> p = limiter.TryAcquire();
    p->OnLate(absl::Milliseconds(50));
  }
  EXPECT_EQ(limiter.limit(), 10);
  {
    std::vector<Permit> permits;
    for (int i = 0; i < 5; ++i) permits.push_back(*limiter.TryAcquire());
    permits.back().OnLate(absl::Milliseconds(50));  // sent as the fifth of 10: busy
  }
  EXPECT_EQ(limiter.limit(), 9);
}

TEST_P(AnyLimiterTest, DestroyingAPermitIgnoresIt) {
  auto limiter = Make();
  {
    std::optional<Permit> a = limiter->TryAcquire();
    std::optional<Permit> b = limiter->TryAcquire();
    EXPECT_EQ(limiter->in_flight(), 2);
  }
  EXPECT_EQ(limiter->in_flight(), 0);
  EXPECT_EQ(limiter->limit(), initial_limit());
}

TEST_P(AnyLimiterTest, OnlyTheFirstReportCounts) {
  auto limiter = Make();
  std::optional<Permit> p = limiter->TryAcquire();
  std::optional<Permit> other = limiter->TryAcquire();
  ASSERT_TRUE(p && other);
  p->OnIgnore();
  EXPECT_FALSE(p->active());
  EXPECT_EQ(limiter->in_flight(), 1);
  p->OnDropped();
  p->OnSuccess(absl::Milliseconds(1));
  EXPECT_EQ(limiter->in_flight(), 1);
  EXPECT_EQ(limiter->limit(), initial_limit());  // the drop was not counted
}

TEST_P(AnyLimiterTest, MovesTransferTheSlot) {
  auto limiter = Make();
  std::optional<Permit> a = limiter->TryAcquire();
  std::optional<Permit> b = limiter->TryAcquire();
  Permit moved(std::move(*a));
  EXPECT_FALSE(a->active());
  EXPECT_TRUE(moved.active());
  a.reset();  // a moved-from permit frees nothing
  EXPECT_EQ(limiter->in_flight(), 2);
  moved = std::move(*b);  // releases moved's own slot first
  EXPECT_EQ(limiter->in_flight(), 1);
  moved.OnIgnore();
  EXPECT_EQ(limiter->in_flight(), 0);
}

TEST_P(AnyLimiterTest, ConcurrentCallsBalanceOut) {
  auto limiter = Make();
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) {
        std::optional<Permit> p = limiter->TryAcquire();
        if (!p) continue;
        ++admitted;
        if ((i + t) % 7 == 0) {
          p->OnDropped();
        } else {
          p->OnSuccess(absl::Milliseconds(1));
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  // Every admitted call was reported, from whichever thread, and released its slot.
  EXPECT_GT(admitted.load(), 0);
  EXPECT_EQ(limiter->in_flight(), 0);
  EXPECT_GE(limiter->limit(), 1);
}

INSTANTIATE_TEST_SUITE_P(Kinds, AnyLimiterTest,
                         testing::Values("aimd", "vegas", "gradient2", "none"),
                         [](const auto& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(Kinds, AdaptiveLimiterTest, testing::Values("aimd", "vegas", "gradient2"),
                         [](const auto& info) { return info.param; });

// --- Factory ---

TEST(MakeLimiterTest, NoneNeverRefuses) {
  auto limiter = MakeLimiter({.kind = "none"});
  ASSERT_TRUE(limiter.ok());
  std::vector<Permit> permits;
  for (int i = 0; i < 10'000; ++i) {
    std::optional<Permit> p = (*limiter)->TryAcquire();
    ASSERT_TRUE(p.has_value());
    permits.push_back(std::move(*p));
  }
  EXPECT_EQ((*limiter)->in_flight(), 10'000);
  for (Permit& p : permits) p.OnDropped();
  EXPECT_EQ((*limiter)->in_flight(), 0);
}

TEST(MakeLimiterTest, DefaultIsAimdWithAnchorDefaults) {
  auto limiter = MakeLimiter({});
  ASSERT_TRUE(limiter.ok());
  EXPECT_EQ((*limiter)->name(), "aimd");
  EXPECT_EQ((*limiter)->limit(), 20);
}

TEST(MakeLimiterTest, RejectsUnknownKindsAndBadOptions) {
  EXPECT_EQ(MakeLimiter({.kind = "bbr"}).status().code(), absl::StatusCode::kInvalidArgument);
  LimiterOptions aimd{.kind = "aimd"};
  aimd.aimd.backoff_ratio = 1.0;
  EXPECT_EQ(MakeLimiter(aimd).status().code(), absl::StatusCode::kInvalidArgument);
  aimd.aimd = {.initial_limit = 300};
  EXPECT_EQ(MakeLimiter(aimd).status().code(), absl::StatusCode::kInvalidArgument);
  LimiterOptions vegas{.kind = "vegas"};
  vegas.vegas.smoothing = 0;
  EXPECT_EQ(MakeLimiter(vegas).status().code(), absl::StatusCode::kInvalidArgument);
  LimiterOptions gradient{.kind = "gradient2"};
  gradient.gradient2.initial_limit = 10;  // below min_limit 20
  EXPECT_EQ(MakeLimiter(gradient).status().code(), absl::StatusCode::kInvalidArgument);
}

// --- AIMD ---

TEST(AimdLimitTest, DropsBackOffByTheRatioAndAtLeastOne) {
  AimdLimit limiter;  // 20, ×0.9
  std::optional<Permit> p = limiter.TryAcquire();
  p->OnDropped();
  EXPECT_EQ(limiter.limit(), 18);
  AimdLimit small({.initial_limit = 3});
  for (int expected : {2, 1, 1}) {
    small.TryAcquire()->OnDropped();
    EXPECT_EQ(small.limit(), expected);
  }
}

TEST(AimdLimitTest, GrowsByOnePerLimitsWorthOfSuccessesOnlyWhenAtLeastHalfFull) {
  AimdLimit limiter;  // 20
  for (int i = 0; i < 40; ++i) {
    limiter.TryAcquire()->OnSuccess(absl::Milliseconds(1));  // 1 in flight: app-limited
  }
  EXPECT_EQ(limiter.limit(), 20);
  std::vector<Permit> permits;
  for (int i = 0; i < 9; ++i) permits.push_back(*limiter.TryAcquire());
  // Each saw 10 in flight (10 · 2 ≥ 20): 20 of them are one limit's worth.
  for (int i = 0; i < 19; ++i) limiter.TryAcquire()->OnSuccess(absl::Milliseconds(1));
  EXPECT_EQ(limiter.limit(), 20);
  limiter.TryAcquire()->OnSuccess(absl::Milliseconds(1));
  EXPECT_EQ(limiter.limit(), 21);
}

// The point of growing by one per round trip: a steady share of late answers holds the
// limit down instead of being outgrown by the successes around it.
TEST(AimdLimitTest, OneLateAnswerInTwentyHoldsTheLimitDown) {
  AimdLimit limiter({.initial_limit = 30});
  int answered = 0;
  for (int round = 0; round < 200; ++round) {
    Round(limiter, [&](Permit& p) {
      if (++answered % 20 == 0) {
        p.OnLate(absl::Milliseconds(50));
      } else {
        p.OnSuccess(absl::Milliseconds(1));
      }
    });
  }
  EXPECT_LT(limiter.limit(), 30);
}

TEST(AimdLimitTest, ASuccessSlowerThanTheTimeoutIsADrop) {
  AimdLimit limiter({.timeout = absl::Seconds(1)});
  limiter.TryAcquire()->OnSuccess(absl::Seconds(2));
  EXPECT_EQ(limiter.limit(), 18);
}

TEST(AimdLimitTest, ConvergesUpThenDown) {
  AimdLimit limiter;
  // About half of each round saw the limit at least half used: +1 per two rounds.
  Rounds(limiter, 400, Succeed(absl::Milliseconds(1)));
  EXPECT_EQ(limiter.limit(), 200);
  Rounds(limiter, 3, kDrop);
  EXPECT_EQ(limiter.limit(), 1);
  Round(limiter, Succeed(absl::Milliseconds(1)));  // recovers one step at a time
  EXPECT_EQ(limiter.limit(), 2);
}

// --- Vegas ---

TEST(VegasLimitTest, GrowsByBetaWithoutQueueing) {
  VegasLimit limiter;  // 20: lg 1, beta 6
  Round(limiter, Succeed(absl::Milliseconds(1)));
  // Permits finish in admission order. The first measures rtt_noload; then each one that
  // saw in_flight ≥ L/2 adds beta: those that saw 10 (L 20 → 26), 13 (→ 32), 16 (→ 38) and
  // 19 (→ 44).
  EXPECT_EQ(limiter.limit(), 44);
}

TEST(VegasLimitTest, ConvergesUpUnderFastSteadyRtts) {
  VegasLimit limiter({.max_limit = 500});
  Rounds(limiter, 10, Succeed(absl::Milliseconds(1)));
  EXPECT_EQ(limiter.limit(), 500);
}

TEST(VegasLimitTest, ConvergesDownUnderRisingRtts) {
  VegasLimit limiter({.max_limit = 500, .probe_multiplier = 1000});
  Rounds(limiter, 10, Succeed(absl::Milliseconds(1)));
  ASSERT_EQ(limiter.limit(), 500);
  // rtt = 3 · rtt_noload: queue = ⌈L · 2/3⌉ > beta until L is about 3 · beta / 2 = 9.
  Rounds(limiter, 40, Succeed(absl::Milliseconds(3)));
  EXPECT_LE(limiter.limit(), 12);
  EXPECT_GE(limiter.limit(), 6);
}

TEST(VegasLimitTest, DropsDecreaseByLog10) {
  VegasLimit limiter({.initial_limit = 150});  // lg 2
  limiter.TryAcquire()->OnDropped();
  EXPECT_EQ(limiter.limit(), 148);
  VegasLimit small({.initial_limit = 2});
  small.TryAcquire()->OnDropped();
  small.TryAcquire()->OnDropped();
  EXPECT_EQ(small.limit(), 1);
}

TEST(VegasLimitTest, ProbingRelearnsALastingBaseLatency) {
  VegasLimit limiter({.max_limit = 200});  // probes every 30 · limit samples
  Rounds(limiter, 10, Succeed(absl::Milliseconds(1)));
  ASSERT_EQ(limiter.limit(), 200);
  // The RTT triples for good: first read as queueing, so the limit falls ...
  Round(limiter, Succeed(absl::Milliseconds(3)));
  EXPECT_LT(limiter.limit(), 150);
  // ... until a probe takes 3 ms as the new no-load RTT, and it grows back.
  Rounds(limiter, 20, Succeed(absl::Milliseconds(3)));
  EXPECT_EQ(limiter.limit(), 200);
}

TEST(VegasLimitTest, SmoothingSlowsTheSteps) {
  VegasLimit limiter({.smoothing = 0.5});
  limiter.TryAcquire()->OnDropped();  // 20 → 0.5 · 20 + 0.5 · 19
  EXPECT_EQ(limiter.limit(), 19);
  limiter.TryAcquire()->OnDropped();  // 19.5 → 19.0
  EXPECT_EQ(limiter.limit(), 19);
  limiter.TryAcquire()->OnDropped();  // 19.0 → 18.5
  EXPECT_EQ(limiter.limit(), 18);
}

// --- Gradient2 ---

TEST(Gradient2LimitTest, GrowsByQueueSizeTimesSmoothingWhileRttIsFlat) {
  Gradient2Limit limiter;  // 20, queue 4, smoothing 0.2: +0.8 per full sample
  std::vector<Permit> permits;
  for (int i = 0; i < 12; ++i) permits.push_back(*limiter.TryAcquire());
  permits[9].OnSuccess(absl::Milliseconds(1));      // saw 10 in flight
  EXPECT_EQ(limiter.limit(), 20);                   // 20.8
  permits[9 + 1].OnSuccess(absl::Milliseconds(1));  // saw 11 ≥ 20.8 / 2
  EXPECT_EQ(limiter.limit(), 21);                   // 21.6
  permits[0].OnSuccess(absl::Milliseconds(1));      // saw 1: app-limited, no change
  EXPECT_EQ(limiter.limit(), 21);
}

TEST(Gradient2LimitTest, ConvergesUpUnderFastSteadyRtts) {
  Gradient2Limit limiter;
  Rounds(limiter, 40, Succeed(absl::Milliseconds(1)));
  EXPECT_EQ(limiter.limit(), 200);
}

TEST(Gradient2LimitTest, ConvergesDownUnderRisingRttsAndRecovers) {
  Gradient2Limit limiter;
  Rounds(limiter, 40, Succeed(absl::Milliseconds(1)));
  ASSERT_EQ(limiter.limit(), 200);
  Rounds(limiter, 2, Succeed(absl::Milliseconds(10)));
  EXPECT_LE(limiter.limit(), 30);
  EXPECT_GE(limiter.limit(), 20);  // min_limit
  Rounds(limiter, 40, Succeed(absl::Milliseconds(1)));
  EXPECT_GT(limiter.limit(), 100);
}

TEST(Gradient2LimitTest, ADropIsTheSteepestGradient) {
  Gradient2Limit limiter({.initial_limit = 100});
  limiter.TryAcquire()->OnDropped();  // 0.8 · 100 + 0.2 · (0.5 · 100 + 4) = 90.8
  EXPECT_EQ(limiter.limit(), 90);
  Rounds(limiter, 10, kDrop);
  EXPECT_EQ(limiter.limit(), 20);
}

}  // namespace
}  // namespace stategate::reliability
