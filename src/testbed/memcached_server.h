// MemcachedServer: a real local `memcached` process on a free 127.0.0.1 port (TCP only,
// no UDP), for tests and benchmarks. Ready once it answers `version` on the port; stopped
// by the PID this class started (SIGKILL) when asked to and when destroyed.
//
// Not thread-safe: one thread drives a server.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "src/testbed/child_process.h"

namespace stategate::testbed {

struct MemcachedOptions {
  // The binary: a path, or a name looked up in $PATH. Default: from $PATH.
  std::string memcached = "memcached";
  // Cache memory (-m). Default: 64 MiB.
  int memory_mb = 64;
  // Where memcached's output goes. Default: empty, which writes it to a file in a new
  // directory under $TMPDIR (or /tmp) that is removed with the server.
  std::string log_path;
  // How long Start may take until the server answers `version`. Default: 10 s.
  absl::Duration start_timeout = absl::Seconds(10);
};

class MemcachedServer {
 public:
  // Starts memcached (with -u root when run as root, which memcached requires) and waits
  // until it answers `version`. NOT_FOUND when the binary is missing, UNAVAILABLE when it
  // exits (the message quotes its output), DEADLINE_EXCEEDED when it does not answer in
  // time; the process is stopped before an error is returned.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<MemcachedServer>> Start(
      MemcachedOptions options = {});

  // Kill(), and removes the log directory if Start made it.
  ~MemcachedServer();

  MemcachedServer(const MemcachedServer&) = delete;
  MemcachedServer& operator=(const MemcachedServer&) = delete;

  // "127.0.0.1:<port>".
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  // PID of the memcached process; -1 once it was killed.
  pid_t pid() const { return child_ != nullptr ? child_->pid() : -1; }

  // SIGKILLs the server and reaps it; idempotent.
  void Kill();

 private:
  MemcachedServer(MemcachedOptions options, std::string owned_dir)
      : options_(std::move(options)), owned_dir_(std::move(owned_dir)) {}

  absl::Status StartProcess();

  const MemcachedOptions options_;
  // A directory Start made for the log; empty when the caller chose the log path.
  const std::string owned_dir_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> child_;
};

// Sends `version\r\n` to 127.0.0.1:`port` and returns the version memcached reports.
// UNAVAILABLE when nothing answers like memcached within `timeout`.
[[nodiscard]] absl::StatusOr<std::string> MemcachedVersion(
    int port, absl::Duration timeout = absl::Seconds(2));

}  // namespace stategate::testbed
