// Budgets that bound the extra load a client adds when things go wrong.
//
// RetryBudget (Finagle's retry budget): every original request deposits `ratio` of a retry
// token and every retry withdraws one whole token; deposits and withdrawals both expire after
// `ttl`, so over any ttl window retries ≤ ratio · requests + min_retries_per_second · ttl. The
// floor (a reserve of min_retries_per_second · ttl tokens that never expires) lets a client
// with little traffic still retry. Under a full outage the budget caps retries at about
// `ratio` of the offered load instead of multiplying it by the attempt count.
//
// HedgeBudget: hedged (backup) requests spend from the same kind of expiring token bucket,
// `ratio` of a token per request, with no floor, and additionally at most `max_in_flight`
// hedges may be outstanding at once, so hedging never doubles the load in an overload.
//
// ExpiringTokenBucket is the windowed sum both are built on (PermitQueue counts the permits
// each tier took with it too).
//
// Thread-safety: RetryBudget and HedgeBudget are thread-safe; ExpiringTokenBucket is not.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/common/clock.h"

namespace stategate::reliability {

// A sum of signed integer amounts, each of which expires `ttl` after it was added. Time is cut
// into `slices` slices of ttl / slices, starting at the construction time; an amount added in
// a slice expires when the slice `slices` later begins, so it lives between
// ttl · (1 − 1/slices) and ttl (exactly ttl if added at a slice boundary). Time that moves
// backwards is treated as standing still. Not thread-safe.
class ExpiringTokenBucket {
 public:
  ExpiringTokenBucket(absl::Duration ttl, int slices, absl::Time now);

  void Add(int64_t amount, absl::Time now);
  // The sum of the amounts that have not expired at `now`.
  int64_t Sum(absl::Time now);

 private:
  void Advance(absl::Time now);

  const absl::Time origin_;
  const absl::Duration slice_;
  std::vector<int64_t> amounts_;  // ring, indexed by slice number % size
  int64_t current_slice_ = 0;     // slice number of the newest slice
  int64_t sum_ = 0;               // sum of amounts_
};

struct RetryBudgetOptions {
  // Retry tokens deposited per original request. Default: 0.2 (retries ≤ 20 % of requests).
  double ratio = 0.2;
  // Retries always allowed per second, whatever the traffic. Default: 10.
  double min_retries_per_second = 10;
  // How long deposits and withdrawals count. Default: 10 s.
  absl::Duration ttl = absl::Seconds(10);
};

class RetryBudget {
 public:
  // `clock` must outlive the budget.
  explicit RetryBudget(RetryBudgetOptions options = {}, const Clock* clock = Clock::Real());

  // Deposits `ratio` of a token. Call once per original request: not for its retries or hedges.
  void OnRequest();
  // Takes one token and returns true if a whole token is available (deposits plus the floor's
  // reserve), else changes nothing and returns false.
  [[nodiscard]] bool TryWithdraw();
  // Whole retries available now.
  int64_t Balance() const;

 private:
  const int64_t deposit_;  // in micro-tokens
  const int64_t reserve_;  // in micro-tokens
  const Clock* const clock_;
  mutable absl::Mutex mu_;
  mutable ExpiringTokenBucket tokens_ ABSL_GUARDED_BY(mu_);
};

struct HedgeBudgetOptions {
  // Hedge tokens deposited per original request. Default: 0.05 (hedges ≤ 5 % of requests).
  double ratio = 0.05;
  // Hedges outstanding at once, at most. Default: 10.
  int max_in_flight = 10;
  // How long deposits and withdrawals count. Default: 10 s.
  absl::Duration ttl = absl::Seconds(10);
};

class HedgeBudget {
 public:
  // `clock` must outlive the budget.
  explicit HedgeBudget(HedgeBudgetOptions options = {}, const Clock* clock = Clock::Real());

  // Deposits `ratio` of a token. Call once per original request: not for its retries or hedges.
  void OnRequest();
  // If a whole token is available and fewer than max_in_flight hedges are outstanding, takes
  // the token and a slot and returns true; else changes nothing and returns false. Every true
  // must be followed by exactly one Release() when that hedge finishes (won, lost, cancelled).
  [[nodiscard]] bool TryAcquire();
  // Gives back the slot taken by a successful TryAcquire(); the token stays spent.
  void Release();

  int in_flight() const;
  // Whole hedges the token bucket allows now, ignoring the in-flight cap.
  int64_t Balance() const;

 private:
  const int64_t deposit_;  // in micro-tokens
  const int max_in_flight_;
  const Clock* const clock_;
  mutable absl::Mutex mu_;
  mutable ExpiringTokenBucket tokens_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace stategate::reliability
