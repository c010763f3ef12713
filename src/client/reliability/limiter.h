// Adaptive concurrency limits (Netflix concurrency-limits, after TCP congestion control): a
// client may have at most limit() calls in flight; a call beyond it fails fast instead of
// queueing into a timeout, and the limit follows the latency and drops that calls observe.
//
// Each call takes a Permit from TryAcquire() and reports exactly one outcome through it:
//   OnSuccess(rtt)  the call completed; `rtt` is the signal the algorithm learns from.
//   OnDropped()     the call timed out or was refused for overload: a congestion signal.
//   OnIgnore()      the outcome says nothing about the server (e.g. the caller cancelled, or
//                   the call failed for a reason unrelated to load).
//   OnLate(rtt)     the call completed, but later than its SLO target: AIMD takes it as a
//                   drop when the call was sent while the limit was at least half used (the
//                   lateness is congestion this client may cause), and otherwise as neither
//                   a rise nor a fall (the server's own tail); the others learn from `rtt`.
// The first report counts and later ones are ignored; a permit destroyed without a report
// counts as OnIgnore(). Every report frees the permit's slot.
//
// Implementations (create them with MakeLimiter, which validates the options; the
// constructors assume valid ones):
//   AimdLimit      additive increase, multiplicative decrease. The advice is AIMD on clients.
//   VegasLimit     TCP Vegas: estimates the queue from the RTT over the no-load RTT.
//   Gradient2Limit a long-window average RTT over the latest RTT gives the gradient.
//   "none"         unlimited: counts calls in flight, never refuses.
//
// Thread-safety: a ConcurrencyLimiter is thread-safe. A Permit is a single call's handle: use
// it from one thread at a time, and do not let it outlive its limiter.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace stategate::reliability {

class ConcurrencyLimiter {
 public:
  enum class Outcome { kSuccess, kLate, kDropped, kIgnored };

  // What a finished call tells the algorithm.
  struct Sample {
    Outcome outcome = Outcome::kSuccess;
    absl::Duration rtt;  // zero unless outcome is kSuccess or kLate
    int in_flight = 0;   // calls in flight just after this one was admitted, itself included
  };

  // Move-only handle of one admitted call; see the file comment for the reporting contract.
  class Permit {
   public:
    Permit(Permit&& other) noexcept;
    Permit& operator=(Permit&& other) noexcept;
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    // Reports OnIgnore() if nothing was reported.
    ~Permit();

    void OnSuccess(absl::Duration rtt) { Report(Outcome::kSuccess, rtt); }
    void OnLate(absl::Duration rtt) { Report(Outcome::kLate, rtt); }
    void OnDropped() { Report(Outcome::kDropped, absl::ZeroDuration()); }
    void OnIgnore() { Report(Outcome::kIgnored, absl::ZeroDuration()); }

    // True until the first report (and false for a moved-from permit).
    bool active() const { return limiter_ != nullptr; }

   private:
    friend class ConcurrencyLimiter;
    Permit(ConcurrencyLimiter* limiter, int in_flight) : limiter_(limiter), in_flight_(in_flight) {}
    void Report(Outcome outcome, absl::Duration rtt);

    ConcurrencyLimiter* limiter_;
    int in_flight_;
  };

  virtual ~ConcurrencyLimiter() = default;

  // A permit if fewer than limit() calls are in flight, else nullopt: the caller should fail
  // the call at once (RESOURCE_EXHAUSTED) rather than wait. With a `share` below 1, the call
  // may use only that share of the limit (at least one slot): less important calls are
  // refused while the rest of the limit stays free for more important ones.
  std::optional<Permit> TryAcquire(double share = 1.0);

  // The current limit; calls are admitted while in_flight() < limit().
  int limit() const { return limit_.load(std::memory_order_relaxed); }
  // Permits handed out and not yet reported.
  int in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  // "aimd", "vegas", "gradient2" or "none".
  virtual std::string_view name() const = 0;

 protected:
  explicit ConcurrencyLimiter(int initial_limit) : limit_(initial_limit) {}

  // Called once for every permit that reports kSuccess or kDropped, after its slot was freed,
  // from whichever thread reported; implementations lock their own state and call
  // set_limit().
  virtual void OnSample(const Sample& sample) = 0;
  void set_limit(int limit) { limit_.store(limit, std::memory_order_relaxed); }

 private:
  void Finish(Outcome outcome, absl::Duration rtt, int in_flight);

  std::atomic<int> limit_;
  std::atomic<int> in_flight_{0};
};

struct AimdOptions {
  // Default: 20.
  int initial_limit = 20;
  // The limit never goes below this. Default: 1 (a client backs off all the way).
  int min_limit = 1;
  // The limit never goes above this. Default: 200.
  int max_limit = 200;
  // On a drop, limit = max(min_limit, min(limit − 1, floor(limit · backoff_ratio))).
  // Default: 0.9.
  double backoff_ratio = 0.9;
  // A success slower than this counts as a drop. Default: 5 s.
  absl::Duration timeout = absl::Seconds(5);
};

// On success, +1/limit if the call saw in_flight ≥ limit / 2 (so +1 per limit's worth of
// such successes, about one round trip; an idle client does not inflate its limit); on a
// drop (or a success slower than `timeout`, or a late one that saw in_flight ≥ limit / 2),
// × backoff_ratio. At a steady limit L, late answers are then about 1 / (0.1·L²) of all
// (1 % at L = 30) rather than 1 / (1 + 0.1·L) (25 %) with +1 per success.
class AimdLimit : public ConcurrencyLimiter {
 public:
  explicit AimdLimit(AimdOptions options = {});
  std::string_view name() const override { return "aimd"; }

 protected:
  void OnSample(const Sample& sample) override;

 private:
  const AimdOptions options_;
  absl::Mutex mu_;
  double growth_ ABSL_GUARDED_BY(mu_) = 0;  // toward the next +1
};

struct VegasOptions {
  // Default: 20.
  int initial_limit = 20;
  // Default: 1000.
  int max_limit = 1000;
  // Weight of the new estimate: limit = (1 − smoothing) · limit + smoothing · estimate.
  // Default: 1 (no smoothing).
  double smoothing = 1.0;
  // rtt_noload is re-measured from the next sample after probe_multiplier · limit samples, so
  // that a lasting change of the base latency is learned. Default: 30.
  int probe_multiplier = 30;
};

// With rtt_noload the smallest RTT seen (since the last probe) and lg = max(1, ⌊log10 L⌋):
// queue = ⌈L · (1 − rtt_noload / rtt)⌉; alpha = 3·lg, beta = 6·lg, threshold = lg.
// On success with in_flight ≥ L/2: queue ≤ threshold → L + beta; queue < alpha → L + lg;
// queue > beta → L − lg; otherwise unchanged. On a drop: L − lg. L stays in [1, max_limit].
class VegasLimit : public ConcurrencyLimiter {
 public:
  explicit VegasLimit(VegasOptions options = {});
  std::string_view name() const override { return "vegas"; }

 protected:
  void OnSample(const Sample& sample) override;

 private:
  void Apply(double estimate) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const VegasOptions options_;
  absl::Mutex mu_;
  double estimated_limit_ ABSL_GUARDED_BY(mu_);
  int64_t rtt_noload_ns_ ABSL_GUARDED_BY(mu_) = 0;  // 0: not measured yet
  int64_t probe_count_ ABSL_GUARDED_BY(mu_) = 0;
};

struct Gradient2Options {
  // Default: 20.
  int initial_limit = 20;
  // Default: 20.
  int min_limit = 20;
  // Default: 200.
  int max_limit = 200;
  // Weight of the new estimate. Default: 0.2.
  double smoothing = 0.2;
  // Headroom added to every estimate, so the limit can grow while latency stays flat.
  // Default: 4.
  int queue_size = 4;
  // Samples in the long RTT's exponential average (the first 10 are a plain mean).
  // Default: 600.
  int long_window = 600;
  // gradient = clamp(rtt_tolerance · long_rtt / rtt, 0.5, 1). Default: 1 (later Netflix
  // versions use 1.5, which ignores RTT rises of up to 50 %).
  double rtt_tolerance = 1.0;
};

// On success: long_rtt = EMA of RTTs over long_window samples (cut by 10 % whenever it is
// more than twice the latest RTT, so that recovery after a long overload is quick); if
// in_flight ≥ L/2: gradient = clamp(rtt_tolerance · long_rtt / rtt, 0.5, 1.0),
// L' = L · gradient + queue_size, L = (1 − smoothing) · L + smoothing · L'. A drop (which
// carries no RTT) is treated as the steepest gradient, 0.5, whatever the in-flight count.
// L stays in [min_limit, max_limit].
class Gradient2Limit : public ConcurrencyLimiter {
 public:
  explicit Gradient2Limit(Gradient2Options options = {});
  std::string_view name() const override { return "gradient2"; }

 protected:
  void OnSample(const Sample& sample) override;

 private:
  void Apply(double gradient) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Gradient2Options options_;
  absl::Mutex mu_;
  double estimated_limit_ ABSL_GUARDED_BY(mu_);
  double long_rtt_ns_ ABSL_GUARDED_BY(mu_) = 0;
  double long_rtt_sum_ns_ ABSL_GUARDED_BY(mu_) = 0;  // during warm-up
  int long_rtt_count_ ABSL_GUARDED_BY(mu_) = 0;
};

struct LimiterOptions {
  // "aimd", "vegas", "gradient2" or "none" (unlimited). Default: "aimd".
  std::string kind = "aimd";
  AimdOptions aimd = {};
  VegasOptions vegas = {};
  Gradient2Options gradient2 = {};
};

// The limiter named by options.kind. InvalidArgument for an unknown kind or for options of
// that kind that make no sense (limits below 1, min > initial or initial > max, ratios outside
// their range, non-positive windows).
absl::StatusOr<std::unique_ptr<ConcurrencyLimiter>> MakeLimiter(const LimiterOptions& options);

}  // namespace stategate::reliability
