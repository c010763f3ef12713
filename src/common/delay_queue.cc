#include "src/common/delay_queue.h"

namespace stategate {

DelayQueue::DelayQueue() : thread_([this] { Run(); }) {}

DelayQueue::~DelayQueue() { Stop(); }

DelayQueue::Handle DelayQueue::Schedule(absl::Duration delay, std::function<void()> task) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      const Handle handle(absl::Now() + delay, next_sequence_++);
      entries_.emplace(handle, std::move(task));
      ++pending_;
      changed_.Signal();
      return handle;
    }
  }
  task();
  return Handle(absl::InfinitePast(), 0);
}

bool DelayQueue::Cancel(const Handle& handle) {
  std::function<void()> dropped;  // destroyed outside the lock: it may own anything
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(handle);
  if (it == entries_.end()) return false;
  dropped = std::move(it->second);
  entries_.erase(it);
  --pending_;
  return true;
}

void DelayQueue::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    changed_.Signal();
  }
  // The timer thread runs what is left, then exits.
  std::call_once(joined_, [this] { thread_.join(); });
}

size_t DelayQueue::pending() const {
  absl::MutexLock lock(&mu_);
  return pending_;
}

void DelayQueue::Run() {
  mu_.Lock();
  while (true) {
    if (entries_.empty()) {
      if (stopping_) break;
      changed_.Wait(&mu_);
      continue;
    }
    auto first = entries_.begin();
    if (!stopping_ && absl::Now() < first->first.first) {
      // Woken early by an earlier entry or by Stop; either way look again.
      changed_.WaitWithDeadline(&mu_, first->first.first);
      continue;
    }
    std::function<void()> task = std::move(first->second);
    entries_.erase(first);
    mu_.Unlock();
    task();
    mu_.Lock();
    --pending_;
  }
  mu_.Unlock();
}

}  // namespace stategate
