// KvClient end to end: the client library against a real Gateway on RocksDB, over real
// gRPC on 127.0.0.1. Tokens, chunking, paging, TTL, status codes and namespace settings are
// checked as a caller sees them; raw stubs on a second channel look at what the server
// stored, and build the partial or repeated uploads the client never sends. Where a test
// needs to see which RPCs the client made, its channel carries a counting interceptor.
#include <atomic>
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/client_interceptor.h"
#include "gtest/gtest.h"
#include "src/client/kv_client_internal.h"
#include "src/common/checksum.h"
#include "src/common/clock.h"
#include "src/kv/kv_store.h"
#include "src/server/config.h"
#include "src/server/gateway.h"
#include "src/storage/rocksdb/rocksdb_engine.h"
#include "stategate/kv_client.h"
#include "stategate/v1/kv.grpc.pb.h"
#include "test/lib/local_gateway.h"
#include "test/lib/temp_dir.h"

namespace stategate {
namespace {

using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using testing::LocalGateway;
using ::testing::SizeIs;

// The "small" namespace chunks values above this many bytes; "default" keeps 1 MiB.
constexpr int64_t kSmallChunkBytes = 1024;
constexpr int64_t kSmallMaxValueBytes = 64 * kSmallChunkBytes;

server::ServerConfig TestConfig() {
  server::ServerConfig config = server::DefaultConfig();
  NamespaceConfig small;
  small.name = "small";
  small.client.chunk_bytes = kSmallChunkBytes;
  small.limits.max_value_bytes = kSmallMaxValueBytes;
  config.namespaces.push_back(small);
  // For bursts far above what the machine runs at once: calls may wait long for a slot.
  NamespaceConfig bulk;
  bulk.name = "bulk";
  bulk.admission.max_queue = 4096;
  bulk.admission.max_queue_wait = absl::Seconds(5);
  // And for the engine: the gateway ends engine work at 90 % of the SLO max, so a burst
  // that may take seconds needs an SLO that says so.
  bulk.point_read.max = absl::Seconds(5);
  bulk.write.max = absl::Seconds(5);
  config.namespaces.push_back(bulk);
  return config;
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t word = gen();
    for (size_t j = 0; j < 8 && i + j < n; ++j) out[i + j] = static_cast<char>(word >> (8 * j));
  }
  return out;
}

// Counts the RPCs made on a channel by method name ("PutChunk", "Handshake", ...).
class CallCounter {
 public:
  void Add(std::string_view full_method) {
    const size_t slash = full_method.rfind('/');
    absl::MutexLock lock(&mu_);
    ++counts_[std::string(full_method.substr(slash + 1))];
  }
  int Count(const std::string& method) const {
    absl::MutexLock lock(&mu_);
    auto it = counts_.find(method);
    return it == counts_.end() ? 0 : it->second;
  }
  void Reset() {
    absl::MutexLock lock(&mu_);
    counts_.clear();
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, int> counts_ ABSL_GUARDED_BY(mu_);
};

// Sees every RPC as it starts and adds no interceptor of its own.
class CountingInterceptorFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit CountingInterceptorFactory(CallCounter* counter) : counter_(counter) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* info) override {
    counter_->Add(info->method());
    return nullptr;
  }

 private:
  CallCounter* const counter_;
};

std::shared_ptr<grpc::Channel> CountingChannel(const std::string& address, CallCounter* counter) {
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> factories;
  factories.push_back(std::make_unique<CountingInterceptorFactory>(counter));
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      address, grpc::InsecureChannelCredentials(), grpc::ChannelArguments(), std::move(factories));
}

v1::IdempotencyToken RawToken(uint64_t seed) {
  v1::IdempotencyToken token;
  token.set_generation_time_us(absl::ToUnixMicros(absl::Now()));
  token.set_nonce(RandomBytes(16, seed));
  return token;
}

class KvClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    gateway_ = LocalGateway::Start(TestConfig());
    ASSERT_NE(gateway_, nullptr);
    absl::StatusOr<std::unique_ptr<KvClient>> client =
        KvClient::Connect(KvClientOptions{.address = gateway_->address()});
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
    kv_ = v1::KeyValue::NewStub(
        grpc::CreateChannel(gateway_->address(), grpc::InsecureChannelCredentials()));
  }

  // A client whose tokens come from clock_ and whose RPCs calls_ counts.
  std::unique_ptr<KvClient> ObservedClient(KvClientOptions options = {}) {
    options.address = gateway_->address();
    return client::NewKvClient(options, CountingChannel(gateway_->address(), &calls_), &clock_);
  }

  // What the server stores for one item, large values as metadata only.
  absl::StatusOr<v1::Item> RawItem(const std::string& ns, const std::string& id,
                                   const std::string& key) {
    v1::GetItemsRequest request;
    request.set_namespace_(ns);
    request.set_id(id);
    request.mutable_predicate()->mutable_keys()->add_keys(key);
    request.mutable_selection()->set_include_large_values(false);
    v1::GetItemsResponse response;
    grpc::ClientContext ctx;
    const grpc::Status status = kv_->GetItems(&ctx, request, &response);
    if (!status.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          status.error_message());
    }
    if (response.items_size() != 1) return absl::NotFoundError("no such item");
    return response.items(0);
  }

  grpc::Status RawPutChunk(const std::string& ns, const std::string& id, const std::string& key,
                           const v1::IdempotencyToken& token, uint32_t index,
                           const std::string& data) {
    v1::PutChunkRequest request;
    request.set_namespace_(ns);
    request.set_id(id);
    request.set_key(key);
    *request.mutable_token() = token;
    request.set_index(index);
    request.set_data(data);
    v1::PutChunkResponse response;
    grpc::ClientContext ctx;
    return kv_->PutChunk(&ctx, request, &response);
  }

  // Commits `value` as `chunk_count` chunks uploaded under `token`.
  grpc::Status RawCommit(const std::string& ns, const std::string& id, const std::string& key,
                         const std::string& value, const v1::IdempotencyToken& token,
                         uint32_t chunk_count) {
    v1::PutItemsRequest request;
    request.set_namespace_(ns);
    request.set_id(id);
    *request.mutable_token() = token;
    v1::Item* item = request.add_items();
    item->set_key(key);
    v1::ValueMetadata* meta = item->mutable_metadata();
    meta->set_codec(v1::VALUE_CODEC_NONE);
    meta->set_uncompressed_size(value.size());
    meta->set_stored_size(value.size());
    meta->set_checksum(Xxh64(value));
    meta->set_chunk_count(chunk_count);
    v1::PutItemsResponse response;
    grpc::ClientContext ctx;
    return kv_->PutItems(&ctx, request, &response);
  }

  // Uploads every chunk of `value` (kSmallChunkBytes each) to "small", then commits it.
  void RawChunkedWrite(const std::string& id, const std::string& key, const std::string& value,
                       const v1::IdempotencyToken& token) {
    uint32_t index = 0;
    for (size_t offset = 0; offset < value.size(); offset += kSmallChunkBytes, ++index) {
      const grpc::Status s =
          RawPutChunk("small", id, key, token, index, value.substr(offset, kSmallChunkBytes));
      ASSERT_TRUE(s.ok()) << s.error_message();
    }
    const grpc::Status s = RawCommit("small", id, key, value, token, index);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  FakeClock clock_{absl::Now()};  // near the server's clock: tokens must be within its skew
  CallCounter calls_;
  std::unique_ptr<LocalGateway> gateway_;
  std::unique_ptr<KvClient> client_;
  std::unique_ptr<v1::KeyValue::Stub> kv_;
};

TEST_F(KvClientTest, PutThenGetSmallValue) {
  ASSERT_TRUE(client_->Put("default", "id", "k", "hello").ok());
  absl::StatusOr<std::string> v = client_->Get("default", "id", "k");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, "hello");
  EXPECT_EQ(client_->Get("default", "id", "other").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->Get("default", "absent", "k").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(KvClientTest, UnknownNamespaceIsNotFoundFromEveryCall) {
  const auto expect_not_found = [](const absl::Status& s, const char* call) {
    EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << call << ": " << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("nope")) << call;
  };
  expect_not_found(client_->Handshake({"nope"}).status(), "Handshake");
  expect_not_found(client_->Put("nope", "id", "k", "v"), "Put");
  expect_not_found(client_->PutItems("nope", "id", {Item{.key = "k", .value = "v"}}), "PutItems");
  expect_not_found(client_->Get("nope", "id", "k").status(), "Get");
  expect_not_found(client_->GetItems("nope", "id", Predicate::All()).status(), "GetItems");
  expect_not_found(client_->Delete("nope", "id"), "Delete(id)");
  expect_not_found(client_->Delete("nope", "id", "k"), "Delete(id, key)");
  expect_not_found(client_->DeleteItems("nope", "id", Predicate::Range("a", "b")), "DeleteItems");
  expect_not_found(client_->Mutate("nope", "id", {Mutation::Delete(Predicate::All())}),
                   "Mutate(delete)");
  expect_not_found(client_->Mutate("nope", "id", {Mutation::Put(Item{.key = "k", .value = "v"})}),
                   "Mutate(put)");
  expect_not_found(client_->Scan("nope", [](const Record&) { return absl::OkStatus(); }), "Scan");
  expect_not_found(client_->ScanAll("nope").status(), "ScanAll");
}

TEST_F(KvClientTest, TwentyMebibyteValueRoundTripsInOneMebibyteChunks) {
  const std::string value = RandomBytes(20 << 20, 20);
  ASSERT_TRUE(client_->Put("default", "big", "v", value).ok());
  absl::StatusOr<std::string> got = client_->Get("default", "big", "v");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == value) << "read " << got->size() << " bytes, differing from what was written";

  absl::StatusOr<v1::Item> raw = RawItem("default", "big", "v");
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(raw->metadata().chunk_count(), 20u);
  EXPECT_EQ(raw->metadata().uncompressed_size(), value.size());
  EXPECT_EQ(raw->metadata().checksum(), Xxh64(value));
  EXPECT_TRUE(raw->value().empty()) << "without include_large_values only metadata comes back";
}

TEST_F(KvClientTest, ValuesOfChunkBytesStayInlineAndOneMoreByteIsChunked) {
  std::unique_ptr<KvClient> client = ObservedClient();
  const std::string edge = RandomBytes(kSmallChunkBytes, 1);
  const std::string over = RandomBytes(kSmallChunkBytes + 1, 2);
  ASSERT_TRUE(client->Put("small", "id", "edge", edge).ok());
  EXPECT_EQ(calls_.Count("PutChunk"), 0);
  ASSERT_TRUE(client->Put("small", "id", "over", over).ok());
  EXPECT_EQ(calls_.Count("PutChunk"), 2);

  absl::StatusOr<v1::Item> raw = RawItem("small", "id", "edge");
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(raw->metadata().chunk_count(), 0u);
  EXPECT_EQ(raw->value(), edge);
  raw = RawItem("small", "id", "over");
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(raw->metadata().chunk_count(), 2u);
  EXPECT_EQ(raw->metadata().stored_size(), over.size());

  // The chunks live under the token that committed the item: the write's version.
  v1::GetChunkRequest request;
  request.set_namespace_("small");
  request.set_id("id");
  request.set_key("over");
  *request.mutable_version() = raw->metadata().version();
  request.set_index(1);
  v1::GetChunkResponse last;
  grpc::ClientContext ctx;
  ASSERT_TRUE(kv_->GetChunk(&ctx, request, &last).ok());
  EXPECT_EQ(last.data(), over.substr(kSmallChunkBytes));

  absl::StatusOr<std::string> got = client->Get("small", "id", "edge");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, edge);
  got = client->Get("small", "id", "over");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, over);
}

TEST_F(KvClientTest, EachLogicalWriteHasItsOwnToken) {
  std::unique_ptr<KvClient> client = ObservedClient();  // clock_ stands still
  ASSERT_TRUE(client->Put("default", "id", "a", "1").ok());
  ASSERT_TRUE(client->Put("default", "id", "b", "2").ok());
  absl::StatusOr<v1::Item> a = RawItem("default", "id", "a");
  absl::StatusOr<v1::Item> b = RawItem("default", "id", "b");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->metadata().version().generation_time_us(), clock_.NowMicros());
  EXPECT_EQ(b->metadata().version().generation_time_us(), clock_.NowMicros());
  EXPECT_EQ(a->metadata().version().nonce().size(), 16u);
  EXPECT_NE(a->metadata().version().nonce(), b->metadata().version().nonce());
}

TEST_F(KvClientTest, GetItemsFollowsEveryPage) {
  // One item per page: every item is larger than a page.
  std::unique_ptr<KvClient> client = ObservedClient(KvClientOptions{.page_size_bytes = 1});
  std::vector<Item> items;
  for (char c = 'a'; c <= 'e'; ++c) items.push_back(Item{.key = std::string(1, c), .value = "v"});
  const std::string large = RandomBytes(kSmallChunkBytes * 5 / 2, 3);
  items.push_back(Item{.key = "f", .value = large});  // chunked
  ASSERT_TRUE(client->PutItems("small", "r", items).ok());
  absl::StatusOr<std::vector<StoredItem>> got = client->GetItems("small", "r", Predicate::All());
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_THAT(*got, SizeIs(6));
  EXPECT_EQ((*got)[0].key, "a");
  EXPECT_EQ((*got)[5].value, large);
  EXPECT_EQ((*got)[0].version, clock_.Now());
  EXPECT_EQ((*got)[0].expires_at, absl::InfiniteFuture());
  EXPECT_GE(calls_.Count("GetItems"), 6);
  EXPECT_EQ(calls_.Count("GetChunk"), 3);
}

TEST_F(KvClientTest, RangeAndDelete) {
  std::vector<Item> items;
  for (char c = 'a'; c <= 'e'; ++c) items.push_back(Item{.key = std::string(1, c), .value = "v"});
  ASSERT_TRUE(client_->PutItems("default", "r", items).ok());
  ASSERT_TRUE(client_->Delete("default", "r", "b").ok());
  auto got = client_->GetItems("default", "r", Predicate::Range("b", "e"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, ElementsAre(Field(&StoredItem::key, "c"), Field(&StoredItem::key, "d")));
  got = client_->GetItems("default", "r", Predicate::Keys({"e", "a", "zz"}));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, ElementsAre(Field(&StoredItem::key, "a"), Field(&StoredItem::key, "e")));
  ASSERT_TRUE(client_->DeleteItems("default", "r", Predicate::Range("a", "d")).ok());
  got = client_->GetItems("default", "r", Predicate::All());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, ElementsAre(Field(&StoredItem::key, "d"), Field(&StoredItem::key, "e")));
  ASSERT_TRUE(client_->Delete("default", "r").ok());
  got = client_->GetItems("default", "r", Predicate::All());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_THAT(*got, SizeIs(0));
  EXPECT_TRUE(client_->Delete("default", "never-written").ok());
}

TEST_F(KvClientTest, MutateAppliesInOrder) {
  ASSERT_TRUE(client_->Put("small", "r", "old", "x").ok());
  const std::string large = RandomBytes(kSmallChunkBytes + 500, 4);
  ASSERT_TRUE(client_
                  ->Mutate("small", "r",
                           {Mutation::Delete(Predicate::All()),
                            Mutation::Put(Item{.key = "new", .value = large})})
                  .ok());
  auto got = client_->GetItems("small", "r", Predicate::All());
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_THAT(*got, ElementsAre(Field(&StoredItem::key, "new")));
  EXPECT_EQ((*got)[0].value, large);
}

TEST_F(KvClientTest, ScanVisitsEveryRecordOnceEvenWhenPagesSplitIt) {
  // Tiny pages: records arrive in parts that the client joins.
  std::unique_ptr<KvClient> client = ObservedClient(KvClientOptions{.page_size_bytes = 1});
  ASSERT_TRUE(client
                  ->PutItems("small", "r1",
                             {Item{.key = "a", .value = "1"}, Item{.key = "b", .value = "2"},
                              Item{.key = "c", .value = "3"}})
                  .ok());
  const std::string large = RandomBytes(kSmallChunkBytes * 2, 5);
  ASSERT_TRUE(client->Put("small", "r2", "k", large).ok());
  ASSERT_TRUE(client->Put("small", "r3", "k", "3").ok());
  ASSERT_TRUE(client->Put("default", "elsewhere", "k", "x").ok());
  auto records = client->ScanAll("small");
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_THAT(*records, ElementsAre(Field(&Record::id, "r1"), Field(&Record::id, "r2"),
                                    Field(&Record::id, "r3")));
  EXPECT_THAT((*records)[0].items,
              ElementsAre(Field(&StoredItem::key, "a"), Field(&StoredItem::key, "b"),
                          Field(&StoredItem::key, "c")));
  EXPECT_EQ((*records)[1].items[0].value, large);
  EXPECT_GE(calls_.Count("ScanItems"), 5);

  int visited = 0;
  const absl::Status stop = client->Scan("small", [&](const Record&) {
    ++visited;
    return absl::CancelledError("enough");
  });
  EXPECT_EQ(stop.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(visited, 1);
}

TEST_F(KvClientTest, TtlItemDisappears) {
  const absl::Time before = absl::Now();
  ASSERT_TRUE(client_
                  ->PutItems("default", "ttl",
                             {Item{.key = "long", .value = "l", .ttl = absl::Hours(1)},
                              Item{.key = "short", .value = "s", .ttl = absl::Seconds(1)}})
                  .ok());
  const absl::Time after = absl::Now();
  auto got = client_->GetItems("default", "ttl", Predicate::Keys({"long"}));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_THAT(*got, SizeIs(1));
  // Counted from the write's arrival at the server (same machine, so the same clock).
  EXPECT_GE((*got)[0].expires_at, before + absl::Hours(1) - absl::Milliseconds(1));
  EXPECT_LE((*got)[0].expires_at, after + absl::Hours(1) + absl::Milliseconds(1));

  // Generous bound: no assumption about how soon after the second the item goes.
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  absl::Status short_status;
  do {
    short_status = client_->Get("default", "ttl", "short").status();
    if (short_status.code() == absl::StatusCode::kNotFound) break;
    ASSERT_TRUE(short_status.ok()) << short_status;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < give_up);
  EXPECT_EQ(short_status.code(), absl::StatusCode::kNotFound);
  EXPECT_GE(absl::Now(), before + absl::Seconds(1));
  absl::StatusOr<std::string> long_value = client_->Get("default", "ttl", "long");
  ASSERT_TRUE(long_value.ok()) << long_value.status();
  EXPECT_EQ(*long_value, "l");
  EXPECT_EQ(client_->Put("default", "ttl", "bad", "x", -absl::Seconds(1)).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(KvClientTest, InterruptedUploadLeavesThePreviousValueVisible) {
  const std::string previous = RandomBytes(kSmallChunkBytes * 2, 6);
  ASSERT_TRUE(client_->Put("small", "id", "k", previous).ok());
  const std::string next = RandomBytes(kSmallChunkBytes * 3, 7);
  const v1::IdempotencyToken token = RawToken(8);

  // Two of three chunks uploaded, never committed.
  for (uint32_t i = 0; i < 2; ++i) {
    ASSERT_TRUE(RawPutChunk("small", "id", "k", token, i,
                            next.substr(i * kSmallChunkBytes, kSmallChunkBytes))
                    .ok());
  }
  absl::StatusOr<std::string> got = client_->Get("small", "id", "k");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, previous);

  // A commit with a chunk missing is refused, and changes nothing.
  const grpc::Status commit = RawCommit("small", "id", "k", next, token, 3);
  EXPECT_EQ(commit.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << commit.error_message();
  EXPECT_THAT(commit.error_message(), HasSubstr("3 chunks"));
  got = client_->Get("small", "id", "k");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, previous);

  // Uploading the last chunk completes the write.
  ASSERT_TRUE(RawPutChunk("small", "id", "k", token, 2, next.substr(2 * kSmallChunkBytes)).ok());
  const grpc::Status retry = RawCommit("small", "id", "k", next, token, 3);
  ASSERT_TRUE(retry.ok()) << retry.error_message();
  got = client_->Get("small", "id", "k");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, next);
}

TEST_F(KvClientTest, ReplayedChunkedWriteLeavesTheSameState) {
  const std::string value = RandomBytes(kSmallChunkBytes * 3 + 10, 9);
  const v1::IdempotencyToken token = RawToken(10);
  ASSERT_NO_FATAL_FAILURE(RawChunkedWrite("id", "k", value, token));
  absl::StatusOr<v1::Item> first = RawItem("small", "id", "k");
  ASSERT_TRUE(first.ok()) << first.status();

  // The same write again, every chunk and the commit, as a retry would send it.
  ASSERT_NO_FATAL_FAILURE(RawChunkedWrite("id", "k", value, token));
  absl::StatusOr<v1::Item> second = RawItem("small", "id", "k");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->SerializeAsString(), first->SerializeAsString());
  EXPECT_EQ(second->metadata().version().nonce(), token.nonce());
  absl::StatusOr<std::string> got = client_->Get("small", "id", "k");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, value);

  // A chunk replayed with other bytes under the committed token is not taken.
  ASSERT_TRUE(RawPutChunk("small", "id", "k", token, 0, std::string(kSmallChunkBytes, 'x')).ok());
  got = client_->Get("small", "id", "k");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, value);

  // A late replay after a newer write does not bring the old value back.
  ASSERT_TRUE(client_->Put("small", "id", "k", "newer").ok());
  ASSERT_NO_FATAL_FAILURE(RawChunkedWrite("id", "k", value, token));
  got = client_->Get("small", "id", "k");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "newer");
}

// A gateway started from a config file, so that Reload can change its config version.
class KvClientReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteConfig("");
    server::GatewayOptions options;
    options.config_path = config_path();
    absl::StatusOr<server::ServerConfig> config = server::LoadConfigFile(config_path());
    ASSERT_TRUE(config.ok()) << config.status();
    options.config = *std::move(config);
    absl::StatusOr<std::unique_ptr<server::Gateway>> gateway =
        server::Gateway::Start(std::move(options));
    ASSERT_TRUE(gateway.ok()) << gateway.status();
    gateway_ = *std::move(gateway);
    client_ = client::NewKvClient(
        KvClientOptions{},
        CountingChannel("127.0.0.1:" + std::to_string(gateway_->port()), &calls_));
  }

  std::string config_path() const { return dir_.path() + "/stategate.yaml"; }

  void WriteConfig(const std::string& extra_namespaces) {
    std::ofstream(config_path()) << "listen: 127.0.0.1:0\n"
                                 << "data_dir: " << dir_.path() << "/db\n"
                                 << "namespaces:\n  - name: default\n"
                                 << extra_namespaces;
  }

  testing::TempDir dir_;
  std::unique_ptr<server::Gateway> gateway_;
  CallCounter calls_;
  std::unique_ptr<KvClient> client_;
};

TEST_F(KvClientReloadTest, HandshakesOncePerConfigVersion) {
  ASSERT_TRUE(client_->Handshake().ok());
  ASSERT_TRUE(client_->Put("default", "id", "a", "1").ok());
  ASSERT_TRUE(client_->Put("default", "id", "b", "1").ok());
  EXPECT_EQ(calls_.Count("Handshake"), 1);

  WriteConfig("  - name: added\n");
  ASSERT_TRUE(gateway_->Reload().ok());
  ASSERT_TRUE(client_->Put("default", "id", "c", "1").ok());  // learns of the new version
  ASSERT_TRUE(client_->Put("default", "id", "d", "1").ok());  // handshakes again
  ASSERT_TRUE(client_->Put("default", "id", "e", "1").ok());
  EXPECT_EQ(calls_.Count("Handshake"), 2);
  EXPECT_TRUE(client_->Put("added", "id", "k", "v").ok());
}

// Bit rot below every check the server makes on writes: values are changed in the
// gateway's RocksDB while it is stopped, through the storage engine, and read back through a
// gateway restarted on the same data. The client's checksum must catch it.
class KvClientDataLossTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(StartGateway()); }

  std::string data_dir() const { return dir_.path() + "/db"; }

  void StartGateway() {
    server::GatewayOptions options;
    options.config = TestConfig();
    options.config.listen = "127.0.0.1:0";
    options.config.data_dir = data_dir();
    absl::StatusOr<std::unique_ptr<server::Gateway>> gateway =
        server::Gateway::Start(std::move(options));
    ASSERT_TRUE(gateway.ok()) << gateway.status();
    gateway_ = *std::move(gateway);
    absl::StatusOr<std::unique_ptr<KvClient>> client = KvClient::Connect(
        KvClientOptions{.address = "127.0.0.1:" + std::to_string(gateway_->port())});
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  // Stops the gateway, rewrites every item of `table` with `corrupt` applied to its stored
  // bytes (at a newer version, so the rewrite wins), and starts the gateway again.
  void CorruptTableAndRestart(const std::string& table,
                              const std::function<void(std::string&)>& corrupt) {
    client_.reset();
    gateway_.reset();  // drains and closes the database
    {
      absl::StatusOr<std::unique_ptr<storage::StorageEngine>> engine =
          storage::OpenRocksDbEngine(storage::RocksDbOptions{.path = data_dir()});
      ASSERT_TRUE(engine.ok()) << engine.status();
      absl::StatusOr<storage::TableSlice> slice =
          (*engine)->Scan(table, std::nullopt, storage::ReadLimits());
      ASSERT_TRUE(slice.ok()) << slice.status();
      ASSERT_FALSE(slice->records.empty());
      for (const storage::ScannedRecord& record : slice->records) {
        for (const storage::StoredItem& item : record.items) {
          storage::RecordWrite write;
          write.table = table;
          write.record_id = record.record_id;
          write.version = storage::Version{item.version.time_us + 1, item.version.nonce};
          std::string value = item.value;
          corrupt(value);
          write.ops.push_back(storage::PutOp{item.key, value, item.expires_at_us});
          ASSERT_TRUE((*engine)->Write(write).ok());
        }
      }
    }
    ASSERT_NO_FATAL_FAILURE(StartGateway());
  }

  testing::TempDir dir_;
  std::unique_ptr<server::Gateway> gateway_;
  std::unique_ptr<KvClient> client_;
};

TEST_F(KvClientDataLossTest, CorruptInlineValueIsDataLoss) {
  ASSERT_TRUE(client_->Put("small", "id", "k", "hello, world").ok());
  ASSERT_NO_FATAL_FAILURE(CorruptTableAndRestart("small", [](std::string& stored) {
    const size_t at = stored.find("hello, world");
    ASSERT_NE(at, std::string::npos);
    stored[at] = 'j';  // the value's bytes only: the stored record still parses
  }));
  const absl::Status s = client_->Get("small", "id", "k").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("checksum mismatch"));
}

TEST_F(KvClientDataLossTest, CorruptChunkIsDataLoss) {
  ASSERT_TRUE(client_->Put("small", "id", "k", RandomBytes(kSmallChunkBytes * 3, 11)).ok());
  ASSERT_NO_FATAL_FAILURE(
      CorruptTableAndRestart(kv::ChunkTable("small"), [](std::string& chunk) { chunk[0] ^= 1; }));
  const absl::Status s = client_->Get("small", "id", "k").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("checksum mismatch"));
}

}  // namespace
}  // namespace stategate

namespace stategate {
namespace {

TEST_F(KvClientTest, ValueOverMaxValueBytesIsRefusedBeforeAnyChunkIsSent) {
  std::unique_ptr<KvClient> client = ObservedClient();
  const absl::Status status =
      client->Put("small", "id", "k", std::string(kSmallMaxValueBytes + 1, 'x'));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("max_value_bytes"));
  EXPECT_EQ(calls_.Count("PutChunk"), 0);
  EXPECT_TRUE(client->Put("small", "id", "k", std::string(kSmallMaxValueBytes, 'x')).ok());
}

// Runs `hook` once, just before the first GetChunk RPC of the channel leaves.
class BeforeFirstGetChunk final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit BeforeFirstGetChunk(std::function<void()> hook) : hook_(std::move(hook)) {}

  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* info) override {
    if (!std::string_view(info->method()).ends_with("/GetChunk") || fired_.exchange(true)) {
      return nullptr;
    }
    return new Hook(hook_);
  }

 private:
  class Hook final : public grpc::experimental::Interceptor {
   public:
    explicit Hook(std::function<void()> hook) : hook_(std::move(hook)) {}
    void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
      if (methods->QueryInterceptionHookPoint(
              grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
        hook_();
      }
      methods->Proceed();
    }

   private:
    std::function<void()> hook_;
  };

  std::function<void()> hook_;
  std::atomic<bool> fired_{false};
};

// A value superseded, and its chunks collected, between the read of its metadata and the
// fetch of its chunks: the client reads the item again instead of calling it NOT_FOUND.
TEST(KvClientChunkCollectionTest, ChunksCollectedMidReadMakeTheClientReadAgain) {
  server::ServerConfig config = TestConfig();
  config.max_clock_skew = absl::Milliseconds(500);  // chunks are collectable after 1 s
  config.chunk_gc_interval = absl::Milliseconds(50);
  std::unique_ptr<LocalGateway> gateway = LocalGateway::Start(config);
  ASSERT_NE(gateway, nullptr);
  auto writer = KvClient::Connect(KvClientOptions{.address = gateway->address()});
  ASSERT_TRUE(writer.ok());
  const std::string old_value = RandomBytes(3 * kSmallChunkBytes, 11);
  ASSERT_TRUE((*writer)->Put("small", "id", "k", old_value).ok());
  absl::SleepFor(absl::Milliseconds(1100));  // old enough for the collector

  auto raw = v1::KeyValue::NewStub(
      grpc::CreateChannel(gateway->address(), grpc::InsecureChannelCredentials()));
  v1::GetItemsRequest get;
  get.set_namespace_("small");
  get.set_id("id");
  v1::GetItemsResponse stored;
  grpc::ClientContext get_ctx;
  ASSERT_TRUE(raw->GetItems(&get_ctx, get, &stored).ok());
  ASSERT_EQ(stored.items_size(), 1);
  const v1::IdempotencyToken old_version = stored.items(0).metadata().version();

  bool collected = false;
  auto supersede_and_wait_for_collection = [&] {
    ASSERT_TRUE((*writer)->Put("small", "id", "k", "new and small").ok());
    for (int i = 0; i < 200 && !collected; ++i) {
      v1::GetChunkRequest chunk;
      chunk.set_namespace_("small");
      chunk.set_id("id");
      chunk.set_key("k");
      *chunk.mutable_version() = old_version;
      v1::GetChunkResponse response;
      grpc::ClientContext ctx;
      collected = raw->GetChunk(&ctx, chunk, &response).error_code() == grpc::StatusCode::NOT_FOUND;
      if (!collected) absl::SleepFor(absl::Milliseconds(50));
    }
  };
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> hooks;
  hooks.push_back(std::make_unique<BeforeFirstGetChunk>(supersede_and_wait_for_collection));
  std::unique_ptr<KvClient> reader =
      client::NewKvClient(KvClientOptions{.address = gateway->address()},
                          grpc::experimental::CreateCustomChannelWithInterceptors(
                              gateway->address(), grpc::InsecureChannelCredentials(),
                              grpc::ChannelArguments(), std::move(hooks)));

  absl::StatusOr<std::string> got = reader->Get("small", "id", "k");
  ASSERT_TRUE(collected) << "the collector did not remove the superseded chunks in 10 s";
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "new and small");
}

}  // namespace
}  // namespace stategate

namespace stategate {
namespace {

// JSON-like documents: the realistic compressible payload.
std::string Documents(int n) {
  std::string out = "[";
  for (int i = 0; i < n; ++i) {
    out += "{\"user_id\":" + std::to_string(100000 + i) + ",\"email\":\"user" + std::to_string(i) +
           "@example.org\",\"plan\":\"premium\",\"country\":\"NL\",\"devices\":[\"tv\","
           "\"phone\"],\"profile\":{\"language\":\"en\",\"autoplay\":true}},";
  }
  return out + "]";
}

TEST_F(KvClientTest, CompressibleValuesAreStoredCompressedAndReadBackWhole) {
  const std::string doc = Documents(40);  // several KiB: above the 1 KiB default threshold
  ASSERT_TRUE(client_->Put("default", "docs", "small", doc).ok());
  absl::StatusOr<v1::Item> raw = RawItem("default", "docs", "small");
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(raw->metadata().codec(), v1::VALUE_CODEC_LZ4);
  EXPECT_EQ(raw->metadata().uncompressed_size(), doc.size());
  EXPECT_LT(raw->metadata().stored_size() * 2, doc.size());
  EXPECT_EQ(raw->metadata().checksum(), Xxh64(doc));
  absl::StatusOr<std::string> got = client_->Get("default", "docs", "small");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, doc);

  // Compressed, still larger than a chunk: compressed bytes travel in chunks.
  const std::string big = Documents(300);  // under the 64 KiB max_value_bytes of "small"
  ASSERT_TRUE(client_->Put("small", "docs", "big", big).ok());
  raw = RawItem("small", "docs", "big");
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(raw->metadata().codec(), v1::VALUE_CODEC_LZ4);
  EXPECT_GT(raw->metadata().chunk_count(), 0u);
  EXPECT_LT(raw->metadata().stored_size(), big.size());

  // Any client reads them, including one that never compresses.
  auto plain =
      KvClient::Connect(KvClientOptions{.address = gateway_->address(), .compression = false});
  ASSERT_TRUE(plain.ok());
  got = (*plain)->Get("small", "docs", "big");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == big);
  ASSERT_TRUE((*plain)->Put("default", "docs", "raw", doc).ok());
  raw = RawItem("default", "docs", "raw");
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->metadata().codec(), v1::VALUE_CODEC_NONE);
}

TEST_F(KvClientTest, SmallAndIncompressibleValuesStayRaw) {
  ASSERT_TRUE(client_->Put("default", "raw", "tiny", std::string(100, 'a')).ok());
  ASSERT_TRUE(client_->Put("default", "raw", "random", RandomBytes(8192, 3)).ok());
  for (const char* key : {"tiny", "random"}) {
    absl::StatusOr<v1::Item> raw = RawItem("default", "raw", key);
    ASSERT_TRUE(raw.ok());
    EXPECT_EQ(raw->metadata().codec(), v1::VALUE_CODEC_NONE) << key;
  }
}

}  // namespace
}  // namespace stategate

namespace stategate {
namespace {

// Waits until `n` callbacks have run.
class Countdown {
 public:
  explicit Countdown(int n) : left_(n) {}
  void Done() {
    absl::MutexLock lock(&mu_);
    --left_;
  }
  void Wait() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* left) { return *left == 0; }, &left_));
  }

 private:
  absl::Mutex mu_;
  int left_ ABSL_GUARDED_BY(mu_);
};

TEST_F(KvClientTest, ThousandsOfAsyncCallsInFlightFromOneThread) {
  constexpr int kCalls = 2000;
  // A bulk client: no concurrency limit (calls beyond it would rightly fail fast) and no
  // per-attempt SLO timeout (2000 calls at once cannot all meet a 100 ms point-read SLO on
  // a small machine; the 5 s call timeout still holds), on a namespace whose admission lets
  // the burst wait (the default would rightly shed most of 2000 calls arriving at once).
  KvClientOptions options{.address = gateway_->address()};
  options.reliability.limiter = "none";
  options.reliability.signalled_timeouts = false;
  auto unlimited = KvClient::Connect(options);
  ASSERT_TRUE(unlimited.ok());
  KvClient* client_ = unlimited->get();
  ASSERT_TRUE(client_->Handshake({"bulk"}).ok());
  std::atomic<int> failed{0};
  Countdown puts(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    client_->PutAsync("bulk", "async-" + std::to_string(i), "k", "v" + std::to_string(i),
                      [&](absl::Status status) {
                        if (!status.ok()) ++failed;
                        puts.Done();
                      });
  }
  puts.Wait();
  EXPECT_EQ(failed.load(), 0);

  std::vector<std::string> values(kCalls);
  Countdown gets(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    client_->GetAsync("bulk", "async-" + std::to_string(i), "k",
                      [&, i](absl::StatusOr<std::string> value) {
                        values[i] = value.ok() ? *value : value.status().ToString();
                        gets.Done();
                      });
  }
  gets.Wait();
  for (int i = 0; i < kCalls; ++i) EXPECT_EQ(values[i], "v" + std::to_string(i));
}

TEST_F(KvClientTest, AsyncCallsHandleChunkedValuesAndMissingItems) {
  const std::string big = RandomBytes(5 * kSmallChunkBytes + 3, 21);
  absl::Notification put_done;
  absl::Status put_status;
  client_->PutAsync("small", "async", "big", big, [&](absl::Status status) {
    put_status = status;
    put_done.Notify();
  });
  put_done.WaitForNotification();
  ASSERT_TRUE(put_status.ok()) << put_status;

  absl::Notification get_done;
  absl::StatusOr<std::string> got;
  client_->GetAsync("small", "async", "big", [&](absl::StatusOr<std::string> value) {
    got = std::move(value);
    get_done.Notify();
  });
  get_done.WaitForNotification();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == big);

  absl::Notification missing_done;
  client_->GetAsync("small", "async", "absent", [&](absl::StatusOr<std::string> value) {
    got = std::move(value);
    missing_done.Notify();
  });
  missing_done.WaitForNotification();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);

  absl::Notification delete_done;
  client_->DeleteAsync("small", "async", "big", [&](absl::Status status) {
    EXPECT_TRUE(status.ok()) << status;
    delete_done.Notify();
  });
  delete_done.WaitForNotification();
  EXPECT_EQ(client_->Get("small", "async", "big").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace stategate

namespace stategate {
namespace {

TEST_F(KvClientTest, HandshakesAgainPeriodicallyForNamespacesInUse) {
  KvClientOptions options;
  options.handshake_interval = absl::Milliseconds(50);
  std::unique_ptr<KvClient> client = ObservedClient(options);
  ASSERT_TRUE(client->Put("default", "id", "k", "v").ok());  // handshakes once, to learn "default"
  const int after_put = calls_.Count("Handshake");
  EXPECT_GE(after_put, 1);  // a slow machine may see a refresh already
  // No calls of our own from here: only the background refresh talks to the server.
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (calls_.Count("Handshake") < after_put + 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_GE(calls_.Count("Handshake"), after_put + 2);
}

}  // namespace
}  // namespace stategate
