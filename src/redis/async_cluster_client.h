// AsyncClusterClient: a Redis Cluster client on hiredis's asynchronous API, on an event
// loop (libevent), so that no thread waits on the network (issue 11; DESIGN.md, "Storage
// engines").
//
// One loop thread owns every connection, the slot map and every call in flight. A call is
// handed to the loop and answered through its callback, on the loop thread, exactly once:
// with one reply per command, or UNAVAILABLE once its deadline has come. What the blocking
// client (cluster_client.h) sleeps through is rescheduled on the loop instead:
//  - MOVED updates the slot map and sends the call again at once; ASK sends it once to the
//    importing node, after ASKING;
//  - TRYAGAIN, CLUSTERDOWN, LOADING, a refused or broken connection: the slot map is read
//    again (at most every 100 ms) and the call is sent again on a timer, backing off from
//    5 ms to 200 ms, while its deadline allows — or, for a call made with fail_fast, it is
//    answered UNAVAILABLE at once, so that its caller retries on its own timer without
//    holding anything meanwhile;
//  - a node that does not answer (stopped, partitioned): the call's deadline answers the
//    call; the connection is closed once a reply is io_timeout late, which fails the calls
//    still on it over to another attempt.
// A node that refused a connection is not dialled again until its backoff (10 ms doubling
// to 1 s) has passed; calls to it fail over to the timer meanwhile.
//
// Connections: up to connections_per_node per node carry calls pipelined; a call goes on
// the one with the fewest replies outstanding. A blocking command (WAIT) gets a connection
// of its own, and no other call goes on it until it returns; more connections are dialled
// for that, up to 64 per node.
//
// A call may be sent more than once (a retry after a lost connection may repeat one that
// ran): send only idempotent commands, as the blocking client requires.
//
// Callbacks run on the loop thread and must not block; they may start further calls.
// Thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "src/redis/cluster_client.h"

namespace stategate::redis {

// How one call is made.
struct CallOptions {
  // The call is answered by then. InfiniteFuture: ClusterOptions::retry_window from now.
  absl::Time deadline = absl::InfiniteFuture();
  // A failure that a retry might mend (see the top) answers the call UNAVAILABLE at once,
  // instead of retrying until the deadline. Redirects are followed either way.
  bool fail_fast = false;
};

class AsyncClusterClient {
 public:
  using Replies = absl::StatusOr<std::vector<Reply>>;
  using Done = absl::AnyInvocable<void(Replies replies) &&>;

  // Starts the loop and reads the slot map from a seed; fails if no seed answers with one
  // within connect_timeout + io_timeout each. Of the options, max_idle_per_node is
  // ClusterClient's alone; retry_window is the deadline of a call made without one.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<AsyncClusterClient>> Connect(
      const ClusterOptions& options);

  // Answers every call still in flight UNAVAILABLE, closes every connection and stops the
  // loop.
  virtual ~AsyncClusterClient() = default;

  // Runs `commands` as one pipeline on the master of hash_key's slot; `done` gets one reply
  // per command (a command's own error is a kError reply), or UNAVAILABLE if the cluster
  // did not answer in time (CallOptions). Never blocks.
  // Commands shared with the caller, who may send them again (a script after NOSCRIPT, a
  // write's next round) without copying them.
  using Commands = std::shared_ptr<const std::vector<Command>>;
  virtual void Pipeline(std::string_view hash_key, Commands commands, CallOptions options,
                        Done done) = 0;
  void Pipeline(std::string_view hash_key, std::vector<Command> commands, CallOptions options,
                Done done) {
    Pipeline(hash_key, std::make_shared<const std::vector<Command>>(std::move(commands)), options,
             std::move(done));
  }

  // "host:port" of the master that owns hash_key's slot in the current slot map, or "".
  virtual std::string MasterOf(std::string_view hash_key) const = 0;

  virtual ClusterStats stats() const = 0;
};

// Runs `commands`, whose command `script_at` is script.EvalSha(...), on hash_key's master;
// after a NOSCRIPT reply, loads the script there and runs the pipeline again. `done` as
// for Pipeline.
void PipelineWithScript(AsyncClusterClient& client, std::string_view hash_key,
                        AsyncClusterClient::Commands commands, size_t script_at,
                        const Script& script, CallOptions options, AsyncClusterClient::Done done);

}  // namespace stategate::redis
