// ReliableCaller: runs one logical unary RPC over a set of gateway endpoints with every
// client reliability mechanism of DESIGN.md, each switchable by ReliabilityOptions:
//   - load unbalancing: the first attempt goes to the better of two random endpoints by
//     peak-EWMA latency × (outstanding + 1);
//   - adaptive concurrency limits per endpoint: over the limit a call waits for a permit
//     for at most limiter_max_wait, in a bounded queue that serves the most important
//     tier first (PermitQueue), then fails (RESOURCE_EXHAUSTED, locally); a normal or
//     sheddable call fails at once if the permits its tier got lately would all go to the
//     calls waiting before it (PermitQueue::WouldWaitInVain); a hedge never waits;
//   - hedging: once the first attempt has been out longer than the hedge delay (the observed
//     p95 of the namespace × access pattern, at most the SLO target) a second attempt goes to
//     another endpoint, if the hedge budget allows; the first success wins, the rest are
//     cancelled;
//   - retries of retryable codes (UNAVAILABLE, RESOURCE_EXHAUSTED, ABORTED) with exponential
//     backoff and full jitter, the server's pushback honoured, within a retry budget; an
//     UNAVAILABLE marked kShardUnavailableKey (a shard behind a healthy gateway) neither
//     counts against the endpoint nor spends the budget or max_attempts: such calls retry
//     until their deadline, one attempt at a time, paced by the gateway;
//   - GC-tolerant timeouts: when the call's deadline passes while this process was paused,
//     the answer already on its way gets a grace before the call fails;
//   - draining gateways: one whose answer carries kDrainingKey, or whose channel is in
//     TRANSIENT_FAILURE, gets no new attempt while another endpoint is usable; a drained
//     one is asked (grpc.health.v1) every kDrainProbeInterval whether it serves again,
//     and gets attempts again as soon as it says SERVING (a restarted gateway).
// Every attempt of a logical call sends the same request, so the same idempotency token.
//
// Thread-safe. Completion callbacks run on gRPC or timer threads and must not block.
#pragma once

#include <grpcpp/grpcpp.h>

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "src/client/reliability/backoff.h"
#include "src/client/reliability/latency_tracker.h"
#include "src/client/reliability/limiter.h"
#include "src/client/reliability/pause_detector.h"
#include "src/client/reliability/peak_ewma.h"
#include "src/client/reliability/permit_queue.h"
#include "src/client/reliability/retry_budget.h"
#include "src/common/clock.h"
#include "src/common/delay_queue.h"
#include "src/common/grpc_status.h"
#include "src/common/metadata_keys.h"
#include "src/common/priority.h"
#include "stategate/kv_client.h"
#include "stategate/v1/control.grpc.pb.h"
#include "stategate/v1/kv.grpc.pb.h"

namespace stategate::client {

// One gateway: its channel and stubs, its load estimate and its concurrency limit.
struct Endpoint {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::KeyValue::Stub> kv;
  std::unique_ptr<v1::Control::Stub> control;
  // Null when there is no channel (tests): a draining notice then lasts kDrainingAvoidance.
  std::unique_ptr<grpc::health::v1::Health::Stub> health;
  std::unique_ptr<reliability::EndpointLoad> load;
  std::unique_ptr<reliability::ConcurrencyLimiter> limiter;
  // Until when (unix µs) new attempts go elsewhere: the gateway said it is draining.
  std::atomic<int64_t> avoid_until_us{0};
  // A health probe of this draining endpoint is scheduled or out.
  std::atomic<bool> probing{false};
};

// Calls waiting for a concurrency permit at once, at most; past it a call fails at once.
inline constexpr size_t kMaxPermitWaiters = 1024;
// Waits that run out without a permit for kPersistentWaitsRunOut on end (no gap longer than
// twice the door below) are an overload, not a burst: waiting then only makes every call
// later. From then on, for twice limiter_max_wait after the last such wait (at least
// kMinNoWait), calls of that tier and of less important ones fail at once instead of
// waiting, as CoDel drops at the door once queueing delay has persisted for an interval;
// and calls less important than that tier take no permit at all, even a free one: at 4x
// overload they took half the permits the critical calls were refused.
// A stall shorter than that (a gateway restarting, a scheduler hiccup) is waited out.
inline constexpr absl::Duration kPersistentWaitsRunOut = absl::Milliseconds(100);
inline constexpr absl::Duration kMinNoWait = absl::Milliseconds(100);

// How long a gateway that said it is draining gets no new attempts while others remain, at
// most: its notice, its shutdown and a restart. It is back sooner once it says SERVING.
inline constexpr absl::Duration kDrainingAvoidance = absl::Seconds(5);
// How often a draining gateway is asked whether it serves again, and how long one answer
// may take. An orchestrator moves to the next gateway of a rolling restart once this one
// is healthy, so clients must notice about as soon, or they run out of gateways.
inline constexpr absl::Duration kDrainProbeInterval = absl::Milliseconds(50);
inline constexpr absl::Duration kDrainProbeTimeout = absl::Milliseconds(200);

// kChunk is a chunk of a large value: a bulk transfer, neither hedged nor held to an SLO.
enum class AccessPattern { kPointRead, kRangeRead, kWrite, kChunk };

// What a logical call needs to know beyond its RPC.
struct CallSpec {
  AccessPattern pattern = AccessPattern::kPointRead;
  absl::Duration timeout = absl::Seconds(5);  // for the whole logical call, retries included
  // For one attempt (the namespace's SLO max): an attempt still out after it is cancelled
  // and retried elsewhere. Zero = attempts run until `timeout`.
  absl::Duration attempt_timeout = absl::ZeroDuration();
  // The namespace's SLO target for the pattern (bounds the hedge delay); zero = no hedge.
  absl::Duration slo_target = absl::ZeroDuration();
  // An attempt answered OK later than this (the namespace's SLO target for the pattern, or
  // a fraction of it for a call with a priority: kv_client.cc, kTieredLateDivisor) is
  // reported to its endpoint's limiter as late (ConcurrencyLimiter::Permit::OnLate): a call
  // that misses its SLO is a congestion signal, almost as a failure is. Zero = never late.
  absl::Duration late_after = absl::ZeroDuration();
  // Latencies of this namespace × pattern, for the hedge delay; may be null (no hedge).
  reliability::LatencyTracker* latencies = nullptr;
  // Sent with every attempt; unset: the gateway applies the namespace's default.
  std::optional<Priority> priority;
};

class ReliableCaller {
 public:
  // Starts one attempt on `endpoint`: must begin the RPC with `ctx` and `response` and call
  // `done` exactly once with its status.
  template <typename Response>
  using StartAttempt =
      std::function<void(Endpoint& endpoint, grpc::ClientContext* ctx, Response* response,
                         std::function<void(grpc::Status)> done)>;
  // Receives the logical call's outcome: the winning attempt's response when ok().
  template <typename Response>
  using Done = std::function<void(absl::Status status, Response response)>;

  ReliableCaller(std::vector<std::unique_ptr<Endpoint>> endpoints, ReliabilityOptions options,
                 const Clock* clock);
  ~ReliableCaller();

  template <typename Response>
  void Call(const CallSpec& spec, StartAttempt<Response> start, Done<Response> done);

  // Runs `task` after `delay` on the caller's timer thread.
  void After(absl::Duration delay, std::function<void()> task) {
    timers_.Schedule(delay, std::move(task));
  }

  KvClientStats stats() const;
  // True once destruction began: no new work should be scheduled.
  bool stopping() const { return shutting_down_.load(); }

  // Counts RPCs in flight, so that destruction waits for their callbacks.
  void RpcStarted() {
    absl::MutexLock lock(&rpcs_mu_);
    ++rpcs_in_flight_;
  }
  void RpcFinished() {
    absl::MutexLock lock(&rpcs_mu_);
    --rpcs_in_flight_;
  }
  std::vector<std::unique_ptr<Endpoint>>& endpoints() { return endpoints_; }
  const Clock* clock() const { return clock_; }

 private:
  template <typename Response>
  class LogicalCall;

  // The endpoint's answer said it is draining: avoid it, and ask it until it serves again.
  void OnDrainingNotice(size_t endpoint);
  // One health probe of a draining endpoint; schedules the next unless it says SERVING.
  void ProbeDraining(size_t endpoint);
  // An attempt's permit was reported (released) at `now`: noted, and the next call
  // waiting for one, if any, tries again.
  void OnPermitReleased(absl::Time now);
  // The next call waiting for a permit, if any, tries again.
  void WakePermitWaiter();
  // Whether the door of any of the `tiers` most important tiers is closed now: their calls
  // have waited in vain for a while, and lately (kPersistentWaitsRunOut).
  bool AnyDoorClosed(int tiers) const;
  // Whether a call of `rank` may wait for a permit now: no door of its tier or above is
  // closed.
  bool MayWaitForPermit(int rank) const { return !AnyDoorClosed(rank + 1); }
  // Whether calls more important than `rank` wait in vain: then a call of `rank` takes no
  // permit at all, which they need more.
  bool MoreImportantStarve(int rank) const { return AnyDoorClosed(rank); }
  // A call of `rank` waited out limiter_max_wait without a permit.
  void OnPermitWaitRanOut(int rank);
  // Picks the endpoint of a new attempt among the usable ones (all, if none is), never
  // `exclude` if another exists.
  size_t PickEndpoint(std::optional<size_t> exclude);
  // Not draining and not known to be unreachable.
  bool Usable(const Endpoint& endpoint) const;
  absl::Duration BackoffDelay(int retry);
  static bool Retryable(grpc::StatusCode code);
  // How long the server asked us to wait (grpc-retry-pushback-ms), if it did.
  static std::optional<absl::Duration> Pushback(const grpc::ClientContext& ctx);

  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  const ReliabilityOptions options_;
  const Clock* const clock_;
  reliability::Backoff backoff_;
  reliability::RetryBudget retry_budget_;
  reliability::HedgeBudget hedge_budget_;
  reliability::PauseDetector pause_detector_;
  reliability::PermitQueue permit_waiters_;
  // Per tier (by rank), the waits that ran out without a permit lately (unix µs): the first
  // and the last of the current run of them.
  struct WaitsRunOut {
    std::atomic<int64_t> first_us{0};
    std::atomic<int64_t> last_us{0};
  };
  std::array<WaitsRunOut, kPriorityTiers> waits_run_out_;
  // How long calls fail at once after the last wait that ran out, once they persist.
  absl::Duration NoWait() const;
  DelayQueue timers_;

  absl::Mutex rng_mu_;
  absl::BitGen rng_ ABSL_GUARDED_BY(rng_mu_);
  std::atomic<size_t> round_robin_{0};

  struct Counters {
    std::atomic<int64_t> calls{0}, attempts{0}, hedges{0}, hedges_won{0}, retries{0},
        retry_budget_refusals{0}, hedge_budget_refusals{0}, limiter_refusals{0}, deadline_graces{0};
  };
  mutable Counters counters_;

  std::atomic<bool> shutting_down_{false};
  absl::Mutex rpcs_mu_;
  int rpcs_in_flight_ ABSL_GUARDED_BY(rpcs_mu_) = 0;
};

// ---- Implementation of the template parts ----

template <typename Response>
class ReliableCaller::LogicalCall : public std::enable_shared_from_this<LogicalCall<Response>> {
 public:
  LogicalCall(ReliableCaller* caller, const CallSpec& spec, StartAttempt<Response> start,
              Done<Response> done)
      : caller_(caller),
        spec_(spec),
        start_(std::move(start)),
        done_(std::move(done)),
        started_at_(caller->clock_->Now()),
        deadline_(started_at_ + spec.timeout) {}

  void Begin() {
    caller_->counters_.calls++;
    caller_->retry_budget_.OnRequest();
    caller_->hedge_budget_.OnRequest();
    auto self = this->shared_from_this();
    std::function<void()> launch;
    {
      absl::MutexLock lock(&mu_);
      deadline_timer_ = caller_->timers_.Schedule(spec_.timeout,
                                                  [self] { self->OnDeadline(/*extended=*/false); });
      launch = PrepareAttemptLocked(/*hedge=*/false, std::nullopt);
      const std::optional<absl::Duration> delay = HedgeDelay();
      if (launch != nullptr && delay.has_value()) {
        hedge_timer_ = caller_->timers_.Schedule(*delay, [self] { self->OnHedgeTimer(); });
      }
    }
    if (launch != nullptr) launch();
    Deliver();
  }

 private:
  struct Attempt {
    grpc::ClientContext ctx;
    Response response;
    size_t endpoint = 0;
    std::optional<reliability::ConcurrencyLimiter::Permit> permit;
    absl::Time started;
    bool hedge = false;
    bool finished = false;
    bool timed_out = false;  // cancelled by us after attempt_timeout
    std::optional<DelayQueue::Handle> timer;
  };

  std::optional<absl::Duration> HedgeDelay() const {
    if (!caller_->options_.hedging || spec_.latencies == nullptr ||
        spec_.slo_target <= absl::ZeroDuration() || caller_->endpoints_.size() < 2) {
      return std::nullopt;
    }
    const std::optional<absl::Duration> p95 = spec_.latencies->Quantile(0.95);
    return p95.has_value() ? std::min(*p95, spec_.slo_target) : spec_.slo_target;
  }

  // Sets up an attempt and returns what starts its RPC, to be run after the lock is released
  // (gRPC may complete a call inline). Null if no endpoint admits it; then, if nothing else
  // is out, the call is finished with RESOURCE_EXHAUSTED.
  std::function<void()> PrepareAttemptLocked(bool hedge, std::optional<size_t> exclude)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (caller_->shutting_down_.load()) {
      if (outstanding_ == 0)
        FinishLocked(absl::CancelledError("the client is shutting down"), nullptr);
      return nullptr;
    }
    auto attempt = std::make_unique<Attempt>();
    attempt->hedge = hedge;
    attempt->endpoint = caller_->PickEndpoint(exclude);
    // A call without a priority may fill the whole limit, as before tiers existed, and
    // waits as a critical one.
    const double share = spec_.priority.has_value() ? LimitShare(*spec_.priority) : 1.0;
    const int rank = Rank();
    // While a more important call waits for a permit, or more important calls have waited
    // in vain lately, this one does not take one.
    if (!caller_->permit_waiters_.AnyMoreImportantThan(rank) &&
        !caller_->MoreImportantStarve(rank)) {
      attempt->permit = caller_->endpoints_[attempt->endpoint]->limiter->TryAcquire(share);
      if (!attempt->permit.has_value() && !hedge) {
        // The chosen endpoint is full: any other usable one with room beats waiting (the
        // choice by latency passes over a gateway just restarted, whose estimate is poor).
        for (size_t i = 0; i < caller_->endpoints_.size() && !attempt->permit.has_value(); ++i) {
          Endpoint& other = *caller_->endpoints_[i];
          if (i == attempt->endpoint || !caller_->Usable(other)) continue;
          attempt->permit = other.limiter->TryAcquire(share);
          if (attempt->permit.has_value()) attempt->endpoint = i;
        }
      }
    }
    if (!attempt->permit.has_value()) {
      if (hedge) {
        caller_->counters_.limiter_refusals++;
      } else if (outstanding_ == 0) {
        WaitForPermitLocked(exclude);
      }
      return nullptr;
    }
    // Only normal and sheddable calls are asked whether their wait is in vain, and their
    // rates count their own tier and below: what critical calls take is never read.
    const absl::Time now = caller_->clock_->Now();
    if (rank > 0) caller_->permit_waiters_.OnTaken(rank, now);
    if (permit_wait_timer_.has_value()) {
      caller_->timers_.Cancel(*permit_wait_timer_);
      permit_wait_timer_.reset();
    }
    Endpoint* endpoint = caller_->endpoints_[attempt->endpoint].get();
    // gRPC's own deadline leaves room for the pause grace; our timer enforces the real one.
    const absl::Duration grace = caller_->options_.gc_tolerant_timeouts
                                     ? caller_->options_.max_pause_grace
                                     : absl::ZeroDuration();
    const absl::Duration left = deadline_ - now;
    attempt->ctx.set_deadline(absl::ToChronoTime(absl::Now() + left + grace));
    if (spec_.priority.has_value()) {
      attempt->ctx.AddMetadata(kPriorityMetadataKey, std::string(PriorityName(*spec_.priority)));
    }
    attempt->started = now;
    endpoint->load->OnStart();
    caller_->counters_.attempts++;
    if (hedge) caller_->counters_.hedges++;
    ++outstanding_;
    Attempt* raw = attempt.get();
    attempts_.push_back(std::move(attempt));
    auto self = this->shared_from_this();
    if (spec_.attempt_timeout > absl::ZeroDuration() && spec_.attempt_timeout < left) {
      raw->timer = caller_->timers_.Schedule(spec_.attempt_timeout,
                                             [self, raw] { self->OnAttemptTimer(raw, false); });
    }
    caller_->RpcStarted();
    return [self, raw, endpoint] {
      self->start_(*endpoint, &raw->ctx, &raw->response, [self, raw](grpc::Status status) {
        self->OnAttemptDone(raw, status);
        self->caller_->RpcFinished();
      });
    };
  }

  // Whether the gateway answered `status` for one shard behind it (kShardUnavailableKey),
  // not for itself.
  static bool ShardUnavailable(const Attempt& attempt, const grpc::Status& status) {
    return status.error_code() == grpc::StatusCode::UNAVAILABLE &&
           attempt.ctx.GetServerTrailingMetadata().count(kShardUnavailableKey) > 0;
  }

  // Tells the endpoint's load estimate and limiter what the attempt says about them.
  void Observe(Attempt& attempt, const grpc::Status& status) {
    Endpoint& endpoint = *caller_->endpoints_[attempt.endpoint];
    const absl::Time now = caller_->clock_->Now();
    const absl::Duration elapsed = now - attempt.started;
    const grpc::StatusCode code = status.error_code();
    std::optional<reliability::ConcurrencyLimiter::Permit>& permit = attempt.permit;
    if (attempt.timed_out) {
      endpoint.load->OnFailure(elapsed);
      if (permit.has_value()) permit->OnDropped();
    } else if (code == grpc::StatusCode::CANCELLED && cancelled_by_us_.load()) {
      endpoint.load->OnCancel(elapsed);
      if (permit.has_value()) permit->OnIgnore();
    } else if (ShardUnavailable(attempt, status)) {
      // One shard behind the gateway failed, not the gateway, which answered: its
      // other calls (other shards, other namespaces) must not be refused or steered away.
      endpoint.load->OnSuccess(elapsed);
      if (permit.has_value()) permit->OnIgnore();
    } else if (code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::INTERNAL ||
               code == grpc::StatusCode::DEADLINE_EXCEEDED ||
               code == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      endpoint.load->OnFailure(elapsed);
      if (permit.has_value()) permit->OnDropped();
    } else {
      endpoint.load->OnSuccess(elapsed);
      const bool late = spec_.late_after > absl::ZeroDuration() && elapsed > spec_.late_after;
      if (permit.has_value()) late ? permit->OnLate(elapsed) : permit->OnSuccess(elapsed);
      if (status.ok() && spec_.latencies != nullptr) spec_.latencies->Record(elapsed);
    }
    if (attempt.hedge) caller_->hedge_budget_.Release();
    if (attempt.ctx.GetServerTrailingMetadata().count(kDrainingKey) > 0) {
      caller_->OnDrainingNotice(attempt.endpoint);
    }
    if (permit.has_value()) caller_->OnPermitReleased(now);
  }

  void OnAttemptDone(Attempt* attempt, const grpc::Status& status) {
    Observe(*attempt, status);
    {
      absl::MutexLock lock(&mu_);
      attempt->finished = true;
      --outstanding_;
      if (attempt->timer.has_value()) caller_->timers_.Cancel(*attempt->timer);
      if (finished_) return;
      if (!attempt->timed_out && (status.ok() || !Retryable(status.error_code()))) {
        if (status.ok() && attempt->hedge) caller_->counters_.hedges_won++;
        FinishLocked(FromGrpcStatus(status), &attempt->response);
      } else {
        last_error_ = attempt->timed_out
                          ? grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                         absl::StrCat("attempt timed out after ",
                                                      absl::FormatDuration(spec_.attempt_timeout)))
                          : status;
        if (outstanding_ == 0) MaybeRetryLocked(*attempt);  // else another may still succeed
      }
    }
    Deliver();
  }

  // Schedules a retry if retries are on, attempts and time remain, and the budget allows;
  // else finishes with the last error.
  void MaybeRetryLocked(const Attempt& failed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::Duration delay = caller_->BackoffDelay(retries_);
    if (const std::optional<absl::Duration> pushback = Pushback(failed.ctx)) {
      delay = std::max(delay, *pushback);
    }
    // A shard behind the gateway failing over: the gateway answered at once, with pushback,
    // and is fine, so retrying adds no load worth budgeting, and the call rides the
    // failover out until its own deadline.
    const bool shard_failure = !failed.timed_out && ShardUnavailable(failed, last_error_);
    if (!caller_->options_.retries ||
        (!shard_failure && retries_ + 1 >= caller_->options_.max_attempts) ||
        caller_->clock_->Now() + delay >= deadline_) {
      FinishLocked(FromGrpcStatus(last_error_), nullptr);
      return;
    }
    const bool prepaid = std::exchange(retry_prepaid_, false);
    if (!prepaid && !shard_failure && !caller_->retry_budget_.TryWithdraw()) {
      caller_->counters_.retry_budget_refusals++;
      FinishLocked(FromGrpcStatus(last_error_), nullptr);
      return;
    }
    ++retries_;
    caller_->counters_.retries++;
    last_endpoint_ = failed.endpoint;
    auto self = this->shared_from_this();
    caller_->timers_.Schedule(delay, [self] { self->OnRetryTimer(); });
  }

  // The call's tier as the permit queue orders it: without a priority, as a critical one.
  int Rank() const { return PriorityRank(spec_.priority.value_or(Priority::kCritical)); }

  // Every endpoint refused a permit: queue for one until started_at_ + limiter_max_wait
  // (at most the deadline), or fail now if that has passed, the queue is full, calls of
  // this tier have been waiting in vain (kPersistentWaitsRunOut), or this wait would be in
  // vain (the permits its tier gets in it go to the calls waiting before it, of its tier
  // or a more important one).
  void WaitForPermitLocked(std::optional<size_t> exclude) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const absl::Time now = caller_->clock_->Now();
    const absl::Time wait_until =
        std::min(deadline_, started_at_ + caller_->options_.limiter_max_wait);
    if (now < wait_until && caller_->MayWaitForPermit(Rank())) {
      // A critical call waits its whole wait whatever the odds: a permit may still come
      // its way, and nothing more important needs it to leave.
      if (Rank() > 0 && caller_->permit_waiters_.WouldWaitInVain(Rank(), now, wait_until)) {
        // Refused now rather than at the end of its wait, and counted as a wait run out:
        // it is one, foreseen.
        caller_->OnPermitWaitRanOut(Rank());
        RefuseLocked();
        return;
      }
      auto self = this->shared_from_this();
      permit_ticket_ = caller_->permit_waiters_.Push(
          Rank(), wait_until, [self, exclude] { self->OnPermitFreed(exclude); });
      if (permit_ticket_.has_value()) {
        waited_for_permit_ = true;
        if (!permit_wait_timer_.has_value()) {
          permit_wait_timer_ =
              caller_->timers_.Schedule(wait_until - now, [self] { self->OnPermitWaitOver(); });
        }
        return;
      }
    }
    // Woken too late: another call took the permit as its wait ran out.
    if (waited_for_permit_ && now >= wait_until) caller_->OnPermitWaitRanOut(Rank());
    RefuseLocked();
  }

  void RefuseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    caller_->counters_.limiter_refusals++;
    FinishLocked(
        absl::ResourceExhaustedError("client concurrency limit reached for every endpoint tried"),
        nullptr);
  }

  // Popped from the permit queue: a permit was freed. Another call may have taken it first;
  // then this one queues again while its wait allows.
  void OnPermitFreed(std::optional<size_t> exclude) {
    std::function<void()> launch;
    bool unused = false;
    {
      absl::MutexLock lock(&mu_);
      permit_ticket_.reset();
      if (finished_) {
        unused = true;
      } else {
        launch = PrepareAttemptLocked(/*hedge=*/false, exclude);
      }
    }
    if (unused) caller_->WakePermitWaiter();  // the freed permit goes to the next in line
    if (launch != nullptr) launch();
    Deliver();
  }

  void OnPermitWaitOver() {
    {
      absl::MutexLock lock(&mu_);
      permit_wait_timer_.reset();  // it is what is running
      if (finished_ || !permit_ticket_.has_value()) return;
      // Not removed: it is being woken, and fails there if it gets no permit.
      if (!caller_->permit_waiters_.Remove(*permit_ticket_)) return;
      permit_ticket_.reset();
      if (caller_->shutting_down_.load()) {
        FinishLocked(absl::CancelledError("the client is shutting down"), nullptr);
      } else {
        caller_->OnPermitWaitRanOut(Rank());
        RefuseLocked();
      }
    }
    Deliver();
  }

  void OnRetryTimer() {
    std::function<void()> launch;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      // A retry prefers another endpoint than the one that just failed.
      launch = PrepareAttemptLocked(/*hedge=*/false, last_endpoint_);
    }
    if (launch != nullptr) launch();
    Deliver();
  }

  // An attempt out longer than attempt_timeout is cancelled; its callback then retries.
  void OnAttemptTimer(Attempt* attempt, bool extended) {
    absl::MutexLock lock(&mu_);
    attempt->timer.reset();  // it is what is running
    if (finished_ || attempt->finished) return;
    if (!extended && caller_->options_.gc_tolerant_timeouts) {
      const absl::Duration grace = reliability::TimeoutGrace(
          caller_->pause_detector_.PausedDuring(attempt->started, caller_->clock_->Now()),
          caller_->options_.max_pause_grace);
      if (grace > absl::ZeroDuration()) {
        caller_->counters_.deadline_graces++;
        auto self = this->shared_from_this();
        attempt->timer = caller_->timers_.Schedule(
            grace, [self, attempt] { self->OnAttemptTimer(attempt, true); });
        return;
      }
    }
    // Cancel only when something can take over: another attempt still out, or a retry.
    // Otherwise cancelling would turn a slow call into a failed one (a failover that stalls
    // every attempt for seconds, with the retry budget spent, is the case in point).
    if (outstanding_ == 1) {
      if (!RetryPossibleLocked()) return;
      if (!caller_->retry_budget_.TryWithdraw()) {
        caller_->counters_.retry_budget_refusals++;
        return;
      }
      retry_prepaid_ = true;
    }
    attempt->timed_out = true;
    attempt->ctx.TryCancel();
  }

  bool RetryPossibleLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return caller_->options_.retries && retries_ + 1 < caller_->options_.max_attempts &&
           caller_->clock_->Now() + caller_->BackoffDelay(retries_) < deadline_;
  }

  void OnHedgeTimer() {
    std::function<void()> launch;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || outstanding_ == 0 || hedged_) return;
      hedged_ = true;
      if (!caller_->hedge_budget_.TryAcquire()) {
        caller_->counters_.hedge_budget_refusals++;
        return;
      }
      launch = PrepareAttemptLocked(/*hedge=*/true, attempts_.front()->endpoint);
      if (launch == nullptr) caller_->hedge_budget_.Release();
    }
    if (launch != nullptr) launch();
  }

  void OnDeadline(bool extended) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      if (!extended && caller_->options_.gc_tolerant_timeouts) {
        const absl::Duration grace = reliability::TimeoutGrace(
            caller_->pause_detector_.PausedDuring(started_at_, caller_->clock_->Now()),
            caller_->options_.max_pause_grace);
        if (grace > absl::ZeroDuration()) {
          // This process was paused: the answer may be in a socket buffer. Give it a moment.
          caller_->counters_.deadline_graces++;
          auto self = this->shared_from_this();
          deadline_timer_ =
              caller_->timers_.Schedule(grace, [self] { self->OnDeadline(/*extended=*/true); });
          return;
        }
      }
      std::string message = absl::StrCat("no answer within ", absl::FormatDuration(spec_.timeout));
      if (!last_error_.ok())
        absl::StrAppend(&message, "; last error: ", last_error_.error_message());
      deadline_timer_.reset();  // it is what is running
      FinishLocked(absl::DeadlineExceededError(message), nullptr);
    }
    Deliver();
  }

  // Marks the call finished with its outcome, cancels attempts still out and timers still
  // pending. Deliver() hands the outcome over once the lock is released.
  void FinishLocked(absl::Status status, Response* response) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    finished_ = true;
    cancelled_by_us_ = true;
    status_ = std::move(status);
    if (response != nullptr) response_ = std::move(*response);
    for (const auto& attempt : attempts_) {
      if (attempt->finished) continue;
      attempt->ctx.TryCancel();
      if (attempt->timer.has_value()) caller_->timers_.Cancel(*attempt->timer);
    }
    if (deadline_timer_.has_value()) caller_->timers_.Cancel(*deadline_timer_);
    if (hedge_timer_.has_value()) caller_->timers_.Cancel(*hedge_timer_);
    if (permit_wait_timer_.has_value()) caller_->timers_.Cancel(*permit_wait_timer_);
    // A waiter already popped finds the call finished and passes its permit on.
    if (permit_ticket_.has_value()) caller_->permit_waiters_.Remove(*permit_ticket_);
  }

  // Runs done_ once, outside the lock, after the call finished.
  void Deliver() {
    Done<Response> done;
    {
      absl::MutexLock lock(&mu_);
      if (!finished_ || delivered_) return;
      delivered_ = true;
      done = std::move(done_);
    }
    done(status_, std::move(response_));
  }

  ReliableCaller* const caller_;
  const CallSpec spec_;
  const StartAttempt<Response> start_;
  Done<Response> done_;
  const absl::Time started_at_;
  const absl::Time deadline_;
  std::atomic<bool> cancelled_by_us_{false};

  absl::Mutex mu_;
  std::vector<std::unique_ptr<Attempt>> attempts_ ABSL_GUARDED_BY(mu_);
  int outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  int retries_ ABSL_GUARDED_BY(mu_) = 0;
  // The budget was drawn when a timed-out attempt was cancelled, for the retry after it.
  bool retry_prepaid_ ABSL_GUARDED_BY(mu_) = false;
  bool hedged_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool delivered_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<size_t> last_endpoint_ ABSL_GUARDED_BY(mu_);
  grpc::Status last_error_ ABSL_GUARDED_BY(mu_);
  std::optional<DelayQueue::Handle> deadline_timer_ ABSL_GUARDED_BY(mu_);
  std::optional<DelayQueue::Handle> hedge_timer_ ABSL_GUARDED_BY(mu_);
  // Set while the call waits in the permit queue, and the end of that wait.
  std::optional<reliability::PermitQueue::Ticket> permit_ticket_ ABSL_GUARDED_BY(mu_);
  std::optional<DelayQueue::Handle> permit_wait_timer_ ABSL_GUARDED_BY(mu_);
  bool waited_for_permit_ ABSL_GUARDED_BY(mu_) = false;
  // The outcome, set once by FinishLocked and read once by Deliver.
  absl::Status status_;
  Response response_;
};

template <typename Response>
void ReliableCaller::Call(const CallSpec& spec, StartAttempt<Response> start, Done<Response> done) {
  auto call =
      std::make_shared<LogicalCall<Response>>(this, spec, std::move(start), std::move(done));
  call->Begin();
}

}  // namespace stategate::client
