// The KeyValue and Control services end to end: an in-process Gateway on a real RocksDB in
// a temporary directory, called over real gRPC on 127.0.0.1 with raw stubs, so that every
// malformed request a client library would never send can be sent.
#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "src/server/gateway.h"
#include "stategate/v1/control.grpc.pb.h"
#include "stategate/v1/kv.grpc.pb.h"
#include "test/lib/temp_dir.h"

namespace stategate {
namespace {

using ::testing::HasSubstr;

constexpr char kConfig[] = R"(
data_dir: %DIR%/db
listen: 127.0.0.1:0
namespaces:
  - name: default
  - name: tiny
    limits: {max_key_bytes: 16, max_items_per_call: 4, max_request_bytes: 200000,
             max_page_bytes: 100000}
    client: {chunk_bytes: 65536, page_size_bytes: 1000}
)";

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteConfig(kConfig);
    server::GatewayOptions options;
    options.config_path = config_path();
    options.config = *server::LoadConfigFile(options.config_path);
    auto gateway = server::Gateway::Start(std::move(options));
    ASSERT_TRUE(gateway.ok()) << gateway.status();
    gateway_ = *std::move(gateway);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(gateway_->port()),
                                   grpc::InsecureChannelCredentials());
    kv_ = v1::KeyValue::NewStub(channel_);
    control_ = v1::Control::NewStub(channel_);
  }

  std::string config_path() const { return dir_.path() + "/stategate.yaml"; }

  void WriteConfig(std::string text) {
    text.replace(text.find("%DIR%"), 5, dir_.path());
    std::ofstream(config_path()) << text;
  }

  static v1::IdempotencyToken Token(char fill = 'n', absl::Duration offset = absl::ZeroDuration()) {
    v1::IdempotencyToken token;
    token.set_generation_time_us(absl::ToUnixMicros(absl::Now() + offset));
    token.set_nonce(std::string(16, fill));
    return token;
  }

  grpc::Status Put(const std::string& ns, const std::string& id, const std::string& key,
                   const std::string& value, const v1::IdempotencyToken& token,
                   grpc::ClientContext* ctx = nullptr) {
    grpc::ClientContext local;
    v1::PutItemsRequest request;
    request.set_namespace_(ns);
    request.set_id(id);
    v1::Item* item = request.add_items();
    item->set_key(key);
    item->set_value(value);
    *request.mutable_token() = token;
    v1::PutItemsResponse response;
    return kv_->PutItems(ctx ? ctx : &local, request, &response);
  }

  grpc::Status Get(const std::string& ns, const std::string& id, v1::GetItemsResponse* response) {
    grpc::ClientContext ctx;
    v1::GetItemsRequest request;
    request.set_namespace_(ns);
    request.set_id(id);
    return kv_->GetItems(&ctx, request, response);
  }

  // Calls `method` with raw request bytes, as a client with no schema would; returns the
  // status and the raw response bytes.
  std::pair<grpc::Status, std::string> CallRaw(const std::string& method,
                                               const std::string& request_bytes) {
    grpc::GenericStub generic(channel_);
    grpc::Slice slice(request_bytes);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    grpc::ClientContext ctx;
    std::mutex mu;
    std::condition_variable done_cv;
    bool done = false;
    grpc::Status status;
    generic.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
      std::lock_guard lock(mu);
      status = s;
      done = true;
      done_cv.notify_all();
    });
    std::unique_lock lock(mu);
    done_cv.wait(lock, [&] { return done; });
    std::string bytes;
    std::vector<grpc::Slice> slices;
    if (status.ok() && response.Dump(&slices).ok()) {
      for (auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    return {status, bytes};
  }

  testing::TempDir dir_;
  std::unique_ptr<server::Gateway> gateway_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::KeyValue::Stub> kv_;
  std::unique_ptr<v1::Control::Stub> control_;
};

TEST_F(GatewayTest, HandshakeSignalsSettingsAndEveryResponseCarriesTheVersion) {
  grpc::ClientContext ctx;
  v1::HandshakeResponse handshake;
  ASSERT_TRUE(control_->Handshake(&ctx, v1::HandshakeRequest(), &handshake).ok());
  ASSERT_EQ(handshake.namespaces_size(), 2);
  EXPECT_EQ(handshake.namespaces(1).name(), "tiny");
  EXPECT_EQ(handshake.namespaces(1).client().chunk_bytes(), 65536);
  EXPECT_EQ(handshake.namespaces(0).slos().point_read().target_us(), 10000);
  EXPECT_NE(handshake.config_version(), 0u);

  grpc::ClientContext put_ctx;
  ASSERT_TRUE(Put("default", "r", "k", "v", Token(), &put_ctx).ok());
  auto trailer = put_ctx.GetServerTrailingMetadata().find("stategate-config-version");
  ASSERT_NE(trailer, put_ctx.GetServerTrailingMetadata().end());
  EXPECT_EQ(std::string(trailer->second.data(), trailer->second.size()),
            std::to_string(handshake.config_version()));
}

TEST_F(GatewayTest, ReloadChangesNamespacesAndVersionWithoutRestart) {
  grpc::ClientContext ctx;
  v1::HandshakeResponse before;
  ASSERT_TRUE(control_->Handshake(&ctx, v1::HandshakeRequest(), &before).ok());
  ASSERT_TRUE(Put("default", "r", "k", "kept", Token()).ok());

  WriteConfig(R"(
data_dir: %DIR%/db
listen: 127.0.0.1:0
namespaces:
  - name: default
  - name: added
)");
  ASSERT_TRUE(gateway_->Reload().ok());
  grpc::ClientContext ctx2;
  v1::HandshakeResponse after;
  ASSERT_TRUE(control_->Handshake(&ctx2, v1::HandshakeRequest(), &after).ok());
  EXPECT_NE(after.config_version(), before.config_version());
  EXPECT_TRUE(Put("added", "r", "k", "v", Token()).ok());
  EXPECT_EQ(Put("tiny", "r", "k", "v", Token()).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::GetItemsResponse response;
  ASSERT_TRUE(Get("default", "r", &response).ok());
  ASSERT_EQ(response.items_size(), 1);
  EXPECT_EQ(response.items(0).value(), "kept");

  // A broken config is refused and the current namespaces stay.
  std::ofstream(config_path()) << "namespaces: [{name: 'bad name'}]";
  EXPECT_FALSE(gateway_->Reload().ok());
  EXPECT_TRUE(Put("added", "r", "k2", "v", Token()).ok());
}

TEST_F(GatewayTest, UnknownNamespaceIsNotFound) {
  grpc::Status status = Put("nope", "r", "k", "v", Token());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("'nope'"));
}

TEST_F(GatewayTest, BadInputIsRefusedWithTheFieldAndLimitNamed) {
  v1::IdempotencyToken no_token;
  grpc::Status status = Put("default", "r", "k", "v", no_token);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("token.nonce"));

  status = Put("tiny", "r", std::string(17, 'k'), "v", Token());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("max_key_bytes"));

  // Over the namespace's request limit, under gRPC's own.
  status = Put("tiny", "r", "k", std::string(300000, 'v'), Token());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("max_request_bytes"));

  grpc::ClientContext ctx;
  v1::GetItemsRequest get;
  get.set_namespace_("default");
  get.set_id("r");
  get.mutable_predicate()->mutable_range()->set_start("z");
  get.mutable_predicate()->mutable_range()->set_end("a");
  v1::GetItemsResponse response;
  status = kv_->GetItems(&ctx, get, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("predicate.range.end"));

  grpc::ClientContext ctx2;
  get.clear_predicate();
  get.set_page_token("not a token at all");
  status = kv_->GetItems(&ctx2, get, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("page_token"));
}

TEST_F(GatewayTest, GarbageBytesAreInvalidArgumentAndDoNotHurtTheServer) {
  for (const std::string method : {"PutItems", "GetItems", "DeleteItems", "MutateItems",
                                   "ScanItems", "PutChunk", "GetChunk"}) {
    auto [status, bytes] =
        CallRaw("/stategate.v1.KeyValue/" + method, "\xff\xff\xff\xff\x0f not a protobuf");
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << method;
    EXPECT_THAT(status.error_message(),
                HasSubstr("20 bytes are not a valid stategate.v1." + method + "Request"));
  }
  // Still serving, data intact.
  ASSERT_TRUE(Put("default", "r", "k", "v", Token()).ok());
  v1::GetItemsResponse items;
  ASSERT_TRUE(Get("default", "r", &items).ok());
  EXPECT_EQ(items.items_size(), 1);
}

// Hole 3 of issue 10: an error quoting a long input must still reach a client with gRPC's
// default limits (8 KiB of metadata), not turn into RESOURCE_EXHAUSTED there.
TEST_F(GatewayTest, ErrorsQuotingLongInputReachAClientWithDefaultLimits) {
  grpc::Status status = Put(std::string(20000, 'n'), "r", "k", "v", Token());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("(20000 bytes) is not served here"));

  grpc::ClientContext handshake_ctx;
  v1::HandshakeRequest handshake;
  handshake.add_namespaces(std::string(20000, 'n'));
  v1::HandshakeResponse info;
  status = control_->Handshake(&handshake_ctx, handshake, &info);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();

  // A legal 4,096-byte binary key, quoted by a FAILED_PRECONDITION (no chunks uploaded).
  std::string key(4096, '\0');
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<char>(i * 31);
  grpc::ClientContext ctx;
  v1::PutItemsRequest commit;
  commit.set_namespace_("default");
  commit.set_id("r");
  *commit.mutable_token() = Token();
  v1::Item* item = commit.add_items();
  item->set_key(key);
  item->mutable_metadata()->set_chunk_count(3);
  item->mutable_metadata()->set_stored_size(3 << 20);
  v1::PutItemsResponse response;
  status = kv_->PutItems(&ctx, commit, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("(4096 bytes)"));
}

// Hole 5 of issue 10: every call of the service applies the same request limits.
TEST_F(GatewayTest, EveryCallAppliesTheRequestLimits) {
  const std::string big(300 << 10, 'x');  // over tiny's max_request_bytes, under gRPC's own
  std::vector<std::pair<std::string, grpc::Status>> results;
  {
    v1::PutItemsRequest r;
    r.set_namespace_("tiny");
    r.set_id("r");
    r.add_items()->set_value(big);
    grpc::ClientContext ctx;
    v1::PutItemsResponse out;
    results.emplace_back("PutItems", kv_->PutItems(&ctx, r, &out));
  }
  {
    v1::GetItemsRequest r;
    r.set_namespace_("tiny");
    r.set_id("r");
    r.set_page_token(big);
    grpc::ClientContext ctx;
    v1::GetItemsResponse out;
    results.emplace_back("GetItems", kv_->GetItems(&ctx, r, &out));
  }
  {
    v1::DeleteItemsRequest r;
    r.set_namespace_("tiny");
    r.set_id("r");
    r.mutable_token()->set_nonce(big);
    grpc::ClientContext ctx;
    v1::DeleteItemsResponse out;
    results.emplace_back("DeleteItems", kv_->DeleteItems(&ctx, r, &out));
  }
  {
    v1::MutateItemsRequest r;
    r.set_namespace_("tiny");
    r.set_id("r");
    r.add_mutations()->mutable_put()->set_value(big);
    grpc::ClientContext ctx;
    v1::MutateItemsResponse out;
    results.emplace_back("MutateItems", kv_->MutateItems(&ctx, r, &out));
  }
  {
    v1::ScanItemsRequest r;
    r.set_namespace_("tiny");
    r.set_page_token(big);
    grpc::ClientContext ctx;
    v1::ScanItemsResponse out;
    results.emplace_back("ScanItems", kv_->ScanItems(&ctx, r, &out));
  }
  {
    v1::PutChunkRequest r;
    r.set_namespace_("tiny");
    r.set_id("r");
    r.set_data(big);
    grpc::ClientContext ctx;
    v1::PutChunkResponse out;
    results.emplace_back("PutChunk", kv_->PutChunk(&ctx, r, &out));
  }
  {
    v1::GetChunkRequest r;
    r.set_namespace_("tiny");
    r.set_id("r");
    r.set_key("k");
    r.mutable_version()->set_nonce(big);
    grpc::ClientContext ctx;
    v1::GetChunkResponse out;
    results.emplace_back("GetChunk", kv_->GetChunk(&ctx, r, &out));
  }
  for (const auto& [method, status] : results) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << method;
    EXPECT_THAT(status.error_message(), HasSubstr("the limit is 200000 (max_request_bytes)"))
        << method;
  }
}

// What the README promises for requests above gRPC's own receive limit (80 MiB): gRPC
// refuses them itself, with RESOURCE_EXHAUSTED, before any stategate code runs.
TEST_F(GatewayTest, RequestsAboveGrpcsReceiveLimitAreResourceExhausted) {
  grpc::Status status = Put("default", "r", "k", std::string(81 << 20, 'v'), Token());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  ASSERT_TRUE(Put("default", "r", "k", "v", Token()).ok());
}

TEST_F(GatewayTest, ConcurrentWritersToOneItemEndWithTheNewestVersion) {
  constexpr int kThreads = 8;
  constexpr int kWritesPerThread = 50;
  const int64_t base = absl::ToUnixMicros(absl::Now());
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWritesPerThread; ++i) {
        // Versions interleave across threads, so arrival order differs from version order.
        const int64_t version = base + (i * kThreads + t);
        v1::IdempotencyToken token;
        token.set_generation_time_us(version);
        token.set_nonce(std::string(16, 'a' + t));
        EXPECT_TRUE(Put("default", "race", "k", std::to_string(version), token).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  v1::GetItemsResponse response;
  ASSERT_TRUE(Get("default", "race", &response).ok());
  ASSERT_EQ(response.items_size(), 1);
  EXPECT_EQ(response.items(0).value(), std::to_string(base + kThreads * kWritesPerThread - 1));
}

TEST_F(GatewayTest, PagesFollowTheNamespaceDefaultPageSize) {
  v1::PutItemsRequest request;
  request.set_namespace_("tiny");
  request.set_id("r");
  *request.mutable_token() = Token();
  for (int i = 0; i < 4; ++i) {
    v1::Item* item = request.add_items();
    item->set_key("k" + std::to_string(i));
    item->set_value(std::string(600, 'v'));  // one fits the 1000-byte default page, two do not
  }
  grpc::ClientContext ctx;
  v1::PutItemsResponse put_response;
  ASSERT_TRUE(kv_->PutItems(&ctx, request, &put_response).ok());
  int pages = 0, items = 0;
  std::string page_token;
  do {
    grpc::ClientContext get_ctx;
    v1::GetItemsRequest get;
    get.set_namespace_("tiny");
    get.set_id("r");
    get.set_page_token(page_token);
    v1::GetItemsResponse response;
    ASSERT_TRUE(kv_->GetItems(&get_ctx, get, &response).ok());
    items += response.items_size();
    page_token = response.next_page_token();
    ++pages;
  } while (!page_token.empty());
  EXPECT_EQ(items, 4);
  EXPECT_EQ(pages, 4);
}

TEST_F(GatewayTest, ACallsPriorityComesFromItsMetadataAndABadOneIsNamed) {
  for (const char* priority : {"critical", "normal", "sheddable"}) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("stategate-priority", priority);
    EXPECT_TRUE(Put("default", "prio", "k", "v", Token(priority[0]), &ctx).ok()) << priority;
  }
  grpc::ClientContext ctx;
  ctx.AddMetadata("stategate-priority", "urgent");
  const grpc::Status status = Put("default", "prio", "k", "v", Token('u'), &ctx);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("stategate-priority"), std::string::npos)
      << status.error_message();
  EXPECT_NE(status.error_message().find("critical, normal or sheddable"), std::string::npos)
      << status.error_message();
}

TEST_F(GatewayTest, StandardHealthServiceReportsServing) {
  // grpc.health.v1.HealthCheckRequest{service: ""} is the empty message.
  auto [status, bytes] = CallRaw("/grpc.health.v1.Health/Check", "");
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));  // status: SERVING
}

}  // namespace
}  // namespace stategate
