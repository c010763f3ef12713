// NamespaceConfig: everything a namespace declares (DESIGN.md, "Namespaces and
// signalling"), as plain data. Parsed from YAML by src/server/config.h; read by the data
// abstractions and signalled to clients by Handshake. Defaults are the documented ones.
#pragma once

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "stategate/types.h"

namespace stategate {

struct Slo {
  absl::Duration target;  // what the namespace aims for: hedge delay and page time budget
  absl::Duration max;     // past this a call counts as failed
};

enum class Durability {
  kSync,   // the write-ahead log is fsynced before a write is acknowledged
  kAsync,  // acknowledged once in the engine's memory and log buffer
};

// What a redis-cluster write does when its shard has fewer live replicas than replicas_ack
// (README, "When replicas are missing").
enum class ReplicaShortfall {
  kRefuse,   // it waits for replicas_ack replicas, then fails UNAVAILABLE
  kDegrade,  // it is acknowledged once every live replica has it, and counted and logged
};

struct NamespaceLimits {
  int64_t max_key_bytes = 4096;           // ids and item keys
  int64_t max_value_bytes = 64LL << 20;   // a whole value, chunked or not
  int64_t max_items_per_call = 1000;      // items, keys or mutations in one call
  int64_t max_request_bytes = 4LL << 20;  // a serialized request
  int64_t max_page_bytes = 8LL << 20;     // largest page_size_bytes a read may ask
};

struct ClientSettings {
  int64_t compression_threshold_bytes = 1024;  // 0 = never compress
  int64_t chunk_bytes = 1LL << 20;             // values above this travel as chunks
  int64_t page_size_bytes = 2LL << 20;         // default page size of reads
  bool hedging = true;
  std::string near_cache = "off";  // off | lru | total
};

// A look-aside cache in front of a namespace's point reads (DESIGN.md, "Storage engines").
struct CacheConfig {
  std::string engine = "none";  // none | memcached
  absl::Duration ttl = absl::Seconds(60);
};

// How a gateway admits the namespace's calls (README, "Admission and priority"): an adaptive limit
// on the calls running at once, a bounded queue in priority order behind it, and what a shed call
// is told.
struct AdmissionConfig {
  std::string limiter = "gradient2";  // aimd | vegas | gradient2 | none
  int initial_limit = 32;
  int min_limit = 8;
  int max_limit = 512;
  // Calls waiting for a slot; when full, the lowest tier waiting is shed first.
  int max_queue = 256;
  // A call that has waited this long for a slot is shed (it could not meet its SLO).
  absl::Duration max_queue_wait = absl::Milliseconds(50);
  // What a shed call is told to wait before it retries (grpc-retry-pushback-ms).
  absl::Duration retry_pushback = absl::Milliseconds(100);
  // The priority of calls that do not send one.
  Priority default_priority = Priority::kNormal;

  friend bool operator==(const AdmissionConfig&, const AdmissionConfig&) = default;
};

struct NamespaceConfig {
  std::string name;
  std::string abstraction = "kv";
  std::string engine = "rocksdb";
  Durability durability = Durability::kSync;
  // redis-cluster: a write is acknowledged once this many replicas have it.
  int replicas_ack = 0;
  ReplicaShortfall replica_shortfall = ReplicaShortfall::kRefuse;
  CacheConfig cache;
  AdmissionConfig admission;
  Slo point_read{absl::Milliseconds(10), absl::Milliseconds(100)};
  Slo range_read{absl::Milliseconds(50), absl::Milliseconds(500)};
  Slo write{absl::Milliseconds(20), absl::Milliseconds(200)};
  NamespaceLimits limits;
  ClientSettings client;
};

}  // namespace stategate
