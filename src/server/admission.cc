#include "src/server/admission.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "src/common/status_macros.h"

namespace stategate::server {
namespace {

reliability::LimiterOptions LimiterOptionsOf(const AdmissionConfig& config) {
  reliability::LimiterOptions options;
  options.kind = config.limiter;
  options.aimd.initial_limit = config.initial_limit;
  options.aimd.min_limit = config.min_limit;
  options.aimd.max_limit = config.max_limit;
  options.vegas.initial_limit = config.initial_limit;
  options.vegas.max_limit = config.max_limit;
  options.gradient2.initial_limit = config.initial_limit;
  options.gradient2.min_limit = config.min_limit;
  options.gradient2.max_limit = config.max_limit;
  // A server's latency wanders with the machine's other work: rises of up to 50 % are not
  // taken for a queue (later Netflix versions do the same).
  options.gradient2.rtt_tolerance = 1.5;
  return options;
}

}  // namespace

absl::Status ValidateAdmission(const AdmissionConfig& config) {
  if (config.max_queue < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("admission.max_queue must be >= 0, got ", config.max_queue));
  }
  if (config.max_queue_wait <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("admission.max_queue_wait must be > 0");
  }
  if (config.retry_pushback <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("admission.retry_pushback must be > 0");
  }
  absl::StatusOr<std::unique_ptr<reliability::ConcurrencyLimiter>> limiter =
      reliability::MakeLimiter(LimiterOptionsOf(config));
  if (!limiter.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "admission (limiter, initial_limit, min_limit, max_limit): ", limiter.status().message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<Admission>> Admission::Create(const AdmissionConfig& config,
                                                             const Clock* clock,
                                                             Schedule schedule) {
  SG_RETURN_IF_ERROR(ValidateAdmission(config));
  SG_ASSIGN_OR_RETURN(std::unique_ptr<reliability::ConcurrencyLimiter> limiter,
                      reliability::MakeLimiter(LimiterOptionsOf(config)));
  return std::shared_ptr<Admission>(
      new Admission(config, clock, std::move(schedule), std::move(limiter)));
}

Admission::Slot::~Slot() {
  if (admission_ != nullptr) Finish(Outcome::kIgnored);
}

void Admission::Slot::Finish(Outcome outcome) {
  if (admission_ == nullptr) return;
  switch (outcome) {
    case Outcome::kServed:
      permit_.OnSuccess(admission_->clock_->Now() - started_);
      break;
    case Outcome::kDropped:
      permit_.OnDropped();
      break;
    case Outcome::kIgnored:
      permit_.OnIgnore();
      break;
  }
  std::shared_ptr<Admission> admission = std::move(admission_);
  admission_ = nullptr;
  admission->Pump();
}

absl::Status Admission::Shed(Priority priority) {
  ++stats_.shed[PriorityRank(priority)];
  return absl::ResourceExhaustedError(absl::StrCat(
      "shed: the namespace is at its limit of ", limiter_->limit(), " calls running and ",
      WaitingLocked(), " waiting (a ", PriorityName(priority), " call); retry after the pushback"));
}

void Admission::Submit(Priority priority, absl::Time deadline, Start start, Refuse refuse) {
  const absl::Time now = clock_->Now();
  const int rank = PriorityRank(priority);
  std::vector<Decided> decided;
  std::optional<absl::Duration> wake_in;
  {
    absl::MutexLock lock(&mu_);
    Waiting call{std::move(start), std::move(refuse),
                 std::min(deadline, now + config_.max_queue_wait), deadline};
    std::optional<reliability::ConcurrencyLimiter::Permit> permit;
    // Waiting calls go first: a call may start at once only when none waits.
    if (deadline > now && WaitingLocked() == 0) permit = limiter_->TryAcquire();
    if (deadline <= now) {
      ++stats_.expired[rank];
      decided.push_back(
          {std::move(call), std::nullopt,
           absl::DeadlineExceededError("the call's deadline passed before it reached the gateway"),
           priority});
    } else if (permit.has_value()) {
      ++stats_.admitted[rank];
      decided.push_back({std::move(call), std::move(permit), absl::OkStatus(), priority});
    } else {
      // It must wait. A full queue gives its place to a more important call: the newest
      // waiting call of the lowest tier below this one goes; with none, this call goes.
      bool admitted_to_queue = true;
      if (WaitingLocked() >= static_cast<size_t>(config_.max_queue)) {
        int victim = -1;
        for (int tier = kPriorityTiers - 1; tier > rank; --tier) {
          if (!waiting_[tier].empty()) {
            victim = tier;
            break;
          }
        }
        if (victim < 0) {
          admitted_to_queue = false;
          absl::Status shed = Shed(priority);
          decided.push_back({std::move(call), std::nullopt, std::move(shed), priority});
        } else {
          Waiting displaced = std::move(waiting_[victim].back());
          waiting_[victim].pop_back();
          const Priority displaced_priority = kAllPriorities[victim];
          absl::Status shed = Shed(displaced_priority);
          decided.push_back(
              {std::move(displaced), std::nullopt, std::move(shed), displaced_priority});
        }
      }
      if (admitted_to_queue) {
        ++stats_.queued[rank];
        wake_in = call.give_up - now;
        waiting_[rank].push_back(std::move(call));
      }
    }
  }
  if (wake_in.has_value()) {
    std::weak_ptr<Admission> weak = weak_from_this();
    schedule_(*wake_in, [weak] {
      if (std::shared_ptr<Admission> admission = weak.lock()) admission->Expire();
    });
  }
  Carry(decided);
}

void Admission::Expire() {
  const absl::Time now = clock_->Now();
  std::vector<Decided> decided;
  {
    absl::MutexLock lock(&mu_);
    for (int rank = 0; rank < kPriorityTiers; ++rank) {
      std::deque<Waiting>& tier = waiting_[rank];
      const Priority priority = kAllPriorities[rank];
      for (auto it = tier.begin(); it != tier.end();) {
        if (it->give_up > now) {
          ++it;
          continue;
        }
        absl::Status refusal;
        if (it->deadline <= now) {
          ++stats_.expired[rank];
          refusal = absl::DeadlineExceededError(
              "the call's deadline passed while it waited for a slot at the gateway");
        } else {
          // It waited max_queue_wait: the namespace is saturated, and waiting longer would
          // only spend the caller's SLO.
          refusal = Shed(priority);
        }
        decided.push_back({std::move(*it), std::nullopt, std::move(refusal), priority});
        it = tier.erase(it);
      }
    }
  }
  Carry(decided);
}

void Admission::Pump() {
  std::vector<Decided> decided;
  {
    absl::MutexLock lock(&mu_);
    for (int rank = 0; rank < kPriorityTiers; ++rank) {
      std::deque<Waiting>& tier = waiting_[rank];
      while (!tier.empty()) {
        std::optional<reliability::ConcurrencyLimiter::Permit> permit = limiter_->TryAcquire();
        if (!permit.has_value()) break;
        ++stats_.admitted[rank];
        decided.push_back(
            {std::move(tier.front()), std::move(permit), absl::OkStatus(), kAllPriorities[rank]});
        tier.pop_front();
      }
      if (!tier.empty()) break;  // no slot left for this tier, so none for the ones below
    }
  }
  Carry(decided);
}

void Admission::Carry(std::vector<Decided>& decided) {
  for (Decided& d : decided) {
    if (d.permit.has_value()) {
      std::move(d.call->start)(Slot(shared_from_this(), std::move(*d.permit), clock_->Now()));
    } else {
      const absl::Duration pushback =
          absl::IsResourceExhausted(d.refusal) ? config_.retry_pushback : absl::ZeroDuration();
      std::move(d.call->refuse)(std::move(d.refusal), pushback);
    }
  }
}

size_t Admission::WaitingLocked() const {
  size_t n = 0;
  for (const auto& tier : waiting_) n += tier.size();
  return n;
}

size_t Admission::waiting() const {
  absl::MutexLock lock(&mu_);
  return WaitingLocked();
}

AdmissionStats Admission::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace stategate::server

namespace stategate::server {

absl::StatusOr<std::shared_ptr<Admission>> Admissions::For(const NamespaceConfig& ns,
                                                           const std::string& shard) {
  absl::MutexLock lock(&mu_);
  const std::pair<std::string, std::string> key{ns.name, shard};
  std::shared_ptr<Admission>& admission = by_shard_[key];
  if (admission == nullptr || !(admission->config() == ns.admission)) {
    absl::StatusOr<std::shared_ptr<Admission>> made =
        Admission::Create(ns.admission, clock_, schedule_);
    if (!made.ok()) {
      if (admission == nullptr) by_shard_.erase(key);
      return made.status();
    }
    admission = *std::move(made);
  }
  return admission;
}

std::vector<std::string> Admissions::Report() const {
  std::vector<std::string> lines;
  absl::MutexLock lock(&mu_);
  for (const auto& [key, admission] : by_shard_) {
    const auto& [name, shard] = key;
    const AdmissionStats stats = admission->stats();
    std::string line = absl::StrCat("admission ", name, shard.empty() ? "" : " shard ", shard,
                                    ": limit ", admission->limit(), ", running ",
                                    admission->running(), ", waiting ", admission->waiting());
    for (Priority priority : kAllPriorities) {
      const int rank = PriorityRank(priority);
      absl::StrAppend(&line, "; ", PriorityName(priority), " admitted ", stats.admitted[rank],
                      " queued ", stats.queued[rank], " shed ", stats.shed[rank], " expired ",
                      stats.expired[rank]);
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace stategate::server
