#include "src/client/reliable_call.h"

#include <algorithm>
#include <limits>

#include "absl/strings/numbers.h"

namespace stategate::client {
namespace {

reliability::RetryBudgetOptions RetryBudgetFrom(const ReliabilityOptions& o) {
  reliability::RetryBudgetOptions out;
  out.ratio = o.retry_share;
  out.min_retries_per_second = o.min_retries_per_second;
  return out;
}

reliability::HedgeBudgetOptions HedgeBudgetFrom(const ReliabilityOptions& o) {
  reliability::HedgeBudgetOptions out;
  out.ratio = o.hedge_share;
  out.max_in_flight = o.max_hedges_in_flight;
  return out;
}

}  // namespace

ReliableCaller::ReliableCaller(std::vector<std::unique_ptr<Endpoint>> endpoints,
                               ReliabilityOptions options, const Clock* clock)
    : endpoints_(std::move(endpoints)),
      options_(std::move(options)),
      clock_(clock),
      backoff_(reliability::BackoffOptions{options_.backoff_base, options_.backoff_cap}),
      retry_budget_(RetryBudgetFrom(options_), clock),
      hedge_budget_(HedgeBudgetFrom(options_), clock),
      permit_waiters_(kMaxPermitWaiters, kPriorityTiers, options_.limiter_max_wait, clock->Now()) {
  if (options_.gc_tolerant_timeouts) pause_detector_.Start();
}

ReliableCaller::~ReliableCaller() {
  // No new attempts; pending timers run now (finishing their calls); then every RPC's
  // callback must have run before the endpoints and counters go away.
  shutting_down_ = true;
  timers_.Stop();
  absl::MutexLock lock(&rpcs_mu_);
  rpcs_mu_.Await(absl::Condition(
      +[](int* in_flight) { return *in_flight == 0; }, &rpcs_in_flight_));
  pause_detector_.Stop();
}

void ReliableCaller::OnDrainingNotice(size_t index) {
  Endpoint& endpoint = *endpoints_[index];
  endpoint.avoid_until_us.store(absl::ToUnixMicros(clock_->Now() + kDrainingAvoidance));
  if (endpoint.health == nullptr || endpoint.probing.exchange(true)) return;
  timers_.Schedule(kDrainProbeInterval, [this, index] { ProbeDraining(index); });
}

void ReliableCaller::ProbeDraining(size_t index) {
  Endpoint& endpoint = *endpoints_[index];
  if (shutting_down_.load() || clock_->NowMicros() >= endpoint.avoid_until_us.load()) {
    endpoint.probing.store(false);
    return;
  }
  struct Probe {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest request;  // service "": the gateway as a whole
    grpc::health::v1::HealthCheckResponse response;
  };
  auto probe = std::make_shared<Probe>();
  probe->ctx.set_deadline(absl::ToChronoTime(absl::Now() + kDrainProbeTimeout));
  RpcStarted();
  endpoint.health->async()->Check(
      &probe->ctx, &probe->request, &probe->response, [this, index, probe](grpc::Status status) {
        Endpoint& endpoint = *endpoints_[index];
        if (status.ok() &&
            probe->response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
          endpoint.avoid_until_us.store(0);
          endpoint.probing.store(false);
        } else if (shutting_down_.load()) {
          endpoint.probing.store(false);
        } else {
          // Still draining, or down until its restart listens: ask again shortly.
          timers_.Schedule(kDrainProbeInterval, [this, index] { ProbeDraining(index); });
        }
        RpcFinished();  // last: the destructor may free everything once it returns
      });
}

void ReliableCaller::OnPermitReleased(absl::Time now) {
  permit_waiters_.OnReleased(now);
  WakePermitWaiter();
}

void ReliableCaller::WakePermitWaiter() {
  reliability::PermitQueue::Wake wake = permit_waiters_.Pop();
  if (wake == nullptr) return;
  // A woken call starts an RPC, which gRPC may fail inline, whose report wakes the next
  // waiter: past a few levels the wake-up goes through the timer thread instead, so that a
  // queue of failing calls cannot grow the stack.
  static thread_local int depth = 0;
  if (depth >= 4) {
    timers_.Schedule(absl::ZeroDuration(), std::move(wake));
    return;
  }
  ++depth;
  wake();
  --depth;
}

absl::Duration ReliableCaller::NoWait() const {
  return std::max(kMinNoWait, 2 * options_.limiter_max_wait);
}

bool ReliableCaller::AnyDoorClosed(int tiers) const {
  if (tiers <= 0) return false;  // critical calls, the common case, read no clock
  const int64_t now_us = clock_->NowMicros();
  const int64_t no_wait_us = absl::ToInt64Microseconds(NoWait());
  const int64_t persistent_us = absl::ToInt64Microseconds(kPersistentWaitsRunOut);
  for (int r = 0; r < tiers && r < kPriorityTiers; ++r) {
    const int64_t last_us = waits_run_out_[r].last_us.load();
    // Calls of this tier have waited in vain for a while, and lately.
    if (now_us - last_us < no_wait_us &&
        last_us - waits_run_out_[r].first_us.load() >= persistent_us) {
      return true;
    }
  }
  return false;
}

void ReliableCaller::OnPermitWaitRanOut(int rank) {
  if (rank < 0 || rank >= kPriorityTiers) return;
  WaitsRunOut& waits = waits_run_out_[rank];
  const int64_t now_us = clock_->NowMicros();
  // A gap longer than twice the door ends a run: the door opened, and calls got permits.
  if (now_us - waits.last_us.load() > 2 * absl::ToInt64Microseconds(NoWait())) {
    waits.first_us.store(now_us);
  }
  waits.last_us.store(now_us);
}

bool ReliableCaller::Usable(const Endpoint& endpoint) const {
  if (clock_->NowMicros() < endpoint.avoid_until_us.load()) return false;
  return endpoint.channel == nullptr ||
         endpoint.channel->GetState(/*try_to_connect=*/false) != GRPC_CHANNEL_TRANSIENT_FAILURE;
}

size_t ReliableCaller::PickEndpoint(std::optional<size_t> exclude) {
  const size_t n = endpoints_.size();
  if (n == 1) return 0;
  // The candidates, by index into endpoints_: the usable ones. If none is, those whose
  // draining notice is oldest: in a rolling restart, the ones most likely back by now.
  std::vector<size_t> candidates;
  candidates.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (Usable(*endpoints_[i])) candidates.push_back(i);
  }
  if (candidates.empty()) {
    int64_t oldest = std::numeric_limits<int64_t>::max();
    for (const auto& endpoint : endpoints_)
      oldest = std::min(oldest, endpoint->avoid_until_us.load());
    for (size_t i = 0; i < n; ++i) {
      if (endpoints_[i]->avoid_until_us.load() <= oldest) candidates.push_back(i);
    }
  }
  // `exclude` as a position among the candidates (none if it is not one).
  std::optional<size_t> skip;
  if (exclude.has_value()) {
    auto it = std::find(candidates.begin(), candidates.end(), *exclude);
    if (it != candidates.end()) skip = static_cast<size_t>(it - candidates.begin());
  }
  if (!options_.load_balancing) {
    size_t next = round_robin_.fetch_add(1) % candidates.size();
    if (skip.has_value() && next == *skip) next = (next + 1) % candidates.size();
    return candidates[next];
  }
  std::vector<reliability::EndpointLoad*> loads;
  loads.reserve(candidates.size());
  for (size_t i : candidates) loads.push_back(endpoints_[i]->load.get());
  absl::MutexLock lock(&rng_mu_);
  return candidates[reliability::PickTwo(loads, rng_, skip)];
}

absl::Duration ReliableCaller::BackoffDelay(int retry) {
  absl::MutexLock lock(&rng_mu_);
  return backoff_.Delay(retry, rng_);
}

bool ReliableCaller::Retryable(grpc::StatusCode code) {
  // CANCELLED here is the server's (a draining gateway turns calls away with it; our own
  // cancels never reach this question). Every mutation carries its idempotency token, so
  // a retry of a call that did run is harmless.
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::RESOURCE_EXHAUSTED ||
         code == grpc::StatusCode::ABORTED || code == grpc::StatusCode::CANCELLED;
}

std::optional<absl::Duration> ReliableCaller::Pushback(const grpc::ClientContext& ctx) {
  const auto& trailers = ctx.GetServerTrailingMetadata();
  auto it = trailers.find("grpc-retry-pushback-ms");
  if (it == trailers.end()) return std::nullopt;
  int64_t ms = 0;
  if (!absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &ms) || ms < 0) {
    return std::nullopt;
  }
  return absl::Milliseconds(ms);
}

KvClientStats ReliableCaller::stats() const {
  KvClientStats s;
  s.calls = counters_.calls;
  s.attempts = counters_.attempts;
  s.hedges = counters_.hedges;
  s.hedges_won = counters_.hedges_won;
  s.retries = counters_.retries;
  s.retry_budget_refusals = counters_.retry_budget_refusals;
  s.hedge_budget_refusals = counters_.hedge_budget_refusals;
  s.limiter_refusals = counters_.limiter_refusals;
  s.deadline_graces = counters_.deadline_graces;
  return s;
}

}  // namespace stategate::client
