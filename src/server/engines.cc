#include "src/server/engines.h"

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"
#include "src/common/status_macros.h"
#include "src/kv/kv_store.h"
#include "src/storage/engine_wrapper.h"
#include "src/storage/redis/redis_engine.h"
#include "src/storage/rocksdb/rocksdb_engine.h"

namespace stategate::server {

Engines::Engines(const ServerConfig& config, Clock* clock) : config_(config), clock_(clock) {}

Engines::~Engines() {
  caches_.clear();  // caches borrow the engines: close them first
  retired_.clear();
}

absl::StatusOr<storage::StorageEngine*> Engines::Backing(const std::string& engine) {
  if (engine == "rocksdb") {
    if (rocksdb_ == nullptr) {
      storage::RocksDbOptions options;
      options.path = config_.data_dir;
      options.clock = clock_;
      options.tombstone_grace = config_.tombstone_grace;
      SG_ASSIGN_OR_RETURN(rocksdb_, storage::OpenRocksDbEngine(options));
    }
    return rocksdb_.get();
  }
  if (engine == "redis-cluster") {
    if (redis_ == nullptr) {
      if (config_.redis_cluster.seeds.empty()) {
        return absl::FailedPreconditionError(
            "engine redis-cluster: no redis_cluster.seeds configured (or --redis-cluster)");
      }
      storage::RedisClusterEngineOptions options;
      options.cluster.seeds = config_.redis_cluster.seeds;
      options.cluster.retry_window = config_.redis_cluster.retry_window;
      options.cluster.max_calls_per_shard = config_.redis_cluster.max_calls_per_shard;
      options.clock = clock_;
      options.tombstone_grace = config_.tombstone_grace;
      options.replicas_ack_timeout = config_.redis_cluster.replicas_ack_timeout;
      SG_ASSIGN_OR_RETURN(redis_, storage::OpenRedisClusterEngine(options));
    }
    return redis_.get();
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown storage engine '", engine, "'"));
}

absl::Status Engines::Place(const std::vector<NamespaceConfig>& namespaces) {
  absl::MutexLock lock(&mu_);
  for (const NamespaceConfig& ns : namespaces) {
    SG_ASSIGN_OR_RETURN(storage::StorageEngine * backing, Backing(ns.engine));
    storage::StorageEngine* front = backing;
    if (ns.cache.engine == "memcached") {
      if (config_.memcached.address.empty()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "namespace ", ns.name, ": cache memcached needs memcached.address (or --memcached)"));
      }
      NamespaceCache& entry = caches_[ns.name];
      if (entry.caching == nullptr || entry.config.ttl != ns.cache.ttl ||
          entry.engine != ns.engine) {
        cache::MemcachedClientOptions client_options;
        client_options.server = config_.memcached.address;
        client_options.op_timeout = config_.memcached.op_timeout;
        SG_ASSIGN_OR_RETURN(std::unique_ptr<cache::MemcachedClient> client,
                            cache::MemcachedClient::Create(client_options));
        cache::CachingEngineOptions options;
        options.table_ttls[ns.name] = ns.cache.ttl;
        options.clock = clock_;
        SG_ASSIGN_OR_RETURN(
            std::unique_ptr<cache::CachingEngine> caching,
            cache::CachingEngine::Create(storage::Borrow(backing), std::move(client), options));
        if (entry.caching != nullptr) retired_.push_back(std::move(entry.caching));
        entry = NamespaceCache{ns.cache, ns.engine, std::move(caching)};
      }
      front = entry.caching.get();
    } else if (auto it = caches_.find(ns.name); it != caches_.end()) {
      retired_.push_back(std::move(it->second.caching));
      caches_.erase(it);
    }
    // Chunks are bulk data read once per large value: never worth a cache slot.
    router_.Place(ns.name, front);
    router_.Place(kv::ChunkTable(ns.name), backing);
    for (const std::string& table : {ns.name, kv::ChunkTable(ns.name)}) {
      if (backing == redis_.get()) {
        redis_tables_.insert(table);
      } else {
        redis_tables_.erase(table);
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Engines::PurgeExpired() {
  std::vector<std::string> tables;
  {
    absl::MutexLock lock(&mu_);
    tables.assign(redis_tables_.begin(), redis_tables_.end());
  }
  for (const std::string& table : tables) {
    // Straight to the engine: a cache in front has nothing to add to a purge.
    SG_RETURN_IF_ERROR(redis_->Purge(table));
  }
  return absl::OkStatus();
}

std::vector<std::string> Engines::Report() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> lines;
  for (const auto& [name, entry] : caches_) {
    const cache::CachingEngine::Stats s = entry.caching->stats();
    lines.push_back(absl::StrCat("cache ", name, ": hits=", s.hits, " misses=", s.misses,
                                 " fills=", s.fills, " bypassed=", s.bypassed_reads,
                                 " suspensions=", s.suspensions));
  }
  if (redis_ != nullptr) {
    lines.push_back(absl::StrCat("redis-cluster: degraded_writes=", redis_->DegradedWrites()));
  }
  return lines;
}

}  // namespace stategate::server
