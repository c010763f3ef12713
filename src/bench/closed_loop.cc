#include "src/bench/closed_loop.h"

#include <cassert>
#include <chrono>
#include <thread>
#include <vector>

namespace stategate::bench {

LoopResult RunClosedLoop(int concurrency, absl::Duration warmup, absl::Duration duration,
                         const LoopOp& op) {
  assert(concurrency > 0 && duration > absl::ZeroDuration());
  using SteadyClock = std::chrono::steady_clock;
  const SteadyClock::time_point begin = SteadyClock::now();
  const SteadyClock::time_point measure_from = begin + absl::ToChronoNanoseconds(warmup);
  const SteadyClock::time_point end = measure_from + absl::ToChronoNanoseconds(duration);

  std::vector<LoopResult> per_thread(concurrency);
  std::vector<std::thread> threads;
  threads.reserve(concurrency);
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&, t] {
      LoopResult& mine = per_thread[t];
      while (true) {
        const SteadyClock::time_point start = SteadyClock::now();
        if (start >= end) break;
        const absl::Status status = op(t);
        const SteadyClock::time_point done = SteadyClock::now();
        // Only calls that complete inside the window count: QPS = completions / window.
        if (done < measure_from || done > end) continue;
        if (status.ok()) {
          ++mine.ok;
          mine.latency_us.Record(
              std::chrono::duration_cast<std::chrono::microseconds>(done - start).count());
        } else {
          if (mine.errors == 0) mine.first_error = status.ToString();
          ++mine.errors;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  LoopResult total;
  total.elapsed = duration;
  for (const LoopResult& r : per_thread) {
    total.ok += r.ok;
    if (total.first_error.empty()) total.first_error = r.first_error;
    total.errors += r.errors;
    total.latency_us.Merge(r.latency_us);
  }
  return total;
}

}  // namespace stategate::bench
