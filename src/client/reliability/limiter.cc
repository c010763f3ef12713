#include "src/client/reliability/limiter.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace stategate::reliability {
namespace {

constexpr int kUnlimited = std::numeric_limits<int>::max();
// Gradient2's long RTT is a plain mean over its first samples, then an exponential average.
constexpr int kLongRttWarmup = 10;

int64_t PositiveNanos(absl::Duration rtt) {
  return std::max<int64_t>(1, absl::ToInt64Nanoseconds(rtt));
}

// max(1, ⌊log10 limit⌋): the step Vegas takes, and the unit of its alpha, beta and threshold.
int Log10Step(double limit) {
  const int whole = static_cast<int>(limit);
  return whole < 10 ? 1 : static_cast<int>(std::log10(whole));
}

class UnlimitedLimiter : public ConcurrencyLimiter {
 public:
  UnlimitedLimiter() : ConcurrencyLimiter(kUnlimited) {}
  std::string_view name() const override { return "none"; }

 protected:
  void OnSample(const Sample&) override {}
};

absl::Status Invalid(const char* kind, const char* what) {
  return absl::InvalidArgumentError(absl::StrCat("limiter '", kind, "': ", what));
}

absl::Status Validate(const AimdOptions& o) {
  if (o.min_limit < 1) return Invalid("aimd", "min_limit must be at least 1");
  if (o.initial_limit < o.min_limit || o.initial_limit > o.max_limit) {
    return Invalid("aimd", "need min_limit <= initial_limit <= max_limit");
  }
  if (!(o.backoff_ratio > 0 && o.backoff_ratio < 1)) {
    return Invalid("aimd", "backoff_ratio must be in (0, 1)");
  }
  if (o.timeout <= absl::ZeroDuration()) return Invalid("aimd", "timeout must be positive");
  return absl::OkStatus();
}

absl::Status Validate(const VegasOptions& o) {
  if (o.initial_limit < 1 || o.initial_limit > o.max_limit) {
    return Invalid("vegas", "need 1 <= initial_limit <= max_limit");
  }
  if (!(o.smoothing > 0 && o.smoothing <= 1)) {
    return Invalid("vegas", "smoothing must be in (0, 1]");
  }
  if (o.probe_multiplier < 1) return Invalid("vegas", "probe_multiplier must be at least 1");
  return absl::OkStatus();
}

absl::Status Validate(const Gradient2Options& o) {
  if (o.min_limit < 1) return Invalid("gradient2", "min_limit must be at least 1");
  if (o.initial_limit < o.min_limit || o.initial_limit > o.max_limit) {
    return Invalid("gradient2", "need min_limit <= initial_limit <= max_limit");
  }
  if (!(o.smoothing > 0 && o.smoothing <= 1)) {
    return Invalid("gradient2", "smoothing must be in (0, 1]");
  }
  if (o.queue_size < 0) return Invalid("gradient2", "queue_size must not be negative");
  if (o.long_window < 1) return Invalid("gradient2", "long_window must be at least 1");
  if (!(o.rtt_tolerance > 0)) return Invalid("gradient2", "rtt_tolerance must be positive");
  return absl::OkStatus();
}

}  // namespace

// --- Permit ---

ConcurrencyLimiter::Permit::Permit(Permit&& other) noexcept
    : limiter_(std::exchange(other.limiter_, nullptr)), in_flight_(other.in_flight_) {}

ConcurrencyLimiter::Permit& ConcurrencyLimiter::Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    OnIgnore();
    limiter_ = std::exchange(other.limiter_, nullptr);
    in_flight_ = other.in_flight_;
  }
  return *this;
}

ConcurrencyLimiter::Permit::~Permit() { OnIgnore(); }

void ConcurrencyLimiter::Permit::Report(Outcome outcome, absl::Duration rtt) {
  ConcurrencyLimiter* limiter = std::exchange(limiter_, nullptr);
  if (limiter != nullptr) limiter->Finish(outcome, rtt, in_flight_);
}

// --- ConcurrencyLimiter ---

std::optional<ConcurrencyLimiter::Permit> ConcurrencyLimiter::TryAcquire(double share) {
  const int64_t usable =
      std::max<int64_t>(1, static_cast<int64_t>(std::ceil(limit() * std::min(share, 1.0))));
  int current = in_flight_.load(std::memory_order_relaxed);
  do {
    if (current >= usable) return std::nullopt;
  } while (!in_flight_.compare_exchange_weak(current, current + 1, std::memory_order_acq_rel,
                                             std::memory_order_relaxed));
  return Permit(this, current + 1);
}

void ConcurrencyLimiter::Finish(Outcome outcome, absl::Duration rtt, int in_flight) {
  in_flight_.fetch_sub(1, std::memory_order_acq_rel);
  if (outcome == Outcome::kIgnored) return;
  OnSample(Sample{.outcome = outcome, .rtt = rtt, .in_flight = in_flight});
}

// --- AimdLimit ---

AimdLimit::AimdLimit(AimdOptions options)
    : ConcurrencyLimiter(options.initial_limit), options_(options) {}

void AimdLimit::OnSample(const Sample& sample) {
  absl::MutexLock lock(&mu_);
  const int current = limit();
  int next = current;
  const bool busy = sample.in_flight * 2 >= current;
  if (sample.outcome == Outcome::kDropped || sample.rtt > options_.timeout ||
      (sample.outcome == Outcome::kLate && busy)) {
    // At least −1, so a small limit still backs off where × ratio would truncate to itself.
    next = std::min(current - 1, static_cast<int>(current * options_.backoff_ratio));
  } else if (sample.outcome == Outcome::kSuccess && busy) {
    // +1 per limit's worth of busy successes (about one round trip), as TCP's congestion
    // avoidance grows its window: +1 per success would let late answers, each costing
    // only × backoff_ratio, make up a quarter of all answers at a limit of 30.
    growth_ += 1.0 / current;
    if (growth_ >= 1.0) {
      growth_ -= 1.0;
      next = current + 1;
    }
  }
  set_limit(std::clamp(next, std::max(1, options_.min_limit), options_.max_limit));
}

// --- VegasLimit ---

VegasLimit::VegasLimit(VegasOptions options)
    : ConcurrencyLimiter(options.initial_limit),
      options_(options),
      estimated_limit_(options.initial_limit) {}

void VegasLimit::Apply(double estimate) {
  estimate = std::clamp(estimate, 1.0, static_cast<double>(std::max(1, options_.max_limit)));
  estimated_limit_ = (1 - options_.smoothing) * estimated_limit_ + options_.smoothing * estimate;
  set_limit(std::max(1, static_cast<int>(estimated_limit_)));
}

void VegasLimit::OnSample(const Sample& sample) {
  absl::MutexLock lock(&mu_);
  const double limit = estimated_limit_;
  const int step = Log10Step(limit);
  if (sample.outcome == Outcome::kDropped) {
    Apply(limit - step);
    return;
  }
  const int64_t rtt = PositiveNanos(sample.rtt);
  if (++probe_count_ >= static_cast<int64_t>(options_.probe_multiplier) * limit) {
    probe_count_ = 0;
    rtt_noload_ns_ = rtt;
    return;
  }
  if (rtt_noload_ns_ == 0 || rtt < rtt_noload_ns_) {
    rtt_noload_ns_ = rtt;
    return;
  }
  // Only a client using at least half its limit learns whether the limit is too small.
  if (sample.in_flight * 2 < limit) return;
  const int queue = static_cast<int>(
      std::ceil(limit * (1 - static_cast<double>(rtt_noload_ns_) / static_cast<double>(rtt))));
  const int alpha = 3 * step;
  const int beta = 6 * step;
  if (queue <= step) {
    Apply(limit + beta);
  } else if (queue < alpha) {
    Apply(limit + step);
  } else if (queue > beta) {
    Apply(limit - step);
  }
}

// --- Gradient2Limit ---

Gradient2Limit::Gradient2Limit(Gradient2Options options)
    : ConcurrencyLimiter(options.initial_limit),
      options_(options),
      estimated_limit_(options.initial_limit) {}

void Gradient2Limit::Apply(double gradient) {
  const double target = estimated_limit_ * gradient + options_.queue_size;
  const double next = (1 - options_.smoothing) * estimated_limit_ + options_.smoothing * target;
  estimated_limit_ = std::clamp(next, static_cast<double>(std::max(1, options_.min_limit)),
                                static_cast<double>(std::max(1, options_.max_limit)));
  set_limit(static_cast<int>(estimated_limit_));
}

void Gradient2Limit::OnSample(const Sample& sample) {
  absl::MutexLock lock(&mu_);
  if (sample.outcome == Outcome::kDropped) {
    Apply(0.5);
    return;
  }
  const double rtt = static_cast<double>(PositiveNanos(sample.rtt));
  if (long_rtt_count_ < kLongRttWarmup) {
    ++long_rtt_count_;
    long_rtt_sum_ns_ += rtt;
    long_rtt_ns_ = long_rtt_sum_ns_ / long_rtt_count_;
  } else {
    const double factor = 2.0 / (std::max(1, options_.long_window) + 1);
    long_rtt_ns_ = long_rtt_ns_ * (1 - factor) + rtt * factor;
  }
  const double long_rtt = long_rtt_ns_;
  // After a long overload the average is far above the recovered RTT; pull it down faster
  // than the window alone would, so the limit can grow again.
  if (long_rtt / rtt > 2) long_rtt_ns_ *= 0.9;
  // An application that uses less than half its limit says nothing about the limit.
  if (sample.in_flight * 2 < estimated_limit_) return;
  Apply(std::clamp(options_.rtt_tolerance * long_rtt / rtt, 0.5, 1.0));
}

// --- Factory ---

absl::StatusOr<std::unique_ptr<ConcurrencyLimiter>> MakeLimiter(const LimiterOptions& options) {
  if (options.kind == "aimd") {
    if (absl::Status s = Validate(options.aimd); !s.ok()) return s;
    return std::make_unique<AimdLimit>(options.aimd);
  }
  if (options.kind == "vegas") {
    if (absl::Status s = Validate(options.vegas); !s.ok()) return s;
    return std::make_unique<VegasLimit>(options.vegas);
  }
  if (options.kind == "gradient2") {
    if (absl::Status s = Validate(options.gradient2); !s.ok()) return s;
    return std::make_unique<Gradient2Limit>(options.gradient2);
  }
  if (options.kind == "none") return std::make_unique<UnlimitedLimiter>();
  return absl::InvalidArgumentError(absl::StrCat("unknown limiter kind '", options.kind,
                                                 "' (want aimd, vegas, gradient2 or none)"));
}

}  // namespace stategate::reliability
