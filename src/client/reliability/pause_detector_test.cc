#include "src/client/reliability/pause_detector.h"

#include "gtest/gtest.h"

namespace stategate::reliability {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

absl::Time At(int ms) { return kT0 + absl::Milliseconds(ms); }

TEST(PauseLogTest, OnTimeAndJitteryTicksAreNoPause) {
  PauseLog log;  // 10 ms interval, 50 ms threshold
  int now = 0;
  for (int i = 0; i < 100; ++i) {
    log.OnTick(At(now));
    now += 10 + (i % 5) * 10;  // up to 40 ms late
  }
  EXPECT_EQ(log.total_pauses(), 0);
  EXPECT_EQ(log.PausedDuring(At(0), At(now - 40)), absl::ZeroDuration());
}

TEST(PauseLogTest, ALateTickRecordsThePauseFromWhenItWasDue) {
  PauseLog log;
  log.OnTick(At(0));
  log.OnTick(At(10));
  log.OnTick(At(20));
  log.OnTick(At(220));  // due at 30
  log.OnTick(At(230));
  ASSERT_EQ(log.Pauses().size(), 1u);
  EXPECT_EQ(log.Pauses()[0].start, At(30));
  EXPECT_EQ(log.Pauses()[0].end, At(220));
  EXPECT_EQ(log.PausedDuring(At(0), At(235)), absl::Milliseconds(190));
  EXPECT_EQ(log.PausedDuring(At(100), At(150)), absl::Milliseconds(50));
  EXPECT_EQ(log.PausedDuring(At(200), At(235)), absl::Milliseconds(20));
  EXPECT_EQ(log.PausedDuring(At(0), At(30)), absl::ZeroDuration());
  EXPECT_EQ(log.PausedDuring(At(220), At(235)), absl::ZeroDuration());
  EXPECT_EQ(log.PausedDuring(At(150), At(100)), absl::ZeroDuration());
}

TEST(PauseLogTest, ThresholdIsStrict) {
  PauseLog log;
  log.OnTick(At(0));
  log.OnTick(At(60));  // due at 10, 50 ms late: jitter
  EXPECT_EQ(log.total_pauses(), 0);
  log.OnTick(At(121));  // due at 70, 51 ms late: a pause
  EXPECT_EQ(log.total_pauses(), 1);
  EXPECT_EQ(log.PausedDuring(At(0), At(125)), absl::Milliseconds(51));
}

TEST(PauseLogTest, PausesOverlappingTheWindowAddUp) {
  PauseLog log;
  log.OnTick(At(0));
  log.OnTick(At(100));  // [10, 100)
  log.OnTick(At(110));
  log.OnTick(At(400));  // [120, 400)
  log.OnTick(At(410));
  EXPECT_EQ(log.PausedDuring(At(0), At(410)), absl::Milliseconds(90 + 280));
  EXPECT_EQ(log.PausedDuring(At(50), At(200)), absl::Milliseconds(50 + 80));
}

TEST(PauseLogTest, AnOverdueTickIsAPauseInProgress) {
  PauseLog log;
  log.OnTick(At(0));
  log.OnTick(At(10));
  // The driver has not ticked since 10: at 200 its tick due at 20 is 180 ms overdue.
  EXPECT_EQ(log.PausedDuring(At(0), At(200)), absl::Milliseconds(180));
  EXPECT_EQ(log.PausedDuring(At(100), At(200)), absl::Milliseconds(100));
  // At 60 it is only 40 ms overdue: not (yet) a pause.
  EXPECT_EQ(log.PausedDuring(At(0), At(60)), absl::ZeroDuration());
  // Once it ticks, the pause is recorded and counted once.
  log.OnTick(At(200));
  EXPECT_EQ(log.PausedDuring(At(0), At(200)), absl::Milliseconds(180));
  EXPECT_EQ(log.PausedDuring(At(0), At(205)), absl::Milliseconds(180));
}

TEST(PauseLogTest, ResetForgetsTheLastTickNotThePauses) {
  PauseLog log;
  log.OnTick(At(0));
  log.OnTick(At(100));  // [10, 100)
  log.Reset();
  // A stopped driver's silence is no pause.
  EXPECT_EQ(log.PausedDuring(At(0), At(10'000)), absl::Milliseconds(90));
  log.OnTick(At(5000));  // starts the count again
  log.OnTick(At(5010));
  EXPECT_EQ(log.total_pauses(), 1);
}

TEST(PauseLogTest, KeepsOnlyTheNewestPauses) {
  PauseLog log({.max_pauses = 3});
  int now = 0;
  log.OnTick(At(now));
  for (int i = 0; i < 5; ++i) {
    now += 100;
    log.OnTick(At(now));  // [now − 90, now)
  }
  EXPECT_EQ(log.total_pauses(), 5);
  ASSERT_EQ(log.Pauses().size(), 3u);
  EXPECT_EQ(log.Pauses().front().start, At(210));
  EXPECT_EQ(log.PausedDuring(At(0), At(now)), absl::Milliseconds(3 * 90));
}

TEST(PauseLogTest, TicksGoingBackwardsAreIgnored) {
  PauseLog log;
  log.OnTick(At(100));
  log.OnTick(At(50));
  log.OnTick(At(110));
  EXPECT_EQ(log.total_pauses(), 0);
}

TEST(TimeoutGraceTest, IsThePauseCappedAtTheMaximum) {
  const absl::Duration cap = absl::Milliseconds(100);
  EXPECT_EQ(TimeoutGrace(absl::ZeroDuration(), cap), absl::ZeroDuration());
  EXPECT_EQ(TimeoutGrace(absl::Milliseconds(30), cap), absl::Milliseconds(30));
  EXPECT_EQ(TimeoutGrace(absl::Milliseconds(500), cap), cap);
  EXPECT_EQ(TimeoutGrace(absl::Milliseconds(-5), cap), absl::ZeroDuration());
  EXPECT_EQ(TimeoutGrace(absl::Milliseconds(30), absl::ZeroDuration()), absl::ZeroDuration());
  EXPECT_EQ(TimeoutGrace(absl::Milliseconds(30), absl::Milliseconds(-1)), absl::ZeroDuration());
}

TEST(PauseDetectorTest, StartsAndStopsCleanly) {
  PauseDetector detector;
  EXPECT_FALSE(detector.running());
  detector.Stop();  // no-op
  detector.Start();
  EXPECT_TRUE(detector.running());
  detector.Start();  // no-op
  detector.Stop();
  EXPECT_FALSE(detector.running());
  // Stopped, it infers no pause from its own silence.
  const absl::Time now = Clock::Real()->Now();
  EXPECT_EQ(detector.PausedDuring(now, now + absl::Hours(1)), absl::ZeroDuration());
  detector.Start();  // restartable; the destructor stops it
  EXPECT_TRUE(detector.running());
}

}  // namespace
}  // namespace stategate::reliability
