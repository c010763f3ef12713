// Admission: the first step of every KeyValue call on a gateway (README, "Admission and priority"),
// one per namespace. An adaptive concurrency limit (the client's limiters, reused) decides
// how many of the namespace's calls run at once. A call beyond it waits in a bounded queue
// ordered by priority tier (critical, normal, sheddable; FIFO within a tier) until a running
// call finishes — at most max_queue_wait, and never past its deadline. When the queue is
// full, an arriving call displaces the newest waiting call of a lower tier, or is shed itself
// if none waits. A shed call is refused at once, before any engine work: RESOURCE_EXHAUSTED
// with the namespace's retry pushback. A call whose deadline has passed is refused
// DEADLINE_EXCEEDED.
//
// Nothing here blocks: Submit runs `start` (now or when a slot frees, on the thread that
// freed it) or `refuse` (now, on a later Submit that displaced it, or from Expire), exactly
// once. Expire must be called when a waiting call's time is up; Admission asks for that
// through the `schedule` function it is given, so tests drive it with a fake clock.
//
// Thread-safe. Create with Admission::Create; a Slot keeps its Admission alive.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/client/reliability/limiter.h"
#include "src/common/clock.h"
#include "src/common/namespace_config.h"
#include "src/common/priority.h"

namespace stategate::server {

// INVALID_ARGUMENT naming the admission field that makes no sense.
[[nodiscard]] absl::Status ValidateAdmission(const AdmissionConfig& config);

// Counters since creation; they only grow.
struct AdmissionStats {
  std::array<int64_t, kPriorityTiers> admitted{};  // started, at once or after waiting
  std::array<int64_t, kPriorityTiers> queued{};    // had to wait for a slot
  std::array<int64_t, kPriorityTiers> shed{};     // refused: queue full, displaced, waited too long
  std::array<int64_t, kPriorityTiers> expired{};  // refused: deadline passed before a slot
};

class Admission : public std::enable_shared_from_this<Admission> {
 public:
  // Runs `task` after `delay` (on a timer thread; must not block).
  using Schedule = std::function<void(absl::Duration delay, std::function<void()> task)>;

  // The running call's hold on one of the namespace's slots. Finish reports how the call
  // went and frees the slot, which starts the next waiting call; a Slot destroyed unfinished
  // counts as kIgnored. Move-only.
  class Slot {
   public:
    enum class Outcome {
      kServed,   // answered (OK or the caller's error): its latency is the limit's signal
      kDropped,  // ran out of time while running: overload
      kIgnored,  // says nothing about this namespace's load (cancelled, engine unavailable)
    };
    Slot(Slot&&) noexcept = default;
    Slot& operator=(Slot&&) noexcept = default;
    ~Slot();
    void Finish(Outcome outcome);

   private:
    friend class Admission;
    Slot(std::shared_ptr<Admission> admission, reliability::ConcurrencyLimiter::Permit permit,
         absl::Time started)
        : admission_(std::move(admission)), permit_(std::move(permit)), started_(started) {}

    std::shared_ptr<Admission> admission_;
    reliability::ConcurrencyLimiter::Permit permit_;
    absl::Time started_;
  };

  using Start = absl::AnyInvocable<void(Slot slot) &&>;
  // The refusal's status and, for RESOURCE_EXHAUSTED, the pushback to send with it.
  using Refuse = absl::AnyInvocable<void(absl::Status status, absl::Duration pushback) &&>;

  // INVALID_ARGUMENT for a config ValidateAdmission refuses.
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<Admission>> Create(
      const AdmissionConfig& config, const Clock* clock, Schedule schedule);

  // Admits, queues or refuses one call; exactly one of `start` and `refuse` runs, once.
  void Submit(Priority priority, absl::Time deadline, Start start, Refuse refuse);

  // Refuses every waiting call whose time is up. Called by the scheduled timers; harmless
  // at any other time.
  void Expire();

  const AdmissionConfig& config() const { return config_; }
  int limit() const { return limiter_->limit(); }
  int running() const { return limiter_->in_flight(); }
  size_t waiting() const;
  AdmissionStats stats() const;

 private:
  struct Waiting {
    Start start;
    Refuse refuse;
    absl::Time give_up;  // min(deadline, enqueued + max_queue_wait)
    absl::Time deadline;
  };
  // A call to start or refuse once the lock is released.
  struct Decided {
    std::optional<Waiting> call;
    std::optional<reliability::ConcurrencyLimiter::Permit> permit;  // set: start it
    absl::Status refusal;
    Priority priority = Priority::kNormal;
  };

  Admission(const AdmissionConfig& config, const Clock* clock, Schedule schedule,
            std::unique_ptr<reliability::ConcurrencyLimiter> limiter)
      : config_(config),
        clock_(clock),
        schedule_(std::move(schedule)),
        limiter_(std::move(limiter)) {}

  // Starts waiting calls while slots are free.
  void Pump();
  void Carry(std::vector<Decided>& decided);
  absl::Status Shed(Priority priority) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t WaitingLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const AdmissionConfig config_;
  const Clock* const clock_;
  const Schedule schedule_;
  const std::unique_ptr<reliability::ConcurrencyLimiter> limiter_;

  mutable absl::Mutex mu_;
  // One FIFO per tier, critical first.
  std::array<std::deque<Waiting>, kPriorityTiers> waiting_ ABSL_GUARDED_BY(mu_);
  AdmissionStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stategate::server

namespace stategate::server {

// The Admission of every namespace and shard, made on first use and made anew when a reload
// changes the namespace's admission config (calls admitted before finish under the old
// one). Each shard of an engine with shards (a Redis Cluster master) has its own: calls
// held up by a stalled shard fill that shard's limit and queue, never another's.
// Thread-safe.
class Admissions {
 public:
  Admissions(const Clock* clock, Admission::Schedule schedule)
      : clock_(clock), schedule_(std::move(schedule)) {}

  // The Admission of `shard` of the namespace's engine ("" for the engine as a whole, as
  // StorageEngine::ShardOf says); INVALID_ARGUMENT only for a config ValidateAdmission
  // refuses. Shards of a namespace are few (a cluster's masters), so they are never removed.
  [[nodiscard]] absl::StatusOr<std::shared_ptr<Admission>> For(const NamespaceConfig& ns,
                                                               const std::string& shard = "");

  // One line per namespace and shard: limit, running, waiting, and per tier admitted / shed /
  // expired.
  std::vector<std::string> Report() const;

 private:
  const Clock* const clock_;
  const Admission::Schedule schedule_;
  mutable absl::Mutex mu_;
  // By (namespace, shard).
  std::map<std::pair<std::string, std::string>, std::shared_ptr<Admission>> by_shard_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace stategate::server
