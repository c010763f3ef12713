// Await: the blocking form of an asynchronous operation. Starts it and blocks the calling
// thread until its callback has run once, then returns what the callback was given.
//
// Only for operations that answer within a bound of their own (a deadline, a timeout): the
// wait has none. Never call it on the thread that runs the operation's callbacks (an event
// loop), which would then wait for itself.
#pragma once

#include <optional>
#include <utility>

#include "absl/synchronization/notification.h"

namespace stategate {

// start(done) must make sure done(result) runs exactly once, on any thread.
template <typename Result, typename Start>
Result Await(Start start) {
  absl::Notification answered;
  std::optional<Result> result;
  start([&](Result r) {
    result.emplace(std::move(r));
    answered.Notify();
  });
  answered.WaitForNotification();
  return *std::move(result);
}

// The same for a callback that is given nothing.
template <typename Start>
void AwaitDone(Start start) {
  absl::Notification answered;
  start([&] { answered.Notify(); });
  answered.WaitForNotification();
}

}  // namespace stategate
