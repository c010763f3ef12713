#include "src/client/reliability/peak_ewma.h"

#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace stategate::reliability {
namespace {

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

class PeakEwmaTest : public testing::Test {
 protected:
  EndpointLoad Make() { return EndpointLoad({}, &clock_); }
  FakeClock clock_;
};

TEST_F(PeakEwmaTest, StartsAtTheDefaultRtt) {
  EndpointLoad load = Make();
  EXPECT_EQ(load.Ewma(), absl::Milliseconds(30));
  EXPECT_EQ(load.outstanding(), 0);
  EXPECT_DOUBLE_EQ(load.Cost(), 30e6);
}

TEST_F(PeakEwmaTest, ALargerSampleIsTakenAtOnce) {
  EndpointLoad load = Make();
  load.OnStart();
  load.OnSuccess(absl::Milliseconds(400));
  EXPECT_EQ(load.Ewma(), absl::Milliseconds(400));
}

TEST_F(PeakEwmaTest, ASmallerSampleIsBlendedByElapsedTime) {
  EndpointLoad load = Make();
  load.OnStart();
  load.OnSuccess(absl::Milliseconds(100));
  // At the same instant a smaller sample weighs nothing.
  load.OnStart();
  load.OnSuccess(absl::Milliseconds(10));
  EXPECT_EQ(load.Ewma(), absl::Milliseconds(100));
  // One decay time later it weighs 1 − 1/e.
  clock_.Advance(absl::Seconds(10));
  load.OnStart();
  load.OnSuccess(absl::Milliseconds(10));
  const double expected = 100 * std::exp(-1.0) + 10 * (1 - std::exp(-1.0));
  EXPECT_NEAR(Ms(load.Ewma()), expected, 1e-6);
}

TEST_F(PeakEwmaTest, ReadingDecaysTowardsZeroWithoutChangingTheEstimate) {
  EndpointLoad load = Make();
  load.OnStart();
  load.OnSuccess(absl::Milliseconds(100));
  clock_.Advance(absl::Seconds(10));
  EXPECT_NEAR(Ms(load.Ewma()), 100 * std::exp(-1.0), 1e-6);
  EXPECT_NEAR(Ms(load.Ewma()), 100 * std::exp(-1.0), 1e-6);  // reads do not compound
  clock_.Advance(absl::Seconds(10));
  EXPECT_NEAR(Ms(load.Ewma()), 100 * std::exp(-2.0), 1e-6);
}

TEST_F(PeakEwmaTest, CostIsEwmaTimesOutstandingPlusOne) {
  EndpointLoad load = Make();
  for (int i = 0; i < 3; ++i) load.OnStart();
  EXPECT_EQ(load.outstanding(), 3);
  EXPECT_DOUBLE_EQ(load.Cost(), 30e6 * 4);
  load.OnSuccess(absl::Milliseconds(50));
  EXPECT_EQ(load.outstanding(), 2);
  EXPECT_DOUBLE_EQ(load.Cost(), 50e6 * 3);
}

TEST_F(PeakEwmaTest, AFastFailureCostsThePenalty) {
  EndpointLoad load = Make();
  load.OnStart();
  load.OnFailure(absl::Microseconds(100));
  EXPECT_EQ(load.Ewma(), absl::Seconds(1));
  EXPECT_EQ(load.outstanding(), 0);
}

TEST_F(PeakEwmaTest, ACancelOnlyRaisesTheEstimate) {
  EndpointLoad load = Make();
  load.OnStart();
  load.OnCancel(absl::Milliseconds(5));  // below 30 ms: says nothing
  EXPECT_EQ(load.Ewma(), absl::Milliseconds(30));
  load.OnStart();
  load.OnCancel(absl::Milliseconds(80));  // it took at least 80 ms
  EXPECT_EQ(load.Ewma(), absl::Milliseconds(80));
  EXPECT_EQ(load.outstanding(), 0);
}

TEST(PickTwoTest, SingleEndpoint) {
  FakeClock clock;
  EndpointLoad only({}, &clock);
  std::vector<EndpointLoad*> endpoints = {&only};
  std::mt19937_64 rng(1);
  EXPECT_EQ(PickTwo(endpoints, rng), 0u);
  EXPECT_EQ(PickTwo(endpoints, rng, 0), 0u);  // nothing else to go to
}

TEST(PickTwoTest, ExcludeIsHonoured) {
  FakeClock clock;
  std::vector<std::unique_ptr<EndpointLoad>> loads;
  std::vector<EndpointLoad*> endpoints;
  for (int i = 0; i < 3; ++i) {
    loads.push_back(std::make_unique<EndpointLoad>(PeakEwmaOptions{}, &clock));
    endpoints.push_back(loads.back().get());
  }
  // Make the excluded one by far the cheapest: it must still never be chosen.
  loads[1]->OnStart();
  loads[1]->OnSuccess(absl::Microseconds(1));
  clock.Advance(absl::Minutes(10));
  for (int i : {0, 2}) {
    loads[i]->OnStart();
    loads[i]->OnSuccess(absl::Milliseconds(30));
  }
  std::mt19937_64 rng(3);
  std::vector<int> picks(3, 0);
  for (int i = 0; i < 1000; ++i) ++picks[PickTwo(endpoints, rng, 1)];
  EXPECT_EQ(picks[1], 0);
  EXPECT_GT(picks[0], 0);
  EXPECT_GT(picks[2], 0);
  // With two endpoints, excluding one leaves the other.
  std::vector<EndpointLoad*> two = {endpoints[0], endpoints[1]};
  EXPECT_EQ(PickTwo(two, rng, 0), 1u);
  EXPECT_EQ(PickTwo(two, rng, 1), 0u);
  // An out-of-range exclude excludes nothing.
  EXPECT_EQ(PickTwo(two, rng, 7), 1u);
}

TEST(PickTwoTest, EqualEndpointsShareTheTraffic) {
  FakeClock clock;
  std::vector<std::unique_ptr<EndpointLoad>> loads;
  std::vector<EndpointLoad*> endpoints;
  for (int i = 0; i < 4; ++i) {
    loads.push_back(std::make_unique<EndpointLoad>(PeakEwmaOptions{}, &clock));
    endpoints.push_back(loads.back().get());
  }
  std::mt19937_64 rng(5);
  std::vector<int> picks(4, 0);
  for (int i = 0; i < 8000; ++i) ++picks[PickTwo(endpoints, rng)];
  for (int p : picks) EXPECT_NEAR(p, 2000, 200);
}

// A simulated client: 16 calls at a time, each endpoint answering in its own latency; the
// clock moves 1 ms per batch. Returns how many calls each endpoint got.
std::vector<int> Simulate(FakeClock& clock, const std::vector<EndpointLoad*>& endpoints,
                          const std::vector<absl::Duration>& latency, int batches,
                          std::mt19937_64& rng) {
  std::vector<int> picks(endpoints.size(), 0);
  for (int b = 0; b < batches; ++b) {
    std::vector<size_t> batch;
    for (int i = 0; i < 16; ++i) {
      const size_t e = PickTwo(endpoints, rng);
      endpoints[e]->OnStart();
      batch.push_back(e);
      ++picks[e];
    }
    clock.Advance(absl::Milliseconds(1));
    for (size_t e : batch) endpoints[e]->OnSuccess(latency[e]);
  }
  return picks;
}

TEST(PickTwoTest, ASlowEndpointGetsFarLessTrafficAndRegainsItAfterRecovering) {
  FakeClock clock;
  std::vector<std::unique_ptr<EndpointLoad>> loads;
  std::vector<EndpointLoad*> endpoints;
  for (int i = 0; i < 5; ++i) {
    loads.push_back(std::make_unique<EndpointLoad>(PeakEwmaOptions{}, &clock));
    endpoints.push_back(loads.back().get());
  }
  std::mt19937_64 rng(11);
  std::vector<absl::Duration> latency(5, absl::Milliseconds(2));
  latency[4] = absl::Milliseconds(500);

  std::vector<int> picks = Simulate(clock, endpoints, latency, 2000, rng);
  const int total = 2000 * 16;
  // Uniform would give it 20 %; it gets a few probes at most.
  EXPECT_LT(picks[4], total / 100) << picks[4];

  // It recovers. Its estimate decays while it gets (almost) nothing, and then it is probed,
  // answers fast and takes its share again.
  latency[4] = absl::Milliseconds(2);
  Simulate(clock, endpoints, latency, 90'000, rng);  // 90 s
  picks = Simulate(clock, endpoints, latency, 2000, rng);
  EXPECT_GT(picks[4], total / 10) << picks[4];
}

}  // namespace
}  // namespace stategate::reliability
