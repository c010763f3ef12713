#include "src/client/reliable_call.h"

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
      hedge_budget_(HedgeBudgetFrom(options_), clock) {
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

size_t ReliableCaller::PickEndpoint(std::optional<size_t> exclude) {
  const size_t n = endpoints_.size();
  if (n == 1) return 0;
  if (!options_.load_balancing) {
    size_t next = round_robin_.fetch_add(1) % n;
    if (exclude.has_value() && next == *exclude) next = (next + 1) % n;
    return next;
  }
  std::vector<reliability::EndpointLoad*> loads;
  loads.reserve(n);
  for (const auto& endpoint : endpoints_) loads.push_back(endpoint->load.get());
  absl::MutexLock lock(&rng_mu_);
  return reliability::PickTwo(loads, rng_, exclude);
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
