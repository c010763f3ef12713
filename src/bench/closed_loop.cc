#include "src/bench/closed_loop.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

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

int64_t RunClosedLoad(const ClosedLoadOptions& options, const AsyncOp& op, LoadRecorder& recorder) {
  assert(options.threads > 0 && options.slo_target_of);
  std::atomic<int64_t> next_index{0};
  const absl::Time start = absl::Now();
  const absl::Time end = start + options.duration;
  std::vector<std::thread> workers;
  for (int t = 0; t < options.threads; ++t) {
    workers.emplace_back([&] {
      while (true) {
        const absl::Time op_start = absl::Now();
        if (op_start >= end) return;
        const int64_t index = next_index.fetch_add(1);
        if (options.max_ops > 0 && index >= options.max_ops) return;
        // Shared with the callback, which may come after this worker gave up on it.
        struct Outcome {
          absl::Notification done;
          absl::Status status;
          absl::Time at;
        };
        auto outcome = std::make_shared<Outcome>();
        op(index, [outcome](absl::Status status) {
          outcome->status = std::move(status);
          outcome->at = absl::Now();
          outcome->done.Notify();
        });
        const absl::Duration offset = op_start - start;
        if (outcome->done.WaitForNotificationWithTimeout(options.op_timeout)) {
          recorder.Record(offset, outcome->at - op_start, outcome->status,
                          options.slo_target_of(index));
        } else {
          recorder.RecordUnfinished(offset, absl::Now() - op_start);
        }
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  const int64_t started = next_index.load();
  return options.max_ops > 0 ? std::min(started, options.max_ops) : started;
}

}  // namespace stategate::bench
