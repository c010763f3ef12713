// Gateway: the stategate server — gRPC services (KeyValue, Control, Admin, health, reflection)
// over one storage engine, with live namespace reloads and a draining shutdown. Started in
// order by Start and stopped in reverse by Drain / the destructor. Thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "src/common/clock.h"
#include "src/server/config.h"

namespace stategate::server {

struct GatewayOptions {
  ServerConfig config;
  // Where Reload reads namespaces from; empty = the config above never changes.
  std::string config_path;
  Clock* clock = Clock::Real();
  // Serve fault injection (the Admin service, config faults). Without it a config with
  // faults is refused and Admin calls are FAILED_PRECONDITION. Default: off.
  bool fault_injection = false;
};

class Gateway {
 public:
  // Opens the engine in config.data_dir, prepares every namespace and starts listening on
  // config.listen (port 0 = any free port; see port()).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Gateway>> Start(GatewayOptions options);
  virtual ~Gateway() = default;

  virtual int port() const = 0;

  // Re-reads the namespaces from the config file. On error the current ones stay.
  [[nodiscard]] virtual absl::Status Reload() = 0;

  // Stops taking calls (health NOT_SERVING), lets in-flight calls finish within the drain
  // timeout, then stops. Idempotent.
  virtual void Drain() = 0;

  // Blocks until Drain has finished.
  virtual void Wait() = 0;
};

}  // namespace stategate::server
