// Fault injection end to end (DESIGN.md, "Fault injection"): in-process Gateways on RocksDB
// in temporary directories, called over real gRPC on 127.0.0.1 — faults from the config,
// faults set at run time through the Admin service, and the refusals without
// --fault-injection. Latency is asserted as a lower bound only.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <fstream>
#include <future>

#include "src/server/gateway.h"
#include "stategate/v1/admin.grpc.pb.h"
#include "stategate/v1/kv.grpc.pb.h"
#include "test/lib/temp_dir.h"

namespace stategate {
namespace {

using ::testing::HasSubstr;

constexpr char kNamespaces[] = R"(
namespaces:
  - name: default
  - name: other
)";

std::string Trailer(const grpc::ClientContext& ctx, const std::string& key) {
  auto it = ctx.GetServerTrailingMetadata().find(key);
  if (it == ctx.GetServerTrailingMetadata().end()) return "<absent>";
  return std::string(it->second.data(), it->second.size());
}

class FaultInjectionTest : public ::testing::Test {
 protected:
  std::string config_path() const { return dir_.path() + "/stategate.yaml"; }

  // Starts a gateway from `yaml` (written to the config file, so Reload reads it too).
  absl::Status StartGateway(const std::string& yaml, bool fault_injection,
                            int worker_threads = 16) {
    WriteConfig(yaml);
    absl::StatusOr<server::ServerConfig> config = server::LoadConfigFile(config_path());
    if (!config.ok()) return config.status();
    config->listen = "127.0.0.1:0";
    config->data_dir = dir_.path() + "/db";
    config->worker_threads = worker_threads;
    server::GatewayOptions options;
    options.config = *std::move(config);
    options.config_path = config_path();
    options.fault_injection = fault_injection;
    absl::StatusOr<std::unique_ptr<server::Gateway>> gateway =
        server::Gateway::Start(std::move(options));
    if (!gateway.ok()) return gateway.status();
    gateway_ = *std::move(gateway);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(gateway_->port()),
                                   grpc::InsecureChannelCredentials());
    kv_ = v1::KeyValue::NewStub(channel_);
    admin_ = v1::Admin::NewStub(channel_);
    return absl::OkStatus();
  }

  void WriteConfig(const std::string& yaml) { std::ofstream(config_path()) << yaml; }

  static v1::PutItemsRequest PutRequest(const std::string& ns, const std::string& id) {
    v1::PutItemsRequest request;
    request.set_namespace_(ns);
    request.set_id(id);
    v1::Item* item = request.add_items();
    item->set_key("k");
    item->set_value("v");
    request.mutable_token()->set_generation_time_us(absl::ToUnixMicros(absl::Now()));
    request.mutable_token()->set_nonce(std::string(16, 'n'));
    return request;
  }

  grpc::Status Put(const std::string& ns, grpc::ClientContext* ctx = nullptr) {
    grpc::ClientContext local;
    v1::PutItemsResponse response;
    return kv_->PutItems(ctx ? ctx : &local, PutRequest(ns, "r"), &response);
  }

  grpc::Status Get(const std::string& ns) {
    grpc::ClientContext ctx;
    v1::GetItemsRequest request;
    request.set_namespace_(ns);
    request.set_id("r");
    v1::GetItemsResponse response;
    return kv_->GetItems(&ctx, request, &response);
  }

  grpc::Status SetFaults(const std::string& ns, const v1::FaultSpec& faults,
                         v1::SetFaultsResponse* response = nullptr) {
    grpc::ClientContext ctx;
    v1::SetFaultsRequest request;
    request.set_namespace_(ns);
    *request.mutable_faults() = faults;
    v1::SetFaultsResponse local;
    return admin_->SetFaults(&ctx, request, response ? response : &local);
  }

  grpc::Status GetFaults(const std::string& ns, v1::FaultSpec* faults) {
    grpc::ClientContext ctx;
    v1::GetFaultsRequest request;
    request.set_namespace_(ns);
    v1::GetFaultsResponse response;
    grpc::Status status = admin_->GetFaults(&ctx, request, &response);
    *faults = response.faults();
    return status;
  }

  grpc::Status Pause(int64_t duration_us) {
    grpc::ClientContext ctx;
    v1::PauseRequest request;
    request.set_duration_us(duration_us);
    v1::PauseResponse response;
    return admin_->Pause(&ctx, request, &response);
  }

  testing::TempDir dir_;
  std::unique_ptr<server::Gateway> gateway_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::KeyValue::Stub> kv_;
  std::unique_ptr<v1::Admin::Stub> admin_;
};

TEST_F(FaultInjectionTest, ConfiguredLatencyAddsAtLeastTheDelayToItsNamespaceOnly) {
  ASSERT_TRUE(StartGateway(R"(
namespaces:
  - name: default
  - name: slow
    faults:
      latency: {delay: 200ms}
  - name: slow_reads
    faults:
      latency: {delay: 200ms, share: 1.0, applies_to: reads}
)",
                           true)
                  .ok());
  absl::Time start = absl::Now();
  ASSERT_TRUE(Put("slow").ok());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(200));
  start = absl::Now();
  ASSERT_TRUE(Get("slow").ok());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(200));

  start = absl::Now();
  ASSERT_TRUE(Get("slow_reads").ok());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(200));
  // Writes to slow_reads and calls to default are not delayed; there is no upper bound to
  // assert on, so only that they succeed.
  EXPECT_TRUE(Put("slow_reads").ok());
  EXPECT_TRUE(Put("default").ok());
}

TEST_F(FaultInjectionTest, DelayedCallsHoldNoWorkerThread) {
  // One worker: were a delay slept on it, the undelayed call would queue behind them all.
  ASSERT_TRUE(StartGateway(R"(
namespaces:
  - name: default
  - name: slow
    faults: {latency: {delay: 3s}}
)",
                           true, /*worker_threads=*/1)
                  .ok());
  std::vector<std::future<grpc::Status>> delayed;
  for (int i = 0; i < 4; ++i) {
    delayed.push_back(std::async(std::launch::async, [this] { return Put("slow"); }));
  }
  absl::SleepFor(absl::Milliseconds(100));  // let them arrive
  const absl::Time start = absl::Now();
  ASSERT_TRUE(Put("default").ok());
  // The undelayed call finished while the delayed ones still wait.
  for (auto& call : delayed) {
    EXPECT_EQ(call.wait_for(std::chrono::seconds(0)), std::future_status::timeout)
        << "a delayed call finished before the undelayed one, "
        << absl::FormatDuration(absl::Now() - start) << " after it began";
  }
  for (auto& call : delayed) EXPECT_TRUE(call.get().ok());
}

TEST_F(FaultInjectionTest, ErrorRateOneFailsWithTheChosenCodeAndResourceExhaustedPushesBack) {
  ASSERT_TRUE(StartGateway(R"(
namespaces:
  - name: default
  - name: shed
    faults:
      error: {rate: 1.0, code: RESOURCE_EXHAUSTED, pushback: 250ms}
  - name: broken
    faults:
      error: {rate: 1, code: UNAVAILABLE}
  - name: readonly
    faults:
      error: {rate: 1, code: PERMISSION_DENIED, applies_to: writes}
)",
                           true)
                  .ok());
  grpc::ClientContext shed_ctx;
  grpc::Status status = Put("shed", &shed_ctx);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("injected"));
  EXPECT_EQ(Trailer(shed_ctx, "grpc-retry-pushback-ms"), "250");
  EXPECT_NE(Trailer(shed_ctx, "stategate-config-version"), "<absent>");

  grpc::ClientContext broken_ctx;
  status = Put("broken", &broken_ctx);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("injected"));
  EXPECT_EQ(Trailer(broken_ctx, "grpc-retry-pushback-ms"), "<absent>");
  EXPECT_EQ(Get("broken").error_code(), grpc::StatusCode::UNAVAILABLE);

  EXPECT_EQ(Put("readonly").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(Get("readonly").ok());
  EXPECT_TRUE(Put("default").ok());
}

TEST_F(FaultInjectionTest, SetFaultsAtRunTimeTakesEffectAndClearingRestoresService) {
  ASSERT_TRUE(StartGateway(kNamespaces, true).ok());
  ASSERT_TRUE(Put("default").ok());

  v1::FaultSpec faults;
  faults.mutable_error()->set_rate(1.0);
  faults.mutable_error()->set_code("resource_exhausted");
  v1::SetFaultsResponse set;
  ASSERT_TRUE(SetFaults("default", faults, &set).ok());
  EXPECT_EQ(set.faults().error().code(), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(set.faults().error().pushback_us(), 100000);  // the default
  EXPECT_EQ(set.faults().latency().share(), 1.0);

  grpc::ClientContext ctx;
  EXPECT_EQ(Put("default", &ctx).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(Trailer(ctx, "grpc-retry-pushback-ms"), "100");
  EXPECT_TRUE(Put("other").ok());
  v1::FaultSpec got;
  ASSERT_TRUE(GetFaults("default", &got).ok());
  EXPECT_EQ(got.error().rate(), 1.0);
  EXPECT_EQ(got.error().code(), "RESOURCE_EXHAUSTED");

  v1::FaultSpec slow;
  slow.mutable_latency()->set_delay_us(150000);
  ASSERT_TRUE(SetFaults("default", slow).ok());
  const absl::Time start = absl::Now();
  EXPECT_TRUE(Put("default").ok());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));

  ASSERT_TRUE(SetFaults("default", v1::FaultSpec()).ok());
  EXPECT_TRUE(Put("default").ok());
  ASSERT_TRUE(GetFaults("default", &got).ok());
  EXPECT_FALSE(got.has_latency());
  EXPECT_FALSE(got.has_error());
}

TEST_F(FaultInjectionTest, AdminValidatesWithTheFieldAndLimitNamed) {
  ASSERT_TRUE(StartGateway(kNamespaces, true).ok());
  struct Case {
    std::function<void(v1::FaultSpec&)> mutate;
    const char* message;
  };
  const Case cases[] = {
      {[](v1::FaultSpec& f) { f.mutable_latency()->set_share(1.5); },
       "faults.latency.share is 1.5; must be in [0, 1]"},
      {[](v1::FaultSpec& f) { f.mutable_error()->set_rate(-0.5); },
       "faults.error.rate is -0.5; must be in [0, 1]"},
      {[](v1::FaultSpec& f) { f.mutable_latency()->set_delay_us(61'000'000); },
       "faults.latency.delay_us is 61000000; must be in [0, 60000000]"},
      {[](v1::FaultSpec& f) { f.mutable_latency()->set_delay_us(-1); },
       "faults.latency.delay_us is -1"},
      {[](v1::FaultSpec& f) { f.mutable_error()->set_pushback_us(-1); },
       "faults.error.pushback_us is -1"},
      {[](v1::FaultSpec& f) { f.mutable_error()->set_code("OK"); }, "faults.error.code: 'OK'"},
      {[](v1::FaultSpec& f) { f.mutable_error()->set_code("SLOW"); }, "faults.error.code: 'SLOW'"},
      {[](v1::FaultSpec& f) { f.mutable_error()->set_applies_to("scans"); },
       "faults.error.applies_to: 'scans'"},
  };
  for (const Case& c : cases) {
    v1::FaultSpec faults;
    c.mutate(faults);
    grpc::Status status = SetFaults("default", faults);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.message;
    EXPECT_THAT(status.error_message(), HasSubstr(c.message));
  }
  // Nothing was set by the refused calls.
  EXPECT_TRUE(Put("default").ok());

  v1::FaultSpec faults;
  faults.mutable_error()->set_rate(1);
  grpc::Status status = SetFaults("nope", faults);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("'nope'"));
  v1::FaultSpec got;
  EXPECT_EQ(GetFaults("nope", &got).error_code(), grpc::StatusCode::NOT_FOUND);

  status = Pause(-1);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("duration_us is -1; must be in [0, 60000000]"));
  EXPECT_EQ(Pause(60'000'001).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(Pause(0).ok());  // no pause at all
}

TEST_F(FaultInjectionTest, AdminIsRefusedWithoutTheFlag) {
  ASSERT_TRUE(StartGateway(kNamespaces, false).ok());
  v1::FaultSpec faults;
  faults.mutable_error()->set_rate(1);
  grpc::Status status = SetFaults("default", faults);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("not started with --fault-injection"));
  v1::FaultSpec got;
  EXPECT_EQ(GetFaults("default", &got).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Pause(100000).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(Put("default").ok());
}

TEST_F(FaultInjectionTest, ConfigWithFaultsRefusesToStartWithoutTheFlag) {
  absl::Status status = StartGateway(R"(
namespaces:
  - name: default
    faults: {error: {rate: 0.5}}
)",
                                     false);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("not started with --fault-injection"));
  EXPECT_THAT(status.message(), HasSubstr("'default'"));
}

TEST_F(FaultInjectionTest, ReloadReplacesFaultsAndRefusesThemWithoutTheFlag) {
  ASSERT_TRUE(StartGateway(kNamespaces, true).ok());
  v1::FaultSpec faults;
  faults.mutable_error()->set_rate(1);
  ASSERT_TRUE(SetFaults("default", faults).ok());
  WriteConfig(R"(
namespaces:
  - name: default
  - name: other
    faults: {error: {rate: 1, code: ABORTED}}
)");
  ASSERT_TRUE(gateway_->Reload().ok());
  EXPECT_TRUE(Put("default").ok());  // the run-time fault is gone with the reload
  EXPECT_EQ(Put("other").error_code(), grpc::StatusCode::ABORTED);

  // A gateway without the flag refuses a reload that brings faults, and keeps serving.
  gateway_.reset();
  ASSERT_TRUE(StartGateway(kNamespaces, false).ok());
  WriteConfig(R"(
namespaces:
  - name: default
    faults: {error: {rate: 1}}
)");
  absl::Status reload = gateway_->Reload();
  EXPECT_EQ(reload.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(reload.message(), HasSubstr("--fault-injection"));
  EXPECT_TRUE(Put("default").ok());
}

TEST_F(FaultInjectionTest, DrainDoesNotWaitOutInjectedDelays) {
  ASSERT_TRUE(StartGateway(R"(
namespaces:
  - name: default
    faults: {latency: {delay: 50s}}
)",
                           true)
                  .ok());
  auto call = std::async(std::launch::async, [this] { return Put("default"); });
  absl::SleepFor(absl::Milliseconds(500));  // let it arrive and wait on the timer
  const absl::Time start = absl::Now();
  gateway_->Drain();
  // Far less than the delay: the drain released the call at once.
  EXPECT_LT(absl::Now() - start, absl::Seconds(25));
  ASSERT_EQ(call.wait_for(std::chrono::seconds(25)), std::future_status::ready);
  EXPECT_TRUE(call.get().ok());
}

}  // namespace
}  // namespace stategate
