// WorkerPool: a fixed set of threads running submitted tasks in FIFO order. The gRPC
// callback threads hand calls here because engine work may block on disk (WAL fsync).
// Thread-safe. The destructor runs every task already submitted, then joins.
#pragma once

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace stategate {

class WorkerPool {
 public:
  explicit WorkerPool(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
  }
  ~WorkerPool() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    for (std::thread& t : threads_) t.join();
  }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void Submit(std::function<void()> task) {
    absl::MutexLock lock(&mu_);
    tasks_.push_back(std::move(task));
  }

  // Submit, unless `max_queued` tasks already wait for a thread: then false, and `task` is
  // dropped unrun. The queue of a pool that must never grow without a bound.
  [[nodiscard]] bool TrySubmit(std::function<void()> task, size_t max_queued) {
    absl::MutexLock lock(&mu_);
    if (tasks_.size() >= max_queued) return false;
    tasks_.push_back(std::move(task));
    return true;
  }

 private:
  void Run() {
    while (true) {
      std::function<void()> task;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](WorkerPool* p) { return p->stopping_ || !p->tasks_.empty(); }, this));
        if (tasks_.empty()) return;  // stopping, and nothing left to run
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace stategate
