// Engines: the storage a gateway's namespaces live on, as its config names it (DESIGN.md,
// "Storage engines"). Opens embedded RocksDB and the Redis Cluster engine when a namespace
// first needs them, puts a memcached look-aside cache in front of the namespaces that ask
// for one, and places each namespace's tables on the right one behind a single router that
// the Key-Value store uses. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "src/cache/caching_engine.h"
#include "src/common/clock.h"
#include "src/common/namespace_config.h"
#include "src/server/config.h"
#include "src/storage/engine.h"
#include "src/storage/table_router.h"

namespace stategate::server {

class Engines {
 public:
  Engines(const ServerConfig& config, Clock* clock);
  ~Engines();

  // Opens the engines (and caches) the namespaces use and places their tables. A namespace
  // placed before is placed again: a reload may change its cache.
  [[nodiscard]] absl::Status Place(const std::vector<NamespaceConfig>& namespaces);

  // Every namespace table, each on its engine.
  storage::StorageEngine* router() { return &router_; }

  // Removes expired items and tombstones past their grace from the tables of engines that
  // do not do it on their own (redis-cluster; RocksDB does it while compacting).
  [[nodiscard]] absl::Status PurgeExpired();

  // One line per cached namespace (hits, misses, fills, bypasses), and one for Redis Cluster
  // when it is open (writes acknowledged with fewer replicas than replicas_ack).
  std::vector<std::string> Report() const;

 private:
  absl::StatusOr<storage::StorageEngine*> Backing(const std::string& engine);

  struct NamespaceCache {
    CacheConfig config;
    std::string engine;
    std::unique_ptr<cache::CachingEngine> caching;
  };

  const ServerConfig config_;
  Clock* const clock_;
  mutable absl::Mutex mu_;  // guards what follows but the router, which locks itself
  std::unique_ptr<storage::StorageEngine> rocksdb_;
  std::unique_ptr<storage::StorageEngine> redis_;
  std::map<std::string, NamespaceCache> caches_;  // by namespace
  std::set<std::string> redis_tables_;            // tables placed on redis_
  // Caches replaced by a reload: calls that started before may still use them.
  std::vector<std::unique_ptr<cache::CachingEngine>> retired_;
  storage::TableRouter router_;
};

}  // namespace stategate::server
