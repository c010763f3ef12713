// KvClient::Connect without a server: option checks, and how an unreachable address shows.
// The client against a real gateway is tested in test/integration/kv_client_test.cc.
#include "stategate/kv_client.h"
#include "gtest/gtest.h"

namespace stategate {
namespace {

TEST(KvClientConnectTest, RejectsBadOptionsAndFailsFastWhenUnreachable) {
  EXPECT_EQ(KvClient::Connect(KvClientOptions{.address = ""}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(KvClient::Connect(KvClientOptions{.timeout = absl::ZeroDuration()}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(KvClient::Connect(KvClientOptions{.page_size_bytes = -1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Port 1 on loopback: nothing listens there.
  auto client =
      KvClient::Connect(KvClientOptions{.address = "127.0.0.1:1", .timeout = absl::Seconds(2)});
  ASSERT_TRUE(client.ok());
  EXPECT_EQ((*client)->Handshake().status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace stategate
