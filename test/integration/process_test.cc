// The real `stategate` binary as a process: crash safety under SIGKILL with sync
// durability, and a clean drain on SIGTERM.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "stategate/v1/kv.grpc.pb.h"
#include "test/lib/server_process.h"
#include "test/lib/temp_dir.h"

namespace stategate {
namespace {

struct Ack {
  std::string id;
  std::string value;
};

// Writes distinct records from several threads until stopped or the server is gone;
// returns every write the server acknowledged.
class Writers {
 public:
  Writers(const std::string& address, int threads) {
    auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, channel, t] {
        auto stub = v1::KeyValue::NewStub(channel);
        for (int i = 0; !stop_; ++i) {
          const std::string id = "w" + std::to_string(t) + "-" + std::to_string(i);
          const std::string value = "value of " + id;
          v1::PutItemsRequest request;
          request.set_namespace_("default");
          request.set_id(id);
          v1::Item* item = request.add_items();
          item->set_key("k");
          item->set_value(value);
          request.mutable_token()->set_generation_time_us(absl::ToUnixMicros(absl::Now()));
          request.mutable_token()->set_nonce(std::string(16, 'x'));
          grpc::ClientContext ctx;
          ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
          v1::PutItemsResponse response;
          grpc::Status status = stub->PutItems(&ctx, request, &response);
          if (status.ok()) {
            std::lock_guard lock(mu_);
            acked_.push_back({id, value});
          } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                     status.error_code() == grpc::StatusCode::CANCELLED) {
            // The server is gone, or shut down before this call reached it.
            failures_++;
            absl::SleepFor(absl::Milliseconds(10));
          } else {
            other_errors_++;
            std::lock_guard lock(mu_);
            last_other_error_ = std::to_string(status.error_code()) + " " + status.error_message();
          }
        }
      });
    }
  }

  std::vector<Ack> Stop() {
    stop_ = true;
    for (auto& t : threads_) t.join();
    return acked_;
  }
  size_t acked() {
    std::lock_guard lock(mu_);
    return acked_.size();
  }
  int other_errors() const { return other_errors_; }
  std::string last_other_error() {
    std::lock_guard lock(mu_);
    return last_other_error_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> failures_{0};
  std::atomic<int> other_errors_{0};
  std::mutex mu_;
  std::vector<Ack> acked_;
  std::string last_other_error_;
  std::vector<std::thread> threads_;
};

class ProcessTest : public ::testing::Test {
 protected:
  testing::ServerProcess MakeServer() {
    return testing::ServerProcess(STATEGATE_BINARY, {"--data-dir", dir_.path() + "/db"},
                                  dir_.path() + "/server.log");
  }

  // Restarts the server on the same data and counts acknowledged writes it lacks.
  size_t MissingAfterRestart(const std::vector<Ack>& acked) {
    testing::ServerProcess restarted = MakeServer();
    EXPECT_TRUE(restarted.Start()) << restarted.Log();
    auto stub = v1::KeyValue::NewStub(
        grpc::CreateChannel(restarted.address(), grpc::InsecureChannelCredentials()));
    size_t missing = 0;
    for (const Ack& ack : acked) {
      grpc::ClientContext ctx;
      v1::GetItemsRequest request;
      request.set_namespace_("default");
      request.set_id(ack.id);
      v1::GetItemsResponse response;
      grpc::Status status = stub->GetItems(&ctx, request, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (response.items_size() != 1 || response.items(0).value() != ack.value) ++missing;
    }
    return missing;
  }

  testing::TempDir dir_;
};

TEST_F(ProcessTest, EveryAcknowledgedWriteSurvivesSigkill) {
  std::vector<Ack> acked;
  {
    testing::ServerProcess server = MakeServer();
    ASSERT_TRUE(server.Start());
    Writers writers(server.address(), 8);
    // Kill mid-stream, once a good number of writes has been acknowledged.
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (writers.acked() < 1000 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
    server.Signal(SIGKILL);
    server.Wait();
    acked = writers.Stop();
    EXPECT_EQ(writers.other_errors(), 0) << writers.last_other_error();
  }
  ASSERT_GE(acked.size(), 1000u);
  EXPECT_EQ(MissingAfterRestart(acked), 0u) << "of " << acked.size() << " acknowledged writes";
}

TEST_F(ProcessTest, SigtermDrainsAndExitsZero) {
  testing::ServerProcess server = MakeServer();
  ASSERT_TRUE(server.Start());
  Writers writers(server.address(), 4);
  while (writers.acked() < 50) absl::SleepFor(absl::Milliseconds(5));
  server.Signal(SIGTERM);
  const int status = server.Wait();
  const std::vector<Ack> acked = writers.Stop();
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // Calls the drain turned away fail as UNAVAILABLE or CANCELLED, never as anything else,
  // and every call it let finish is durable.
  EXPECT_EQ(writers.other_errors(), 0) << writers.last_other_error() << "\n" << server.Log();
  EXPECT_EQ(MissingAfterRestart(acked), 0u) << "of " << acked.size() << " acknowledged writes";
}

}  // namespace
}  // namespace stategate
