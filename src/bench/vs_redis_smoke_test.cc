// stategate-bench --vs-redis end to end, kept short: a real local Redis Cluster, a real
// `stategate` over it and real redis-benchmark runs; then every row of the table is there
// with positive numbers and every server is gone.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "src/bench/bench_cli.h"
#include "src/testbed/child_process.h"
#include "test/lib/temp_dir.h"

namespace stategate::bench {
namespace {

using ::testing::HasSubstr;

using ::stategate::testbed::Listening;

int RunCli(const std::vector<std::string>& args, std::ostringstream& out, std::ostringstream& err) {
  std::vector<const char*> argv;
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  return RunBenchCli(static_cast<int>(argv.size()), argv.data(), out, err);
}

TEST(VsRedisSmokeTest, PrintsEveryRowWithPositiveNumbersAndStopsEverything) {
  testing::TempDir dir;
  const std::string json_path = dir.path() + "/vs-redis.json";
  std::ostringstream out, err;
  ASSERT_EQ(RunCli({"stategate-bench", "--vs-redis", "--concurrency", "4", "--duration", "0.5",
                    "--warmup", "0.1", "--records", "2000", "--server-binary", STATEGATE_BINARY,
                    "--json", json_path},
                   out, err),
            0)
      << err.str();
  const std::string table = out.str();
  for (const char* expected : {"put (replicas_ack 0)", "put (replicas_ack 1)", "get ", "SET", "GET",
                               "qps_ratio", "p99_ratio", "-P 1", "not per node", "no WAIT"}) {
    EXPECT_THAT(table, HasSubstr(expected));
  }

  std::ifstream file(json_path);
  const nlohmann::json json = nlohmann::json::parse(file);
  ASSERT_EQ(json["rows"].size(), 3u) << json.dump(2);
  const std::tuple<const char*, int, const char*> expected[] = {
      {"put", 0, "SET"}, {"put", 1, "SET"}, {"get", 0, "GET"}};
  for (size_t i = 0; i < 3; ++i) {
    const nlohmann::json& row = json["rows"][i];
    SCOPED_TRACE(row.dump());
    EXPECT_EQ(row["op"], std::get<0>(expected[i]));
    EXPECT_EQ(row["replicas_ack"], std::get<1>(expected[i]));
    EXPECT_EQ(row["redis_test"], std::get<2>(expected[i]));
    EXPECT_EQ(row["concurrency"], 4);
    EXPECT_EQ(row["stategate_errors"], 0);
    for (const char* field : {"stategate_qps", "stategate_p99_us", "redis_qps", "redis_p99_ms",
                              "redis_requests", "qps_ratio", "p99_ratio"}) {
      EXPECT_GT(row[field].get<double>(), 0) << field;
    }
  }

  // The gateway and every node of the cluster were stopped.
  EXPECT_FALSE(Listening(json["gateway"].get<std::string>()));
  ASSERT_EQ(json["seeds"].size(), 6u);
  for (const auto& seed : json["seeds"]) EXPECT_FALSE(Listening(seed.get<std::string>())) << seed;
}

TEST(VsRedisSmokeTest, MissingRedisBenchmarkExitsTwoBeforeStartingAnything) {
  std::ostringstream out, err;
  EXPECT_EQ(RunCli({"stategate-bench", "--vs-redis", "--redis-benchmark", "/nonexistent/rb",
                    "--server-binary", STATEGATE_BINARY},
                   out, err),
            2);
  EXPECT_THAT(err.str(), HasSubstr("NOT_FOUND"));
  EXPECT_THAT(err.str(), ::testing::Not(HasSubstr("Redis Cluster up")));
}

}  // namespace
}  // namespace stategate::bench
