#include "src/bench/client_modes.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace stategate::bench {
namespace {

using ::testing::HasSubstr;

TEST(ModeReliabilityTest, NaiveFullAndOneMechanismOnTopOfNaive) {
  const ReliabilityOptions naive = *ModeReliability("naive");
  EXPECT_FALSE(naive.hedging);
  EXPECT_FALSE(naive.retries);
  EXPECT_EQ(naive.limiter, "none");
  EXPECT_FALSE(naive.load_balancing);
  EXPECT_FALSE(naive.gc_tolerant_timeouts);
  EXPECT_FALSE(naive.signalled_timeouts);

  const ReliabilityOptions full = *ModeReliability("full");
  EXPECT_TRUE(full.hedging && full.retries && full.load_balancing && full.gc_tolerant_timeouts &&
              full.signalled_timeouts);
  EXPECT_EQ(full.limiter, ReliabilityOptions{}.limiter);

  EXPECT_TRUE(ModeReliability("hedging")->hedging);
  EXPECT_FALSE(ModeReliability("hedging")->retries);
  EXPECT_TRUE(ModeReliability("retries")->retries);
  EXPECT_FALSE(ModeReliability("retries")->hedging);
  EXPECT_EQ(ModeReliability("limiter")->limiter, "aimd");
  EXPECT_FALSE(ModeReliability("limiter")->load_balancing);
  EXPECT_TRUE(ModeReliability("balancing")->load_balancing);
  EXPECT_TRUE(ModeReliability("gc-tolerant")->gc_tolerant_timeouts);
  EXPECT_FALSE(ModeReliability("gc-tolerant")->signalled_timeouts);
  EXPECT_TRUE(ModeReliability("signalled-timeouts")->signalled_timeouts);

  const absl::Status unknown = ModeReliability("turbo").status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(unknown.message()), HasSubstr("hedging"));
}

}  // namespace
}  // namespace stategate::bench
