#include "test/lib/local_gateway.h"

#include <gtest/gtest.h>

namespace stategate::testing {

std::unique_ptr<LocalGateway> LocalGateway::Start(server::ServerConfig config) {
  auto local = std::make_unique<LocalGateway>();
  config.listen = "127.0.0.1:0";
  config.data_dir = local->dir_.path() + "/db";
  server::GatewayOptions options;
  options.config = std::move(config);
  absl::StatusOr<std::unique_ptr<server::Gateway>> gateway =
      server::Gateway::Start(std::move(options));
  if (!gateway.ok()) {
    ADD_FAILURE() << "cannot start a gateway: " << gateway.status();
    return nullptr;
  }
  local->gateway_ = *std::move(gateway);
  return local;
}

}  // namespace stategate::testing
