#include "src/testbed/memcached_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "src/common/status_macros.h"

namespace stategate::testbed {
namespace {

// A server that exits while starting (most likely: its free port was taken meanwhile) is
// started again on a new port this many times in all.

absl::Status Unavailable(int port, const std::string& what) {
  return absl::UnavailableError(
      absl::StrCat("memcached at 127.0.0.1:", port, ": ", what, ": ", std::strerror(errno)));
}

}  // namespace

absl::StatusOr<std::string> MemcachedVersion(int port, absl::Duration timeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Unavailable(port, "socket");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  const timeval tv = absl::ToTimeval(timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Unavailable(port, "connect");
  }
  constexpr absl::string_view kRequest = "version\r\n";
  if (::send(fd, kRequest.data(), kRequest.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(kRequest.size())) {
    return Unavailable(port, "send");
  }
  std::string answer;
  char buffer[256];
  while (!absl::StrContains(answer, "\r\n") && answer.size() < 1024) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = ECONNRESET;
      return Unavailable(port, "recv");
    }
    answer.append(buffer, static_cast<size_t>(n));
  }
  constexpr absl::string_view kPrefix = "VERSION ";
  if (!absl::StartsWith(answer, kPrefix) || !absl::StrContains(answer, "\r\n")) {
    return absl::UnavailableError(
        absl::StrCat("127.0.0.1:", port, " answered version with: ", answer));
  }
  return answer.substr(kPrefix.size(), answer.find("\r\n") - kPrefix.size());
}

absl::StatusOr<std::unique_ptr<MemcachedServer>> MemcachedServer::Start(MemcachedOptions options) {
  if (options.memory_mb < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("memory_mb must be positive, got ", options.memory_mb));
  }
  std::string owned_dir;
  if (options.log_path.empty()) {
    SG_ASSIGN_OR_RETURN(owned_dir, MakeTempDir("stategate-memcached-"));
    options.log_path = owned_dir + "/memcached.log";
  }
  // From here on the destructor stops the process when an error is returned.
  std::unique_ptr<MemcachedServer> server(
      new MemcachedServer(std::move(options), std::move(owned_dir)));
  SG_RETURN_IF_ERROR(server->StartProcess());
  return server;
}

absl::Status MemcachedServer::StartProcess() {
  auto options_for = [this](int port) {
    ChildProcessOptions child;
    child.binary = options_.memcached;
    child.args = {"-l", "127.0.0.1", "-p", absl::StrCat(port),
                  "-U", "0",         "-m", absl::StrCat(options_.memory_mb)};
    if (::geteuid() == 0) {
      child.args.push_back("-u");
      child.args.push_back("root");
    }
    child.log_path = options_.log_path;
    return child;
  };
  auto answers_version = [](int port) { return MemcachedVersion(port).status(); };
  SG_ASSIGN_OR_RETURN(StartedServer started,
                      StartOnFreePort("memcached", options_for, answers_version,
                                      absl::Now() + options_.start_timeout));
  child_ = std::move(started.process);
  port_ = started.port;
  return absl::OkStatus();
}

MemcachedServer::~MemcachedServer() {
  Kill();
  if (!owned_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(owned_dir_, ignored);
  }
}

void MemcachedServer::Kill() {
  if (child_ != nullptr) child_->Kill();
}

}  // namespace stategate::testbed
