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
  absl::Mutex mu;
  OpenLoopResult result ABSL_GUARDED_BY(mu);
  std::vector<bool> finished ABSL_GUARDED_BY(mu);  // by operation index
  int64_t finished_count ABSL_GUARDED_BY(mu) = 0;
  bool closed ABSL_GUARDED_BY(mu) = false;  // the run is over: late callbacks are ignored
};

}  // namespace

ArrivalSchedule::ArrivalSchedule(double rate, absl::Duration duration) : rate_(rate) {
  assert(rate > 0 && duration >= absl::ZeroDuration());
  // The number of i >= 0 with i / rate < duration; the small tolerance keeps an exact
  // product (300 * 5 s) from gaining an arrival through floating-point noise.
  const double product = rate * absl::ToDoubleSeconds(duration);
  count_ = static_cast<int64_t>(std::ceil(product - 1e-9));
  if (count_ < 0) count_ = 0;
}

absl::Duration ArrivalSchedule::Offset(int64_t index) const {
  return absl::Nanoseconds(std::llround(static_cast<double>(index) * 1e9 / rate_));
}

absl::Duration IntendedStartLatency(absl::Time intended, absl::Time completed) {
  return std::max(completed - intended, absl::ZeroDuration());
}

OpenLoopResult RunOpenLoop(const OpenLoopOptions& options, const AsyncOp& op, const Clock* clock,
                           const Sleeper& sleep) {
  const ArrivalSchedule schedule(options.rate, options.duration);
  auto state = std::make_shared<RunState>();
  {
    absl::MutexLock lock(&state->mu);
    state->finished.assign(schedule.count(), false);
  }
  const absl::Duration slo_target = options.slo_target;

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
    op(i, [state, i, intended, clock, slo_target](absl::Status status) {
      absl::MutexLock lock(&state->mu);
      if (state->closed || state->finished[i]) return;
      state->finished[i] = true;
      ++state->finished_count;
      const absl::Duration latency = IntendedStartLatency(intended, clock->Now());
      OpenLoopResult& r = state->result;
      r.latency_us.Record(absl::ToInt64Microseconds(latency));
      if (status.ok()) {
        ++r.ok;
        if (latency <= slo_target) ++r.ok_within_slo;
      } else {
        ++r.errors[absl::StatusCodeToString(status.code())];
      }
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
  OpenLoopResult& r = state->result;
  for (int64_t i = 0; i < schedule.count(); ++i) {
    if (state->finished[i]) continue;
    r.latency_us.Record(
        absl::ToInt64Microseconds(IntendedStartLatency(start + schedule.Offset(i), end)));
    ++r.errors[kUnfinished];
  }
  r.issued = schedule.count();
  r.max_issue_lag = max_lag;
  return std::move(r);
}

}  // namespace stategate::bench
