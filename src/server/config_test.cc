#include "src/server/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace stategate::server {
namespace {

using ::testing::HasSubstr;

TEST(ConfigTest, DefaultConfigServesOneSyncNamespace) {
  ServerConfig config = DefaultConfig();
  ASSERT_EQ(config.namespaces.size(), 1u);
  EXPECT_EQ(config.namespaces[0].name, "default");
  EXPECT_EQ(config.namespaces[0].durability, Durability::kSync);
  EXPECT_TRUE(ValidateConfig(config).ok());
}

TEST(ConfigTest, ParsesEveryField) {
  auto config = ParseConfig(R"(
listen: 127.0.0.1:9000
data_dir: /tmp/x
max_clock_skew: 30s
tombstone_grace: 2h
chunk_gc_interval: 5s
drain_timeout: 3s
worker_threads: 4
page_token_secret: s3cret
namespaces:
  - name: users
    abstraction: kv
    storage: {engine: rocksdb, durability: async}
    slo:
      point_read: {target: 2ms, max: 20ms}
      range_read: {target: 5ms, max: 50ms}
      write: {target: 3ms, max: 30ms}
    limits: {max_key_bytes: 100, max_value_bytes: 1000000, max_items_per_call: 10,
             max_request_bytes: 2000000, max_page_bytes: 1000000}
    client: {compression_threshold_bytes: 512, chunk_bytes: 65536, page_size_bytes: 100000,
             hedging: false, near_cache: lru}
)");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listen, "127.0.0.1:9000");
  EXPECT_EQ(config->max_clock_skew, absl::Seconds(30));
  EXPECT_EQ(config->worker_threads, 4);
  ASSERT_EQ(config->namespaces.size(), 1u);
  const NamespaceConfig& ns = config->namespaces[0];
  EXPECT_EQ(ns.durability, Durability::kAsync);
  EXPECT_EQ(ns.point_read.target, absl::Milliseconds(2));
  EXPECT_EQ(ns.write.max, absl::Milliseconds(30));
  EXPECT_EQ(ns.limits.max_items_per_call, 10);
  EXPECT_EQ(ns.client.chunk_bytes, 65536);
  EXPECT_FALSE(ns.client.hedging);
  EXPECT_EQ(ns.client.near_cache, "lru");
}

TEST(ConfigTest, ExampleConfigInTheRepositoryIsValid) {
  std::ifstream in(std::string(STATEGATE_SOURCE_DIR) + "/config/stategate.example.yaml");
  ASSERT_TRUE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  auto config = ParseConfig(text.str());
  EXPECT_TRUE(config.ok()) << config.status();
}

TEST(ConfigTest, ParsesAdmission) {
  auto config = ParseConfig(R"(
namespaces:
  - name: a
    admission: {limiter: vegas, initial_limit: 10, max_limit: 100, max_queue: 7,
                max_queue_wait: 20ms, retry_pushback: 250ms, default_priority: sheddable}
)");
  ASSERT_TRUE(config.ok()) << config.status();
  const AdmissionConfig& admission = config->namespaces[0].admission;
  EXPECT_EQ(admission.limiter, "vegas");
  EXPECT_EQ(admission.initial_limit, 10);
  EXPECT_EQ(admission.max_limit, 100);
  EXPECT_EQ(admission.max_queue, 7);
  EXPECT_EQ(admission.max_queue_wait, absl::Milliseconds(20));
  EXPECT_EQ(admission.retry_pushback, absl::Milliseconds(250));
  EXPECT_EQ(admission.default_priority, Priority::kSheddable);
}

TEST(ConfigTest, ParsesFaultsPerNamespace) {
  auto config = ParseConfig(R"(
namespaces:
  - name: plain
  - name: flaky
    faults:
      latency: {delay: 50ms, share: 0.1, applies_to: reads}
      error: {rate: 0.05, code: resource_exhausted, applies_to: writes, pushback: 250ms}
  - name: declared_empty
    faults: {}
)");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->faults.size(), 2u);
  EXPECT_FALSE(config->faults.contains("plain"));
  const FaultSpec& spec = config->faults.at("flaky");
  EXPECT_EQ(spec.latency.delay, absl::Milliseconds(50));
  EXPECT_EQ(spec.latency.share, 0.1);
  EXPECT_EQ(spec.latency.applies_to, AppliesTo::kReads);
  EXPECT_EQ(spec.error.rate, 0.05);
  EXPECT_EQ(spec.error.code, absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(spec.error.applies_to, AppliesTo::kWrites);
  EXPECT_EQ(spec.error.pushback, absl::Milliseconds(250));
  // Declared, even if it injects nothing: a server without --fault-injection refuses it.
  EXPECT_EQ(config->faults.at("declared_empty"), FaultSpec());
}

TEST(ConfigTest, ExampleFaultsDocumentEveryFieldAndParse) {
  // The example config documents faults in comments (it must start without the flag);
  // uncommented, the block parses.
  std::ifstream in(std::string(STATEGATE_SOURCE_DIR) + "/config/stategate.example.yaml");
  std::string yaml, line;
  while (std::getline(in, line)) {
    const size_t at = line.find("# faults:");
    if (at != std::string::npos || (!yaml.empty() && line.find("    #   ") == 0)) {
      if (at != std::string::npos) {
        line = "    faults:";
      } else {
        line = "    " + line.substr(6);
      }
    }
    yaml += line + "\n";
  }
  auto config = ParseConfig(yaml);
  ASSERT_TRUE(config.ok()) << config.status() << "\n" << yaml;
  EXPECT_EQ(config->faults.size(), 1u);
}

TEST(ConfigTest, ParsesRedisClusterMemcachedAndCache) {
  auto config = ParseConfig(R"(
redis_cluster: {seeds: [127.0.0.1:7000, 127.0.0.1:7001], replicas_ack_timeout: 2s, retry_window: 3s}
memcached: {address: 127.0.0.1:11211, op_timeout: 20ms}
namespaces:
  - name: users
    storage: {engine: redis-cluster, replicas_ack: 2, replica_shortfall: degrade}
    cache: {engine: memcached, ttl: 5m}
  - name: local
)");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->redis_cluster.seeds,
              ::testing::ElementsAre("127.0.0.1:7000", "127.0.0.1:7001"));
  EXPECT_EQ(config->redis_cluster.replicas_ack_timeout, absl::Seconds(2));
  EXPECT_EQ(config->redis_cluster.retry_window, absl::Seconds(3));
  EXPECT_EQ(config->memcached.address, "127.0.0.1:11211");
  EXPECT_EQ(config->memcached.op_timeout, absl::Milliseconds(20));
  const NamespaceConfig& users = config->namespaces[0];
  EXPECT_EQ(users.engine, "redis-cluster");
  EXPECT_EQ(users.replicas_ack, 2);
  EXPECT_EQ(users.replica_shortfall, ReplicaShortfall::kDegrade);
  EXPECT_EQ(users.cache.engine, "memcached");
  EXPECT_EQ(users.cache.ttl, absl::Minutes(5));
  const NamespaceConfig& local = config->namespaces[1];
  EXPECT_EQ(local.engine, "rocksdb");
  EXPECT_EQ(local.replicas_ack, 0);
  EXPECT_EQ(local.replica_shortfall, ReplicaShortfall::kRefuse);
  EXPECT_EQ(local.cache.engine, "none");
}

TEST(ConfigTest, RejectsWhatItDoesNotUnderstand) {
  struct Case {
    const char* yaml;
    const char* message;
  };
  const Case cases[] = {
      {"listn: x", "config.listn is not a known field"},
      {"namespaces: [{name: a, limits: {max_keys: 3}}]", "limits.max_keys is not a known field"},
      {"namespaces: [{name: 'a b'}]", "namespace name 'a b'"},
      {"namespaces: [{name: a}, {name: a}]", "declared twice"},
      {"namespaces: [{name: a, storage: {durability: maybe}}]", "not sync or async"},
      {"namespaces: [{name: a, storage: {engine: cassandra}}]", "storage.engine 'cassandra'"},
      {"namespaces: [{name: a, slo: {write: {target: fast}}}]", "not a duration"},
      {"namespaces: [{name: a, slo: {write: {target: 10ms, max: 1ms}}}]", "max >= target"},
      {"namespaces: [{name: a, limits: {max_key_bytes: 0}}]", "max_key_bytes must be > 0"},
      {"namespaces: [{name: a, client: {chunk_bytes: 8388608}}]",
       "must fit in limits.max_request_bytes"},
      {"max_clock_skew: 2h", "tombstone_grace must be >= max_clock_skew"},
      {"drain_notice: 2m", "drain_notice must be in [0s, 1m], got 2m"},
      {"namespaces: {name: a}", "must be a list"},
      {"namespaces: [{name: a, admission: {default_priority: urgent}}]",
       "admission.default_priority must be critical, normal or sheddable"},
      {"namespaces: [{name: a, admission: {max_queue: -1}}]", "admission.max_queue must be >= 0"},
      {"namespaces: [{name: a, admission: {limiter: fifo}}]", "admission (limiter"},
      {"namespaces: [{name: a, admission: {queue: 3}}]", "admission.queue is not a known field"},
      {"redis_cluster: {max_calls_per_shard: 99}", "max_calls_per_shard must be in [0"},
      {"[unclosed", "not valid YAML"},
      {"namespaces: [{name: a, faults: {latency: {delay: 1s, jitter: 2}}}]",
       "config.namespaces[0].faults.latency.jitter is not a known field"},
      {"namespaces: [{name: a, faults: {slow: {}}}]", "faults.slow is not a known field"},
      {"namespaces: [{name: a, faults: {latency: {share: 1.5}}}]",
       "namespace a: faults.latency.share is 1.5; must be in [0, 1]"},
      {"namespaces: [{name: a, faults: {latency: {delay: 2m}}}]",
       "namespace a: faults.latency.delay is 2m; must be in [0, 1m]"},
      {"namespaces: [{name: a, faults: {error: {rate: 3}}}]", "faults.error.rate is 3"},
      {"namespaces: [{name: a, faults: {error: {code: SLOW}}}]",
       "faults.error.code: 'SLOW' is not a gRPC status code other than OK"},
      {"namespaces: [{name: a, faults: {error: {applies_to: scans}}}]",
       "faults.error.applies_to: 'scans' is not all, reads or writes"},
      {"namespaces: [{name: a, faults: {error: {pushback: soon}}}]", "not a duration"},
      {"namespaces: [{name: a, faults: [1]}]", "faults must be a map"},
      {"namespaces: [{name: a, storage: {engine: redis-cluster}}]",
       "namespace a: storage.engine redis-cluster needs redis_cluster.seeds"},
      {"namespaces: [{name: a, cache: {engine: memcached}}]",
       "namespace a: cache.engine memcached needs memcached.address"},
      {"namespaces: [{name: a, storage: {replicas_ack: 1}}]",
       "storage.replicas_ack applies to engine redis-cluster only"},
      {"redis_cluster: {seeds: [h:1]}\n"
       "namespaces: [{name: a, storage: {engine: redis-cluster, replicas_ack: 9}}]",
       "namespace a: storage.replicas_ack must be in [0, 5]"},
      {"redis_cluster: {seeds: [h:1]}\n"
       "namespaces: [{name: a, storage: {engine: redis-cluster, replica_shortfall: wait}}]",
       "config.namespaces[0].storage.replica_shortfall: 'wait' is not refuse or degrade"},
      {"namespaces: [{name: a, storage: {replica_shortfall: degrade}}]",
       "namespace a: storage.replica_shortfall applies to engine redis-cluster only"},
      {"namespaces: [{name: a, cache: {engine: redis}}]",
       "cache.engine 'redis' must be none or memcached"},
      {"namespaces: [{name: a, cache: {ttl: 0s}}]", "namespace a: cache.ttl must be in [1s, 720h]"},
      {"memcached: {address: h:1, op_timeout: 5s}", "memcached.op_timeout must be in (0, 1s]"},
      {"redis_cluster: {seeds: h:1}", "config.redis_cluster.seeds"},
      {"redis_cluster: {hosts: [h:1]}", "config.redis_cluster.hosts is not a known field"},
  };
  for (const Case& c : cases) {
    auto config = ParseConfig(c.yaml);
    ASSERT_FALSE(config.ok()) << c.yaml;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << c.yaml;
    EXPECT_THAT(config.status().message(), HasSubstr(c.message)) << c.yaml;
  }
}

}  // namespace
}  // namespace stategate::server
