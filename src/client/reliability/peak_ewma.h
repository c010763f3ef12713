// Load-aware endpoint choice (Finagle and Linkerd, "Beyond Round Robin"): each endpoint keeps
// a peak-EWMA of its latency and a count of its outstanding requests; a request goes to the
// cheaper of two endpoints drawn at random (power of two choices), where
// cost = ewma × (outstanding + 1). Slow or failing endpoints get less traffic at once (the
// peak), and win it back as their estimate decays.
//
// The estimate:
//   - a sample larger than the estimate replaces it at once (the peak);
//   - a smaller sample r is blended in by elapsed time, not by sample count:
//     E = E·w + r·(1 − w), w = exp(−Δ/decay), Δ the time since the last sample;
//   - between samples the estimate is read as E·exp(−Δ/decay), decaying towards zero, so an
//     endpoint that gets no traffic (because it was slow) becomes attractive again after a few
//     decay times and is probed. Reading does not change it.
//
// Thread-safety: EndpointLoad is thread-safe. PickTwo only reads.
#pragma once

#include <atomic>
#include <cstddef>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/random/bit_gen_ref.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/common/clock.h"

namespace stategate::reliability {

struct PeakEwmaOptions {
  // Time constant of the decay: an old sample's weight falls by e every `decay`.
  // Default: 10 s.
  absl::Duration decay = absl::Seconds(10);
  // The estimate of an endpoint that has not answered yet. Default: 30 ms (Linkerd's).
  absl::Duration default_rtt = absl::Milliseconds(30);
  // The sample OnFailure() records at least, so that an endpoint that fails fast does not
  // look fast. Default: 1 s.
  absl::Duration failure_penalty = absl::Seconds(1);
};

// The load of one endpoint. Every OnStart() must be followed by exactly one of OnSuccess(),
// OnFailure() or OnCancel().
class EndpointLoad {
 public:
  // `clock` must outlive the object.
  explicit EndpointLoad(PeakEwmaOptions options = {}, const Clock* clock = Clock::Real());

  // A request was sent to this endpoint.
  void OnStart();
  // It answered after `rtt`: any answer the server produced, errors such as NOT_FOUND included.
  void OnSuccess(absl::Duration rtt);
  // It failed in a way that says the endpoint is unhealthy (UNAVAILABLE, INTERNAL, deadline
  // exceeded, …) after `elapsed`: records max(elapsed, failure_penalty).
  void OnFailure(absl::Duration elapsed);
  // It was cancelled after `elapsed` (e.g. the losing attempt of a hedge). Its latency is at
  // least `elapsed`, so that raises the estimate if larger; a smaller value says nothing.
  void OnCancel(absl::Duration elapsed);

  // The estimate now, decayed since the last sample.
  absl::Duration Ewma() const;
  int outstanding() const { return outstanding_.load(std::memory_order_relaxed); }
  // Ewma() in nanoseconds (at least 1) × (outstanding() + 1). Lower is better.
  double Cost() const;

 private:
  void Finish();
  void Observe(double rtt_ns, bool peak_only);
  double DecayedNanos(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const PeakEwmaOptions options_;
  const double decay_ns_;
  const Clock* const clock_;
  std::atomic<int> outstanding_{0};
  mutable absl::Mutex mu_;
  double ewma_ns_ ABSL_GUARDED_BY(mu_);
  absl::Time stamp_ ABSL_GUARDED_BY(mu_);  // of the last sample
};

// Power of two choices: draws two distinct endpoints uniformly and returns the index of the
// one with the lower Cost() (the first drawn on a tie). `exclude`, if set, is never returned
// while there is any other endpoint (so a hedge goes to a different endpoint than its first
// attempt); with one endpoint that one is returned, even if excluded, and the caller should
// check. Requires a non-empty `endpoints` with no null entries.
size_t PickTwo(const std::vector<EndpointLoad*>& endpoints, absl::BitGenRef gen,
               std::optional<size_t> exclude = std::nullopt);

}  // namespace stategate::reliability
