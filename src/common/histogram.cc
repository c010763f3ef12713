#include "src/common/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace stategate {
namespace {

constexpr int kSubBits = 7;                     // 128 buckets per power of two
constexpr uint64_t kSubCount = 1u << kSubBits;  // 128
constexpr uint64_t kExact = 2 * kSubCount;      // values below 256 have a bucket each
// Values up to 2^63 - 1 have a most significant bit of at most 62: shifts 1..55.
constexpr int kBuckets = kExact + (62 - kSubBits) * kSubCount;

}  // namespace

Histogram::Histogram() : buckets_(kBuckets, 0) {}

int Histogram::BucketIndex(uint64_t value) {
  if (value < kExact) return static_cast<int>(value);
  const int msb = 63 - std::countl_zero(value);  // >= 8
  const int shift = msb - kSubBits;              // >= 1
  const uint64_t sub = value >> shift;           // in [128, 256)
  return static_cast<int>(kExact + (shift - 1) * kSubCount + (sub - kSubCount));
}

uint64_t Histogram::BucketUpperBound(int index) {
  if (static_cast<uint64_t>(index) < kExact) return index;
  const uint64_t rest = index - kExact;
  const int shift = static_cast<int>(rest / kSubCount) + 1;
  const uint64_t sub = rest % kSubCount + kSubCount;
  return ((sub + 1) << shift) - 1;
}

void Histogram::Record(int64_t value) {
  value = std::max<int64_t>(value, 0);
  ++buckets_[BucketIndex(static_cast<uint64_t>(value))];
  if (count_ == 0) {
    min_ = max_ = value;
  } else {
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }
  ++count_;
  sum_ += value;
}

void Histogram::Merge(const Histogram& other) {
  if (other.count_ == 0) return;
  for (int i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  max_ = count_ == 0 ? other.max_ : std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
}

int64_t Histogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const int64_t rank =
      std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * static_cast<double>(count_))));
  int64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) {
      // The bucket's top, but never outside what was recorded.
      return std::clamp(static_cast<int64_t>(BucketUpperBound(i)), min_, max_);
    }
  }
  return max_;
}

}  // namespace stategate
