#include "src/client/reliability/peak_ewma.h"

#include <algorithm>
#include <cassert>
#include <cmath>

#include "absl/random/distributions.h"

namespace stategate::reliability {

EndpointLoad::EndpointLoad(PeakEwmaOptions options, const Clock* clock)
    : options_(options),
      decay_ns_(std::max(1.0, absl::ToDoubleNanoseconds(options.decay))),
      clock_(clock),
      ewma_ns_(std::max(0.0, absl::ToDoubleNanoseconds(options.default_rtt))),
      stamp_(clock->Now()) {}

void EndpointLoad::OnStart() { outstanding_.fetch_add(1, std::memory_order_relaxed); }

void EndpointLoad::Finish() {
  const int before = outstanding_.fetch_sub(1, std::memory_order_relaxed);
  assert(before > 0 && "EndpointLoad: a finish without a start");
  if (before <= 0) outstanding_.fetch_add(1, std::memory_order_relaxed);
}

void EndpointLoad::OnSuccess(absl::Duration rtt) {
  Finish();
  Observe(absl::ToDoubleNanoseconds(rtt), /*peak_only=*/false);
}

void EndpointLoad::OnFailure(absl::Duration elapsed) {
  Finish();
  Observe(absl::ToDoubleNanoseconds(std::max(elapsed, options_.failure_penalty)),
          /*peak_only=*/false);
}

void EndpointLoad::OnCancel(absl::Duration elapsed) {
  Finish();
  Observe(absl::ToDoubleNanoseconds(elapsed), /*peak_only=*/true);
}

double EndpointLoad::DecayedNanos(absl::Time now) const {
  const double elapsed_ns = std::max(0.0, absl::ToDoubleNanoseconds(now - stamp_));
  return ewma_ns_ * std::exp(-elapsed_ns / decay_ns_);
}

void EndpointLoad::Observe(double rtt_ns, bool peak_only) {
  rtt_ns = std::max(0.0, rtt_ns);
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  if (peak_only) {
    // A lower bound: raise what a reader sees now to it, or leave everything as it is.
    if (rtt_ns <= DecayedNanos(now)) return;
    ewma_ns_ = rtt_ns;
  } else if (rtt_ns > ewma_ns_) {
    ewma_ns_ = rtt_ns;
  } else {
    const double elapsed_ns = std::max(0.0, absl::ToDoubleNanoseconds(now - stamp_));
    const double w = std::exp(-elapsed_ns / decay_ns_);
    ewma_ns_ = ewma_ns_ * w + rtt_ns * (1 - w);
  }
  stamp_ = std::max(stamp_, now);
}

absl::Duration EndpointLoad::Ewma() const {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  return absl::Nanoseconds(DecayedNanos(now));
}

double EndpointLoad::Cost() const {
  const absl::Time now = clock_->Now();
  double ewma_ns;
  {
    absl::MutexLock lock(&mu_);
    ewma_ns = DecayedNanos(now);
  }
  // The floor keeps outstanding requests counting once a long-idle estimate reaches zero.
  return std::max(ewma_ns, 1.0) * (outstanding() + 1);
}

size_t PickTwo(const std::vector<EndpointLoad*>& endpoints, absl::BitGenRef gen,
               std::optional<size_t> exclude) {
  assert(!endpoints.empty());
  const size_t n = endpoints.size();
  if (n == 1) return 0;
  // `skip` == n: nothing excluded (an out-of-range exclude excludes nothing too).
  const size_t skip = exclude.has_value() && *exclude < n ? *exclude : n;
  const size_t candidates = skip < n ? n - 1 : n;
  if (candidates == 1) return skip == 0 ? 1 : 0;
  // Two distinct ranks among the candidates, then ranks to indices skipping `skip`.
  const size_t first_rank = absl::Uniform<size_t>(gen, 0, candidates);
  size_t second_rank = absl::Uniform<size_t>(gen, 0, candidates - 1);
  if (second_rank >= first_rank) ++second_rank;
  const auto index = [skip](size_t rank) { return rank >= skip ? rank + 1 : rank; };
  const size_t a = index(first_rank);
  const size_t b = index(second_rank);
  return endpoints[b]->Cost() < endpoints[a]->Cost() ? b : a;
}

}  // namespace stategate::reliability
