// A closed-loop load generator: `concurrency` threads each call `op` back to back (a new
// call as soon as the last returns) for warmup + duration; calls completing inside the
// measured window are counted and timed. The building block of every stategate-bench
// scenario.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "src/bench/load_recorder.h"
#include "src/bench/open_loop.h"
#include "src/common/histogram.h"

namespace stategate::bench {

struct LoopResult {
  int64_t ok = 0;
  int64_t errors = 0;
  std::string first_error;  // ToString of the first failure in the window; empty if none
  absl::Duration elapsed;   // the measured window
  Histogram latency_us;     // of successful calls
};

// One call of the load; `thread` is in [0, concurrency). Called concurrently from all
// threads; must be thread-safe.
using LoopOp = std::function<absl::Status(int thread)>;

// Requires concurrency > 0 and duration > 0.
LoopResult RunClosedLoop(int concurrency, absl::Duration warmup, absl::Duration duration,
                         const LoopOp& op);

// The closed loop of stategate-bench's workloads: `threads` workers each start an operation
// (open_loop.h's AsyncOp) and wait for it before starting the next, for `duration` or until
// `max_ops` operations have started. Every operation is recorded into `recorder` by its
// actual start (in a closed loop the generator waits with the system, so there is no
// intended start to measure from).
struct ClosedLoadOptions {
  int threads = 16;
  absl::Duration duration = absl::Seconds(10);
  // Stop starting operations after this many (0: no limit).
  int64_t max_ops = 0;
  // How long a worker waits for one operation before it records it as unfinished and goes
  // on (its late completion is then ignored).
  absl::Duration op_timeout = absl::Seconds(5);
  // The SLO target of operation `index` (required).
  std::function<absl::Duration(int64_t index)> slo_target_of;
};

// Returns the number of operations started. Requires options.threads > 0.
int64_t RunClosedLoad(const ClosedLoadOptions& options, const AsyncOp& op, LoadRecorder& recorder);

}  // namespace stategate::bench
