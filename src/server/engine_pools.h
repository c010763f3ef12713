// EnginePools: the bulkheads of the request path. Engine work runs on lanes, each with its
// own threads and a bounded queue: one lane per storage engine, and one more per shard of
// an engine with shards (a Redis Cluster master). A stalled master holds only its own
// lane's threads; calls to it beyond that lane's queue are refused at once, and calls to
// other shards, or to another engine's namespaces, never wait behind it.
//
// A shard's lane is made on the first call to it and kept (shards are a cluster's masters:
// few, and a failover adds one). Past max_lanes_per_engine, new shards share the engine's
// own lane. Thread-safe; the destructor runs what was queued, then joins.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "src/common/worker_pool.h"

namespace stategate::server {

struct LaneOptions {
  int threads = 16;        // per lane
  size_t max_queued = 64;  // calls waiting for a thread of one lane
  size_t max_lanes_per_engine = 64;
};

class EnginePools {
 public:
  EnginePools(const std::vector<std::string>& engines, LaneOptions options) : options_(options) {
    for (const std::string& engine : engines) lanes_[{engine, ""}] = NewLane();
  }

  enum class Submitted {
    kQueued,
    kLaneFull,       // the lane already has max_queued calls waiting: `task` was not run
    kUnknownEngine,  // not an engine these pools were made with: `task` was not run
  };

  // Queues `task` on the lane of `shard` of `engine` ("" = the engine's own lane).
  Submitted Submit(const std::string& engine, const std::string& shard,
                   std::function<void()> task) {
    WorkerPool* lane = LaneOf(engine, shard);
    if (lane == nullptr) return Submitted::kUnknownEngine;
    return lane->TrySubmit(std::move(task), options_.max_queued) ? Submitted::kQueued
                                                                 : Submitted::kLaneFull;
  }

  const LaneOptions& options() const { return options_; }

 private:
  std::unique_ptr<WorkerPool> NewLane() const {
    return std::make_unique<WorkerPool>(options_.threads);
  }

  WorkerPool* LaneOf(const std::string& engine, const std::string& shard) {
    absl::MutexLock lock(&mu_);
    auto own = lanes_.find({engine, ""});
    if (own == lanes_.end()) return nullptr;
    if (shard.empty()) return own->second.get();
    auto it = lanes_.find({engine, shard});
    if (it != lanes_.end()) return it->second.get();
    size_t& made = shard_lanes_[engine];
    if (made == options_.max_lanes_per_engine) return own->second.get();
    ++made;
    return lanes_.emplace(std::pair{engine, shard}, NewLane()).first->second.get();
  }

  const LaneOptions options_;
  absl::Mutex mu_;
  // By (engine, shard); lanes are never removed, so a pointer to one stays valid.
  std::map<std::pair<std::string, std::string>, std::unique_ptr<WorkerPool>> lanes_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, size_t> shard_lanes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stategate::server
