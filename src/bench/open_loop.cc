#include "src/bench/open_loop.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace stategate::bench {
namespace {

// How often the drain checks whether every operation has finished.
constexpr absl::Duration kDrainPoll = absl::Milliseconds(1);

// What the completion callbacks share with the run; outlives the run if a callback does.
struct RunState {
  LoadRecorder own_recorder;
  absl::Mutex mu;
  std::vector<bool> finished ABSL_GUARDED_BY(mu);  // by operation index
  int64_t finished_count ABSL_GUARDED_BY(mu) = 0;
  bool closed ABSL_GUARDED_BY(mu) = false;  // the run is over: late callbacks are ignored
};

int64_t ArrivalsIn(double rate, absl::Duration length) {
  // The number of i >= 0 with i / rate < length; the small tolerance keeps an exact
  // product (300 * 5 s) from gaining an arrival through floating-point noise.
  const double product = rate * absl::ToDoubleSeconds(length);
  return std::max<int64_t>(0, static_cast<int64_t>(std::ceil(product - 1e-9)));
}

absl::Duration AtRate(int64_t index, double rate) {
  return absl::Nanoseconds(std::llround(static_cast<double>(index) * 1e9 / rate));
}

}  // namespace

ArrivalSchedule::ArrivalSchedule(double rate, absl::Duration duration,
                                 std::optional<RateWindow> window)
    : rate_(rate), window_(window.value_or(RateWindow{duration, duration, rate})) {
  assert(rate > 0 && duration >= absl::ZeroDuration());
  assert(absl::ZeroDuration() <= window_.start && window_.start <= window_.end &&
         window_.end <= duration && window_.rate > 0);
  before_ = ArrivalsIn(rate_, window_.start);
  during_ = ArrivalsIn(window_.rate, window_.end - window_.start);
  after_ = ArrivalsIn(rate_, duration - window_.end);
}

absl::Duration ArrivalSchedule::Offset(int64_t index) const {
  if (index < before_) return AtRate(index, rate_);
  index -= before_;
  if (index < during_) return window_.start + AtRate(index, window_.rate);
  return window_.end + AtRate(index - during_, rate_);
}

absl::Duration IntendedStartLatency(absl::Time intended, absl::Time completed) {
  return std::max(completed - intended, absl::ZeroDuration());
}

OpenLoopResult RunOpenLoop(const OpenLoopOptions& options, const AsyncOp& op, const Clock* clock,
                           const Sleeper& sleep) {
  const ArrivalSchedule schedule(options.rate, options.duration, options.rate_window);
  auto state = std::make_shared<RunState>();
  {
    absl::MutexLock lock(&state->mu);
    state->finished.assign(schedule.count(), false);
  }
  // Callbacks may outlive the run, and with it a caller's recorder: they stop using it once
  // the run is closed (both under state->mu).
  LoadRecorder* recorder = options.recorder != nullptr ? options.recorder : &state->own_recorder;
  std::function<absl::Duration(int64_t)> slo_target_of = options.slo_target_of;
  if (!slo_target_of) slo_target_of = [target = options.slo_target](int64_t) { return target; };
  std::function<std::vector<LoadRecorder*>(int64_t)> also = options.also_record_in;
  if (!also) also = [](int64_t) { return std::vector<LoadRecorder*>(); };

  const absl::Time start = clock->Now();
  absl::Duration max_lag = absl::ZeroDuration();
  for (int64_t i = 0; i < schedule.count(); ++i) {
    const absl::Time intended = start + schedule.Offset(i);
    absl::Time now = clock->Now();
    if (now < intended) {
      sleep(intended - now);
      now = clock->Now();
    }
    max_lag = std::max(max_lag, now - intended);
    op(i, [state, recorder, slo_target_of, also, i, offset = intended - start, intended,
           clock](absl::Status status) {
      // Read before waiting for the lock, which other completions hold.
      const absl::Time completed = clock->Now();
      absl::MutexLock lock(&state->mu);
      if (state->closed || state->finished[i]) return;
      state->finished[i] = true;
      ++state->finished_count;
      const absl::Duration latency = IntendedStartLatency(intended, completed);
      recorder->Record(offset, latency, status, slo_target_of(i));
      for (LoadRecorder* more : also(i)) more->Record(offset, latency, status, slo_target_of(i));
    });
  }

  const absl::Time drain_deadline = clock->Now() + options.drain_timeout;
  while (true) {
    {
      absl::MutexLock lock(&state->mu);
      if (state->finished_count == schedule.count()) break;
    }
    const absl::Duration left = drain_deadline - clock->Now();
    if (left <= absl::ZeroDuration()) break;
    sleep(std::min(left, kDrainPoll));
  }

  absl::MutexLock lock(&state->mu);
  state->closed = true;
  const absl::Time end = clock->Now();
  for (int64_t i = 0; i < schedule.count(); ++i) {
    if (state->finished[i]) continue;
    const absl::Duration offset = schedule.Offset(i);
    recorder->RecordUnfinished(offset, IntendedStartLatency(start + offset, end));
    for (LoadRecorder* more : also(i)) {
      more->RecordUnfinished(offset, IntendedStartLatency(start + offset, end));
    }
  }
  LoadStats total = recorder->Total();
  OpenLoopResult r;
  r.issued = schedule.count();
  r.ok = total.ok;
  r.ok_within_slo = total.ok_within_slo;
  r.errors = std::move(total.errors);
  r.latency_us = std::move(total.latency_us);
  r.max_issue_lag = max_lag;
  return r;
}

}  // namespace stategate::bench
