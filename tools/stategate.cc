// stategate: the gateway server. See README.md for flags; main only wires parts together.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <iterator>
#include <string>

#include "absl/strings/str_split.h"
#include "src/server/config.h"
#include "src/server/gateway.h"
#include "src/server/signals.h"

int main(int argc, char** argv) {
  stategate::server::BlockServerSignals();

  CLI::App app{"stategate: a reliable Key-Value gateway over embedded RocksDB or Redis Cluster"};
  std::string config_path, listen, data_dir, redis_cluster, memcached, secret_file;
  app.add_option("--config", config_path, "YAML config (see config/stategate.example.yaml)");
  app.add_option("--listen", listen, "HOST:PORT to serve gRPC on (default 127.0.0.1:7700)");
  app.add_option("--data-dir", data_dir, "RocksDB directory (default ./stategate-data)");
  app.add_option("--redis-cluster", redis_cluster,
                 "HOST:PORT[,HOST:PORT...] of Redis Cluster nodes; without --config, namespace "
                 "'default' lives there (replicas_ack: 1, replica_shortfall: degrade)");
  app.add_option("--memcached", memcached,
                 "HOST:PORT of a memcached; without --config, a look-aside cache in front of "
                 "namespace 'default' (ttl 60s)");
  app.add_option("--page-token-secret-file", secret_file,
                 "file holding the HMAC key of page tokens (overrides page_token_secret): give "
                 "every gateway of a fleet the same, so a page started on one continues on any")
      ->check(CLI::ExistingFile);
  bool fault_injection = false;
  app.add_flag("--fault-injection", fault_injection,
               "Allow injected latency, errors and pauses (config faults, Admin service); "
               "for tests only");
  CLI11_PARSE(app, argc, argv);

  stategate::server::GatewayOptions options;
  if (config_path.empty()) {
    options.config = stategate::server::DefaultConfig();
    stategate::NamespaceConfig& ns = options.config.namespaces.front();
    if (!redis_cluster.empty()) {
      ns.engine = "redis-cluster";
      ns.replicas_ack = 1;
      // A shard whose master was lost keeps taking writes on its promoted replica.
      ns.replica_shortfall = stategate::ReplicaShortfall::kDegrade;
    }
    if (!memcached.empty()) ns.cache.engine = "memcached";
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
  if (!redis_cluster.empty()) {
    options.config.redis_cluster.seeds = absl::StrSplit(redis_cluster, ',', absl::SkipEmpty());
  }
  if (!memcached.empty()) options.config.memcached.address = memcached;
  if (!secret_file.empty()) {
    std::ifstream in(secret_file);
    std::string secret((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
    if (!in.good() && !in.eof()) {
      spdlog::error("cannot read --page-token-secret-file {}", secret_file);
      return 2;
    }
    if (secret.empty()) {
      spdlog::error("--page-token-secret-file {} is empty", secret_file);
      return 2;
    }
    options.config.page_token_secret = std::move(secret);
  }
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
