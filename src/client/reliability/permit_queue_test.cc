#include "src/client/reliability/permit_queue.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace stategate::reliability {
namespace {

using ::testing::ElementsAre;

TEST(PermitQueueTest, WakesTheMostImportantTierFirstAndTheOldestWithinATier) {
  PermitQueue queue(10);
  std::vector<std::string> woken;
  auto wake = [&woken](std::string name) { return [&woken, name] { woken.push_back(name); }; };
  ASSERT_TRUE(queue.Push(2, wake("sheddable 1")).has_value());
  ASSERT_TRUE(queue.Push(1, wake("normal 1")).has_value());
  ASSERT_TRUE(queue.Push(2, wake("sheddable 2")).has_value());
  ASSERT_TRUE(queue.Push(0, wake("critical 1")).has_value());
  ASSERT_TRUE(queue.Push(1, wake("normal 2")).has_value());
  while (PermitQueue::Wake next = queue.Pop()) next();
  EXPECT_THAT(woken,
              ElementsAre("critical 1", "normal 1", "normal 2", "sheddable 1", "sheddable 2"));
  EXPECT_EQ(queue.Pop(), nullptr);
}

TEST(PermitQueueTest, ALessImportantCallYieldsWhileAMoreImportantOneWaits) {
  PermitQueue queue(10);
  EXPECT_FALSE(queue.AnyMoreImportantThan(2));  // nobody waits
  const std::optional<PermitQueue::Ticket> normal = queue.Push(1, [] {});
  ASSERT_TRUE(normal.has_value());
  EXPECT_TRUE(queue.AnyMoreImportantThan(2));
  EXPECT_FALSE(queue.AnyMoreImportantThan(1));  // the same tier takes its turn
  EXPECT_FALSE(queue.AnyMoreImportantThan(0));
  ASSERT_TRUE(queue.Remove(*normal));
  EXPECT_FALSE(queue.AnyMoreImportantThan(2));
}

TEST(PermitQueueTest, IsBoundedAndARemovedOrPoppedWaiterIsNotWokenTwice) {
  PermitQueue queue(2);
  int wakes = 0;
  const std::optional<PermitQueue::Ticket> first = queue.Push(1, [&wakes] { ++wakes; });
  const std::optional<PermitQueue::Ticket> second = queue.Push(1, [&wakes] { ++wakes; });
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_FALSE(queue.Push(0, [] {}).has_value());  // full, whatever the tier
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

}  // namespace
}  // namespace stategate::reliability
