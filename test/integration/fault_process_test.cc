// Fault injection in the real `stategate` binary: Admin.Pause stops the whole process (a
// call made meanwhile completes only after the pause), the server serves and handles
// signals normally afterwards, and a config with faults is refused without the flag.
#include <dirent.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <fstream>
#include <future>
#include <sstream>

#include "stategate/v1/admin.grpc.pb.h"
#include "stategate/v1/kv.grpc.pb.h"
#include "test/lib/server_process.h"
#include "test/lib/temp_dir.h"

namespace stategate {
namespace {

// The state letter of a process in /proc/<pid>/stat ('T' = stopped), or '?'.
char ProcessState(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  const size_t paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() ? '?' : line[paren + 2];
}

// Processes whose parent is `pid` (zombies included).
std::vector<pid_t> Children(pid_t pid) {
  std::vector<pid_t> children;
  DIR* proc = ::opendir("/proc");
  while (dirent* entry = ::readdir(proc)) {
    const pid_t candidate = std::atoi(entry->d_name);
    if (candidate <= 0) continue;
    std::ifstream in("/proc/" + std::to_string(candidate) + "/stat");
    std::string line;
    std::getline(in, line);
    const size_t paren = line.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream rest(line.substr(paren + 2));
    char state;
    pid_t parent = 0;
    rest >> state >> parent;
    if (parent == pid) children.push_back(candidate);
  }
  ::closedir(proc);
  return children;
}

grpc::Status Put(v1::KeyValue::Stub& kv, const std::string& id) {
  v1::PutItemsRequest request;
  request.set_namespace_("default");
  request.set_id(id);
  v1::Item* item = request.add_items();
  item->set_key("k");
  item->set_value("v");
  request.mutable_token()->set_generation_time_us(absl::ToUnixMicros(absl::Now()));
  request.mutable_token()->set_nonce(std::string(16, 'p'));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  v1::PutItemsResponse response;
  return kv.PutItems(&ctx, request, &response);
}

class FaultProcessTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;
};

TEST_F(FaultProcessTest, PauseStopsTheWholeProcessThenItServesAndDrainsNormally) {
  testing::ServerProcess server(STATEGATE_BINARY,
                                {"--fault-injection", "--data-dir", dir_.path() + "/db"},
                                dir_.path() + "/server.log");
  ASSERT_TRUE(server.Start()) << server.Log();
  auto channel = grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials());
  auto kv = v1::KeyValue::NewStub(channel);
  auto admin = v1::Admin::NewStub(channel);
  ASSERT_TRUE(Put(*kv, "before").ok());

  constexpr absl::Duration kPause = absl::Milliseconds(300);
  const absl::Time asked = absl::Now();
  auto pause = std::async(std::launch::async, [&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    v1::PauseRequest request;
    request.set_duration_us(absl::ToInt64Microseconds(kPause));
    v1::PauseResponse response;
    grpc::Status status = admin->Pause(&ctx, request, &response);
    return std::pair(status, absl::Now());
  });
  // The kernel shows the whole process stopped; only then is the call made.
  bool stopped = false;
  for (absl::Time limit = absl::Now() + absl::Seconds(10); !stopped && absl::Now() < limit;) {
    stopped = ProcessState(server.pid()) == 'T';
    if (!stopped) absl::SleepFor(absl::Microseconds(200));
  }
  ASSERT_TRUE(stopped) << "the server never showed as stopped\n" << server.Log();
  grpc::Status during = Put(*kv, "during");
  const absl::Time during_done = absl::Now();
  EXPECT_TRUE(during.ok()) << during.error_message();
  // The pause began after it was asked for, so it ended at least kPause after that, and the
  // call made while the process was stopped could only complete after it.
  EXPECT_GE(during_done - asked, kPause);

  auto [pause_status, pause_done] = pause.get();
  EXPECT_TRUE(pause_status.ok()) << pause_status.error_message();
  EXPECT_GE(pause_done - asked, kPause);

  // Serving normally again; the helper child was reaped.
  EXPECT_NE(ProcessState(server.pid()), 'T');
  EXPECT_TRUE(Put(*kv, "after").ok());
  EXPECT_TRUE(Children(server.pid()).empty());

  // Signal handling survived the stop: SIGTERM still drains and exits 0. (The connection is
  // closed first: an idle open one would hold the drain for its whole drain_timeout.)
  kv.reset();
  admin.reset();
  channel.reset();
  server.Signal(SIGTERM);
  const int status = server.Wait();
  ASSERT_TRUE(WIFEXITED(status)) << status << "\n" << server.Log();
  EXPECT_EQ(WEXITSTATUS(status), 0) << server.Log();
}

TEST_F(FaultProcessTest, ConfigWithFaultsButNoFlagRefusesToStart) {
  const std::string config = dir_.path() + "/stategate.yaml";
  std::ofstream(config) << "namespaces: [{name: default, faults: {latency: {delay: 10ms}}}]\n";
  testing::ServerProcess server(STATEGATE_BINARY,
                                {"--config", config, "--data-dir", dir_.path() + "/db"},
                                dir_.path() + "/server.log");
  EXPECT_FALSE(server.Start(absl::Seconds(10)));
  EXPECT_NE(server.Log().find("not started with --fault-injection"), std::string::npos)
      << server.Log();
}

}  // namespace
}  // namespace stategate
