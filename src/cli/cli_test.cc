// stategate-cli's logic (RunCli) against a real gateway: an in-process Gateway on RocksDB,
// reached over gRPC on 127.0.0.1 through the client the CLI makes itself.
#include "src/cli/cli.h"

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/lib/local_gateway.h"
#include "test/lib/server_process.h"

namespace stategate::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Values above this travel in chunks, so that short test values exercise chunking.
constexpr int64_t kChunkBytes = 16;

struct Result {
  int code;
  std::string out;
  std::string err;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server::ServerConfig config = server::DefaultConfig();
    config.namespaces[0].client.chunk_bytes = kChunkBytes;
    gateway_ = testing::LocalGateway::Start(config);
    ASSERT_NE(gateway_, nullptr);
  }

  // Runs `stategate-cli --addr <gateway> args...` with the CLI's own KvClient::Connect.
  Result Run(std::vector<std::string> args, const std::string& stdin_bytes = "") {
    return RunAt(gateway_->address(), std::move(args), stdin_bytes);
  }
  Result RunAt(const std::string& addr, std::vector<std::string> args,
               const std::string& stdin_bytes = "") {
    args.insert(args.begin(), {"stategate-cli", "--addr", addr});
    std::vector<const char*> argv;
    for (const std::string& a : args) argv.push_back(a.c_str());
    std::istringstream in(stdin_bytes);
    std::ostringstream out, err;
    const int code = RunCli(static_cast<int>(argv.size()), argv.data(), in, out, err,
                            [this](const KvClientOptions& options) {
                              last_options_ = options;
                              return KvClient::Connect(options);
                            });
    return {code, out.str(), err.str()};
  }

  std::unique_ptr<testing::LocalGateway> gateway_;
  KvClientOptions last_options_;
};

TEST_F(CliTest, PutThenGetIsBinarySafe) {
  std::string value("a\0b\xff\n", 5);
  value += std::string(40, 'z');  // three chunks
  Result put = Run({"put", "id1", "k"}, value);
  ASSERT_EQ(put.code, 0) << put.err;
  Result get = Run({"get", "id1", "k"});
  ASSERT_EQ(get.code, 0) << get.err;
  EXPECT_EQ(get.out, value);
}

TEST_F(CliTest, GetRecordListsItems) {
  ASSERT_EQ(Run({"put", "r", "a"}, "123").code, 0);
  ASSERT_EQ(Run({"put", "r", "b\x01"}, "").code, 0);
  Result list = Run({"get", "r"});
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_EQ(list.out, "a\t3\nb\\x01\t0\n");
}

TEST_F(CliTest, MissingIsNotFoundExitOne) {
  Result get = Run({"get", "nope", "k"});
  EXPECT_EQ(get.code, kExitNotFound);
  EXPECT_THAT(get.err, StartsWith("NOT_FOUND: "));
  EXPECT_EQ(get.out, "");
  EXPECT_EQ(Run({"get", "nope"}).code, kExitNotFound);
}

TEST_F(CliTest, DeleteItemAndRecord) {
  ASSERT_EQ(Run({"put", "r", "a"}, "1").code, 0);
  ASSERT_EQ(Run({"put", "r", "b"}, "2").code, 0);
  ASSERT_EQ(Run({"delete", "r", "a"}).code, 0);
  EXPECT_EQ(Run({"get", "r", "a"}).code, kExitNotFound);
  EXPECT_EQ(Run({"get", "r", "b"}).out, "2");
  ASSERT_EQ(Run({"delete", "r"}).code, 0);
  EXPECT_EQ(Run({"get", "r", "b"}).code, kExitNotFound);
}

TEST_F(CliTest, ScanPrintsOneLinePerItem) {
  ASSERT_EQ(Run({"put", "r1", "a"}, "1").code, 0);
  ASSERT_EQ(Run({"put", "r2", "b"}, "22").code, 0);
  Result scan = Run({"scan"});
  ASSERT_EQ(scan.code, 0) << scan.err;
  EXPECT_EQ(scan.out, "r1\ta\t1\nr2\tb\t2\n");
}

TEST_F(CliTest, HandshakePrintsSettings) {
  Result hs = Run({"handshake"});
  ASSERT_EQ(hs.code, 0) << hs.err;
  EXPECT_THAT(hs.out, HasSubstr("namespace default (kv)"));
  EXPECT_THAT(hs.out, HasSubstr("chunk_bytes=16"));
}

TEST_F(CliTest, GlobalOptions) {
  Result hs = Run({"--timeout", "0.5", "handshake"});
  ASSERT_EQ(hs.code, 0) << hs.err;
  EXPECT_EQ(last_options_.address, gateway_->address());
  EXPECT_EQ(last_options_.timeout, absl::Milliseconds(500));
  Result other = Run({"--namespace", "other", "get", "id", "k"});
  EXPECT_EQ(other.code, kExitNotFound);
  EXPECT_THAT(other.err, StartsWith("NOT_FOUND: "));
  EXPECT_THAT(other.err, HasSubstr("'other'"));
}

TEST_F(CliTest, SeveralAddressesAreOneFleet) {
  // The first address is down: the reliable client's calls go to the one that answers.
  const std::string dead = "127.0.0.1:" + std::to_string(testing::FreePort());
  Result put = RunAt(dead + "," + gateway_->address(), {"put", "id", "k"}, "fleet value");
  ASSERT_EQ(put.code, 0) << put.err;
  EXPECT_EQ(last_options_.address, dead);
  EXPECT_THAT(last_options_.more_addresses, ::testing::ElementsAre(gateway_->address()));
  Result get = RunAt(dead + "," + gateway_->address(), {"get", "id", "k"});
  ASSERT_EQ(get.code, 0) << get.err;
  EXPECT_EQ(get.out, "fleet value");
}

TEST_F(CliTest, PutWithTtlSetsTheExpiry) {
  const absl::Time before = absl::Now();
  ASSERT_EQ(Run({"put", "r", "k", "--ttl", "3600"}, "v").code, 0);
  const absl::Time after = absl::Now();
  auto client = KvClient::Connect(KvClientOptions{.address = gateway_->address()});
  ASSERT_TRUE(client.ok()) << client.status();
  auto items = (*client)->GetItems("default", "r", Predicate::All());
  ASSERT_TRUE(items.ok()) << items.status();
  ASSERT_EQ(items->size(), 1u);
  EXPECT_GE((*items)[0].expires_at, before + absl::Hours(1) - absl::Milliseconds(1));
  EXPECT_LE((*items)[0].expires_at, after + absl::Hours(1) + absl::Milliseconds(1));
  EXPECT_EQ(Run({"get", "r", "k"}).out, "v");
}

TEST_F(CliTest, BadUsageExitsTwo) {
  EXPECT_EQ(Run({}).code, kExitFailure);
  EXPECT_EQ(Run({"frobnicate"}).code, kExitFailure);
  EXPECT_EQ(Run({"put", "only-id"}).code, kExitFailure);
  EXPECT_EQ(Run({"put", "id", "k", "--ttl", "-1"}).code, kExitFailure);
  EXPECT_EQ(Run({"--help"}).code, kExitOk);
}

TEST(CliConnectTest, UnreachableServerIsUnavailableExitTwo) {
  const char* argv[] = {"stategate-cli", "--addr", "127.0.0.1:1", "handshake"};
  std::istringstream in;
  std::ostringstream out, err;
  EXPECT_EQ(RunCli(4, argv, in, out, err), kExitFailure);
  EXPECT_THAT(err.str(), StartsWith("UNAVAILABLE: "));
}

}  // namespace
}  // namespace stategate::cli
