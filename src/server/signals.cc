#include "src/server/signals.h"

#include <signal.h>
#include <spdlog/spdlog.h>

namespace stategate::server {
namespace {

sigset_t ServerSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

void BlockServerSignals() {
  sigset_t set = ServerSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void ServeUntilTerminated(Gateway& gateway) {
  sigset_t set = ServerSignals();
  while (true) {
    int signal = 0;
    if (sigwait(&set, &signal) != 0) continue;
    if (signal == SIGHUP) {
      if (absl::Status status = gateway.Reload(); !status.ok()) {
        spdlog::error("reload failed, keeping the current namespaces: {}", status.ToString());
      }
      continue;
    }
    spdlog::info("signal {}: shutting down", signal);
    gateway.Drain();
    return;
  }
}

}  // namespace stategate::server
