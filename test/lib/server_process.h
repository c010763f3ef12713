// ServerProcess: a real `stategate` binary run as a child process for tests, on a free
// 127.0.0.1 port, stopped by the PID it was started with. Not thread-safe.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "src/testbed/child_process.h"

namespace stategate::testing {

// A port that was free a moment ago (bound to port 0, then released); testbed::FreePort.
int FreePort();

class ServerProcess {
 public:
  // Starts `binary` with `args` plus --listen 127.0.0.1:<port>; output goes to log_path.
  ServerProcess(std::string binary, std::vector<std::string> args, std::string log_path);
  ~ServerProcess();  // SIGKILLs the child if it still runs

  // Starts the child on a free port and waits until it answers Handshake. False on timeout
  // or exit.
  bool Start(absl::Duration timeout = absl::Seconds(20));
  // As Start, on the port of the last start (after the child exited): a restart in place.
  bool Restart(absl::Duration timeout = absl::Seconds(20));
  // Sends `signal` to the child.
  void Signal(int signal);
  // Waits for the child to exit; its exit status as waitpid reports it, or -1 on timeout.
  int Wait(absl::Duration timeout = absl::Seconds(30));

  // Everything the child has written to its log so far (for failure messages).
  std::string Log() const;

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // -1 before Start and once the child has been reaped.
  pid_t pid() const { return child_ != nullptr ? child_->pid() : -1; }

 private:
  std::string binary_;
  std::vector<std::string> args_;
  std::string log_path_;
  int port_ = 0;
  std::unique_ptr<testbed::ChildProcess> child_;
};

}  // namespace stategate::testing
