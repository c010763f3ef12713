// stategate: the gateway server. See README.md for flags; main only wires parts together.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "src/server/config.h"
#include "src/server/gateway.h"
#include "src/server/signals.h"

int main(int argc, char** argv) {
  stategate::server::BlockServerSignals();

  CLI::App app{"stategate: a reliable Key-Value gateway over embedded RocksDB"};
  std::string config_path, listen, data_dir;
  app.add_option("--config", config_path, "YAML config (see config/stategate.example.yaml)");
  app.add_option("--listen", listen, "HOST:PORT to serve gRPC on (default 127.0.0.1:7700)");
  app.add_option("--data-dir", data_dir, "RocksDB directory (default ./stategate-data)");
  bool fault_injection = false;
  app.add_flag("--fault-injection", fault_injection,
               "Allow injected latency, errors and pauses (config faults, Admin service); "
               "for tests only");
  CLI11_PARSE(app, argc, argv);

  stategate::server::GatewayOptions options;
  if (config_path.empty()) {
    options.config = stategate::server::DefaultConfig();
  } else {
    absl::StatusOr<stategate::server::ServerConfig> config =
        stategate::server::LoadConfigFile(config_path);
    if (!config.ok()) {
      spdlog::error("{}", config.status().ToString());
      return 2;
    }
    options.config = *std::move(config);
    options.config_path = config_path;
  }
  if (!listen.empty()) options.config.listen = listen;
  if (!data_dir.empty()) options.config.data_dir = data_dir;
  options.fault_injection = fault_injection;

  absl::StatusOr<std::unique_ptr<stategate::server::Gateway>> gateway =
      stategate::server::Gateway::Start(std::move(options));
  if (!gateway.ok()) {
    spdlog::error("cannot start: {}", gateway.status().ToString());
    return 1;
  }
  stategate::server::ServeUntilTerminated(**gateway);
  return 0;
}
