// The fault benchmark end to end: stategate-bench's fault mode starting three real
// `stategate --fault-injection` processes (and two over a local Redis Cluster), and the order in
// which a run sets and clears faults, against an in-process gateway with a recording fleet.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "src/bench/bench_cli.h"
#include "src/bench/fault_bench.h"
#include "src/bench/fleet.h"
#include "src/testbed/child_process.h"
#include "test/lib/local_gateway.h"
#include "test/lib/temp_dir.h"

namespace stategate::bench {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

using ::stategate::testbed::Listening;

TEST(FaultBenchSmokeTest, ThreeLocalGatewaysTwoScenariosTwoModes) {
  testing::TempDir dir;
  const std::string out_path = dir.path() + "/bench.json";
  const std::vector<std::string> args = {"stategate-bench",
                                         "--replicas",
                                         "3",
                                         "--scenario",
                                         "none,slow-replica",
                                         "--mode",
                                         "naive,full",
                                         "--rate",
                                         "200",
                                         "--duration",
                                         "1",
                                         "--server-binary",
                                         STATEGATE_BINARY,
                                         "--out",
                                         out_path};
  std::vector<const char*> argv;
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  std::ostringstream out, err;
  ASSERT_EQ(RunBenchCli(static_cast<int>(argv.size()), argv.data(), out, err), 0) << err.str();
  EXPECT_THAT(out.str(), HasSubstr("slo_att"));
  EXPECT_THAT(out.str(), HasSubstr("slow-replica"));

  std::ifstream file(out_path);
  const nlohmann::json json = nlohmann::json::parse(file);
  ASSERT_TRUE(json["runs"].is_array());
  ASSERT_EQ(json["runs"].size(), 4u);
  const std::pair<const char*, const char*> expected[] = {
      {"none", "naive"}, {"none", "full"}, {"slow-replica", "naive"}, {"slow-replica", "full"}};
  for (size_t i = 0; i < 4; ++i) {
    const nlohmann::json& run = json["runs"][i];
    SCOPED_TRACE(run.dump());
    for (const char* field : {"mode", "scenario", "ops", "ok", "errors", "p50_us", "p99_us",
                              "p999_us", "max_us", "slo_target_us", "slo_attainment",
                              "attempts_per_op", "hedges", "retries", "rate", "duration_s"}) {
      EXPECT_TRUE(run.contains(field)) << field;
    }
    EXPECT_EQ(run["scenario"], expected[i].first);
    EXPECT_EQ(run["mode"], expected[i].second);
    EXPECT_EQ(run["ops"], 200);
    EXPECT_GT(run["ok"].get<int64_t>(), 0);
    EXPECT_GT(run["slo_target_us"].get<int64_t>(), 0);
    EXPECT_GE(run["attempts_per_op"].get<double>(), 1.0);
    EXPECT_DOUBLE_EQ(run["rate"].get<double>(), 200);
    EXPECT_DOUBLE_EQ(run["duration_s"].get<double>(), 1);
  }
  // The naive client sends a third of its calls to the slow replica: the fault was in force.
  EXPECT_GE(json["runs"][2]["p99_us"].get<int64_t>(), 200'000);

  // The gateways were stopped.
  ASSERT_EQ(json["addresses"].size(), 3u);
  for (const auto& address : json["addresses"]) {
    EXPECT_FALSE(Listening(address.get<std::string>())) << address;
  }
}

// --engine redis-cluster: a local Redis Cluster, two gateways over it, records preloaded
// through one and read through both; the cluster and the gateways stopped at the end.
TEST(FaultBenchSmokeTest, TwoLocalGatewaysOverOneRedisCluster) {
  testing::TempDir dir;
  const std::string out_path = dir.path() + "/bench.json";
  const std::vector<std::string> args = {"stategate-bench",
                                         "--engine",
                                         "redis-cluster",
                                         "--replicas",
                                         "2",
                                         "--scenario",
                                         "none",
                                         "--mode",
                                         "full",
                                         "--rate",
                                         "50",
                                         "--duration",
                                         "1",
                                         "--records",
                                         "200",
                                         "--server-binary",
                                         STATEGATE_BINARY,
                                         "--out",
                                         out_path};
  std::vector<const char*> argv;
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  std::ostringstream out, err;
  ASSERT_EQ(RunBenchCli(static_cast<int>(argv.size()), argv.data(), out, err), 0) << err.str();
  EXPECT_THAT(err.str(), HasSubstr("Redis Cluster up: "));
  EXPECT_THAT(err.str(), HasSubstr("through 1 of 2 gateways sharing one store"));

  std::ifstream file(out_path);
  const nlohmann::json json = nlohmann::json::parse(file);
  ASSERT_EQ(json["runs"].size(), 1u);
  const nlohmann::json& run = json["runs"][0];
  EXPECT_EQ(run["ops"], 50) << run.dump();
  EXPECT_EQ(run["ok"], 50) << run.dump();  // Gets through either gateway found the records
  EXPECT_TRUE(json["options"]["shared_storage"].get<bool>());
  ASSERT_EQ(json["addresses"].size(), 2u);
  for (const auto& address : json["addresses"]) {
    EXPECT_FALSE(Listening(address.get<std::string>())) << address;
  }
  // The cluster's nodes are gone too.
  const std::string log = err.str();
  const size_t at = log.find("Redis Cluster up: ");
  ASSERT_NE(at, std::string::npos);
  const size_t begin = at + std::string("Redis Cluster up: ").size();
  const std::string seeds = log.substr(begin, log.find('\n', begin) - begin);
  const std::vector<std::string> nodes = absl::StrSplit(seeds, ',');
  ASSERT_EQ(nodes.size(), 6u) << seeds;
  for (const std::string& node : nodes) EXPECT_FALSE(Listening(node)) << node;
}

TEST(FaultBenchSmokeTest, MemcachedNeedsRedisCluster) {
  const std::vector<std::string> args = {"stategate-bench", "--scenario", "none", "--memcached"};
  std::vector<const char*> argv;
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  std::ostringstream out, err;
  EXPECT_EQ(RunBenchCli(static_cast<int>(argv.size()), argv.data(), out, err), 2);
  EXPECT_THAT(err.str(), HasSubstr("--memcached needs --engine redis-cluster"));
}

// Every gateway address is one in-process gateway; faults are only recorded.
class RecordingFleet final : public Fleet {
 public:
  RecordingFleet(std::vector<std::string> addresses, std::vector<std::string>* events)
      : addresses_(std::move(addresses)), events_(events) {}
  const std::vector<std::string>& addresses() const override { return addresses_; }
  absl::Status SetFaults(size_t replica, std::string_view ns,
                         const InjectedFaults& faults) override {
    events_->push_back(absl::StrCat("set ", replica, " ", std::string(ns), " ",
                                    absl::FormatDuration(faults.delay), " ", faults.error_rate));
    return fail_set_ ? absl::FailedPreconditionError("no --fault-injection") : absl::OkStatus();
  }
  absl::Status Pause(size_t replica, absl::Duration) override {
    events_->push_back(absl::StrCat("pause ", replica));
    return absl::OkStatus();
  }
  absl::Status Resume(size_t replica) override {
    events_->push_back(absl::StrCat("resume ", replica));
    return absl::OkStatus();
  }
  absl::Status Stop() override { return absl::OkStatus(); }

  bool fail_set_ = false;

 private:
  std::vector<std::string> addresses_;
  std::vector<std::string>* events_;
};

TEST(FaultBenchTest, SetsEachScenariosFaultAfterConnectingAndClearsItAfterTheRun) {
  std::unique_ptr<testing::LocalGateway> gateway = testing::LocalGateway::Start();
  ASSERT_NE(gateway, nullptr);
  std::vector<std::string> events;
  RecordingFleet fleet({gateway->address(), gateway->address()}, &events);
  const FaultClientFactory connect = [&](const KvClientOptions& options) {
    events.push_back(absl::StrCat("connect ", 1 + options.more_addresses.size()));
    return KvClient::Connect(options);
  };
  FaultBenchOptions options;
  options.scenarios = {"none", "slow-replica", "paused-replica", "error-replica"};
  options.modes = {"naive"};
  options.rate = 100;
  options.duration = absl::Milliseconds(100);
  options.records = 20;
  options.slow_delay = absl::Milliseconds(50);
  absl::StatusOr<FaultBenchReport> report = RunFaultBench(options, fleet, nullptr, connect);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_THAT(events, ElementsAre("connect 1", "connect 1",  // preloading each gateway
                                  "connect 2",               // none
                                  "connect 2", "set 0 default 50ms 0", "set 0 default 0 0",
                                  "connect 2", "pause 0", "resume 0",  //
                                  "connect 2", "set 0 default 0 1", "set 0 default 0 0"));
  ASSERT_EQ(report->runs.size(), 4u);
  for (const FaultRun& run : report->runs) {
    EXPECT_EQ(run.ops, 10) << run.scenario;
    EXPECT_EQ(run.ok, 10) << run.scenario;  // the faults were not really injected
    EXPECT_DOUBLE_EQ(run.attempts_per_op, 1.0);
  }

  // A fleet that cannot take faults stops the benchmark with its error, after clearing.
  events.clear();
  fleet.fail_set_ = true;
  options.scenarios = {"slow-replica"};
  report = RunFaultBench(options, fleet, nullptr, connect);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(report.status().message()), HasSubstr("slow-replica / naive"));
  EXPECT_THAT(events, ElementsAre("connect 1", "connect 1", "connect 2", "set 0 default 50ms 0",
                                  "set 0 default 0 0"));
}

}  // namespace
}  // namespace stategate::bench
