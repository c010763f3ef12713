// An open-loop load generator: one thread starts asynchronous operations at fixed arrival
// times (operation i at start + i / rate), whether or not earlier ones have finished, and
// each operation's latency is measured from its INTENDED start, not from when it was
// actually issued. A stalled server or a late issuing thread therefore shows up in the
// latency of every operation it delays, instead of silently thinning the load
// ("coordinated omission"). The run is bounded: issuing stops at `duration`, and operations
// still out `drain_timeout` later are counted as unfinished.
//
// RunOpenLoop is thread-safe to call; the completion callbacks it hands out may be called
// from any thread, also after RunOpenLoop returned (they are then ignored).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "src/bench/load_recorder.h"
#include "src/common/clock.h"
#include "src/common/histogram.h"

namespace stategate::bench {

// A window of a run in which operations arrive at another rate (an overload).
struct RateWindow {
  absl::Duration start;
  absl::Duration end;
  double rate = 0;
};

// The arrival times of a run: operation i (0 <= i < count()) is due at Offset(i) after the
// start. Arrivals fall in [0, duration), at `rate` per second, or in [window.start,
// window.end) at window.rate: ceil(rate * duration) of them without a window.
class ArrivalSchedule {
 public:
  // Requires rate > 0 and duration >= 0; a window needs 0 <= start <= end <= duration and
  // rate > 0.
  ArrivalSchedule(double rate, absl::Duration duration,
                  std::optional<RateWindow> window = std::nullopt);

  int64_t count() const { return before_ + during_ + after_; }
  // Computed from the index (index / rate, rounded to the nanosecond, within its part of the
  // run), so no error builds up.
  absl::Duration Offset(int64_t index) const;

 private:
  double rate_;
  RateWindow window_;   // empty (start == end == duration) without one
  int64_t before_ = 0;  // arrivals in [0, window.start)
  int64_t during_ = 0;  // in [window.start, window.end)
  int64_t after_ = 0;   // in [window.end, duration)
};

// The latency of an operation that was due at `intended` and completed at `completed`: the
// time the caller waited for it, however late it was issued. Never negative.
absl::Duration IntendedStartLatency(absl::Time intended, absl::Time completed);

struct OpenLoopOptions {
  // Operations started per second. Default: 500.
  double rate = 500;
  // How long operations are started for. Default: 10 s.
  absl::Duration duration = absl::Seconds(10);
  // How long, after the last start, the run waits for operations still out. Default: 1 s.
  absl::Duration drain_timeout = absl::Seconds(1);
  // Successful operations at or under this latency count as within the SLO. Default: 0.
  absl::Duration slo_target = absl::ZeroDuration();
  // The SLO target of operation `index`, when operations differ (reads, writes, scans);
  // called on completion, after the operation was started. Default: none (slo_target).
  std::function<absl::Duration(int64_t index)> slo_target_of;
  // The offered rate in a window of the run (ArrivalSchedule). Default: none.
  std::optional<RateWindow> rate_window;
  // Where every operation is also recorded, by intended start, so that the caller can watch
  // the run while it goes on and read its per-second series. Default: none (the run records
  // into its own).
  LoadRecorder* recorder = nullptr;
  // More recorders for operation `index` (say, its priority tier's and its shard's);
  // called on completion. Default: none.
  std::function<std::vector<LoadRecorder*>(int64_t index)> also_record_in;
};

struct OpenLoopResult {
  int64_t issued = 0;
  int64_t ok = 0;
  int64_t ok_within_slo = 0;  // successful and latency <= slo_target
  // Failures by status code name ("UNAVAILABLE", ...); kUnfinished for operations still
  // out at the end of the drain.
  std::map<std::string, int64_t> errors;
  // Latency from the intended start, in microseconds, of every operation: successful or
  // failed at completion, unfinished ones at the end of the drain (a lower bound).
  Histogram latency_us;
  // How far behind its schedule the issuing thread fell at worst; large values mean the
  // generator, not the system under test, limited the load.
  absl::Duration max_issue_lag;
};

// Starts operation `index`; must arrange for `done` to be called once, from any thread, with
// its outcome. It should not block: the next arrival waits for it.
using AsyncOp = std::function<void(int64_t index, std::function<void(absl::Status)> done)>;

// Sleeps for the given time (on `clock`'s timeline).
using Sleeper = std::function<void(absl::Duration)>;

// Runs the load. Time is read from `clock` and waited with `sleep`, so that a test can run it
// on a FakeClock with a sleeper that advances it. Requires options.rate > 0.
OpenLoopResult RunOpenLoop(const OpenLoopOptions& options, const AsyncOp& op,
                           const Clock* clock = Clock::Real(),
                           const Sleeper& sleep = absl::SleepFor);

}  // namespace stategate::bench
