// Histogram: an HDR-style (log-linear) histogram of non-negative integers, such as latencies
// in microseconds. Values below 256 are counted exactly; above, each power-of-two range is
// split into 128 buckets, so a reported percentile is at most 1/128 (< 0.8%) above the
// true sample value and never below it. Fixed memory (about 60 KB), O(1) Record.
// Not thread-safe: give each thread its own and Merge them.
#pragma once

#include <cstdint>
#include <vector>

namespace stategate {

class Histogram {
 public:
  Histogram();

  // Counts one value; negative values count as 0.
  void Record(int64_t value);
  // Adds every value counted by `other`.
  void Merge(const Histogram& other);

  int64_t Count() const { return count_; }
  int64_t Min() const { return count_ == 0 ? 0 : min_; }
  int64_t Max() const { return count_ == 0 ? 0 : max_; }
  double Mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }

  // The value at quantile q in [0, 1]: the smallest recorded value v such that at least
  // ceil(q * Count()) values are <= v (q = 0 gives Min()), up to bucket precision. 0 when
  // empty.
  int64_t Percentile(double q) const;

 private:
  static int BucketIndex(uint64_t value);
  // The largest value that falls into bucket `index`.
  static uint64_t BucketUpperBound(int index);

  std::vector<int64_t> buckets_;
  int64_t count_ = 0;
  int64_t sum_ = 0;
  int64_t min_ = 0;
  int64_t max_ = 0;
};

}  // namespace stategate
