// The plain value types of the stategate client API: items, predicates, mutations, records
// and the namespace settings a server signals in its handshake. They mirror the wire
// contract (proto/stategate/v1) without exposing any generated type. Plain data: safe to
// copy and to share read-only between threads.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"

namespace stategate {

// An item to write. Keys and values are arbitrary bytes; item keys order bytewise.
struct Item {
  std::string key;
  std::string value;
  // Time to live, counted from the write's arrival at the server. Default: forever (zero).
  absl::Duration ttl = absl::ZeroDuration();
};

// An item as read back.
struct StoredItem {
  std::string key;
  std::string value;  // verified against the stored checksum when one is stored
  // The version of the write that made the item: its idempotency token's generation time.
  absl::Time version = absl::UnixEpoch();
  // When the item expires. Default: never (absl::InfiniteFuture()).
  absl::Time expires_at = absl::InfiniteFuture();
};

// One record of a namespace, as read by a scan.
struct Record {
  std::string id;
  std::vector<StoredItem> items;  // ordered by key
};

// Which items of a record a read or delete applies to.
struct Predicate {
  enum class Kind { kAll, kKeys, kRange };

  Kind kind = Kind::kAll;
  std::vector<std::string> keys;  // kKeys: exactly these keys
  std::string start;              // kRange: inclusive; empty = from the first key
  std::string end;                // kRange: exclusive; empty = to the last key

  static Predicate All() { return Predicate{}; }
  static Predicate Keys(std::vector<std::string> keys) {
    Predicate p;
    p.kind = Kind::kKeys;
    p.keys = std::move(keys);
    return p;
  }
  static Predicate Range(std::string start, std::string end) {
    Predicate p;
    p.kind = Kind::kRange;
    p.start = std::move(start);
    p.end = std::move(end);
    return p;
  }
};

// One step of an atomic multi-step write to a record: put an item or delete what a
// predicate matches.
struct Mutation {
  enum class Kind { kPut, kDelete };

  Kind kind = Kind::kPut;
  Item item;            // kPut
  Predicate predicate;  // kDelete

  static Mutation Put(Item item) {
    Mutation m;
    m.kind = Kind::kPut;
    m.item = std::move(item);
    return m;
  }
  static Mutation Delete(Predicate predicate) {
    Mutation m;
    m.kind = Kind::kDelete;
    m.predicate = std::move(predicate);
    return m;
  }
};

// How much a call matters when a gateway is overloaded (README, "Admission and priority"): a gateway
// sheds sheddable calls first and critical calls last. Sent as the request metadata
// "stategate-priority"; a call without it gets its namespace's default_priority.
enum class Priority { kCritical, kNormal, kSheddable };

// A latency objective: the latency aimed for, and the latency past which a call has failed.
struct LatencySlo {
  absl::Duration target = absl::ZeroDuration();
  absl::Duration max = absl::ZeroDuration();
};

// What the server tells clients about one namespace (DESIGN.md, "Namespaces and
// signalling"). Clients use these settings instead of hard-coding them.
struct NamespaceSettings {
  std::string name;
  std::string abstraction;  // "kv" | "timeseries"

  LatencySlo point_read_slo;
  LatencySlo range_read_slo;
  LatencySlo write_slo;

  int64_t compression_threshold_bytes = 0;
  int64_t chunk_bytes = 0;  // values larger than this travel as chunks
  int64_t page_size_bytes = 0;
  bool hedging = false;
  std::string near_cache;  // "off" | "lru" | "total"

  int64_t max_key_bytes = 0;
  int64_t max_value_bytes = 0;
  int64_t max_items_per_call = 0;
  int64_t max_request_bytes = 0;
};

// The answer to a handshake.
struct HandshakeInfo {
  uint64_t config_version = 0;
  std::vector<NamespaceSettings> namespaces;
  absl::Time server_time = absl::UnixEpoch();
  absl::Duration max_clock_skew = absl::ZeroDuration();
};

}  // namespace stategate
