// LatencyTracker: quantiles of the latencies recorded in a recent time window, such as the
// p95 that sets the hedge delay (The Tail at Scale: hedge after the p95 for ~5 % extra load).
//
// The window is a ring of `buckets` time slices, each a small log-linear histogram of
// microseconds: exact below 64 µs, then 32 buckets per power of two, so a quantile is reported
// at most 1/32 (about 3 %) above the true sample value and never below it; values are capped
// at 2^36 µs (about 19 h). A sample expires when the slice `buckets` slices after its own
// begins: it counts for between window · (1 − 1/buckets) and window. Record is O(1);
// Quantile scans 1,024 counters. About 50 KB per tracker.
//
// Thread-safety: thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/common/clock.h"

namespace stategate::reliability {

struct LatencyTrackerOptions {
  // How far back samples count. Default: 10 s.
  absl::Duration window = absl::Seconds(10);
  // Time slices the window is cut into. Default: 10 (1 s each).
  int buckets = 10;
  // Quantile() answers nothing while the window holds fewer samples. Default: 20.
  int64_t min_samples = 20;
};

class LatencyTracker {
 public:
  // `clock` must outlive the tracker.
  explicit LatencyTracker(LatencyTrackerOptions options = {}, const Clock* clock = Clock::Real());

  // Counts one latency (negative counts as zero) in the current slice.
  void Record(absl::Duration latency);

  // The latency at quantile q in [0, 1] of the samples in the window: the smallest recorded
  // value v such that at least ceil(q · Count()) samples are ≤ v, up to bucket precision and
  // never above the largest sample in the window. nullopt while Count() < min_samples.
  std::optional<absl::Duration> Quantile(double q) const;

  // Samples in the window now.
  int64_t Count() const;

 private:
  struct Slice {
    std::vector<uint32_t> counts;
    int64_t total = 0;
    int64_t max_us = 0;
  };

  void Advance(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const LatencyTrackerOptions options_;
  const absl::Time origin_;
  const absl::Duration slice_length_;
  const Clock* const clock_;
  mutable absl::Mutex mu_;
  mutable std::vector<Slice> slices_ ABSL_GUARDED_BY(mu_);    // ring by slice number
  mutable std::vector<int64_t> totals_ ABSL_GUARDED_BY(mu_);  // per bucket, over slices_
  mutable int64_t count_ ABSL_GUARDED_BY(mu_) = 0;
  mutable int64_t current_slice_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace stategate::reliability
