// PooledTarget: the part of every Target whose client blocks (hiredis, libmemcached, the
// record-level calls of KvClient): Start queues the operation for one of the target's own
// worker threads, so the load generator never waits; payload bytes are counted as each
// request is issued; errors name the target. Destroying a target (StopWorkers) lets the
// running operations finish and completes the queued ones with CANCELLED, so a run's
// backlog is not replayed against the servers after the run.
#pragma once

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "src/bench/target.h"
#include "src/common/worker_pool.h"

namespace stategate::bench {

class PooledTarget : public Target {
 public:
  void Start(TargetOp op, OpDone done) final {
    absl::Status invalid = Validate(op);
    if (!invalid.ok()) {
      done(Annotate(std::move(invalid)));
      return;
    }
    workers_->Submit([this, op = std::move(op), done = std::move(done)] {
      absl::Status status = stopping_.load(std::memory_order_acquire)
                                ? absl::CancelledError("the target is shutting down")
                                : Run(op);
      done(Annotate(std::move(status)));
    });
  }

  int64_t payload_bytes_sent() const final {
    return payload_bytes_.load(std::memory_order_relaxed);
  }

 protected:
  // `name` prefixes every error ("redis 127.0.0.1:6379").
  PooledTarget(std::string name, int threads) : name_(std::move(name)) {
    // Workers inherit this thread's signal mask: with SIGPIPE blocked, a write to a server
    // that was killed fails with EPIPE on the worker (hiredis writes with write(2), not
    // send(MSG_NOSIGNAL)) instead of killing the process. A SIGPIPE raised on a worker stays
    // pending on it, harmlessly, until the worker exits.
    sigset_t pipe, old;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, &old);
    workers_ = std::make_unique<WorkerPool>(threads);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }

  // Waits for the running operations and cancels the queued ones. Every subclass calls it
  // first in its destructor, before what the workers use is destroyed.
  void StopWorkers() {
    stopping_.store(true, std::memory_order_release);
    workers_.reset();
  }

  // An error for an operation this target cannot run, before it is queued. Default: OK.
  virtual absl::Status Validate(const TargetOp&) const { return absl::OkStatus(); }

  // Runs `op` (validated) on the calling worker.
  virtual absl::Status Run(const TargetOp& op) = 0;

  // Counts payload (keys, field names and values) as a request is issued.
  void Sent(int64_t bytes) { payload_bytes_.fetch_add(bytes, std::memory_order_relaxed); }

 private:
  absl::Status Annotate(absl::Status status) const {
    return NameTargetError(name_, std::move(status));
  }

  const std::string name_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> payload_bytes_{0};
  std::unique_ptr<WorkerPool> workers_;
};

}  // namespace stategate::bench
