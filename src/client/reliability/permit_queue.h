// PermitQueue: the calls waiting for a concurrency permit (ReliabilityOptions::
// limiter_max_wait), the most important tier first and, within a tier, the oldest first.
// When a permit frees, the caller pops one waiter and runs its wake-up, which tries for a
// permit again. While a more important call waits, a less important one is not given a
// permit (AnyMoreImportantThan): under pressure the client sheds the lowest tier first, as
// the gateway's admission does, instead of serving whoever asked last.
//
// A wait that cannot succeed is not begun (WouldWaitInVain): if the permits its tier can
// expect before its wait ends (as many as it and less important tiers took lately) all go
// to the calls waiting before it, it would only be refused at the end of its wait.
// Refusing it at once answers a shed call in microseconds instead.
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
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/client/reliability/retry_budget.h"

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

  // Ranks run from 0 to `ranks` - 1. `wait`: how long a waiter may wait for a permit
  // (ReliabilityOptions::limiter_max_wait); `now` starts the counts of permits.
  PermitQueue(size_t capacity, int ranks, absl::Duration wait, absl::Time now);

  // Queues `wake` for a waiter that waits until `until` at most; nullopt when `capacity`
  // waiters are queued already.
  std::optional<Ticket> Push(Rank rank, absl::Time until, Wake wake);
  // Removes a waiter still queued: false if it was popped (its wake-up runs or ran).
  bool Remove(const Ticket& ticket);
  // The most important, oldest waiter's wake-up, removed from the queue; null if none waits.
  Wake Pop();
  // Whether a waiter more important than `rank` is queued.
  bool AnyMoreImportantThan(Rank rank) const;
  size_t size() const;

  // A permit was released at `now`, whether or not anyone waited for it. Lock-free.
  void OnReleased(absl::Time now);
  // A call of `rank` took a permit at `now`, whether or not it waited for it. Ranks past
  // the last count as the last, here and in WouldWaitInVain.
  void OnTaken(Rank rank, absl::Time now);
  // Whether a waiter of `rank` queued at `now` to wait until `until` would wait in vain.
  // Its tier is taken to get permits at the rate that calls of its tier and less
  // important ones took them over the last `wait` (measured over half a wait at least):
  // what the more important tiers left. Each waiter before it (of its tier, or a more
  // important one: a backlog on top of that rate) takes one if more permits are due by
  // the end of its own wait than those before it took; in vain: those before it take as
  // many as are due by `until`. The counts cover 4/5 to 5/5 of a wait and are divided by
  // a whole one, so the rate leans low (toward refusing) by up to a fifth.
  // False while no permit was released in that time (the client idle, or every call
  // stalled): nothing then says that the wait is hopeless, and a stall is waited out.
  // False too while nobody of its tier or a more important one waits: the next permit to
  // free is its, however rarely its tier took one.
  bool WouldWaitInVain(Rank rank, absl::Time now, absl::Time until);

 private:
  const size_t capacity_;
  mutable absl::Mutex mu_;
  struct Waiter {
    absl::Time until;
    Wake wake;
  };
  // By (rank, sequence): the first entry is the next to wake.
  std::map<std::pair<Rank, uint64_t>, Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  // waiters_.size(), written under mu_: a hint for the lock-free checks.
  std::atomic<size_t> waiting_{0};

  // taken_'s index for `rank`.
  size_t TakenIndex(Rank rank) const;

  const absl::Duration wait_;
  const absl::Time counting_since_;
  // Every completion releases a permit: only when the last one was is kept, lock-free.
  std::atomic<int64_t> last_release_us_;
  // Permits taken over the last `wait`, by rank: a lock of its own keeps them off mu_.
  absl::Mutex counts_mu_;
  std::vector<ExpiringTokenBucket> taken_ ABSL_GUARDED_BY(counts_mu_);
};

}  // namespace stategate::reliability
