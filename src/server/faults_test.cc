#include "src/server/faults.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>

namespace stategate::server {
namespace {

using ::testing::HasSubstr;

// A generator that returns the given draws in order, then fails the test.
FaultInjector::Uniform Script(std::deque<double> draws) {
  return [draws = std::move(draws)]() mutable {
    if (draws.empty()) {
      ADD_FAILURE() << "drew more than scripted";
      return 0.5;
    }
    const double next = draws.front();
    draws.pop_front();
    return next;
  };
}

TEST(FaultInjectorTest, NoFaultsByDefault) {
  FaultInjector faults(Script({}));
  FaultDecision decision = faults.Decide("default", Access::kWrite);
  EXPECT_EQ(decision.delay, absl::ZeroDuration());
  EXPECT_FALSE(decision.error.has_value());
  EXPECT_EQ(faults.Get("default"), FaultSpec());
}

TEST(FaultInjectorTest, FixedLatencyDelaysEveryCallWithoutDrawing) {
  FaultInjector faults(Script({}));
  FaultSpec spec;
  spec.latency.delay = absl::Milliseconds(40);
  faults.Set("a", spec);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(faults.Decide("a", Access::kRead).delay, absl::Milliseconds(40));
  }
  EXPECT_EQ(faults.Decide("b", Access::kRead).delay, absl::ZeroDuration());
  EXPECT_EQ(faults.Get("a"), spec);
}

TEST(FaultInjectorTest, ShareDelayedFollowsTheDraws) {
  FaultInjector faults(Script({0.1, 0.29, 0.3, 0.9}));
  FaultSpec spec;
  spec.latency.delay = absl::Milliseconds(5);
  spec.latency.share = 0.3;
  faults.Set("a", spec);
  EXPECT_EQ(faults.Decide("a", Access::kRead).delay, absl::Milliseconds(5));
  EXPECT_EQ(faults.Decide("a", Access::kRead).delay, absl::Milliseconds(5));
  EXPECT_EQ(faults.Decide("a", Access::kRead).delay, absl::ZeroDuration());
  EXPECT_EQ(faults.Decide("a", Access::kRead).delay, absl::ZeroDuration());
}

TEST(FaultInjectorTest, RatesMatchWithinToleranceUnderASeededGenerator) {
  FaultInjector faults(FaultInjector::SeededUniform(42));
  FaultSpec spec;
  spec.latency.delay = absl::Milliseconds(1);
  spec.latency.share = 0.25;
  spec.error.rate = 0.1;
  faults.Set("a", spec);
  constexpr int kCalls = 20000;
  int delayed = 0, failed = 0;
  for (int i = 0; i < kCalls; ++i) {
    FaultDecision decision = faults.Decide("a", Access::kWrite);
    if (decision.delay > absl::ZeroDuration()) ++delayed;
    if (decision.error.has_value()) ++failed;
  }
  // Five standard deviations: sqrt(n p (1 - p)) is about 61 and 42 here.
  EXPECT_NEAR(delayed, kCalls * 0.25, 310);
  EXPECT_NEAR(failed, kCalls * 0.1, 215);
}

TEST(FaultInjectorTest, SameSeedSameDecisions) {
  FaultSpec spec;
  spec.error.rate = 0.5;
  FaultInjector a(FaultInjector::SeededUniform(7)), b(FaultInjector::SeededUniform(7));
  a.Set("n", spec);
  b.Set("n", spec);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(a.Decide("n", Access::kRead).error.has_value(),
              b.Decide("n", Access::kRead).error.has_value());
  }
}

TEST(FaultInjectorTest, ErrorRateOneFailsEveryCallWithTheCodeAndSaysItWasInjected) {
  FaultInjector faults(Script({}));
  FaultSpec spec;
  spec.error.rate = 1.0;
  spec.error.code = absl::StatusCode::kAborted;
  faults.Set("a", spec);
  FaultDecision decision = faults.Decide("a", Access::kRead);
  ASSERT_TRUE(decision.error.has_value());
  EXPECT_EQ(decision.error->code(), absl::StatusCode::kAborted);
  EXPECT_THAT(decision.error->message(), HasSubstr("injected"));
  EXPECT_THAT(decision.error->message(), HasSubstr("'a'"));
  EXPECT_EQ(decision.retry_pushback, absl::ZeroDuration());  // not RESOURCE_EXHAUSTED
}

TEST(FaultInjectorTest, ResourceExhaustedCarriesThePushback) {
  FaultInjector faults(Script({}));
  FaultSpec spec;
  spec.error.rate = 1.0;
  spec.error.code = absl::StatusCode::kResourceExhausted;
  faults.Set("a", spec);
  EXPECT_EQ(faults.Decide("a", Access::kRead).retry_pushback, absl::Milliseconds(100));
  spec.error.pushback = absl::Milliseconds(750);
  faults.Set("a", spec);
  EXPECT_EQ(faults.Decide("a", Access::kRead).retry_pushback, absl::Milliseconds(750));
}

TEST(FaultInjectorTest, LatencyAndErrorTogetherAndRestrictedToAnAccessPattern) {
  FaultInjector faults(Script({}));
  FaultSpec spec;
  spec.latency.delay = absl::Milliseconds(3);
  spec.latency.applies_to = AppliesTo::kReads;
  spec.error.rate = 1.0;
  spec.error.applies_to = AppliesTo::kWrites;
  faults.Set("a", spec);
  FaultDecision read = faults.Decide("a", Access::kRead);
  EXPECT_EQ(read.delay, absl::Milliseconds(3));
  EXPECT_FALSE(read.error.has_value());
  FaultDecision write = faults.Decide("a", Access::kWrite);
  EXPECT_EQ(write.delay, absl::ZeroDuration());
  EXPECT_TRUE(write.error.has_value());

  spec.latency.applies_to = AppliesTo::kAll;
  spec.error.applies_to = AppliesTo::kAll;
  faults.Set("a", spec);
  FaultDecision both = faults.Decide("a", Access::kWrite);
  EXPECT_EQ(both.delay, absl::Milliseconds(3));
  EXPECT_TRUE(both.error.has_value());
}

TEST(FaultInjectorTest, SettingAnInactiveSpecClearsAndReplaceAllReplacesEverything) {
  FaultInjector faults(Script({}));
  FaultSpec spec;
  spec.error.rate = 1.0;
  faults.Set("a", spec);
  faults.Set("b", spec);
  faults.Set("a", FaultSpec());
  EXPECT_FALSE(faults.Decide("a", Access::kRead).error.has_value());
  EXPECT_TRUE(faults.Decide("b", Access::kRead).error.has_value());

  faults.ReplaceAll({{"c", spec}});
  EXPECT_FALSE(faults.Decide("b", Access::kRead).error.has_value());
  EXPECT_TRUE(faults.Decide("c", Access::kRead).error.has_value());
}

TEST(FaultSpecTest, ValidationNamesTheFieldAndTheLimit) {
  struct Case {
    FaultSpec spec;
    const char* message;
  };
  std::vector<Case> cases;
  auto add = [&](auto mutate, const char* message) {
    FaultSpec spec;
    mutate(spec);
    cases.push_back({spec, message});
  };
  add([](FaultSpec& s) { s.latency.share = 1.5; }, "f.latency.share is 1.5; must be in [0, 1]");
  add([](FaultSpec& s) { s.latency.share = -0.1; }, "f.latency.share is -0.1");
  add([](FaultSpec& s) { s.latency.share = std::nan(""); }, "f.latency.share");
  add([](FaultSpec& s) { s.error.rate = 2; }, "f.error.rate is 2; must be in [0, 1]");
  add([](FaultSpec& s) { s.latency.delay = absl::Seconds(61); },
      "f.latency.delay is 1m1s; must be in [0, 1m]");
  add([](FaultSpec& s) { s.latency.delay = -absl::Milliseconds(1); }, "f.latency.delay is -1ms");
  add([](FaultSpec& s) { s.error.pushback = absl::Minutes(2); }, "f.error.pushback is 2m");
  add([](FaultSpec& s) { s.error.code = absl::StatusCode::kOk; }, "f.error.code must not be OK");
  add([](FaultSpec& s) { s.error.code = static_cast<absl::StatusCode>(42); },
      "f.error.code 42 is not a gRPC status code");
  for (const Case& c : cases) {
    absl::Status status = ValidateFaultSpec(c.spec, "f");
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(status.message(), HasSubstr(c.message));
  }
  FaultSpec edge;
  edge.latency.delay = absl::Seconds(60);
  edge.latency.share = 0;
  edge.error.rate = 1;
  edge.error.pushback = absl::ZeroDuration();
  EXPECT_TRUE(ValidateFaultSpec(edge).ok());
}

TEST(FaultSpecTest, ParsesCodesAndAccessPatterns) {
  EXPECT_EQ(*ParseErrorCode("RESOURCE_EXHAUSTED", "c"), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(*ParseErrorCode("unavailable", "c"), absl::StatusCode::kUnavailable);
  absl::StatusOr<absl::StatusCode> ok = ParseErrorCode("OK", "x.code");
  ASSERT_FALSE(ok.ok());
  EXPECT_THAT(ok.status().message(), HasSubstr("x.code: 'OK' is not a gRPC status code"));
  EXPECT_THAT(ok.status().message(), HasSubstr("UNAVAILABLE"));
  EXPECT_FALSE(ParseErrorCode("SLOW", "c").ok());

  EXPECT_EQ(*ParseAppliesTo("", "a"), AppliesTo::kAll);
  EXPECT_EQ(*ParseAppliesTo("reads", "a"), AppliesTo::kReads);
  EXPECT_EQ(*ParseAppliesTo("writes", "a"), AppliesTo::kWrites);
  absl::StatusOr<AppliesTo> bad = ParseAppliesTo("scans", "x.applies_to");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("x.applies_to: 'scans' is not all, reads or"));
}

TEST(FaultSpecTest, Describes) {
  FaultSpec spec;
  EXPECT_EQ(DescribeFaults(spec), "none");
  spec.latency.delay = absl::Milliseconds(50);
  spec.latency.share = 0.1;
  spec.latency.applies_to = AppliesTo::kReads;
  spec.error.rate = 1;
  spec.error.code = absl::StatusCode::kResourceExhausted;
  EXPECT_EQ(DescribeFaults(spec),
            "latency 50ms on 10% of reads; RESOURCE_EXHAUSTED on all calls with pushback 100ms");
}

TEST(PauseProcessTest, RefusesOutOfRangeDurationsAndZeroIsANoOp) {
  EXPECT_EQ(PauseProcess(-absl::Milliseconds(1)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PauseProcess(absl::Seconds(61)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(PauseProcess(absl::ZeroDuration()).ok());
}

TEST(PauseProcessTest, StopsThisProcessForTheDuration) {
  // Stops the test process itself: the elapsed real time shows the pause was at least as
  // long as asked (never an upper bound: a loaded machine may resume us late).
  const absl::Time start = absl::Now();
  ASSERT_TRUE(PauseProcess(absl::Milliseconds(100)).ok());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(100));
}

}  // namespace
}  // namespace stategate::server
