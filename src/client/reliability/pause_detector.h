// GC-tolerant timeouts. A call's deadline timer can fire "late" because this process, not the
// server, was stalled: a GC or allocator pause in a host runtime, SIGSTOP, page faults, the
// scheduler keeping it off the CPU. The answer may then already sit in a socket buffer, and
// failing the call would blame the server for our own pause. So: when a call's deadline timer
// fires, ask how long the process was paused during the call, and if it was, grant
// TimeoutGrace(paused, max_grace) more before failing it.
//
// PauseLog is the bookkeeping, driven by ticks and so testable with a fake clock: a tick that
// arrives more than `threshold` after it was due (previous tick + interval) records a pause
// [due, arrival). PauseDetector is the driver: a background thread that ticks every `interval`
// of real time.
//
// Thread-safety: PauseLog is thread-safe. PauseDetector's PausedDuring() may be called from
// any thread; Start() and Stop() must not race each other.
#pragma once

#include <cstdint>
#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/common/clock.h"

namespace stategate::reliability {

struct PauseDetectorOptions {
  // How often the driver ticks. Default: 10 ms.
  absl::Duration interval = absl::Milliseconds(10);
  // A tick later than this is a pause; below it is ordinary scheduling jitter. Default: 50 ms.
  absl::Duration threshold = absl::Milliseconds(50);
  // Pauses remembered (the oldest are forgotten first). Default: 64.
  int max_pauses = 64;
};

// A stretch of time [start, end) during which the process did not run.
struct Pause {
  absl::Time start;
  absl::Time end;
};

class PauseLog {
 public:
  explicit PauseLog(PauseDetectorOptions options = {});

  // A tick observed at `now`. The first tick after construction or Reset() only starts the
  // count; a tick at or before the previous one is ignored.
  void OnTick(absl::Time now);
  // Forgets the last tick (not the pauses): call when the driver stops, so that its silence
  // is not taken for a pause.
  void Reset();

  // Total pause overlapping [from, to). A tick overdue at `to` by more than `threshold`
  // counts as a pause in progress from when it was due to `to`: the timer that asks may run
  // before the driver thread, itself just resumed, has ticked.
  absl::Duration PausedDuring(absl::Time from, absl::Time to) const;

  // The remembered pauses, oldest first.
  std::vector<Pause> Pauses() const;
  // Pauses recorded since construction, including forgotten ones.
  int64_t total_pauses() const;

 private:
  const PauseDetectorOptions options_;
  mutable absl::Mutex mu_;
  bool ticking_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_tick_ ABSL_GUARDED_BY(mu_);
  std::deque<Pause> pauses_ ABSL_GUARDED_BY(mu_);
  int64_t total_pauses_ ABSL_GUARDED_BY(mu_) = 0;
};

class PauseDetector {
 public:
  // `clock` (the real clock in production) must outlive the detector; the thread waits
  // `interval` of real time between ticks whatever the clock.
  explicit PauseDetector(PauseDetectorOptions options = {}, const Clock* clock = Clock::Real());
  // Stops the thread.
  ~PauseDetector();

  PauseDetector(const PauseDetector&) = delete;
  PauseDetector& operator=(const PauseDetector&) = delete;

  // Starts the ticking thread; no-op if running.
  void Start();
  // Stops and joins it; no-op if not running. Pauses recorded so far are kept.
  void Stop();
  bool running() const { return thread_.joinable(); }

  absl::Duration PausedDuring(absl::Time from, absl::Time to) const {
    return log_.PausedDuring(from, to);
  }
  const PauseLog& log() const { return log_; }

 private:
  void Run();

  const PauseDetectorOptions options_;
  const Clock* const clock_;
  PauseLog log_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// The extra time to grant a call whose deadline timer fired, given how long the process was
// paused during the call (PausedDuring(call start, now)): min(paused, max_grace), and zero if
// it was not paused. Grant it once per call: if the answer has not arrived after the grace,
// fail the call. The cap keeps a long stop from turning into an unbounded wait.
absl::Duration TimeoutGrace(absl::Duration paused_during_call, absl::Duration max_grace);

}  // namespace stategate::reliability
