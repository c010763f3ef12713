// Admission's order of admitting and shedding, on a fake clock and a fixed limit (AIMD with
// min = max), so every decision is deterministic.
#include "src/server/admission.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace stategate::server {
namespace {

using Outcome = Admission::Slot::Outcome;

// Timers the test fires by hand: Advance moves the clock and runs what fell due.
class FakeTimers {
 public:
  explicit FakeTimers(FakeClock* clock) : clock_(clock) {}

  Admission::Schedule AsSchedule() {
    return [this](absl::Duration delay, std::function<void()> task) {
      due_.emplace(clock_->Now() + delay, std::move(task));
    };
  }

  void Advance(absl::Duration by) {
    clock_->Advance(by);
    while (!due_.empty() && due_.begin()->first <= clock_->Now()) {
      std::function<void()> task = std::move(due_.begin()->second);
      due_.erase(due_.begin());
      task();
    }
  }

 private:
  FakeClock* clock_;
  std::multimap<absl::Time, std::function<void()>> due_;
};

// What became of one submitted call.
struct Call {
  std::string name;
  std::optional<Admission::Slot> slot;  // set once started
  std::optional<absl::Status> refusal;  // set once refused
  absl::Duration pushback;
};

class AdmissionTest : public ::testing::Test {
 protected:
  void Make(int limit, int max_queue, absl::Duration max_queue_wait = absl::Milliseconds(50)) {
    AdmissionConfig config;
    config.limiter = "aimd";
    config.initial_limit = config.min_limit = config.max_limit = limit;
    config.max_queue = max_queue;
    config.max_queue_wait = max_queue_wait;
    config.retry_pushback = absl::Milliseconds(100);
    absl::StatusOr<std::shared_ptr<Admission>> made =
        Admission::Create(config, &clock_, timers_.AsSchedule());
    ASSERT_TRUE(made.ok()) << made.status();
    admission_ = *std::move(made);
  }

  // Submits a call named `name`; its fate is recorded in calls_[name] and in started_.
  void Submit(const std::string& name, Priority priority,
              absl::Duration deadline_in = absl::Seconds(1)) {
    calls_[name].name = name;
    admission_->Submit(
        priority, clock_.Now() + deadline_in,
        [this, name](Admission::Slot slot) {
          calls_[name].slot.emplace(std::move(slot));
          started_.push_back(name);
        },
        [this, name](absl::Status status, absl::Duration pushback) {
          calls_[name].refusal = std::move(status);
          calls_[name].pushback = pushback;
          refused_.push_back(name);
        });
  }

  void Finish(const std::string& name, Outcome outcome = Outcome::kServed) {
    ASSERT_TRUE(calls_[name].slot.has_value()) << name << " was not started";
    calls_[name].slot->Finish(outcome);
  }

  // Frees every slot while the fixture is whole: a freed slot starts a waiting call, whose
  // callback writes into calls_.
  void TearDown() override {
    for (bool freed = true; freed;) {
      freed = false;
      for (auto& [name, call] : calls_) {
        if (call.slot.has_value()) {
          call.slot.reset();
          freed = true;
        }
      }
    }
  }

  FakeClock clock_;
  FakeTimers timers_{&clock_};
  std::shared_ptr<Admission> admission_;
  std::map<std::string, Call> calls_;
  std::vector<std::string> started_;
  std::vector<std::string> refused_;
};

TEST_F(AdmissionTest, CallsWithinTheLimitStartAtOnce) {
  Make(/*limit=*/2, /*max_queue=*/4);
  Submit("a", Priority::kNormal);
  Submit("b", Priority::kSheddable);
  EXPECT_EQ(started_, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(admission_->running(), 2);
  EXPECT_EQ(admission_->waiting(), 0u);
}

TEST_F(AdmissionTest, AFreedSlotGoesToTheMostImportantWaitingCallFirstInFifoWithinATier) {
  Make(/*limit=*/1, /*max_queue=*/8);
  Submit("running", Priority::kNormal);
  Submit("shed1", Priority::kSheddable);
  Submit("norm1", Priority::kNormal);
  Submit("crit1", Priority::kCritical);
  Submit("norm2", Priority::kNormal);
  Submit("crit2", Priority::kCritical);
  EXPECT_EQ(admission_->waiting(), 5u);

  const std::vector<std::string> order = {"running", "crit1", "crit2", "norm1", "norm2", "shed1"};
  for (size_t i = 1; i < order.size(); ++i) {
    Finish(order[i - 1]);
    ASSERT_EQ(started_.size(), i + 1);
    EXPECT_EQ(started_.back(), order[i]);
  }
  EXPECT_TRUE(refused_.empty());
}

TEST_F(AdmissionTest, AFreedSlotGoesToAWaitingCallNotToTheNextArrival) {
  Make(/*limit=*/1, /*max_queue=*/4);
  Submit("running", Priority::kNormal);
  Submit("waiter", Priority::kSheddable);
  Finish("running");
  Submit("newcomer", Priority::kCritical);
  EXPECT_EQ(started_, (std::vector<std::string>{"running", "waiter"}));
  Finish("waiter");
  EXPECT_EQ(started_.back(), "newcomer");
}

TEST_F(AdmissionTest, AFullQueueShedsTheNewestCallOfTheLowestTierBelowTheArrival) {
  Make(/*limit=*/1, /*max_queue=*/3);
  Submit("running", Priority::kNormal);
  Submit("shed_old", Priority::kSheddable);
  Submit("shed_new", Priority::kSheddable);
  Submit("norm", Priority::kNormal);
  ASSERT_TRUE(refused_.empty());

  Submit("crit", Priority::kCritical);  // full: the newest sheddable call goes
  ASSERT_EQ(refused_, (std::vector<std::string>{"shed_new"}));
  const Call& shed = calls_["shed_new"];
  EXPECT_TRUE(absl::IsResourceExhausted(*shed.refusal)) << *shed.refusal;
  EXPECT_NE(shed.refusal->message().find("sheddable"), std::string::npos) << *shed.refusal;
  EXPECT_EQ(shed.pushback, absl::Milliseconds(100));

  Submit("norm2", Priority::kNormal);  // full again: the other sheddable call goes
  EXPECT_EQ(refused_.back(), "shed_old");
  Submit("norm3", Priority::kNormal);  // full, nothing lower waits: the arrival is shed
  EXPECT_EQ(refused_.back(), "norm3");
  Submit("shed3", Priority::kSheddable);
  EXPECT_EQ(refused_.back(), "shed3");
  EXPECT_EQ(admission_->waiting(), 3u);

  const AdmissionStats stats = admission_->stats();
  EXPECT_EQ(stats.shed[PriorityRank(Priority::kSheddable)], 3);
  EXPECT_EQ(stats.shed[PriorityRank(Priority::kNormal)], 1);
  EXPECT_EQ(stats.shed[PriorityRank(Priority::kCritical)], 0);
}

TEST_F(AdmissionTest, WithNoQueueACallBeyondTheLimitIsShedAtOnce) {
  Make(/*limit=*/1, /*max_queue=*/0);
  Submit("running", Priority::kNormal);
  Submit("critical", Priority::kCritical);
  EXPECT_EQ(refused_, (std::vector<std::string>{"critical"}));
  EXPECT_TRUE(absl::IsResourceExhausted(*calls_["critical"].refusal));
}

TEST_F(AdmissionTest, ACallThatWaitedMaxQueueWaitIsShedWithPushback) {
  Make(/*limit=*/1, /*max_queue=*/4, /*max_queue_wait=*/absl::Milliseconds(50));
  Submit("running", Priority::kNormal);
  Submit("waiter", Priority::kNormal, /*deadline_in=*/absl::Seconds(1));
  timers_.Advance(absl::Milliseconds(49));
  EXPECT_TRUE(refused_.empty());
  timers_.Advance(absl::Milliseconds(1));
  ASSERT_EQ(refused_, (std::vector<std::string>{"waiter"}));
  EXPECT_TRUE(absl::IsResourceExhausted(*calls_["waiter"].refusal));
  EXPECT_EQ(calls_["waiter"].pushback, absl::Milliseconds(100));
  EXPECT_EQ(admission_->waiting(), 0u);
  Finish("running");  // the freed slot finds nobody: the shed call never starts
  EXPECT_EQ(started_, (std::vector<std::string>{"running"}));
}

TEST_F(AdmissionTest, ACallWhoseDeadlinePassesWhileWaitingIsDeadlineExceeded) {
  Make(/*limit=*/1, /*max_queue=*/4, /*max_queue_wait=*/absl::Milliseconds(50));
  Submit("running", Priority::kNormal);
  Submit("waiter", Priority::kCritical, /*deadline_in=*/absl::Milliseconds(20));
  timers_.Advance(absl::Milliseconds(20));
  ASSERT_EQ(refused_, (std::vector<std::string>{"waiter"}));
  EXPECT_TRUE(absl::IsDeadlineExceeded(*calls_["waiter"].refusal));
  EXPECT_EQ(calls_["waiter"].pushback, absl::ZeroDuration());
  EXPECT_EQ(admission_->stats().expired[PriorityRank(Priority::kCritical)], 1);
}

TEST_F(AdmissionTest, ACallThatArrivesPastItsDeadlineIsRefusedBeforeAnyWork) {
  Make(/*limit=*/4, /*max_queue=*/4);
  Submit("late", Priority::kCritical, /*deadline_in=*/absl::ZeroDuration());
  EXPECT_TRUE(started_.empty());
  ASSERT_EQ(refused_, (std::vector<std::string>{"late"}));
  EXPECT_TRUE(absl::IsDeadlineExceeded(*calls_["late"].refusal));
  EXPECT_EQ(admission_->running(), 0);
}

TEST_F(AdmissionTest, ASlotDroppedUnfinishedStillFreesItsPlace) {
  Make(/*limit=*/1, /*max_queue=*/4);
  Submit("running", Priority::kNormal);
  Submit("waiter", Priority::kNormal);
  calls_["running"].slot.reset();  // destroyed without Finish: counts as ignored
  EXPECT_EQ(started_.back(), "waiter");
}

// Each shard of a namespace has its own limit and queue: a stalled shard's full limit does
// not shed a call to another shard.
TEST(AdmissionsTest, EachShardOfANamespaceHasItsOwnAdmission) {
  FakeClock clock;
  FakeTimers timers(&clock);
  Admissions admissions(&clock, timers.AsSchedule());
  NamespaceConfig ns;
  ns.name = "shared";
  ns.admission.limiter = "aimd";
  ns.admission.initial_limit = ns.admission.min_limit = ns.admission.max_limit = 1;
  ns.admission.max_queue = 0;
  absl::StatusOr<std::shared_ptr<Admission>> stalled = admissions.For(ns, "127.0.0.1:7000");
  absl::StatusOr<std::shared_ptr<Admission>> healthy = admissions.For(ns, "127.0.0.1:7001");
  ASSERT_TRUE(stalled.ok() && healthy.ok());
  EXPECT_EQ(*stalled, *admissions.For(ns, "127.0.0.1:7000"));
  EXPECT_NE(*stalled, *healthy);
  EXPECT_NE(*stalled, *admissions.For(ns));

  std::vector<Admission::Slot> held;
  std::vector<std::string> refused;
  const auto submit = [&](Admission& admission, const std::string& name) {
    admission.Submit(
        Priority::kCritical, clock.Now() + absl::Seconds(1),
        [&](Admission::Slot slot) { held.push_back(std::move(slot)); },
        [&refused, name](absl::Status, absl::Duration) { refused.push_back(name); });
  };
  submit(**stalled, "stalled-1");  // takes the stalled shard's only slot and keeps it
  submit(**stalled, "stalled-2");  // shed there
  submit(**healthy, "healthy");    // starts
  EXPECT_EQ(held.size(), 2u);
  EXPECT_EQ(refused, std::vector<std::string>{"stalled-2"});
  EXPECT_EQ(admissions.Report().size(), 3u);
  held.clear();
}

TEST_F(AdmissionTest, ItsConfigIsValidatedWithTheFieldNamed) {
  AdmissionConfig config;
  config.max_queue = -1;
  EXPECT_NE(ValidateAdmission(config).message().find("admission.max_queue"), std::string::npos);
  config = AdmissionConfig{};
  config.max_queue_wait = absl::ZeroDuration();
  EXPECT_NE(ValidateAdmission(config).message().find("max_queue_wait"), std::string::npos);
  config = AdmissionConfig{};
  config.limiter = "fifo";
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateAdmission(config)));
  EXPECT_TRUE(ValidateAdmission(AdmissionConfig{}).ok());
}

}  // namespace
}  // namespace stategate::server
