#include "src/client/reliability/permit_queue.h"

#include <algorithm>

namespace stategate::reliability {
namespace {
// Slices of the permit counts: each covers between 4/5 of a wait and a whole one.
constexpr int kCountSlices = 5;
}  // namespace

PermitQueue::PermitQueue(size_t capacity, int ranks, absl::Duration wait, absl::Time now)
    : capacity_(capacity),
      wait_(wait),
      counting_since_(now),
      last_release_us_(0),  // none yet: as if in 1970, long before any wait
      taken_(std::max(ranks, 1), ExpiringTokenBucket(wait, kCountSlices, now)) {}

std::optional<PermitQueue::Ticket> PermitQueue::Push(Rank rank, absl::Time until, Wake wake) {
  absl::MutexLock lock(&mu_);
  if (waiters_.size() >= capacity_) return std::nullopt;
  const Ticket ticket{rank, next_sequence_++};
  waiters_.emplace(std::pair(ticket.rank, ticket.sequence), Waiter{until, std::move(wake)});
  waiting_.store(waiters_.size());
  return ticket;
}

bool PermitQueue::Remove(const Ticket& ticket) {
  absl::MutexLock lock(&mu_);
  const bool removed = waiters_.erase(std::pair(ticket.rank, ticket.sequence)) > 0;
  waiting_.store(waiters_.size());
  return removed;
}

PermitQueue::Wake PermitQueue::Pop() {
  // A Push racing with this may be missed, as it would be with the lock taken first: that
  // waiter is woken by the next permit, or its wait runs out.
  if (waiting_.load() == 0) return nullptr;
  absl::MutexLock lock(&mu_);
  if (waiters_.empty()) return nullptr;
  Wake wake = std::move(waiters_.begin()->second.wake);
  waiters_.erase(waiters_.begin());
  waiting_.store(waiters_.size());
  return wake;
}

bool PermitQueue::AnyMoreImportantThan(Rank rank) const {
  if (waiting_.load() == 0) return false;
  absl::MutexLock lock(&mu_);
  return !waiters_.empty() && waiters_.begin()->first.first < rank;
}

size_t PermitQueue::TakenIndex(Rank rank) const {
  return static_cast<size_t>(std::clamp(rank, 0, static_cast<Rank>(taken_.size()) - 1));
}

void PermitQueue::OnReleased(absl::Time now) {
  last_release_us_.store(absl::ToUnixMicros(now), std::memory_order_relaxed);
}

void PermitQueue::OnTaken(Rank rank, absl::Time now) {
  absl::MutexLock lock(&counts_mu_);
  taken_[TakenIndex(rank)].Add(1, now);
}

bool PermitQueue::WouldWaitInVain(Rank rank, absl::Time now, absl::Time until) {
  if (waiting_.load() == 0) return false;
  const absl::Duration counted = std::min(wait_, now - counting_since_);
  if (counted < wait_ / 2 || counted <= absl::ZeroDuration()) return false;  // too few seen
  const int64_t since_release_us =
      absl::ToUnixMicros(now) - last_release_us_.load(std::memory_order_relaxed);
  if (since_release_us >= absl::ToInt64Microseconds(wait_)) return false;
  int64_t left_to_tier = 0;
  {
    absl::MutexLock lock(&counts_mu_);
    for (size_t r = TakenIndex(rank); r < taken_.size(); ++r) left_to_tier += taken_[r].Sum(now);
  }
  const double per_second = static_cast<double>(left_to_tier) / absl::ToDoubleSeconds(counted);
  // Permits its tier gets between now and `t`, at that rate.
  auto due_by = [&](absl::Time t) { return per_second * absl::ToDoubleSeconds(t - now); };
  const double mine = due_by(until);
  absl::MutexLock lock(&mu_);
  // Nobody of its tier or a more important one waits: the next permit to free is its,
  // however rarely its tier took one lately.
  if (waiters_.empty() || waiters_.begin()->first.first > rank) return false;
  // Its tier got no permit lately, and others wait: none is due to it.
  if (mine <= 0) return true;
  // The waiters before it, in the order they are woken. The rate leaves out what more
  // important tiers take as they come; those of them waiting now are a backlog on top,
  // served first, from the same permits.
  int64_t taken = 0;
  for (auto it = waiters_.begin(); it != waiters_.end() && it->first.first <= rank; ++it) {
    if (due_by(it->second.until) > static_cast<double>(taken)) ++taken;
    if (static_cast<double>(taken) >= mine) return true;
  }
  return false;
}

size_t PermitQueue::size() const {
  absl::MutexLock lock(&mu_);
  return waiters_.size();
}

}  // namespace stategate::reliability
