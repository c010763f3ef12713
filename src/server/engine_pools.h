// EnginePools: one WorkerPool per storage engine, the bulkhead between engines: a stalled
// Redis Cluster holds only the redis-cluster pool's threads, never the ones RocksDB calls
// run on. Each pool's queue is bounded by admission control (a namespace never has more
// calls admitted than its limit). Thread-safe; the destructor runs what was queued, then
// joins.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "src/common/worker_pool.h"

namespace stategate::server {

class EnginePools {
 public:
  EnginePools(const std::vector<std::string>& engines, int threads_per_engine) {
    for (const std::string& engine : engines) {
      pools_.emplace(engine, std::make_unique<WorkerPool>(threads_per_engine));
    }
  }

  // The pool of `engine`, or null for an engine it was not made with.
  WorkerPool* For(const std::string& engine) const {
    auto it = pools_.find(engine);
    return it == pools_.end() ? nullptr : it->second.get();
  }

 private:
  std::map<std::string, std::unique_ptr<WorkerPool>> pools_;
};

}  // namespace stategate::server
