// Parsing redis-benchmark's CSV and the command line it is run with.
#include "src/bench/redis_benchmark.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stategate::bench {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// What `redis-benchmark --cluster ... --csv` (7.0.15) printed here: the masters it found
// first, then the CSV.
constexpr char kClusterCsv[] =
    "Cluster has 3 master nodes:\n"
    "\n"
    "Master 0: 215c151dbfc6db2079d3bbcad16c6127012ad3c3 127.0.0.1:49181\n"
    "Master 1: b35add5985f0948ff99cafe59f397f0e7995ae16 127.0.0.1:38771\n"
    "Master 2: a2d38ef1aa8b97b5d91b35a53a3c7064efe7855a 127.0.0.1:52817\n"
    "\n"
    "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\","
    "\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n"
    "\"SET\",\"18516.80\",\"0.777\",\"0.032\",\"0.543\",\"1.967\",\"4.415\",\"45.023\"\n"
    "\"GET\",\"39888.31\",\"0.289\",\"0.032\",\"0.215\",\"0.639\",\"1.535\",\"22.591\"\n";

TEST(RedisBenchmarkTest, ParsesClusterModeCsv) {
  absl::StatusOr<std::vector<RedisBenchmarkResult>> rows = ParseRedisBenchmarkCsv(kClusterCsv);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  const RedisBenchmarkResult& set = (*rows)[0];
  EXPECT_EQ(set.test, "SET");
  EXPECT_DOUBLE_EQ(set.rps, 18516.80);
  EXPECT_DOUBLE_EQ(set.avg_ms, 0.777);
  EXPECT_DOUBLE_EQ(set.min_ms, 0.032);
  EXPECT_DOUBLE_EQ(set.p50_ms, 0.543);
  EXPECT_DOUBLE_EQ(set.p95_ms, 1.967);
  EXPECT_DOUBLE_EQ(set.p99_ms, 4.415);
  EXPECT_DOUBLE_EQ(set.max_ms, 45.023);
  EXPECT_EQ((*rows)[1].test, "GET");
  EXPECT_DOUBLE_EQ((*rows)[1].p99_ms, 1.535);
}

TEST(RedisBenchmarkTest, FindsColumnsByName) {
  absl::StatusOr<std::vector<RedisBenchmarkResult>> rows =
      ParseRedisBenchmarkCsv("\"test\",\"p99_latency_ms\",\"rps\"\r\n\"GET\",\"2.5\",\"100\"\r\n");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_DOUBLE_EQ((*rows)[0].rps, 100);
  EXPECT_DOUBLE_EQ((*rows)[0].p99_ms, 2.5);
}

TEST(RedisBenchmarkTest, RejectsOutputWithoutCsv) {
  EXPECT_EQ(ParseRedisBenchmarkCsv("Could not connect to Redis at 127.0.0.1:1\n").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRedisBenchmarkCsv("\"test\",\"rps\",\"p99_latency_ms\"\n").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRedisBenchmarkCsv("\"test\",\"rps\"\n\"GET\",\"1\"\n").status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status bad =
      ParseRedisBenchmarkCsv("\"test\",\"rps\",\"p99_latency_ms\"\n\"GET\",\"fast\",\"1\"\n")
          .status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.message()), HasSubstr("rps"));
}

TEST(RedisBenchmarkTest, ArgumentsNameEverySetting) {
  RedisBenchmarkOptions options;
  options.port = 7000;
  options.clients = 16;
  options.requests = 5000;
  options.value_bytes = 1024;
  options.keyspace = 10000;
  EXPECT_THAT(RedisBenchmarkArgs(options),
              ElementsAre("--cluster", "-h", "127.0.0.1", "-p", "7000", "-c", "16", "-n", "5000",
                          "-d", "1024", "-r", "10000", "-P", "1", "-t", "set,get", "--csv"));
}

TEST(RedisBenchmarkTest, MissingBinaryIsNotFound) {
  RedisBenchmarkOptions options;
  options.binary = "/nonexistent/redis-benchmark";
  EXPECT_EQ(RunRedisBenchmark(options).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(RedisBenchmarkVersion(options.binary).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace stategate::bench
