// PermitQueue: the calls waiting for a concurrency permit (ReliabilityOptions::
// limiter_max_wait), the most important tier first and, within a tier, the oldest first.
// When a permit frees, the caller pops one waiter and runs its wake-up, which tries for a
// permit again. While a more important call waits, a less important one is not given a
// permit (AnyMoreImportantThan): under pressure the client sheds the lowest tier first, as
// the gateway's admission does, instead of serving whoever asked last.
//
// Bounded: Push refuses past `capacity` waiters. Thread-safe; a wake-up runs on the thread
// that popped it, after the queue's lock is released. Pop and AnyMoreImportantThan, which
// every call's permit asks, take no lock while nobody waits.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace stategate::reliability {

class PermitQueue {
 public:
  // 0 is the most important rank.
  using Rank = int;
  // A queued waiter, for Remove.
  struct Ticket {
    Rank rank = 0;
    uint64_t sequence = 0;
  };
  using Wake = std::function<void()>;

  explicit PermitQueue(size_t capacity) : capacity_(capacity) {}

  // Queues `wake`; nullopt when `capacity` waiters are queued already.
  std::optional<Ticket> Push(Rank rank, Wake wake);
  // Removes a waiter still queued: false if it was popped (its wake-up runs or ran).
  bool Remove(const Ticket& ticket);
  // The most important, oldest waiter's wake-up, removed from the queue; null if none waits.
  Wake Pop();
  // Whether a waiter more important than `rank` is queued.
  bool AnyMoreImportantThan(Rank rank) const;
  size_t size() const;

 private:
  const size_t capacity_;
  mutable absl::Mutex mu_;
  // By (rank, sequence): the first entry is the next to wake.
  std::map<std::pair<Rank, uint64_t>, Wake> waiters_ ABSL_GUARDED_BY(mu_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  // waiters_.size(), written under mu_: a hint for the lock-free checks.
  std::atomic<size_t> waiting_{0};
};

}  // namespace stategate::reliability
