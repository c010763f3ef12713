// Targets (target.h) that talk to a store directly, as YCSB's own bindings do, for running
// the same workloads against stategate and against what it sits in front of:
//
// - redis: one plain redis-server through hiredis;
// - redis-cluster: a Redis Cluster through stategate's redis::ClusterClient;
// - memcached: one memcached through libmemcached.
//
// Data model. Redis (both) follows YCSB's redis binding: a record is a hash (HSET key field
// value ...); a read is HGETALL (NOT_FOUND when the hash is empty); an update is HSET of the
// given fields; an insert is HSET of every field and then ZADD of the key into the sorted set
// "_indices" with score RedisIndexScore(key); a scan is ZRANGEBYSCORE _indices <score of the
// start key> +inf LIMIT 0 <length>, then one HGETALL per key returned (pipelined); a
// read-modify-write is HGETALL then HSET. On a cluster "_indices" is one key, so the whole
// index lives in one slot (as it would under YCSB's binding), while each record lives in its
// own key's slot. memcached follows YCSB's memcached binding: a record is one value (its
// fields in EncodeMemcachedRecord's format); a read is get (NOT_FOUND on a miss), an insert is
// set; memcached has no partial update, so an update, like YCSB's, stores the given fields
// only and the record loses its other fields; a read-modify-write is get then set; scans are
// not supported. (YCSB's binding inserts with add and updates with replace; set does the same
// to a record that exists, and lets a load run again over data already there.)
//
// A read-modify-write of a record that does not exist is NOT_FOUND and writes nothing.
//
// Threads and connections. Each target owns `threads` worker threads that run the blocking
// clients, so Start never blocks on an operation; operations queue for a free worker. Each
// worker uses one connection at a time from the target's pool (hiredis and libmemcached
// handles are not thread-safe); a connection that fails is closed, the operation that found
// it broken fails, and the next operation connects anew. The redis-cluster target's
// ClusterClient follows MOVED/ASK and retries through a failover within its retry window.
// SIGPIPE is blocked on the workers, so a write to a killed server fails with EPIPE instead
// of killing the process.
//
// Errors carry the target and its address ("redis 127.0.0.1:6379: ..."): a refused or broken
// connection is UNAVAILABLE, an I/O timeout DEADLINE_EXCEEDED (the redis-cluster target
// reports every failure to reach the cluster as UNAVAILABLE, as ClusterClient does), an
// error reply of the server INTERNAL, a bad operation (no fields to write, a scan length
// below 1) INVALID_ARGUMENT, an operation the target does not support UNIMPLEMENTED.
//
// payload_bytes_sent counts, the same way in all three, the bytes of record keys, field names
// and values of every request as it is issued, whether or not it then succeeds: a read or get
// counts its key, a write its key and fields, a read-modify-write both, a scan the keys it
// reads. Index bookkeeping ("_indices", scores, the ZADD member) and encoding overhead are not
// payload.
//
// Thread-safe, as Target requires. The destructor waits for the operations that are running;
// those still queued complete with CANCELLED.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "src/bench/target.h"

namespace stategate::bench {

// The fields of a record: name, value.
using RecordFields = std::vector<std::pair<std::string, std::string>>;

// A record as a read returned it, fields in the order the server gave them.
struct ReadRecord {
  std::string key;
  RecordFields fields;
};

// Sees what each successful read, scan and read-modify-write read: one record for a read and
// a read-modify-write, the records found in index order for a scan. Runs on a worker before
// the operation's `done`, on several workers at once: it must be thread-safe. For checking
// what a run read (as YCSB's dataintegrity does) and for tests.
using ReadObserver = std::function<void(const TargetOp& op, const std::vector<ReadRecord>& read)>;

struct DirectTargetOptions {
  // Bounds connecting and each wait for a reply, so a paused server cannot hold a worker
  // forever (redis-cluster: ClusterOptions::connect_timeout and io_timeout). Default: 1 s.
  absl::Duration io_timeout = absl::Seconds(1);
  // redis-cluster: how long an operation keeps retrying while the cluster is down or failing
  // over (ClusterOptions::retry_window). Default: 8 s, which covers a failover with Redis'
  // usual node timeouts.
  absl::Duration cluster_retry_window = absl::Seconds(8);
  // Default: none.
  ReadObserver on_read;
};

// The redis targets' index of every inserted key, as in YCSB's redis binding.
inline constexpr char kRedisIndexKey[] = "_indices";

// The score of `key` in the index: Java's String.hashCode() (h = 31 * h + c, wrapping at 32
// bits) over the key's bytes, which is what YCSB's binding computes for its ASCII keys, so an
// index written here sorts as YCSB's would. Stable across runs, builds and machines.
int32_t RedisIndexScore(std::string_view key);

// The memcached value of a record: for each field in order, its name and then its value, each
// as a 4-byte little-endian length followed by its bytes.
std::string EncodeMemcachedRecord(const RecordFields& fields);
// The fields of such a value; DATA_LOSS when it is not one.
[[nodiscard]] absl::StatusOr<RecordFields> DecodeMemcachedRecord(std::string_view value);

// Each factory checks that the server answers (PING; CLUSTER SLOTS; version) before it returns:
// UNAVAILABLE or DEADLINE_EXCEEDED when it does not, INVALID_ARGUMENT for an address that is not
// "host:port", `threads` below 1 or a timeout that is not positive.

// One redis-server at `address` ("host:port").
[[nodiscard]] absl::StatusOr<std::unique_ptr<Target>> ConnectRedisTarget(
    const std::string& address, int threads, DirectTargetOptions options = {});

// A Redis Cluster, found from any of `seeds` ("host:port" each).
[[nodiscard]] absl::StatusOr<std::unique_ptr<Target>> ConnectRedisClusterTarget(
    const std::vector<std::string>& seeds, int threads, DirectTargetOptions options = {});

// One memcached at `address` ("host:port").
[[nodiscard]] absl::StatusOr<std::unique_ptr<Target>> ConnectMemcachedTarget(
    const std::string& address, int threads, DirectTargetOptions options = {});

}  // namespace stategate::bench
