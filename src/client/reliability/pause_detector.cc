#include "src/client/reliability/pause_detector.h"

#include <algorithm>

namespace stategate::reliability {
namespace {

absl::Duration Overlap(absl::Time a_start, absl::Time a_end, absl::Time b_start, absl::Time b_end) {
  const absl::Time start = std::max(a_start, b_start);
  const absl::Time end = std::min(a_end, b_end);
  return end > start ? end - start : absl::ZeroDuration();
}

}  // namespace

PauseLog::PauseLog(PauseDetectorOptions options) : options_(options) {}

void PauseLog::OnTick(absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (!ticking_) {
    ticking_ = true;
    last_tick_ = now;
    return;
  }
  if (now <= last_tick_) return;
  const absl::Time due = last_tick_ + options_.interval;
  if (now - due > options_.threshold) {
    pauses_.push_back(Pause{.start = due, .end = now});
    ++total_pauses_;
    while (pauses_.size() > static_cast<size_t>(std::max(options_.max_pauses, 0))) {
      pauses_.pop_front();
    }
  }
  last_tick_ = now;
}

void PauseLog::Reset() {
  absl::MutexLock lock(&mu_);
  ticking_ = false;
}

absl::Duration PauseLog::PausedDuring(absl::Time from, absl::Time to) const {
  if (to <= from) return absl::ZeroDuration();
  absl::MutexLock lock(&mu_);
  absl::Duration paused;
  // Newest first: stop at the first pause that ended before the window.
  for (auto it = pauses_.rbegin(); it != pauses_.rend() && it->end > from; ++it) {
    paused += Overlap(it->start, it->end, from, to);
  }
  if (ticking_) {
    const absl::Time due = last_tick_ + options_.interval;
    if (to - due > options_.threshold) paused += Overlap(due, to, from, to);
  }
  return paused;
}

std::vector<Pause> PauseLog::Pauses() const {
  absl::MutexLock lock(&mu_);
  return {pauses_.begin(), pauses_.end()};
}

int64_t PauseLog::total_pauses() const {
  absl::MutexLock lock(&mu_);
  return total_pauses_;
}

PauseDetector::PauseDetector(PauseDetectorOptions options, const Clock* clock)
    : options_(options), clock_(clock), log_(options) {}

PauseDetector::~PauseDetector() { Stop(); }

void PauseDetector::Start() {
  if (thread_.joinable()) return;
  {
    absl::MutexLock lock(&mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Run(); });
}

void PauseDetector::Stop() {
  if (!thread_.joinable()) return;
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
  log_.Reset();
}

void PauseDetector::Run() {
  absl::MutexLock lock(&mu_);
  while (!stop_) {
    log_.OnTick(clock_->Now());
    mu_.AwaitWithTimeout(absl::Condition(&stop_), options_.interval);
  }
}

absl::Duration TimeoutGrace(absl::Duration paused_during_call, absl::Duration max_grace) {
  return std::clamp(paused_during_call, absl::ZeroDuration(),
                    std::max(max_grace, absl::ZeroDuration()));
}

}  // namespace stategate::reliability
