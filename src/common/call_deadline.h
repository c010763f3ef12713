// The deadline of the call a thread is working on, for blocking code far below the request
// path that has no parameter for it (the Redis Cluster client's retry loop, the rounds of a
// write waiting for its replicas): past the call's deadline its answer is useless, so such
// loops give up then instead of holding the thread. The gateway sets it around each call's
// engine work; code that runs outside any call sees no deadline.
//
// (Engine calls take their deadline this way until the engine interface is asynchronous;
// then it becomes an argument.)
#pragma once

#include <algorithm>

#include "absl/time/time.h"

namespace stategate {

namespace internal {
inline absl::Time& ThreadCallDeadline() {
  thread_local absl::Time deadline = absl::InfiniteFuture();
  return deadline;
}
}  // namespace internal

// The current thread's call deadline; InfiniteFuture outside a call.
inline absl::Time CallDeadline() { return internal::ThreadCallDeadline(); }

// Sets the current thread's call deadline (never later than an enclosing one) for its
// lifetime.
class ScopedCallDeadline {
 public:
  explicit ScopedCallDeadline(absl::Time deadline) : saved_(internal::ThreadCallDeadline()) {
    internal::ThreadCallDeadline() = std::min(saved_, deadline);
  }
  ~ScopedCallDeadline() { internal::ThreadCallDeadline() = saved_; }
  ScopedCallDeadline(const ScopedCallDeadline&) = delete;
  ScopedCallDeadline& operator=(const ScopedCallDeadline&) = delete;

 private:
  const absl::Time saved_;
};

}  // namespace stategate
