#include "src/testbed/child_process.h"

#include <signal.h>
#include <sys/wait.h>

#include <filesystem>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace stategate::testbed {
namespace {

ChildProcessOptions Options(std::string binary, std::vector<std::string> args = {},
                            std::string log_path = "") {
  ChildProcessOptions options;
  options.binary = std::move(binary);
  options.args = std::move(args);
  options.log_path = std::move(log_path);
  return options;
}

class ChildProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> dir = MakeTempDir("stategate-child-test-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
};

TEST_F(ChildProcessTest, WritesOutputToTheLogAndReportsTheExitStatus) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> child =
      ChildProcess::Start(Options("sh", {"-c", "echo out; echo err >&2; exit 3"}, dir_ + "/log"));
  ASSERT_TRUE(child.ok()) << child.status();
  const std::optional<int> status = (*child)->Wait(absl::Seconds(10));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 3);
  EXPECT_EQ(DescribeWaitStatus(*status), "exited with status 3");
  EXPECT_EQ((*child)->pid(), -1);
  EXPECT_FALSE((*child)->Running());
  EXPECT_EQ((*child)->Log(), "out\nerr\n");
}

// The CPUs a child may run on, as its /proc/self/status says (e.g. "0" or "0-1").
std::string ChildCpus(const std::string& log_path) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> child = ChildProcess::Start(Options(
      "sh", {"-c", "sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status"}, log_path));
  EXPECT_TRUE(child.ok()) << child.status();
  if (!child.ok()) return "";
  EXPECT_TRUE((*child)->Wait(absl::Seconds(10)).has_value());
  std::string cpus = (*child)->Log();
  if (!cpus.empty() && cpus.back() == '\n') cpus.pop_back();
  return cpus;
}

TEST_F(ChildProcessTest, ChildrenRunOnTheCpusSetForThem) {
  const std::string all = ChildCpus(dir_ + "/before");
  ASSERT_FALSE(all.empty());
  ASSERT_TRUE(SetChildCpus({0}).ok());
  EXPECT_EQ(ChildCpus(dir_ + "/pinned"), "0");
  ASSERT_TRUE(SetChildCpus({}).ok());  // back to the parent's
  EXPECT_EQ(ChildCpus(dir_ + "/after"), all);
  EXPECT_TRUE(absl::IsInvalidArgument(SetChildCpus({-1})));
  EXPECT_TRUE(absl::IsInvalidArgument(PinThisProcess({})));
}

TEST_F(ChildProcessTest, KillStopsARunningChild) {
  absl::StatusOr<std::unique_ptr<ChildProcess>> child =
      ChildProcess::Start(Options("sleep", {"60"}));
  ASSERT_TRUE(child.ok()) << child.status();
  const pid_t pid = (*child)->pid();
  EXPECT_GT(pid, 0);
  EXPECT_TRUE((*child)->Running());
  EXPECT_FALSE((*child)->Wait(absl::Milliseconds(50)).has_value());
  const int status = (*child)->Kill();
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  EXPECT_FALSE((*child)->Running());
  EXPECT_EQ((*child)->Kill(), status);  // idempotent
}

TEST_F(ChildProcessTest, SignalReachesTheChildEvenWhenTheParentBlocksIt) {
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, &old);
  absl::StatusOr<std::unique_ptr<ChildProcess>> child =
      ChildProcess::Start(Options("sleep", {"60"}));
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ASSERT_TRUE(child.ok()) << child.status();
  (*child)->Signal(SIGTERM);
  const std::optional<int> status = (*child)->Wait(absl::Seconds(10));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFSIGNALED(*status));
  EXPECT_EQ(WTERMSIG(*status), SIGTERM);
}

TEST_F(ChildProcessTest, DestructorKillsTheChild) {
  pid_t pid = -1;
  {
    absl::StatusOr<std::unique_ptr<ChildProcess>> child =
        ChildProcess::Start(Options("sleep", {"60"}));
    ASSERT_TRUE(child.ok()) << child.status();
    pid = (*child)->pid();
  }
  EXPECT_NE(::kill(pid, 0), 0);  // reaped: no such process (unless the PID was reused)
}

TEST_F(ChildProcessTest, MissingBinaryIsNotFound) {
  EXPECT_EQ(ChildProcess::Start(Options("no-such-binary-stategate")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ChildProcess::Start(Options(dir_ + "/nothing")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(FreePortTest, ReturnsABindablePort) {
  const int port = FreePort();
  ASSERT_GT(port, 0);
  EXPECT_LT(port, 65536);
  EXPECT_TRUE(PortIsFree(port));
}

}  // namespace
}  // namespace stategate::testbed
