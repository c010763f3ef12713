// ChildProcess: a program run as a child of this process (fork + exec), its stdout and stderr
// appended to a log file, stopped by the PID it was started with and never by name. The
// building block of the test servers in src/testbed/ (Redis Cluster, memcached) and of the
// benchmark's local gateway fleet. Also FreePort, a free TCP port on 127.0.0.1, and
// MakeTempDir.
//
// A ChildProcess is not thread-safe: one thread drives it. Starting one is safe while other
// threads run (after fork the child makes only async-signal-safe calls).
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace stategate::testbed {

struct ChildProcessOptions {
  // The program: a path, or a name looked up in $PATH (as a shell would).
  std::string binary;
  // Its arguments, argv[0] (the binary) not included.
  std::vector<std::string> args;
  // Where stdout and stderr go; opened for appending, created if missing. Default: empty,
  // which sends both to /dev/null.
  std::string log_path;
  // Whether the child is SIGKILLed by the kernel when the thread that started it exits
  // (PR_SET_PDEATHSIG), so it does not outlive a test or tool that crashed or was killed.
  // The kernel ties this to the starting *thread*: start children that must outlive a
  // short-lived thread with false. Default: true.
  bool die_with_parent = true;
};

// The niceness (setpriority, -20..19) of every child this process starts from now on;
// 0 (the default) keeps the parent's. A benchmark sets it above 0 so that the servers it
// runs on the same cores never starve its load generator of the CPU (on separate machines
// they could not), which would show up as latency of the generator, not of the servers.
void SetChildNiceness(int niceness);

// The CPUs every child this process starts from now on may run on (sched_setaffinity, set
// before exec so every thread of the child inherits it); empty (the default) keeps the
// parent's. A benchmark gives its servers CPUs of their own, and itself the others, so that
// neither side's CPU shows up as the other's latency or capacity. INVALID_ARGUMENT (and no
// change) for a CPU outside [0, CPU_SETSIZE).
[[nodiscard]] absl::Status SetChildCpus(const std::vector<int>& cpus);

// The CPUs this process may run on now (sched_getaffinity), in increasing order.
[[nodiscard]] absl::StatusOr<std::vector<int>> AllowedCpus();

// Pins every thread this process has now, and so every thread they start later, to `cpus`.
// INVALID_ARGUMENT for an empty list or a CPU outside [0, CPU_SETSIZE); the errno of
// sched_setaffinity otherwise.
[[nodiscard]] absl::Status PinThisProcess(const std::vector<int>& cpus);

class ChildProcess {
 public:
  // Forks and execs options.binary. NOT_FOUND when the binary is not an executable file (or
  // not in $PATH), INTERNAL when fork fails. That exec itself failed shows later, as the
  // child exiting with status 127.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(
      ChildProcessOptions options);

  // SIGKILLs the child and reaps it if it has not been reaped yet.
  ~ChildProcess();

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // The child's PID, -1 once it has been reaped.
  pid_t pid() const { return pid_; }
  const ChildProcessOptions& options() const { return options_; }

  // Sends `signal` to the child (nothing once reaped).
  void Signal(int signal);
  // SIGKILLs the child and waits for it; returns its wait status (as waitpid reports it).
  // Once reaped, returns the status it was reaped with.
  int Kill();
  // Waits up to `timeout` for the child to exit and reaps it. Its wait status, or nullopt
  // if it still runs when the timeout expires. Once reaped, returns the status again.
  std::optional<int> Wait(absl::Duration timeout);
  // Whether the child still runs (reaps it without blocking if it has exited).
  bool Running();
  // The wait status the child was reaped with; nullopt while it has not been.
  std::optional<int> wait_status() const { return wait_status_; }

  // Everything the child has written to its log so far ("" without a log file).
  std::string Log() const;
  // The last `max_bytes` of Log(), prefixed with "..." when cut: for error messages.
  std::string LogTail(size_t max_bytes = 2000) const;

 private:
  ChildProcess(ChildProcessOptions options, pid_t pid) : options_(std::move(options)), pid_(pid) {}

  // Records a reaped child.
  void Reaped(int wait_status);

  const ChildProcessOptions options_;
  pid_t pid_;
  std::optional<int> wait_status_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released), or
// -1 (errno set) when no socket could be bound. Another process may take it before the
// caller does: callers that start a server on it retry on a new port when the start fails.
int FreePort();

// Whether a TCP listener could bind 127.0.0.1:`port` right now.
bool PortIsFree(int port);

// Whether something accepts TCP connections at "127.0.0.1:<port>" right now (false for an
// address that is not of that form).
bool Listening(const std::string& address);

// A server started on a free port by StartOnFreePort.
struct StartedServer {
  std::unique_ptr<ChildProcess> process;
  int port = 0;
};

// Starts the server `options_for(port)` describes on a free 127.0.0.1 port and polls
// `ready(port)` until it returns OK. A server that exits first (most likely: the free port
// was taken meanwhile) is started again on a new port, `attempts` times in all. Errors name
// it as `name` and quote its output: DEADLINE_EXCEEDED, with ready's last error, when it is
// not ready by `deadline` (it is killed); UNAVAILABLE when it exits on every attempt.
[[nodiscard]] absl::StatusOr<StartedServer> StartOnFreePort(
    const std::string& name, const std::function<ChildProcessOptions(int port)>& options_for,
    const std::function<absl::Status(int port)>& ready, absl::Time deadline, int attempts = 3);

// "exited with status 3", "killed by signal 9": a wait status for error messages.
std::string DescribeWaitStatus(int wait_status);

// A new, empty directory under $TMPDIR (or /tmp) named `prefix` plus a unique suffix.
// The caller removes it.
[[nodiscard]] absl::StatusOr<std::string> MakeTempDir(std::string_view prefix);

}  // namespace stategate::testbed
