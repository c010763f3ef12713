#include "src/client/reliability/retry_budget.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace stategate::reliability {
namespace {

// Token amounts are integers in millionths of a token, so deposits of a fractional ratio add
// up exactly and never drift with floating-point rounding.
constexpr int64_t kScale = 1'000'000;
// Finagle cuts its window into 10 slices too.
constexpr int kSlices = 10;

int64_t ToMicroTokens(double tokens) {
  return std::max<int64_t>(0, std::llround(tokens * static_cast<double>(kScale)));
}

}  // namespace

ExpiringTokenBucket::ExpiringTokenBucket(absl::Duration ttl, int slices, absl::Time now)
    : origin_(now),
      slice_(std::max(ttl / std::max(slices, 1), absl::Nanoseconds(1))),
      amounts_(std::max(slices, 1), 0) {}

void ExpiringTokenBucket::Advance(absl::Time now) {
  absl::Duration remainder;
  const int64_t slice = absl::IDivDuration(now - origin_, slice_, &remainder);
  if (slice <= current_slice_) return;
  const int64_t size = static_cast<int64_t>(amounts_.size());
  const int64_t steps = std::min(slice - current_slice_, size);
  for (int64_t i = 1; i <= steps; ++i) {
    int64_t& expired = amounts_[(current_slice_ + i) % size];
    sum_ -= expired;
    expired = 0;
  }
  current_slice_ = slice;
}

void ExpiringTokenBucket::Add(int64_t amount, absl::Time now) {
  Advance(now);
  amounts_[current_slice_ % static_cast<int64_t>(amounts_.size())] += amount;
  sum_ += amount;
}

int64_t ExpiringTokenBucket::Sum(absl::Time now) {
  Advance(now);
  return sum_;
}

RetryBudget::RetryBudget(RetryBudgetOptions options, const Clock* clock)
    : deposit_(ToMicroTokens(options.ratio)),
      reserve_(ToMicroTokens(options.min_retries_per_second * absl::ToDoubleSeconds(options.ttl))),
      clock_(clock),
      tokens_(options.ttl, kSlices, clock->Now()) {}

void RetryBudget::OnRequest() {
  absl::MutexLock lock(&mu_);
  tokens_.Add(deposit_, clock_->Now());
}

bool RetryBudget::TryWithdraw() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  if (tokens_.Sum(now) + reserve_ < kScale) return false;
  tokens_.Add(-kScale, now);
  return true;
}

int64_t RetryBudget::Balance() const {
  absl::MutexLock lock(&mu_);
  return std::max<int64_t>(0, (tokens_.Sum(clock_->Now()) + reserve_) / kScale);
}

HedgeBudget::HedgeBudget(HedgeBudgetOptions options, const Clock* clock)
    : deposit_(ToMicroTokens(options.ratio)),
      max_in_flight_(options.max_in_flight),
      clock_(clock),
      tokens_(options.ttl, kSlices, clock->Now()) {}

void HedgeBudget::OnRequest() {
  absl::MutexLock lock(&mu_);
  tokens_.Add(deposit_, clock_->Now());
}

bool HedgeBudget::TryAcquire() {
  absl::MutexLock lock(&mu_);
  if (in_flight_ >= max_in_flight_) return false;
  const absl::Time now = clock_->Now();
  if (tokens_.Sum(now) < kScale) return false;
  tokens_.Add(-kScale, now);
  ++in_flight_;
  return true;
}

void HedgeBudget::Release() {
  absl::MutexLock lock(&mu_);
  assert(in_flight_ > 0 && "HedgeBudget::Release without a successful TryAcquire");
  if (in_flight_ > 0) --in_flight_;
}

int HedgeBudget::in_flight() const {
  absl::MutexLock lock(&mu_);
  return in_flight_;
}

int64_t HedgeBudget::Balance() const {
  absl::MutexLock lock(&mu_);
  return std::max<int64_t>(0, tokens_.Sum(clock_->Now()) / kScale);
}

}  // namespace stategate::reliability
