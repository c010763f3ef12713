// RedisServer: one real local `redis-server` process (standalone, not cluster mode) on a free
// 127.0.0.1 port, for tests and benchmarks. It runs without persistence (no RDB snapshots, no
// AOF) in a directory of its own, is ready once it answers PING, and is stopped by the PID
// this class started (SIGKILL) when asked to and when destroyed.
//
// For a Redis Cluster see redis_cluster.h; RedisCommand there talks to this server too.
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

struct RedisServerOptions {
  // The binary: a path, or a name looked up in $PATH. Default: from $PATH.
  std::string redis_server = "redis-server";
  // Where redis-server's output goes. Default: empty, which writes it to a file in a new
  // directory under $TMPDIR (or /tmp) that is removed with the server.
  std::string log_path;
  // How long Start may take until the server answers PING. Default: 10 s.
  absl::Duration start_timeout = absl::Seconds(10);
};

class RedisServer {
 public:
  // Starts redis-server (`--save "" --appendonly no`, its working directory a new temporary
  // one) and waits until it answers PING. NOT_FOUND when the binary is missing, UNAVAILABLE
  // when it exits (the message quotes its output), DEADLINE_EXCEEDED when it does not answer
  // in time; the process is stopped before an error is returned.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RedisServer>> Start(
      RedisServerOptions options = {});

  // Kill(), and removes the server's directory.
  ~RedisServer();

  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // "127.0.0.1:<port>".
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  // PID of the redis-server process; -1 once it was killed.
  pid_t pid() const { return child_ != nullptr ? child_->pid() : -1; }

  // SIGKILLs the server and reaps it; idempotent.
  void Kill();

 private:
  RedisServer(RedisServerOptions options, std::string dir)
      : options_(std::move(options)), dir_(std::move(dir)) {}

  absl::Status StartProcess();

  const RedisServerOptions options_;
  // The server's working directory (and its log's, unless the caller chose the log path).
  const std::string dir_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> child_;
};

}  // namespace stategate::testbed
