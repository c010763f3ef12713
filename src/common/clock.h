// Clock: the one source of "now" for code that needs it, injectable so that tests control
// time. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace stategate {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;

  int64_t NowMicros() const { return absl::ToUnixMicros(Now()); }

  // The process-wide real clock; never destroyed.
  static Clock* Real();
};

// A clock that moves only when told to. For tests.
class FakeClock : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'700'000'000))
      : now_us_(absl::ToUnixMicros(start)) {}
  absl::Time Now() const override { return absl::FromUnixMicros(now_us_.load()); }
  void Advance(absl::Duration d) { now_us_ += absl::ToInt64Microseconds(d); }
  void Set(absl::Time t) { now_us_ = absl::ToUnixMicros(t); }

 private:
  std::atomic<int64_t> now_us_;
};

}  // namespace stategate
