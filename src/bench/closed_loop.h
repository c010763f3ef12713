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

}  // namespace stategate::bench
