#include "src/testbed/child_process.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "src/common/status_macros.h"

namespace stategate::testbed {
namespace {

// How often Wait looks whether the child has exited.
constexpr absl::Duration kWaitPoll = absl::Milliseconds(5);

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

bool IsExecutableFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// The file execvp would run for `binary`; resolved before fork, where allocating is safe.
absl::StatusOr<std::string> ResolveBinary(const std::string& binary) {
  if (binary.empty()) return absl::InvalidArgumentError("no binary given");
  if (binary.find('/') != std::string::npos) {
    if (!IsExecutableFile(binary)) {
      return absl::NotFoundError(absl::StrCat(binary, " is not an executable file"));
    }
    return binary;
  }
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path != nullptr ? path : "/usr/bin:/bin", ':')) {
    const std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", binary);
    if (IsExecutableFile(candidate)) return candidate;
  }
  return absl::NotFoundError(absl::StrCat(binary, " not found in $PATH"));
}

std::atomic<int> child_niceness{0};

// SetChildCpus's set; copied before fork (the child may not take a lock).
absl::Mutex child_cpus_mu;
std::optional<cpu_set_t> child_cpus ABSL_GUARDED_BY(child_cpus_mu);

absl::StatusOr<cpu_set_t> CpuSet(const std::vector<int>& cpus) {
  if (cpus.empty()) return absl::InvalidArgumentError("no CPU given");
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int cpu : cpus) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) {
      return absl::InvalidArgumentError(
          absl::StrCat("CPU ", cpu, " is outside [0, ", CPU_SETSIZE, ")"));
    }
    CPU_SET(cpu, &set);
  }
  return set;
}

// Runs in the child between fork and exec: async-signal-safe calls only (setpriority and
// sched_setaffinity are plain system calls).
[[noreturn]] void ExecChild(const char* path, char* const* argv, int in_fd, int out_fd,
                            bool die_with_parent, pid_t parent, int niceness,
                            const cpu_set_t* cpus) {
  // Before exec, so every thread the program starts inherits them.
  if (niceness != 0) ::setpriority(PRIO_PROCESS, 0, niceness);
  if (cpus != nullptr && ::sched_setaffinity(0, sizeof(*cpus), cpus) != 0) ::_exit(127);
  if (die_with_parent) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl
  }
  // A server must not inherit the blocked or ignored signals of a test or a tool (both are
  // kept across exec): it would not stop on SIGTERM, or not see SIGPIPE.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig : {SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGTERM, SIGCHLD}) ::signal(sig, SIG_DFL);
  if (::dup2(in_fd, STDIN_FILENO) < 0 || ::dup2(out_fd, STDOUT_FILENO) < 0 ||
      ::dup2(out_fd, STDERR_FILENO) < 0) {
    ::_exit(127);
  }
  // Nothing else of the parent's (sockets, pipes of a test runner) stays open in the child.
  ::close_range(3, ~0U, 0);
  ::execv(path, argv);
  ::_exit(127);
}

}  // namespace

void SetChildNiceness(int niceness) { child_niceness.store(niceness); }

absl::Status SetChildCpus(const std::vector<int>& cpus) {
  std::optional<cpu_set_t> set;
  if (!cpus.empty()) {
    SG_ASSIGN_OR_RETURN(set, CpuSet(cpus));
  }
  absl::MutexLock lock(&child_cpus_mu);
  child_cpus = set;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int>> AllowedCpus() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (::sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return Errno("sched_getaffinity");
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &allowed)) cpus.push_back(cpu);
  }
  return cpus;
}

absl::Status PinThisProcess(const std::vector<int>& cpus) {
  SG_ASSIGN_OR_RETURN(const cpu_set_t set, CpuSet(cpus));
  // Every thread there is now (affinity is per thread); those started later inherit it
  // from the thread that starts them.
  DIR* tasks = ::opendir("/proc/self/task");
  if (tasks == nullptr) return Errno("opendir /proc/self/task");
  absl::Status status = absl::OkStatus();
  while (const dirent* entry = ::readdir(tasks)) {
    int tid = 0;
    if (!absl::SimpleAtoi(entry->d_name, &tid)) continue;  // "." and ".."
    if (::sched_setaffinity(tid, sizeof(set), &set) != 0 && errno != ESRCH) {
      status = Errno(absl::StrCat("sched_setaffinity of thread ", tid));
      break;
    }
  }
  ::closedir(tasks);
  return status;
}

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(ChildProcessOptions options) {
  absl::StatusOr<std::string> path = ResolveBinary(options.binary);
  if (!path.ok()) return path.status();

  // Everything the child needs is prepared here: after fork it may not allocate.
  std::vector<std::string> args = {options.binary};
  args.insert(args.end(), options.args.begin(), options.args.end());
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  const int in_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in_fd < 0) return Errno("open /dev/null");
  const std::string& log_path = options.log_path.empty() ? "/dev/null" : options.log_path;
  const int out_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out_fd < 0) {
    const absl::Status status = Errno(absl::StrCat("open ", log_path));
    ::close(in_fd);
    return status;
  }

  const pid_t parent = ::getpid();
  const int niceness = child_niceness.load();
  std::optional<cpu_set_t> cpus;
  {
    absl::MutexLock lock(&child_cpus_mu);
    cpus = child_cpus;
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ExecChild(path->c_str(), argv.data(), in_fd, out_fd, options.die_with_parent, parent, niceness,
              cpus.has_value() ? &*cpus : nullptr);
  }
  const int fork_errno = errno;
  ::close(in_fd);
  ::close(out_fd);
  if (pid < 0) {
    errno = fork_errno;
    return Errno(absl::StrCat("fork for ", options.binary));
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(std::move(options), pid));
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) Kill();
}

void ChildProcess::Reaped(int wait_status) {
  wait_status_ = wait_status;
  pid_ = -1;
}

void ChildProcess::Signal(int signal) {
  if (pid_ > 0) ::kill(pid_, signal);
}

int ChildProcess::Kill() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    pid_t reaped;
    do {
      reaped = ::waitpid(pid_, &status, 0);
    } while (reaped < 0 && errno == EINTR);
    Reaped(reaped == pid_ ? status : -1);  // -1: reaped by someone else (ECHILD)
  }
  return *wait_status_;
}

bool ChildProcess::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  const pid_t reaped = ::waitpid(pid_, &status, WNOHANG);
  if (reaped == pid_) {
    Reaped(status);
  } else if (reaped < 0 && errno == ECHILD) {
    Reaped(-1);
  }
  return pid_ > 0;
}

std::optional<int> ChildProcess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (Running()) {
    if (absl::Now() >= deadline) return std::nullopt;
    absl::SleepFor(kWaitPoll);
  }
  return wait_status_;
}

std::string ChildProcess::Log() const {
  if (options_.log_path.empty()) return "";
  std::ifstream in(options_.log_path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string ChildProcess::LogTail(size_t max_bytes) const {
  std::string log = Log();
  if (log.size() > max_bytes) log = "..." + log.substr(log.size() - max_bytes);
  return log;
}

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int saved = errno;
    ::close(fd);
    errno = saved;
    return -1;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool PortIsFree(int port) {
  if (port <= 0 || port > 65535) return false;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return free;
}

std::string DescribeWaitStatus(int wait_status) {
  if (wait_status == -1) return "was reaped elsewhere";
  if (WIFEXITED(wait_status)) return absl::StrCat("exited with status ", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return absl::StrCat("killed by signal ", WTERMSIG(wait_status));
  return absl::StrCat("wait status ", wait_status);
}

absl::StatusOr<std::string> MakeTempDir(std::string_view prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/",
                                     std::string(prefix), "XXXXXX");
  if (::mkdtemp(pattern.data()) == nullptr) return Errno(absl::StrCat("mkdtemp ", pattern));
  return pattern;
}

bool Listening(const std::string& address) {
  const std::vector<std::string> parts = absl::StrSplit(address, ':');
  int port = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &port)) return false;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return connected;
}

absl::StatusOr<StartedServer> StartOnFreePort(
    const std::string& name, const std::function<ChildProcessOptions(int port)>& options_for,
    const std::function<absl::Status(int port)>& ready, absl::Time deadline, int attempts) {
  constexpr absl::Duration kPoll = absl::Milliseconds(20);
  for (int attempt = 1;; ++attempt) {
    StartedServer server;
    server.port = FreePort();
    if (server.port < 0) {
      return absl::InternalError(absl::StrCat("no free port: ", std::strerror(errno)));
    }
    SG_ASSIGN_OR_RETURN(server.process, ChildProcess::Start(options_for(server.port)));
    while (server.process->Running()) {
      const absl::Status answered = ready(server.port);
      if (answered.ok()) return server;
      if (absl::Now() >= deadline) {
        server.process->Kill();
        return absl::DeadlineExceededError(absl::StrCat(
            name, " on port ", server.port, " was not ready in time: ", answered.ToString(),
            "; its output:\n", server.process->LogTail()));
      }
      absl::SleepFor(kPoll);
    }
    const std::string why = absl::StrCat(name, " on port ", server.port, " ",
                                         DescribeWaitStatus(*server.process->wait_status()),
                                         "; its output:\n", server.process->LogTail());
    if (attempt >= attempts || absl::Now() >= deadline) return absl::UnavailableError(why);
  }
}

}  // namespace stategate::testbed
