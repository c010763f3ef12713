// Backoff: exponential backoff with full jitter (AWS, "Exponential Backoff and Jitter", 2015):
// the delay before retry n (n = 0 for the first retry) is drawn uniformly from
// [0, min(cap, base * 2^n)]. Of the jitter schemes it does the least total work and spreads
// retries from many clients the most; backoff without jitter synchronises them.
//
// Thread-safety: a Backoff is immutable, so it may be shared freely; the generator passed to
// Delay() must not be used by another thread at the same time (absl::BitGen is not
// thread-safe; give each thread its own, or use a thread-safe URBG).
#pragma once

#include "absl/random/bit_gen_ref.h"
#include "absl/time/time.h"

namespace stategate::reliability {

struct BackoffOptions {
  // The ceiling of the first retry's delay. Default: 25 ms.
  absl::Duration base = absl::Milliseconds(25);
  // No delay ever exceeds this. Default: 1 s.
  absl::Duration cap = absl::Seconds(1);
};

class Backoff {
 public:
  explicit Backoff(BackoffOptions options = {}) : options_(options) {}

  // min(cap, base * 2^attempt), saturating: never overflows, whatever `attempt` is. A negative
  // attempt counts as 0; a non-positive base or cap gives zero.
  absl::Duration Ceiling(int attempt) const;

  // A delay drawn uniformly from [0, Ceiling(attempt)], at nanosecond resolution.
  absl::Duration Delay(int attempt, absl::BitGenRef gen) const;

  const BackoffOptions& options() const { return options_; }

 private:
  BackoffOptions options_;
};

}  // namespace stategate::reliability
