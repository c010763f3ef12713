#include "src/testbed/redis_server.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "src/common/status_macros.h"
#include "src/testbed/redis_cluster.h"

namespace stategate::testbed {
namespace {

// A server that exits while starting (most likely: its free port was taken meanwhile) is
// started again on a new port this many times in all.
constexpr int kStartAttempts = 3;
constexpr absl::Duration kPoll = absl::Milliseconds(20);
constexpr absl::Duration kPingTimeout = absl::Seconds(1);

}  // namespace

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start(RedisServerOptions options) {
  if (options.start_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("start_timeout must be positive");
  }
  SG_ASSIGN_OR_RETURN(std::string dir, MakeTempDir("stategate-redis-server-"));
  if (options.log_path.empty()) options.log_path = dir + "/redis.log";
  // From here on the destructor stops the process when an error is returned.
  std::unique_ptr<RedisServer> server(new RedisServer(std::move(options), std::move(dir)));
  SG_RETURN_IF_ERROR(server->StartProcess());
  return server;
}

absl::Status RedisServer::StartProcess() {
  const absl::Time deadline = absl::Now() + options_.start_timeout;
  for (int attempt = 1;; ++attempt) {
    port_ = FreePort();
    if (port_ < 0) return absl::InternalError(absl::StrCat("no free port: ", std::strerror(errno)));
    ChildProcessOptions child;
    child.binary = options_.redis_server;
    child.args = {"--port",
                  absl::StrCat(port_),
                  "--bind",
                  "127.0.0.1",
                  "--dir",
                  dir_,
                  "--save",
                  "",
                  "--appendonly",
                  "no",
                  "--daemonize",
                  "no",
                  "--protected-mode",
                  "no"};
    child.log_path = options_.log_path;
    SG_ASSIGN_OR_RETURN(child_, ChildProcess::Start(std::move(child)));
    while (child_->Running()) {
      absl::StatusOr<RedisReply> pong = RedisCommand(port_, {"PING"}, kPingTimeout);
      if (pong.ok() && pong->type == RedisReply::Type::kStatus && pong->str == "PONG") {
        return absl::OkStatus();
      }
      if (absl::Now() >= deadline) {
        Kill();
        return absl::DeadlineExceededError(absl::StrCat(
            "redis-server on port ", port_,
            " did not answer PING in time: ", pong.ok() ? pong->str : pong.status().ToString(),
            "; its output:\n", child_->LogTail()));
      }
      absl::SleepFor(kPoll);
    }
    const std::string why = absl::StrCat("redis-server on port ", port_, " ",
                                         DescribeWaitStatus(*child_->wait_status()),
                                         "; its output:\n", child_->LogTail());
    if (attempt == kStartAttempts || absl::Now() >= deadline) return absl::UnavailableError(why);
  }
}

RedisServer::~RedisServer() {
  Kill();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

void RedisServer::Kill() {
  if (child_ != nullptr) child_->Kill();
}

}  // namespace stategate::testbed
