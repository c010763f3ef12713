#include "src/client/reliability/latency_tracker.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace stategate::reliability {
namespace {

constexpr int kSubBits = 5;
constexpr int64_t kSubCount = int64_t{1} << kSubBits;  // 32 buckets per power of two
constexpr int64_t kExact = 2 * kSubCount;              // values below 64 have a bucket each
constexpr int kMaxBits = 36;
constexpr int64_t kMaxValue = (int64_t{1} << kMaxBits) - 1;
// Most significant bits kSubBits + 1 .. kMaxBits − 1 each get kSubCount buckets.
constexpr int kBucketCount = static_cast<int>(kExact + (kMaxBits - kSubBits - 1) * kSubCount);
static_assert(kBucketCount == 1024);

int BucketIndex(int64_t value) {
  const uint64_t v = static_cast<uint64_t>(std::clamp<int64_t>(value, 0, kMaxValue));
  if (v < static_cast<uint64_t>(kExact)) return static_cast<int>(v);
  const int msb = 63 - std::countl_zero(v);              // > kSubBits
  const int shift = msb - kSubBits;                      // >= 1
  const int64_t sub = static_cast<int64_t>(v >> shift);  // in [kSubCount, 2 · kSubCount)
  return static_cast<int>(kExact + (shift - 1) * kSubCount + (sub - kSubCount));
}

// The largest value that falls into bucket `index`.
int64_t BucketUpperBound(int index) {
  if (index < kExact) return index;
  const int64_t rest = index - kExact;
  const int shift = static_cast<int>(rest / kSubCount) + 1;
  const int64_t sub = rest % kSubCount + kSubCount;
  return ((sub + 1) << shift) - 1;
}

}  // namespace

LatencyTracker::LatencyTracker(LatencyTrackerOptions options, const Clock* clock)
    : options_(options),
      origin_(clock->Now()),
      slice_length_(std::max(options.window / std::max(options.buckets, 1), absl::Nanoseconds(1))),
      clock_(clock),
      slices_(std::max(options.buckets, 1)),
      totals_(kBucketCount, 0) {
  for (Slice& slice : slices_) slice.counts.assign(kBucketCount, 0);
}

void LatencyTracker::Advance(absl::Time now) const {
  absl::Duration remainder;
  const int64_t slice = absl::IDivDuration(now - origin_, slice_length_, &remainder);
  if (slice <= current_slice_) return;  // also when time moved backwards
  const int64_t size = static_cast<int64_t>(slices_.size());
  const int64_t steps = std::min(slice - current_slice_, size);
  for (int64_t i = 1; i <= steps; ++i) {
    Slice& expired = slices_[(current_slice_ + i) % size];
    if (expired.total > 0) {
      for (int b = 0; b < kBucketCount; ++b) totals_[b] -= expired.counts[b];
      std::fill(expired.counts.begin(), expired.counts.end(), 0);
      count_ -= expired.total;
      expired.total = 0;
    }
    expired.max_us = 0;
  }
  current_slice_ = slice;
}

void LatencyTracker::Record(absl::Duration latency) {
  const int64_t us = std::clamp<int64_t>(absl::ToInt64Microseconds(latency), 0, kMaxValue);
  const int bucket = BucketIndex(us);
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  Advance(now);
  Slice& slice = slices_[current_slice_ % static_cast<int64_t>(slices_.size())];
  ++slice.counts[bucket];
  ++slice.total;
  slice.max_us = std::max(slice.max_us, us);
  ++totals_[bucket];
  ++count_;
}

std::optional<absl::Duration> LatencyTracker::Quantile(double q) const {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  Advance(now);
  if (count_ == 0 || count_ < options_.min_samples) return std::nullopt;
  int64_t max_us = 0;
  for (const Slice& slice : slices_) max_us = std::max(max_us, slice.max_us);
  q = std::clamp(q, 0.0, 1.0);
  const int64_t rank =
      std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * static_cast<double>(count_))));
  int64_t seen = 0;
  for (int b = 0; b < kBucketCount; ++b) {
    seen += totals_[b];
    if (seen >= rank) return absl::Microseconds(std::min(BucketUpperBound(b), max_us));
  }
  return absl::Microseconds(max_us);
}

int64_t LatencyTracker::Count() const {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  Advance(now);
  return count_;
}

}  // namespace stategate::reliability
