// Fleet: the gateways a fault benchmark runs against, and the faults it injects into them.
// Either local: `stategate --fault-injection` processes this one starts on free 127.0.0.1
// ports, each with its own temporary data directory (or all over one Redis Cluster, see
// LocalFleetOptions), and stops by PID (SIGTERM, then SIGKILL) when stopped or destroyed,
// on every path out; or attached: gateways already
// running at given addresses, which must have been started with --fault-injection for
// faults to be set.
//
// Latency and error faults go through the gateways' Admin service (admin.proto). A pause
// is SIGSTOP / SIGCONT of a local gateway; an attached one is paused with Admin.Pause for
// the length asked, and Resume waits for it to run again.
//
// Not thread-safe: one thread drives a fleet.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace stategate::bench {

// The faults of one namespace of one gateway; the default value injects nothing.
struct InjectedFaults {
  // Added to every call before it runs. Zero: none.
  absl::Duration delay = absl::ZeroDuration();
  // Share of calls failed with error_code instead of run, in [0, 1].
  double error_rate = 0;
  std::string error_code = "UNAVAILABLE";
};

struct LocalFleetOptions {
  // The `stategate` binary. Default: ServerBinaryBesideThisOne().
  std::string server_binary;
  int replicas = 3;
  // "H:P,H:P,..." of a Redis Cluster: every gateway runs `--redis-cluster` with it, so all
  // of them serve namespace `default` from that one cluster (replicas_ack 1) instead of
  // their own RocksDB. Default: empty (RocksDB).
  std::string redis_cluster_seeds;
  // "H:P" of a memcached every gateway puts in front of namespace `default` (`--memcached`).
  // Default: empty (no cache).
  std::string memcached_address;
  // A config file every gateway is started with (`--config`); --listen and --data-dir still
  // override its listen and data_dir. Default: empty (no --config).
  std::string config_path;
  // Start the gateways with --fault-injection (needed for SetFaults). Default: true.
  bool fault_injection = true;
  // How long each gateway may take to answer its first Handshake. Default: 20 s.
  absl::Duration start_timeout = absl::Seconds(20);
  // How long each gateway gets to exit after SIGTERM before it is SIGKILLed. Default: 10 s.
  absl::Duration stop_timeout = absl::Seconds(10);
};

// The gateways' resident memory, summed over those running (Linux's /proc/<pid>/status).
struct GatewayMemory {
  int64_t resident_bytes = 0;  // now (VmRSS)
  int64_t peak_bytes = 0;      // the most since the last ResetMemoryPeak or start (VmHWM)
};

class Fleet {
 public:
  // Starts options.replicas local gateways and waits until each answers Handshake. On any
  // failure the ones started are stopped and the error (with the gateway's log) returned.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Fleet>> StartLocal(
      const LocalFleetOptions& options);
  // Gateways already running at `addresses` (at least one). Nothing is checked here.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Fleet>> Attach(
      std::vector<std::string> addresses);

  virtual ~Fleet() = default;

  // "host:port" of each gateway, replica 0 first.
  virtual const std::vector<std::string>& addresses() const = 0;

  // Replaces the faults of namespace `ns` on gateway `replica` (the default InjectedFaults
  // clears them). FAILED_PRECONDITION when the gateway runs without --fault-injection.
  [[nodiscard]] virtual absl::Status SetFaults(size_t replica, std::string_view ns,
                                               const InjectedFaults& faults) = 0;

  // Stops every thread of gateway `replica` until Resume. `length` is how long the caller
  // means to keep it paused (at most 60 s for an attached gateway, which resumes by itself
  // after it).
  [[nodiscard]] virtual absl::Status Pause(size_t replica, absl::Duration length) = 0;
  [[nodiscard]] virtual absl::Status Resume(size_t replica) = 0;

  // Kills gateway `replica` at once (SIGKILL): no drain, calls in flight are cut. Local
  // gateways only (UNIMPLEMENTED for attached ones).
  [[nodiscard]] virtual absl::Status Kill(size_t replica) = 0;

  // Starts gateway `replica` again on the same address and data directory and waits until it
  // answers Handshake. If it is running, it is first drained (SIGTERM: it stops taking
  // calls, finishes those in flight and exits), as in a rolling upgrade; after Kill it is just
  // started; one that does not drain within stop_timeout is killed. Local gateways only
  // (UNIMPLEMENTED for attached ones). The new process dies with the thread that calls this
  // (ChildProcessOptions::die_with_parent): call it from a thread that outlives the fleet's use.
  [[nodiscard]] virtual absl::Status Restart(size_t replica) = 0;

  // Stops local gateways (nothing for attached ones); idempotent. INTERNAL if one had to be
  // killed or exited with an error.
  [[nodiscard]] virtual absl::Status Stop() = 0;

  // Local gateways' memory; nullopt for attached ones, or if /proc cannot tell. Neither
  // this nor ResetMemoryPeak may run while Restart or Kill does.
  [[nodiscard]] virtual std::optional<GatewayMemory> Memory() const = 0;
  // Starts the peak of Memory() over from the gateways' memory now (/proc/<pid>/clear_refs);
  // nothing for attached ones.
  virtual void ResetMemoryPeak() = 0;
};

// The `stategate` binary in the directory of this process's executable (/proc/self/exe).
[[nodiscard]] absl::StatusOr<std::string> ServerBinaryBesideThisOne();

}  // namespace stategate::bench
