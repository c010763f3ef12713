#include "src/client/reliability/permit_queue.h"

namespace stategate::reliability {

std::optional<PermitQueue::Ticket> PermitQueue::Push(Rank rank, Wake wake) {
  absl::MutexLock lock(&mu_);
  if (waiters_.size() >= capacity_) return std::nullopt;
  const Ticket ticket{rank, next_sequence_++};
  waiters_.emplace(std::pair(ticket.rank, ticket.sequence), std::move(wake));
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
  Wake wake = std::move(waiters_.begin()->second);
  waiters_.erase(waiters_.begin());
  waiting_.store(waiters_.size());
  return wake;
}

bool PermitQueue::AnyMoreImportantThan(Rank rank) const {
  if (waiting_.load() == 0) return false;
  absl::MutexLock lock(&mu_);
  return !waiters_.empty() && waiters_.begin()->first.first < rank;
}

size_t PermitQueue::size() const {
  absl::MutexLock lock(&mu_);
  return waiters_.size();
}

}  // namespace stategate::reliability
