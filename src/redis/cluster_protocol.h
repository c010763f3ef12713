// The parts of Redis Cluster's client protocol that both cluster clients follow
// (cluster_client.h blocks its caller's thread; async_cluster_client.h runs on an event
// loop): node addresses, what an error reply asks the client to do, and CLUSTER SLOTS.
// Pure functions; thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "src/redis/cluster_client.h"

namespace stategate::redis {

// Slots of a cluster: 0..kSlots-1.
inline constexpr int kSlots = 16384;

// "host:port" -> (host, port); false if it is not one.
bool SplitAddress(const std::string& address, std::string* host, int* port);

// A node's announced address as the client dials it: ":port" (a node that does not know
// its own host) means the host of `asked`, the node that announced it.
std::string FullAddress(const std::string& announced, const std::string& asked);

// What an error reply asks the client to do.
struct Redirect {
  enum class Kind {
    kNone,   // not a redirect: the reply is the answer (an error included)
    kMoved,  // the slot moved for good: update the slot map, go there
    kAsk,    // the slot is migrating: send this call once to `address`, after ASKING
    kRetry,  // TRYAGAIN, CLUSTERDOWN, LOADING, MASTERDOWN, READONLY: refresh, back off, retry
  } kind = Kind::kNone;
  int slot = -1;
  std::string address;  // as announced; see FullAddress
};
Redirect Classify(const Reply& reply);

// The first redirect among a pipeline's replies (kNone if there is none), and for kRetry
// the last error reply, which says why.
Redirect ClassifyPipeline(const std::vector<Reply>& replies, std::string* retry_reason);

// One range of slots and the master that serves it.
struct SlotRange {
  int first = 0;
  int last = 0;        // inclusive
  std::string master;  // "host:port"
};
// A CLUSTER SLOTS reply from the node `asked`; UNAVAILABLE if it is not one or covers no
// slot.
absl::StatusOr<std::vector<SlotRange>> ParseClusterSlots(const Reply& reply,
                                                         const std::string& asked);

// A command as hiredis's *CommandArgv functions take it; points into `command`, which must
// outlive it.
struct Argv {
  explicit Argv(const Command& command);
  int count() const { return static_cast<int>(args.size()); }
  std::vector<const char*> args;
  std::vector<size_t> lengths;
};

// Why a client could not start: `why`, with the seeds it tried. UNAVAILABLE.
absl::Status NoClusterAt(const std::vector<std::string>& seeds, const absl::Status& why);

// What a cluster client counts, as it counts it (from any thread).
struct ClusterCounters {
  std::atomic<int64_t> pipelines{0}, moved{0}, asks{0}, retries{0}, topology_refreshes{0},
      connects{0}, shard_refusals{0};

  void Count(std::atomic<int64_t>& counter) { counter.fetch_add(1, std::memory_order_relaxed); }
  ClusterStats Snapshot() const;
};

}  // namespace stategate::redis
