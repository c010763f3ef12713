// The QPS benchmark and stategate-bench's command line against a real gateway: an
// in-process Gateway on RocksDB, reached over gRPC on 127.0.0.1.
#include "src/bench/qps_bench.h"

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "src/bench/bench_cli.h"
#include "test/lib/local_gateway.h"
#include "test/lib/temp_dir.h"

namespace stategate::bench {
namespace {

using ::testing::HasSubstr;

class QpsBenchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server::ServerConfig config = server::DefaultConfig();
    config.namespaces[0].client.chunk_bytes = 16;  // so that 25-byte values are chunked
    gateway_ = testing::LocalGateway::Start(config);
    ASSERT_NE(gateway_, nullptr);
    absl::StatusOr<std::unique_ptr<KvClient>> client =
        KvClient::Connect(KvClientOptions{.address = gateway_->address()});
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  std::unique_ptr<testing::LocalGateway> gateway_;
  std::unique_ptr<KvClient> client_;
};

TEST_F(QpsBenchTest, RunsEveryOpAtEveryConcurrency) {
  QpsBenchOptions options;
  options.address = gateway_->address();
  options.concurrency = {1, 3};
  // Only calls that complete inside the window count: it must hold several even when one
  // chunked put (three RPCs, each an fsync) is slow, on a loaded machine or under ASan.
  options.duration = absl::Milliseconds(500);
  options.warmup = absl::Milliseconds(100);
  options.value_bytes = 25;
  options.records = 50;
  absl::StatusOr<QpsReport> report = RunQpsBenchmark(options, *client_);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->results.size(), 6u);
  const char* ops[] = {"put", "get", "handshake"};
  for (size_t i = 0; i < 6; ++i) {
    const OpResult& r = report->results[i];
    EXPECT_EQ(r.op, ops[i % 3]);
    EXPECT_EQ(r.concurrency, i < 3 ? 1 : 3);
    EXPECT_GT(r.ok, 0) << r.op;
    EXPECT_EQ(r.errors, 0) << r.op << ": " << r.first_error;
    EXPECT_GT(r.qps, 0);
    EXPECT_LE(r.p50_us, r.p99_us);
    EXPECT_GT(r.vs_handshake, 0);
  }
  EXPECT_DOUBLE_EQ(report->results[2].vs_handshake, 1.0);

  // What the run wrote is there to read.
  absl::StatusOr<std::string> value = client_->Get("default", "bench-00000000", "v");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(value->size(), 25u);

  const std::string table = FormatTable(*report);
  EXPECT_THAT(table, HasSubstr("vs_handshake"));
  EXPECT_THAT(table, HasSubstr("handshake"));
  const nlohmann::json json = nlohmann::json::parse(ToJson(*report));
  EXPECT_EQ(json["address"], gateway_->address());
  ASSERT_EQ(json["results"].size(), report->results.size());
  EXPECT_EQ(json["results"][4]["op"], "get");
  EXPECT_EQ(json["results"][4]["concurrency"], 3);
  EXPECT_EQ(json["results"][4]["p99_us"], report->results[4].p99_us);
}

TEST_F(QpsBenchTest, RejectsBadOptionsAndUnknownNamespace) {
  QpsBenchOptions options;
  options.concurrency = {};
  EXPECT_EQ(RunQpsBenchmark(options, *client_).status().code(), absl::StatusCode::kInvalidArgument);
  options = QpsBenchOptions{};
  options.ops = {"frob"};
  EXPECT_EQ(RunQpsBenchmark(options, *client_).status().code(), absl::StatusCode::kInvalidArgument);
  options = QpsBenchOptions{};
  options.ops = {"get"};
  options.duration = absl::Milliseconds(10);
  EXPECT_EQ(RunQpsBenchmark(options, *client_).status().code(),
            absl::StatusCode::kFailedPrecondition);
  options = QpsBenchOptions{};
  options.ns = "nope";
  EXPECT_EQ(RunQpsBenchmark(options, *client_).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(QpsBenchTest, CommandLineRunsAndWritesJson) {
  testing::TempDir dir;
  const std::string json_path = dir.path() + "/report.json";
  const std::string addr = gateway_->address();
  const char* argv[] = {"stategate-bench",
                        "--addr",
                        addr.c_str(),
                        "--concurrency",
                        "1,2",
                        "--duration",
                        "0.05",
                        "--warmup",
                        "0",
                        "--records",
                        "5",
                        "--json",
                        json_path.c_str()};
  std::ostringstream out, err;
  ASSERT_EQ(RunBenchCli(static_cast<int>(std::size(argv)), argv, out, err), 0) << err.str();
  EXPECT_THAT(out.str(), HasSubstr("vs_handshake"));
  const nlohmann::json json = nlohmann::json::parse(std::ifstream(json_path));
  EXPECT_EQ(json["address"], addr);
  ASSERT_EQ(json["results"].size(), 6u);  // put, get, handshake at concurrency 1 and 2
  EXPECT_EQ(json["results"][5]["concurrency"], 2);

  const char* unknown[] = {"stategate-bench", "--addr", addr.c_str(), "--namespace", "nope"};
  std::ostringstream out2, err2;
  EXPECT_EQ(RunBenchCli(static_cast<int>(std::size(unknown)), unknown, out2, err2), 2);
  EXPECT_THAT(err2.str(), HasSubstr("NOT_FOUND"));
}

TEST(JsonLikeDocumentTest, HasTheSizeAndVariesWithTheSeed) {
  EXPECT_EQ(JsonLikeDocument(4096, 1).size(), 4096u);
  EXPECT_NE(JsonLikeDocument(4096, 1), JsonLikeDocument(4096, 2));
  EXPECT_EQ(JsonLikeDocument(4096, 3), JsonLikeDocument(4096, 3));
}

TEST_F(QpsBenchTest, JsonPayloadReportsWhatCompressionSaved) {
  QpsBenchOptions options;
  options.concurrency = {2};
  options.duration = absl::Milliseconds(100);
  options.warmup = absl::ZeroDuration();
  options.value_bytes = 4096;
  options.ops = {"put"};
  options.payload = "json";
  absl::StatusOr<QpsReport> report = RunQpsBenchmark(options, *client_);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_GT(report->bytes_before_compression, 0);
  EXPECT_LT(report->bytes_after_compression * 2, report->bytes_before_compression);
  EXPECT_THAT(FormatTable(*report), HasSubstr("after LZ4"));

  options.payload = "random";
  report = RunQpsBenchmark(options, *client_);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->bytes_after_compression, report->bytes_before_compression);
}

}  // namespace
}  // namespace stategate::bench
