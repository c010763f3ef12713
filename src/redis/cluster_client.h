// ClusterClient: a Redis Cluster client on hiredis (DESIGN.md, "Storage engines").
//
// Each call names a hash key; the client finds its slot (CRC16 of the key or of its {hash
// tag}), sends the commands as one pipeline to the master that owns the slot, and follows
// the cluster when it moves: MOVED updates the slot map and retries at once, ASK retries
// once on the importing node with ASKING, TRYAGAIN / CLUSTERDOWN / LOADING / a refused or
// broken connection refresh the slot map and retry with backoff until the call's retry
// window is over. A call made under a CallDeadline (call_deadline.h: the gateway's request
// path) never sleeps: it fails UNAVAILABLE at the first such failure, holding its thread no
// longer, and its caller retries on timers (the reliable client does). A round trip in
// flight is not cut at the deadline, only at the connection's io_timeout: on a slow machine
// cutting it would turn late answers into failures and retries, and a stalled master holds
// only its own lane of the gateway's threads. A pipeline may therefore run more than once: send
// only idempotent commands (stategate's writes are version-checked scripts, so a replay is a
// no-op).
//
// Connections: a pool per node, one connection per pipeline in flight, so calls from many
// threads run in parallel. Calls block the calling thread (the gateway runs engine work on
// its worker pool, never on gRPC's threads). A node that refused a connection is skipped
// with exponential backoff until it answers again.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

struct redisReply;  // hiredis

namespace stategate::redis {

// A reply as hiredis parsed it, copied out of hiredis' memory.
struct Reply {
  enum class Type { kString, kStatus, kError, kInteger, kNil, kArray };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  int64_t integer = 0;
  std::vector<Reply> elements;

  bool is_error() const { return type == Type::kError; }
};

// Copies a hiredis reply (and its elements) into a Reply.
Reply ReplyFromHiredis(const redisReply& reply);

// One command: its arguments, binary-safe.
using Command = std::vector<std::string>;

// The slot (0..16383) of a key, as Redis Cluster computes it.
int KeySlot(std::string_view key);

struct ClusterOptions {
  // "host:port" of any nodes of the cluster; the rest are discovered.
  std::vector<std::string> seeds;
  absl::Duration connect_timeout = absl::Milliseconds(200);
  // How long one pipeline may wait for its replies. Must exceed any WAIT timeout sent.
  absl::Duration io_timeout = absl::Seconds(2);
  // How long a call keeps retrying while the cluster is down or failing over; past it the
  // call fails UNAVAILABLE. Covers a failover (node timeout + election) by default.
  absl::Duration retry_window = absl::Seconds(8);
  // Idle connections kept per node (ClusterClient).
  int max_idle_per_node = 64;
  // Connections per node, each carrying many calls (AsyncClusterClient).
  int connections_per_node = 4;
  // Calls in flight to one shard (the master owning the key's slot when the call began,
  // retries included); a call beyond it fails UNAVAILABLE at once. The bulkhead between
  // shards for callers with a fixed number of threads. 0 = no limit.
  int max_calls_per_shard = 0;
};

struct ClusterStats {
  int64_t pipelines = 0;
  int64_t moved = 0;
  int64_t asks = 0;
  int64_t retries = 0;  // TRYAGAIN, CLUSTERDOWN, LOADING, connection failures
  int64_t topology_refreshes = 0;
  int64_t connects = 0;
  int64_t shard_refusals = 0;  // calls refused by max_calls_per_shard
};

class ClusterClient {
 public:
  // Connects to a seed and reads the slot map; fails if no seed answers with a full map.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ClusterClient>> Connect(
      const ClusterOptions& options);

  virtual ~ClusterClient() = default;

  // Runs `commands` as one pipeline on the master of hash_key's slot and returns one reply
  // per command. Redirections and cluster outages are handled inside (see the top); a
  // command's own error (e.g. a script's) comes back as a kError reply. UNAVAILABLE if the
  // cluster did not answer within the retry window.
  [[nodiscard]] virtual absl::StatusOr<std::vector<Reply>> Pipeline(
      std::string_view hash_key, const std::vector<Command>& commands) = 0;

  // "host:port" of the master that owns hash_key's slot in the client's current slot map,
  // or "" if none does: for callers that keep state per shard.
  virtual std::string MasterOf(std::string_view hash_key) = 0;

  virtual ClusterStats stats() const = 0;
};

// A Lua script run with EVALSHA. A node that does not have it yet (a new node, a restart,
// SCRIPT FLUSH) answers NOSCRIPT; PipelineWithScript then loads it there and runs again.
class Script {
 public:
  explicit Script(std::string body);

  // EVALSHA sha numkeys keys... args...
  Command EvalSha(const std::vector<std::string>& keys, const std::vector<std::string>& args) const;
  Command Load() const { return {"SCRIPT", "LOAD", body_}; }

 private:
  std::string body_;
  std::string sha1_hex_;
};

// Runs `commands`, whose command `script_at` is script.EvalSha(...), on hash_key's master;
// after a NOSCRIPT reply, loads the script on that master and runs the pipeline again.
[[nodiscard]] absl::StatusOr<std::vector<Reply>> PipelineWithScript(
    ClusterClient& client, std::string_view hash_key, const std::vector<Command>& commands,
    size_t script_at, const Script& script);

}  // namespace stategate::redis
