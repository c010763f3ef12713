// DelayQueue: runs tasks after a delay on one timer thread, so that a delayed call holds no
// worker thread while it waits. Tasks must be quick (hand work to a WorkerPool, or finish
// a call); they run in due order, ties in the order scheduled. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace stategate {

class DelayQueue {
 public:
  DelayQueue();
  // Stop(), then joins the timer thread.
  ~DelayQueue();
  DelayQueue(const DelayQueue&) = delete;
  DelayQueue& operator=(const DelayQueue&) = delete;

  // Identifies a scheduled task, for Cancel.
  using Handle = std::pair<absl::Time, uint64_t>;

  // Runs `task` on the timer thread once `delay` has passed. After Stop, runs it at once
  // on the calling thread instead.
  Handle Schedule(absl::Duration delay, std::function<void()> task);

  // Drops a task that has not started running; false if it ran, runs, or was dropped.
  bool Cancel(const Handle& handle);

  // Runs every waiting task now, without waiting out its delay, and makes later Schedule
  // calls run theirs at once: a draining server must not keep calls waiting on a timer.
  // Idempotent.
  void Stop();

  // Tasks scheduled and not yet run.
  size_t pending() const;

 private:
  void Run();

  mutable absl::Mutex mu_;
  absl::CondVar changed_;
  // By (due, order scheduled).
  std::map<Handle, std::function<void()>> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Scheduled and not yet finished running, including one being run now.
  size_t pending_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
  std::once_flag joined_;
};

}  // namespace stategate
