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
  auto options_for = [this](int port) {
    ChildProcessOptions child;
    child.binary = options_.redis_server;
    child.args = {"--port",
                  absl::StrCat(port),
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
    return child;
  };
  auto answers_ping = [](int port) -> absl::Status {
    absl::StatusOr<RedisReply> pong = RedisCommand(port, {"PING"}, kPingTimeout);
    if (!pong.ok()) return pong.status();
    if (pong->type != RedisReply::Type::kStatus || pong->str != "PONG") {
      return absl::UnavailableError(absl::StrCat("PING answered ", pong->str));
    }
    return absl::OkStatus();
  };
  SG_ASSIGN_OR_RETURN(StartedServer started,
                      StartOnFreePort("redis-server", options_for, answers_ping,
                                      absl::Now() + options_.start_timeout));
  child_ = std::move(started.process);
  port_ = started.port;
  return absl::OkStatus();
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
