// LoadRecorder: what a load generator measured, over the whole run and per interval of
// start time (one second by default), for throughput and latency plots, per-second SLO
// attainment and time to recover. An operation belongs to the interval in which it was
// meant to start (open loop: its intended start; closed loop: its actual start), so a stall
// shows in the seconds whose operations it delayed.
//
// Thread-safe: operations complete on many threads.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/common/histogram.h"

namespace stategate::bench {

struct LoadStats {
  int64_t ops = 0;  // recorded: completed, failed or unfinished
  int64_t ok = 0;
  int64_t ok_within_slo = 0;  // successful and latency <= the SLO target
  // Failures by status code name ("UNAVAILABLE", ...; kUnfinished for operations still out
  // at the end of a run).
  std::map<std::string, int64_t> errors;
  Histogram latency_us;  // of every recorded operation, failed ones included
  // Of the operations refused with RESOURCE_EXHAUSTED: shed by the client or a gateway.
  Histogram shed_latency_us;
  // The first message of each error code (LoadRecorder::Total only), to tell why.
  std::map<std::string, std::string> error_examples;

  int64_t error_count() const;
  // ok_within_slo / ops; 1 when there were no operations.
  double slo_attainment() const;
};

class LoadRecorder {
 public:
  // Requires interval > 0.
  explicit LoadRecorder(absl::Duration interval = absl::Seconds(1));

  // An operation that started `start_offset` after the run's start and ended after
  // `latency` with `status`; it met its SLO if it succeeded within `slo_target`.
  void Record(absl::Duration start_offset, absl::Duration latency, const absl::Status& status,
              absl::Duration slo_target);
  // An operation still out when the run ended, `latency` after its start.
  void RecordUnfinished(absl::Duration start_offset, absl::Duration latency);

  absl::Duration interval() const { return interval_; }

  // The whole run so far.
  LoadStats Total() const;
  // Interval `index` (starts at index * interval) so far; empty beyond the last recorded.
  LoadStats Interval(int64_t index) const;
  // Every interval from 0 to the last with a recorded operation.
  std::vector<LoadStats> Series() const;

 private:
  void Add(absl::Duration start_offset, absl::Duration latency, bool within_slo,
           const std::string& error, std::string_view message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::Duration interval_;
  mutable absl::Mutex mu_;
  LoadStats total_ ABSL_GUARDED_BY(mu_);
  std::vector<LoadStats> series_ ABSL_GUARDED_BY(mu_);
};

// The error key of an operation still out when the run ended.
inline constexpr char kUnfinished[] = "UNFINISHED";

}  // namespace stategate::bench
