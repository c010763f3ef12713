#include "src/client/reliability/permit_queue.h"

namespace stategate::reliability {

std::optional<PermitQueue::Ticket> PermitQueue::Push(Rank rank, Wake wake) {
  absl::MutexLock lock(&mu_);
  if (waiters_.size() >= capacity_) return std::nullopt;
  const Ticket ticket{rank, next_sequence_++};
  waiters_.emplace(std::pair(ticket.rank, ticket.sequence), std::move(wake));
  return ticket;
}

bool PermitQueue::Remove(const Ticket& ticket) {
  absl::MutexLock lock(&mu_);
  return waiters_.erase(std::pair(ticket.rank, ticket.sequence)) > 0;
}

PermitQueue::Wake PermitQueue::Pop() {
  absl::MutexLock lock(&mu_);
  if (waiters_.empty()) return nullptr;
  Wake wake = std::move(waiters_.begin()->second);
  waiters_.erase(waiters_.begin());
  return wake;
}

bool PermitQueue::AnyMoreImportantThan(Rank rank) const {
  absl::MutexLock lock(&mu_);
  return !waiters_.empty() && waiters_.begin()->first.first < rank;
}

size_t PermitQueue::size() const {
  absl::MutexLock lock(&mu_);
  return waiters_.size();
}

}  // namespace stategate::reliability
