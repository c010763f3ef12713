// RedisClusterEngine: the StorageEngine on Redis Cluster (DESIGN.md, "Storage engines"):
// sharded and replicated by the cluster, several stateless gateways sharing it.
//
// A record lives in one slot: its keys share a hash tag chosen by a hash of its id (256
// buckets), so a write or read of a record is one Lua script on one master (see
// lua_scripts.h for the layout and rules). Each bucket also holds a scan index of the
// table's record ids, kept by the same scripts, so a table scan walks the buckets in order
// and each bucket's ids in byte order. Tables are named in one hash (`stategate:tables`)
// with a random epoch that prefixes their keys: a dropped and re-created table starts empty
// even if deleting the old keys was cut short.
//
// Durability: a write with replicas_ack = N is acknowledged only once N replicas have it
// (WAIT, repeated); if they do not within replicas_ack_timeout the write fails UNAVAILABLE, may or
// may not have been applied, and a retry with the same version is idempotent. `sync` means
// nothing here (Redis persistence is the cluster's own configuration).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "src/common/clock.h"
#include "src/redis/cluster_client.h"
#include "src/storage/engine.h"

namespace stategate::storage {

struct RedisClusterEngineOptions {
  redis::ClusterOptions cluster;
  // Source of "now" for expiry and grace. Default: the real clock.
  Clock* clock = Clock::Real();
  // As RocksDbOptions::tombstone_grace.
  absl::Duration tombstone_grace = absl::Hours(1);
  // How long a write waits for its replicas_ack replicas (e.g. while a shard that lost its
  // replica in a failover gets one back).
  absl::Duration replicas_ack_timeout = absl::Seconds(5);
};

// The hash tag of every key of record `record_id`, whatever its table: the record's slot is
// redis::KeySlot of it. For callers that group calls by shard.
std::string RecordHashTag(const std::string& record_id);

// Connects to the cluster (it must be up, every slot served).
[[nodiscard]] absl::StatusOr<std::unique_ptr<StorageEngine>> OpenRedisClusterEngine(
    const RedisClusterEngineOptions& options);

}  // namespace stategate::storage
