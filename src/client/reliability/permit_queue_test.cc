#include "src/client/reliability/permit_queue.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace stategate::reliability {
namespace {

using ::testing::ElementsAre;

constexpr int kRanks = 3;
constexpr absl::Duration kWait = absl::Milliseconds(5);
const absl::Time kStart = absl::FromUnixSeconds(1'000'000);
const absl::Time kLater = kStart + absl::Seconds(1);

TEST(PermitQueueTest, WakesTheMostImportantTierFirstAndTheOldestWithinATier) {
  PermitQueue queue(10, kRanks, kWait, kStart);
  std::vector<std::string> woken;
  auto wake = [&woken](std::string name) { return [&woken, name] { woken.push_back(name); }; };
  ASSERT_TRUE(queue.Push(2, kLater, wake("sheddable 1")).has_value());
  ASSERT_TRUE(queue.Push(1, kLater, wake("normal 1")).has_value());
  ASSERT_TRUE(queue.Push(2, kLater, wake("sheddable 2")).has_value());
  ASSERT_TRUE(queue.Push(0, kLater, wake("critical 1")).has_value());
  ASSERT_TRUE(queue.Push(1, kLater, wake("normal 2")).has_value());
  while (PermitQueue::Wake next = queue.Pop()) next();
  EXPECT_THAT(woken,
              ElementsAre("critical 1", "normal 1", "normal 2", "sheddable 1", "sheddable 2"));
  EXPECT_EQ(queue.Pop(), nullptr);
}

TEST(PermitQueueTest, ALessImportantCallYieldsWhileAMoreImportantOneWaits) {
  PermitQueue queue(10, kRanks, kWait, kStart);
  EXPECT_FALSE(queue.AnyMoreImportantThan(2));  // nobody waits
  const std::optional<PermitQueue::Ticket> normal = queue.Push(1, kLater, [] {});
  ASSERT_TRUE(normal.has_value());
  EXPECT_TRUE(queue.AnyMoreImportantThan(2));
  EXPECT_FALSE(queue.AnyMoreImportantThan(1));  // the same tier takes its turn
  EXPECT_FALSE(queue.AnyMoreImportantThan(0));
  ASSERT_TRUE(queue.Remove(*normal));
  EXPECT_FALSE(queue.AnyMoreImportantThan(2));
}

TEST(PermitQueueTest, IsBoundedAndARemovedOrPoppedWaiterIsNotWokenTwice) {
  PermitQueue queue(2, kRanks, kWait, kStart);
  int wakes = 0;
  const std::optional<PermitQueue::Ticket> first = queue.Push(1, kLater, [&wakes] { ++wakes; });
  const std::optional<PermitQueue::Ticket> second = queue.Push(1, kLater, [&wakes] { ++wakes; });
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_FALSE(queue.Push(0, kLater, [] {}).has_value());  // full, whatever the tier
  EXPECT_EQ(queue.size(), 2u);
  EXPECT_TRUE(queue.Remove(*first));   // its wait ran out
  EXPECT_FALSE(queue.Remove(*first));  // once only
  PermitQueue::Wake next = queue.Pop();
  ASSERT_NE(next, nullptr);
  next();
  EXPECT_FALSE(queue.Remove(*second));  // popped: its wake-up is what runs
  EXPECT_EQ(wakes, 1);
  EXPECT_EQ(queue.size(), 0u);
}

// Over the last wait (5 ms) four permits freed: one went to a critical call, two to
// normal ones, one to a sheddable one.
void FourFreedOverTheLastWait(PermitQueue& queue) {
  for (int i = 1; i <= 4; ++i) queue.OnReleased(kStart + absl::Milliseconds(i));
  queue.OnTaken(0, kStart + absl::Milliseconds(1));
  queue.OnTaken(1, kStart + absl::Milliseconds(2));
  queue.OnTaken(1, kStart + absl::Milliseconds(3));
  queue.OnTaken(2, kStart + absl::Milliseconds(4));
}

TEST(PermitQueueTest, AWaitIsInVainWhenWhatItsTierGetsGoesToThoseOfItsTierBeforeIt) {
  PermitQueue queue(10, kRanks, kWait, kStart);
  FourFreedOverTheLastWait(queue);
  const absl::Time now = kStart + kWait;
  const absl::Time until = now + kWait;
  // Normal and sheddable calls took three permits in a wait: three are due to a normal
  // call's tier in the next one, one to a sheddable call's.
  EXPECT_FALSE(queue.WouldWaitInVain(1, now, until));  // nobody waits: the next is its
  ASSERT_TRUE(queue.Push(2, until, [] {}).has_value());
  EXPECT_TRUE(queue.WouldWaitInVain(2, now, until));   // one before it takes the one due
  EXPECT_FALSE(queue.WouldWaitInVain(1, now, until));  // a sheddable call goes after it
  ASSERT_TRUE(queue.Push(1, until, [] {}).has_value());
  ASSERT_TRUE(queue.Push(1, until, [] {}).has_value());
  EXPECT_FALSE(queue.WouldWaitInVain(1, now, until));  // two before it: one is left
  // A critical call waiting now comes on top of what critical calls took lately.
  ASSERT_TRUE(queue.Push(0, until, [] {}).has_value());
  EXPECT_TRUE(queue.WouldWaitInVain(1, now, until));
  // A shorter wait expects fewer permits: two normal calls before it take them.
  PermitQueue two(10, kRanks, kWait, kStart);
  FourFreedOverTheLastWait(two);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(two.Push(1, until, [] {}).has_value());
  EXPECT_TRUE(two.WouldWaitInVain(1, now, now + absl::Milliseconds(3)));
  // The counts age out: the last permit freed over a wait ago.
  EXPECT_FALSE(queue.WouldWaitInVain(1, kStart + absl::Milliseconds(10), until));
}

TEST(PermitQueueTest, WhileAMoreImportantTierTakesEveryPermitALesserOneWaitsInVain) {
  PermitQueue queue(10, kRanks, kWait, kStart);
  for (int i = 1; i <= 3; ++i) {
    queue.OnReleased(kStart + absl::Milliseconds(i));
    queue.OnTaken(0, kStart + absl::Milliseconds(i));
  }
  const absl::Time now = kStart + kWait;
  const absl::Time until = now + kWait;
  // Nobody waits: the next permit to free goes to whoever asks, however rare its tier.
  EXPECT_FALSE(queue.WouldWaitInVain(1, now, until));
  // A critical call waits: it takes the next, and critical calls took all of them lately.
  ASSERT_TRUE(queue.Push(0, until, [] {}).has_value());
  EXPECT_TRUE(queue.WouldWaitInVain(1, now, until));
  EXPECT_TRUE(queue.WouldWaitInVain(2, now, until));
}

TEST(PermitQueueTest, WaitersWhoseWaitsEndFirstLeaveThePermitsToLaterOnes) {
  PermitQueue queue(10, kRanks, kWait, kStart);
  FourFreedOverTheLastWait(queue);
  const absl::Time now = kStart + kWait;
  // Three normal calls whose waits end in 2 ms: 1.2 permits are due to their tier by
  // then, so two of them may take one and the third leaves without, and one of the three
  // due in a new call's wait is left for it.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(queue.Push(1, now + absl::Milliseconds(2), [] {}).has_value());
  }
  EXPECT_FALSE(queue.WouldWaitInVain(1, now, now + kWait));
  // Had they waited as long as it will, they would have taken all three.
  PermitQueue patient(10, kRanks, kWait, kStart);
  FourFreedOverTheLastWait(patient);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(patient.Push(1, now + kWait, [] {}).has_value());
  EXPECT_TRUE(patient.WouldWaitInVain(1, now, now + kWait));
}

TEST(PermitQueueTest, AYoungQueueForeseesNothingUntilItHasSeenHalfAWait) {
  PermitQueue queue(10, kRanks, kWait, kStart);
  queue.OnReleased(kStart);
  queue.OnTaken(1, kStart);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(queue.Push(1, kLater, [] {}).has_value());
  // 2 ms in, too little seen to foresee anything.
  const absl::Time early = kStart + absl::Milliseconds(2);
  EXPECT_FALSE(queue.WouldWaitInVain(1, early, early + kWait));
  // One taken in 2.5 ms: two due in a wait, and three wait before it.
  const absl::Time half = kStart + absl::Microseconds(2500);
  EXPECT_TRUE(queue.WouldWaitInVain(1, half, half + kWait));
  // Three taken in 2.5 ms: six due in a wait, enough for the three before it.
  queue.OnTaken(1, kStart + absl::Milliseconds(1));
  queue.OnTaken(1, kStart + absl::Milliseconds(2));
  EXPECT_FALSE(queue.WouldWaitInVain(1, half, half + kWait));
}

TEST(PermitQueueTest, WithoutReleasesLatelyAWaitIsNeverForeseenInVain) {
  PermitQueue queue(10, kRanks, kWait, kStart);
  // Every call in flight stalled: nothing was released, so nothing says the stall is not
  // about to end.
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(queue.Push(0, kLater, [] {}).has_value());
  const absl::Time now = kStart + kWait;
  EXPECT_FALSE(queue.WouldWaitInVain(2, now, now + kWait));
}

}  // namespace
}  // namespace stategate::reliability
