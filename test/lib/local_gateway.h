// LocalGateway: a real stategate Gateway in this process, on RocksDB in a temporary
// directory, listening on a free 127.0.0.1 port. For tests that need a real server but not
// a separate process. Not thread-safe (the gateway itself is).
#pragma once

#include <memory>
#include <string>

#include "src/server/config.h"
#include "src/server/gateway.h"
#include "test/lib/temp_dir.h"

namespace stategate::testing {

class LocalGateway {
 public:
  // Starts a gateway with `config`, overriding its listen address and data directory.
  // Returns null (after a gtest failure) if it cannot start.
  static std::unique_ptr<LocalGateway> Start(server::ServerConfig config = server::DefaultConfig());

  std::string address() const { return "127.0.0.1:" + std::to_string(gateway_->port()); }
  server::Gateway& gateway() { return *gateway_; }
  const std::string& data_dir() const { return dir_.path(); }

 private:
  TempDir dir_;
  std::unique_ptr<server::Gateway> gateway_;
};

}  // namespace stategate::testing
