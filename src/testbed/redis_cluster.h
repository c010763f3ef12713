// RedisCluster: a real Redis Cluster of local `redis-server` processes on free 127.0.0.1
// ports, for tests and benchmarks. Each node runs without persistence (no RDB, no AOF) in
// its own directory; the cluster is formed with `redis-cli --cluster create` and is ready
// when every node reports cluster_state:ok with all 16384 slots assigned, every replica's
// link to its master is up and every master lists its replicas online. Nodes are stopped by the
// PIDs this class started (SIGKILL), when asked to and on every path out, including a Start that
// fails half way.
//
// Also RedisCommand, a one-shot command to one node (hiredis). (The cluster's key slot is
// redis::KeySlot, src/redis/cluster_client.h.)
//
// Not thread-safe: one thread drives a cluster.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "src/redis/cluster_client.h"
#include "src/testbed/child_process.h"

namespace stategate::testbed {

struct RedisClusterOptions {
  // Number of masters; `redis-cli --cluster create` needs at least 3. Default: 3.
  int masters = 3;
  // Replicas of each master. Default: 1.
  int replicas_per_master = 1;
  // cluster-node-timeout: how long a node may be unreachable before it is failed over.
  // Default: 2 s.
  absl::Duration node_timeout = absl::Milliseconds(2000);
  // Directory for the nodes' directories and logs (<dir>/<port>/, <dir>/redis-<port>.log);
  // created if missing and then kept. Default: empty, which makes a new directory under
  // $TMPDIR (or /tmp) that is removed with the cluster.
  std::string dir;
  // The binaries: paths, or names looked up in $PATH. Default: from $PATH.
  std::string redis_server = "redis-server";
  std::string redis_cli = "redis-cli";
  // How long Start may take in all: nodes answering PING, the cluster formed and ready.
  // Default: 60 s.
  absl::Duration start_timeout = absl::Seconds(60);
};

enum class RedisRole { kMaster, kReplica };

// One node as the cluster described it when last asked (see RedisCluster::nodes).
struct RedisNode {
  int port = 0;
  // PID of the redis-server process; -1 once it was killed.
  pid_t pid = -1;
  RedisRole role = RedisRole::kMaster;
  // The cluster's node ID (40 hex characters).
  std::string id;
  // A replica's master: its port; 0 for a master.
  int master_port = 0;
  // A master's slots as inclusive ranges; empty for a replica.
  std::vector<std::pair<int, int>> slots;

  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  bool alive() const { return pid > 0; }
};

class RedisCluster {
 public:
  // Starts options.masters * (1 + options.replicas_per_master) nodes, forms the cluster and
  // waits until it is ready. INVALID_ARGUMENT for bad options, NOT_FOUND when a binary is
  // missing, DEADLINE_EXCEEDED when the cluster is not ready within start_timeout, and
  // INTERNAL or UNAVAILABLE when a node or `redis-cli --cluster create` fails (the message
  // quotes its output). Whatever was started is stopped before an error is returned.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RedisCluster>> Start(
      RedisClusterOptions options = {});

  // Stop(), and removes the directory if Start made it.
  ~RedisCluster();

  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  // "127.0.0.1:<port>" of every node started, killed ones included, in start order.
  std::vector<std::string> seeds() const;
  // seeds() joined with ",".
  std::string seed_list() const;

  // Every node as the cluster described it after Start or the last successful
  // WaitForFailover or RestartNode, with the pid of a node KillNode killed set to -1; in
  // start order.
  const std::vector<RedisNode>& nodes() const { return nodes_; }
  // The masters and replicas among nodes() that are alive.
  std::vector<RedisNode> masters() const;
  std::vector<RedisNode> replicas() const;

  // The master serving `slot` (0..16383) as a running node sees it now (CLUSTER NODES):
  // right after a master is killed that is still the dead master, until a failover.
  // INVALID_ARGUMENT for a slot out of range, UNAVAILABLE when no running node answers,
  // NOT_FOUND when the slot is unassigned.
  [[nodiscard]] absl::StatusOr<RedisNode> MasterOfSlot(int slot) const;

  // SIGKILLs the node on `port` (by the PID started for it) and reaps it. NOT_FOUND if no
  // node of this cluster runs there.
  [[nodiscard]] absl::Status KillNode(int port);

  // Waits until every running node reports cluster_state:ok and serves each slot the node
  // killed on `killed_port` had (as of nodes() before the kill) by another, running master;
  // then refreshes nodes(). DEADLINE_EXCEEDED (with what was last seen) after `timeout`.
  [[nodiscard]] absl::Status WaitForFailover(int killed_port,
                                             absl::Duration timeout = absl::Seconds(30));

  // Starts the node on `port` again after KillNode, as an operator would: same port,
  // directory and cluster config file, so it keeps its ID and rejoins (a failed-over master
  // comes back as a replica of its successor). Waits until it reports cluster_state:ok, a
  // replica's link to its master is up, and every running node sees it with the role and
  // master it reports itself, unflagged (others first see a returning master as a master
  // without slots, until its gossip tells them it is a replica); then refreshes nodes(). NOT_FOUND
  // for a port not of this cluster, FAILED_PRECONDITION if the node runs, UNAVAILABLE if it exits
  // (say, its port was taken meanwhile), DEADLINE_EXCEEDED after `timeout`.
  [[nodiscard]] absl::Status RestartNode(int port, absl::Duration timeout = absl::Seconds(30));

  // SIGKILLs every node still running and reaps it; idempotent.
  void Stop();

  // The directory the nodes' files are in.
  const std::string& dir() const { return dir_; }

 private:
  struct Process {
    int port = 0;
    std::unique_ptr<ChildProcess> child;
  };

  RedisCluster(RedisClusterOptions options, std::string dir, bool owns_dir)
      : options_(std::move(options)), dir_(std::move(dir)), owns_dir_(owns_dir) {}

  absl::Status StartNodes(absl::Time deadline);
  // Starts a node on new free ports (none of `taken`), or on `port`.
  absl::Status SpawnNode(Process& process, const std::vector<int>& taken);
  absl::Status SpawnNodeOn(Process& process, int port);
  absl::Status CreateCluster(absl::Time deadline);
  absl::Status WaitUntilReady(absl::Time deadline);
  // nodes_ from CLUSTER NODES of a running node.
  absl::Status RefreshNodes();
  // The ports of the running nodes.
  std::vector<int> RunningPorts() const;
  pid_t PidOf(int port) const;

  const RedisClusterOptions options_;
  const std::string dir_;
  const bool owns_dir_;
  std::vector<Process> processes_;
  std::vector<RedisNode> nodes_;
};

// A reply of Redis (RESP2), as the cluster client copies it from hiredis.
using RedisReply = redis::Reply;

// Sends one command (`args`, binary-safe) to 127.0.0.1:`port` on a new connection and
// returns the reply, an error reply included. UNAVAILABLE when the node cannot be reached
// or does not answer within `timeout`.
//
// Not for WAIT after a write: WAIT counts the replicas that acknowledged the writes of its
// own connection, and a new connection wrote nothing, so it returns at once the number of
// online replicas whether or not they have the write. Use RedisCommands for both.
[[nodiscard]] absl::StatusOr<RedisReply> RedisCommand(int port,
                                                      const std::vector<std::string>& args,
                                                      absl::Duration timeout = absl::Seconds(5));

// Sends `commands` in order on one new connection to 127.0.0.1:`port` and returns one reply
// per command, error replies included: what depends on the connection, e.g. a write and
// the WAIT that covers it. `timeout` is per command (a WAIT's must exceed its own).
// UNAVAILABLE as RedisCommand; INVALID_ARGUMENT for no commands or an empty one.
[[nodiscard]] absl::StatusOr<std::vector<RedisReply>> RedisCommands(
    int port, const std::vector<std::vector<std::string>>& commands,
    absl::Duration timeout = absl::Seconds(5));

}  // namespace stategate::testbed
