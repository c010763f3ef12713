#include "src/common/delay_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "absl/synchronization/notification.h"

namespace stategate {
namespace {

TEST(DelayQueueTest, RunsEachTaskAfterItsDelayInDueOrder) {
  DelayQueue queue;
  absl::Mutex mu;
  std::vector<int> order;
  absl::Notification done;
  const absl::Time start = absl::Now();
  absl::Time first_ran;
  queue.Schedule(absl::Milliseconds(60), [&] {
    absl::MutexLock lock(&mu);
    order.push_back(2);
    done.Notify();
  });
  queue.Schedule(absl::Milliseconds(30), [&] {
    absl::MutexLock lock(&mu);
    first_ran = absl::Now();
    order.push_back(1);
  });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  EXPECT_GE(first_ran - start, absl::Milliseconds(30));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(60));
}

TEST(DelayQueueTest, StopRunsWaitingTasksAtOnceAndLaterOnesInline) {
  DelayQueue queue;
  int ran = 0;  // Stop joins the timer thread, so reading after it is safe
  const absl::Time start = absl::Now();
  for (int i = 0; i < 3; ++i) queue.Schedule(absl::Seconds(30), [&] { ++ran; });
  EXPECT_EQ(queue.pending(), 3u);
  queue.Stop();
  EXPECT_EQ(ran, 3);
  EXPECT_EQ(queue.pending(), 0u);
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
  queue.Schedule(absl::Seconds(30), [&] { ++ran; });
  EXPECT_EQ(ran, 4);
  queue.Stop();  // idempotent
}

TEST(DelayQueueTest, DestructorRunsWhatIsLeft) {
  int ran = 0;
  {
    DelayQueue queue;
    queue.Schedule(absl::Seconds(30), [&] { ++ran; });
  }
  EXPECT_EQ(ran, 1);
}

TEST(DelayQueueTest, CancelDropsATaskThatHasNotRun) {
  DelayQueue queue;
  std::atomic<int> ran{0};
  const DelayQueue::Handle dropped = queue.Schedule(absl::Milliseconds(50), [&] { ran += 1; });
  absl::Notification kept_ran;
  const DelayQueue::Handle kept = queue.Schedule(absl::Milliseconds(60), [&] {
    ran += 10;
    kept_ran.Notify();
  });
  EXPECT_TRUE(queue.Cancel(dropped));
  EXPECT_EQ(queue.pending(), 1u);
  EXPECT_FALSE(queue.Cancel(dropped));  // already gone
  kept_ran.WaitForNotification();
  EXPECT_FALSE(queue.Cancel(kept));  // already ran
  EXPECT_EQ(ran.load(), 10);
}

}  // namespace
}  // namespace stategate
