// The reliable client against three real `stategate` processes holding the same data, one
// of them made slow, erroring or paused by fault injection: each mechanism must hide the
// fault from the caller, where a naive client (one attempt, no hedge) does not. Thresholds
// are wide (the injected delay is 10-25x the hedge delay) so that a loaded machine does not
// flip a result; nothing asserts an upper bound on a healthy call.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "src/common/priority.h"
#include "stategate/kv_client.h"
#include "stategate/v1/admin.grpc.pb.h"
#include "test/lib/server_process.h"
#include "test/lib/temp_dir.h"

namespace stategate {
namespace {

constexpr int kReplicas = 3;
constexpr int kRecords = 40;

class ReliableClientFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < kReplicas; ++i) {
      const std::string dir = dir_.path() + "/replica" + std::to_string(i);
      replicas_.push_back(std::make_unique<testing::ServerProcess>(
          STATEGATE_BINARY, std::vector<std::string>{"--data-dir", dir, "--fault-injection"},
          dir_.path() + "/replica" + std::to_string(i) + ".log"));
      ASSERT_TRUE(replicas_.back()->Start()) << replicas_.back()->Log();
    }
    // The same records on every replica.
    for (const auto& replica : replicas_) {
      auto writer = KvClient::Connect(KvClientOptions{.address = replica->address()});
      ASSERT_TRUE(writer.ok());
      for (int r = 0; r < kRecords; ++r) {
        ASSERT_TRUE((*writer)->Put("default", Id(r), "k", "value " + Id(r)).ok());
      }
    }
  }

  void TearDown() override {
    for (auto& replica : replicas_) replica->Signal(SIGCONT);  // never leave one stopped
  }

  static std::string Id(int r) { return "record-" + std::to_string(r); }

  // Every replica answers after `delay`; the client's AIMD limit starts at 20 per endpoint
  // and a call over it on every endpoint waits up to `wait` for a permit.
  std::unique_ptr<KvClient> SlowLimitedClient(absl::Duration wait,
                                              absl::Duration delay = absl::Seconds(1)) {
    v1::FaultSpec slow;
    slow.mutable_latency()->set_delay_us(absl::ToInt64Microseconds(delay));
    for (int i = 0; i < kReplicas; ++i) SetFaults(i, slow);
    ReliabilityOptions limited = ReliabilityOptions::Naive();
    limited.limiter = "aimd";
    limited.limiter_max_wait = wait;
    return Client(limited, std::max(absl::Seconds(10), wait));
  }

  // The answers of calls, and how many of them were refused.
  struct Tally {
    std::atomic<int> done{0};
    std::atomic<int> refused{0};
    void Count(const absl::Status& status) {
      if (absl::IsResourceExhausted(status)) ++refused;
      ++done;
    }
    std::function<void(absl::Status)> Counter() {
      return [this](absl::Status status) { Count(status); };
    }
  };

  static void GetAs(KvClient& client, Priority priority, std::function<void(absl::Status)> then) {
    client.GetAsync(
        "default", Id(0), "k",
        [then = std::move(then)](absl::StatusOr<std::string> value) { then(value.status()); },
        CallOptions{.priority = priority});
  }

  std::unique_ptr<KvClient> Client(ReliabilityOptions reliability,
                                   absl::Duration timeout = absl::Seconds(2)) {
    KvClientOptions options;
    options.address = replicas_[0]->address();
    for (int i = 1; i < kReplicas; ++i) options.more_addresses.push_back(replicas_[i]->address());
    options.timeout = timeout;
    options.reliability = reliability;
    auto client = KvClient::Connect(options);
    EXPECT_TRUE(client.ok()) << client.status();
    // Learn the namespace's SLOs before measuring, as a long-lived client would have.
    EXPECT_TRUE((*client)->Handshake({"default"}).ok());
    return *std::move(client);
  }

  void SetFaults(int replica, const v1::FaultSpec& faults) {
    auto admin = v1::Admin::NewStub(
        grpc::CreateChannel(replicas_[replica]->address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    v1::SetFaultsRequest request;
    request.set_namespace_("default");
    *request.mutable_faults() = faults;
    v1::SetFaultsResponse response;
    const grpc::Status status = admin->SetFaults(&ctx, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  struct RunResult {
    int ok = 0;
    int failed = 0;
    absl::Duration p99;
    std::vector<absl::StatusCode> codes;
  };

  // Reads every record `rounds` times in sequence and measures each Get.
  static RunResult ReadAll(KvClient& client, int rounds) {
    RunResult result;
    std::vector<absl::Duration> latencies;
    for (int round = 0; round < rounds; ++round) {
      for (int r = 0; r < kRecords; ++r) {
        const absl::Time start = absl::Now();
        absl::StatusOr<std::string> value = client.Get("default", Id(r), "k");
        latencies.push_back(absl::Now() - start);
        if (value.ok() && *value == "value " + Id(r)) {
          ++result.ok;
        } else {
          ++result.failed;
          result.codes.push_back(value.status().code());
        }
      }
    }
    std::sort(latencies.begin(), latencies.end());
    result.p99 = latencies[latencies.size() * 99 / 100];
    return result;
  }

  testing::TempDir dir_;
  std::vector<std::unique_ptr<testing::ServerProcess>> replicas_;
};

TEST_F(ReliableClientFaultTest, HedgingKeepsP99UnderTheSloWithOneSlowReplica) {
  constexpr absl::Duration kDelay = absl::Milliseconds(250);
  v1::FaultSpec slow;
  slow.mutable_latency()->set_delay_us(absl::ToInt64Microseconds(kDelay));
  SetFaults(0, slow);

  std::unique_ptr<KvClient> naive = Client(ReliabilityOptions::Naive());
  const RunResult naive_run = ReadAll(*naive, 1);
  EXPECT_EQ(naive_run.failed, 0);
  EXPECT_GE(naive_run.p99, kDelay) << "a third of naive calls go to the slow replica";

  std::unique_ptr<KvClient> full = Client(ReliabilityOptions());
  const RunResult full_run = ReadAll(*full, 3);
  EXPECT_EQ(full_run.failed, 0);
  // The default namespace's point-read SLO target is 10 ms; the hedge fires by then.
  EXPECT_LT(full_run.p99, kDelay / 2) << "hedges: " << full->stats().hedges;

  // Hedging alone, without load unbalancing steering away from the slow replica.
  ReliabilityOptions hedge_only = ReliabilityOptions::Naive();
  hedge_only.hedging = true;
  hedge_only.hedge_share = 1.0;  // every call may hedge: this test is about the mechanism
  std::unique_ptr<KvClient> hedging = Client(hedge_only);
  const RunResult hedge_run = ReadAll(*hedging, 3);
  EXPECT_EQ(hedge_run.failed, 0);
  EXPECT_LT(hedge_run.p99, kDelay / 2);
  const KvClientStats stats = hedging->stats();
  EXPECT_GT(stats.hedges, 0);
  EXPECT_GT(stats.hedges_won, 0);
}

TEST_F(ReliableClientFaultTest, RetriesHideAnErroringReplica) {
  v1::FaultSpec erroring;
  erroring.mutable_error()->set_rate(1.0);
  erroring.mutable_error()->set_code("UNAVAILABLE");
  SetFaults(1, erroring);

  std::unique_ptr<KvClient> naive = Client(ReliabilityOptions::Naive());
  const RunResult naive_run = ReadAll(*naive, 1);
  EXPECT_GT(naive_run.failed, 0) << "round robin sends a third of calls to the broken replica";
  EXPECT_THAT(naive_run.codes, ::testing::Each(absl::StatusCode::kUnavailable));

  ReliabilityOptions retry_only = ReliabilityOptions::Naive();
  retry_only.retries = true;
  std::unique_ptr<KvClient> retrying = Client(retry_only);
  const RunResult run = ReadAll(*retrying, 2);
  EXPECT_EQ(run.failed, 0);
  const KvClientStats stats = retrying->stats();
  EXPECT_GT(stats.retries, 0);
  // Retries stay within the budget: 20 % of requests plus the 10/s floor's reserve.
  EXPECT_LE(stats.retries, stats.calls / 5 + 100);
}

TEST_F(ReliableClientFaultTest, NoCallFailsWhileAReplicaIsStopped) {
  replicas_[2]->Signal(SIGSTOP);
  std::unique_ptr<KvClient> full = Client(ReliabilityOptions());
  const RunResult run = ReadAll(*full, 2);
  replicas_[2]->Signal(SIGCONT);
  EXPECT_EQ(run.failed, 0);
  EXPECT_LT(run.p99, absl::Seconds(1));
}

TEST_F(ReliableClientFaultTest, OverloadFailsFastInsteadOfQueueing) {
  v1::FaultSpec slow;
  slow.mutable_latency()->set_delay_us(absl::ToInt64Microseconds(absl::Milliseconds(300)));
  for (int i = 0; i < kReplicas; ++i) SetFaults(i, slow);

  ReliabilityOptions limited = ReliabilityOptions::Naive();
  limited.limiter = "aimd";  // starts at 20 per endpoint: 60 in flight at most
  std::unique_ptr<KvClient> client = Client(limited);
  constexpr int kCallers = 120;
  std::atomic<int> ok{0}, refused{0}, other{0};
  std::atomic<int64_t> slowest_refusal_us{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < kCallers; ++t) {
    callers.emplace_back([&, t] {
      const absl::Time start = absl::Now();
      absl::StatusOr<std::string> value = client->Get("default", Id(t % kRecords), "k");
      const int64_t elapsed_us = absl::ToInt64Microseconds(absl::Now() - start);
      if (value.ok()) {
        ++ok;
      } else if (value.status().code() == absl::StatusCode::kResourceExhausted) {
        ++refused;
        int64_t seen = slowest_refusal_us.load();
        while (elapsed_us > seen && !slowest_refusal_us.compare_exchange_weak(seen, elapsed_us)) {
        }
      } else {
        ++other;
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_GT(refused.load(), 0) << "ok " << ok << ", other " << other;
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(other.load(), 0);
  // A refusal is local and immediate: far less than the 300 ms a queued call would wait.
  EXPECT_LT(slowest_refusal_us.load(), 150'000);
  EXPECT_EQ(client->stats().limiter_refusals, refused.load());
}

// Over the limit with limiter_max_wait, a call waits for a permit instead of failing, and
// freed permits go to the most important waiting tier first. Every replica answers after
// 300 ms, so permits free in rounds 300 ms apart: 60 normal calls fill what normal calls
// may use, then 60 critical calls fill the rest and queue; the normal calls that had to
// wait get a permit only once no critical call waits, a round or more after them.
TEST_F(ReliableClientFaultTest, CallsOverTheLimitWaitForAPermitTheMostImportantFirst) {
  constexpr absl::Duration kDelay = absl::Milliseconds(300);
  std::unique_ptr<KvClient> client = SlowLimitedClient(absl::Seconds(20), kDelay);
  struct Outcome {
    Priority priority;
    absl::Status status;
    absl::Duration took;  // from the start of the test
  };
  std::mutex mu;
  std::vector<Outcome> outcomes;
  const absl::Time start = absl::Now();
  constexpr int kPerTier = 60;
  for (Priority priority : {Priority::kNormal, Priority::kCritical}) {
    for (int c = 0; c < kPerTier; ++c) {
      client->GetAsync(
          "default", Id(c % kRecords), "k",
          [&, priority](absl::StatusOr<std::string> value) {
            std::lock_guard lock(mu);
            outcomes.push_back({priority, value.status(), absl::Now() - start});
          },
          CallOptions{.priority = priority});
    }
  }
  for (absl::Time give_up = absl::Now() + absl::Seconds(30); absl::Now() < give_up;) {
    {
      std::lock_guard lock(mu);
      if (outcomes.size() == 2 * kPerTier) break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  std::lock_guard lock(mu);
  ASSERT_EQ(outcomes.size(), 2u * kPerTier);
  absl::Duration last_critical, first_waiting_normal = absl::InfiniteDuration();
  int waiting_normals = 0;
  for (const Outcome& outcome : outcomes) {
    EXPECT_TRUE(outcome.status.ok()) << outcome.status;
    if (outcome.priority == Priority::kCritical) {
      last_critical = std::max(last_critical, outcome.took);
    } else if (outcome.took > kDelay * 3 / 2) {  // not answered in the first round
      ++waiting_normals;
      first_waiting_normal = std::min(first_waiting_normal, outcome.took);
    }
  }
  EXPECT_EQ(client->stats().limiter_refusals, 0);
  ASSERT_GT(waiting_normals, 0) << "every normal call got a permit at once";
  // At best in the same round as the last critical call (half a round of slack).
  EXPECT_GE(first_waiting_normal, last_critical - kDelay / 2)
      << waiting_normals << " normal calls waited; the first finished after "
      << first_waiting_normal << ", the last critical one after " << last_critical;
}

// Waiting is for bursts. Once calls of a tier have waited out limiter_max_wait in vain for
// 100 ms on end (the replicas answer after 1 s, so no permit frees: waits run out at 300 ms
// and at 450 ms), further calls of that tier and of less important ones fail at once
// instead of waiting too: an overload is shed at the door, in well under the wait.
TEST_F(ReliableClientFaultTest, AfterWaitsRunOutAnOverloadedClientStopsQueueing) {
  constexpr absl::Duration kWait = absl::Milliseconds(300);
  // 20 per endpoint: normal calls may hold 16 of them.
  std::unique_ptr<KvClient> client = SlowLimitedClient(kWait);
  // The handshake's permit ages out of the count of released ones: with none released in
  // a wait, no wait is foreseen in vain (ACallThatWouldWaitInVainIsRefusedAtOnce), and
  // these calls do wait and run out.
  absl::SleepFor(kWait * 3 / 2);

  Tally tally;
  constexpr int kFirst = 80;   // 48 get a permit, 32 wait and run out
  constexpr int kSecond = 10;  // wait 150 ms later, and run out 150 ms later
  for (int c = 0; c < kFirst; ++c) GetAs(*client, Priority::kNormal, tally.Counter());
  absl::SleepFor(absl::Milliseconds(150));
  for (int c = 0; c < kSecond; ++c) GetAs(*client, Priority::kNormal, tally.Counter());
  // Waits that ran out all at once are a burst, not yet an overload: a call made right
  // after the first 32 ran out (at 300 ms) still waits its 300 ms.
  for (absl::Time give_up = absl::Now() + absl::Seconds(5);
       tally.refused.load() < kFirst - 48 && absl::Now() < give_up;) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  const absl::Time probe_start = absl::Now();
  std::atomic<int64_t> probe_us{-1};
  GetAs(*client, Priority::kNormal, [&](absl::Status status) {
    probe_us = absl::ToInt64Microseconds(absl::Now() - probe_start);
    tally.Count(status);
  });
  for (absl::Time give_up = absl::Now() + absl::Seconds(5);
       tally.refused.load() < kFirst + kSecond + 1 - 48 && absl::Now() < give_up;) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  ASSERT_EQ(tally.refused.load(), kFirst + kSecond + 1 - 48);
  EXPECT_GE(probe_us.load(), absl::ToInt64Microseconds(kWait) * 3 / 4);

  // Normal and sheddable calls now fail at once, as the first ones did after their wait.
  for (Priority priority : {Priority::kNormal, Priority::kSheddable}) {
    const absl::Time start = absl::Now();
    absl::Notification answered;
    absl::Status status;
    GetAs(*client, priority, [&](absl::Status s) {
      status = s;
      answered.Notify();
    });
    answered.WaitForNotification();
    EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
    EXPECT_LT(absl::Now() - start, kWait / 2) << PriorityName(priority);
  }
  for (absl::Time give_up = absl::Now() + absl::Seconds(10);
       tally.done.load() < kFirst + kSecond + 1 && absl::Now() < give_up;) {
    absl::SleepFor(absl::Milliseconds(10));
  }
}

// A call whose wait could not win a permit is refused at once, not at its end: shed in
// microseconds. Every replica answers after 400 ms and calls wait 300 ms at most. 60
// critical calls take every permit and free them at 400 ms. Then 60 more critical calls
// ask (some take a permit, the others wait), and 200 normal calls: critical calls took
// every permit that freed lately and some still wait, so none is due to a normal call in
// its wait, and each is refused at once, as is one more made after them. None of them
// could have had a permit: the next free at 800 ms, after every wait has ended.
TEST_F(ReliableClientFaultTest, ACallThatWouldWaitInVainIsRefusedAtOnce) {
  constexpr absl::Duration kDelay = absl::Milliseconds(400);
  std::unique_ptr<KvClient> client = SlowLimitedClient(absl::Milliseconds(300), kDelay);

  Tally critical;
  for (int c = 0; c < 60; ++c) GetAs(*client, Priority::kCritical, critical.Counter());
  for (absl::Time give_up = absl::Now() + absl::Seconds(5);
       critical.done.load() < 60 && absl::Now() < give_up;) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_EQ(critical.done.load(), 60) << "the first round was not answered";
  for (int c = 0; c < 60; ++c) GetAs(*client, Priority::kCritical, critical.Counter());
  Tally normal;
  for (int c = 0; c < 200; ++c) GetAs(*client, Priority::kNormal, normal.Counter());

  const absl::Time start = absl::Now();
  absl::Notification answered;
  absl::Status last;
  absl::Duration took;
  GetAs(*client, Priority::kNormal, [&](absl::Status status) {
    last = status;
    took = absl::Now() - start;
    answered.Notify();
  });
  ASSERT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_TRUE(absl::IsResourceExhausted(last)) << last;
  EXPECT_LT(took, kDelay / 4) << "refused only after waiting";
  // Refusing at once refused nothing that waiting would have served.
  for (absl::Time give_up = absl::Now() + absl::Seconds(5);
       (normal.done.load() < 200 || critical.done.load() < 120) && absl::Now() < give_up;) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(normal.done.load(), 200);
  EXPECT_EQ(normal.refused.load(), 200);
}

// While critical calls wait in vain (their door is closed), a sheddable call takes no
// permit, even a free one: the critical calls need it more. A critical call takes it.
TEST_F(ReliableClientFaultTest, WhileCriticalCallsStarveLessImportantOnesTakeNoPermit) {
  constexpr absl::Duration kWait = absl::Milliseconds(600);  // the door: 1.2 s after a run-out
  std::unique_ptr<KvClient> client = SlowLimitedClient(kWait);

  Tally tally;
  // 60 get a permit and are answered after 1 s; 30 wait and run out at 600 ms, 10 more at
  // 800 ms: critical waits have run out for 200 ms on end, and the door stays closed until
  // about 2 s.
  const absl::Time start = absl::Now();
  for (int c = 0; c < 90; ++c) GetAs(*client, Priority::kCritical, tally.Counter());
  absl::SleepFor(absl::Milliseconds(200));
  for (int c = 0; c < 10; ++c) GetAs(*client, Priority::kCritical, tally.Counter());
  for (absl::Time give_up = absl::Now() + absl::Seconds(10);
       tally.done.load() < 100 && absl::Now() < give_up;) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_EQ(tally.done.load(), 100);
  ASSERT_EQ(tally.refused.load(), 40);
  // Every permit is free now, and the door is still closed.
  ASSERT_LT(absl::Now() - start, absl::Milliseconds(1800)) << "the machine stalled too long";

  absl::Notification sheddable_answered;
  absl::Status sheddable;
  GetAs(*client, Priority::kSheddable, [&](absl::Status status) {
    sheddable = status;
    sheddable_answered.Notify();
  });
  absl::Notification critical_answered;
  absl::Status critical;
  GetAs(*client, Priority::kCritical, [&](absl::Status status) {
    critical = status;
    critical_answered.Notify();
  });
  ASSERT_TRUE(sheddable_answered.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_TRUE(absl::IsResourceExhausted(sheddable)) << sheddable;
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1900)) << "refused at once, not sent";
  ASSERT_TRUE(critical_answered.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_TRUE(critical.ok()) << critical;
}

TEST_F(ReliableClientFaultTest, ClientPausedPastItsTimeoutStillGetsTheAnswer) {
  // The server answers after 50 ms; the client stops for 600 ms from 20 ms into a call whose
  // timeout is 300 ms. The answer arrives in time but is read late.
  v1::FaultSpec slowish;
  slowish.mutable_latency()->set_delay_us(50'000);
  for (int i = 0; i < kReplicas; ++i) SetFaults(i, slowish);
  ReliabilityOptions gc_tolerant = ReliabilityOptions::Naive();
  gc_tolerant.gc_tolerant_timeouts = true;
  std::unique_ptr<KvClient> client = Client(gc_tolerant, absl::Milliseconds(300));
  ASSERT_TRUE(client->Get("default", Id(0), "k").ok());  // warm the channel

  const pid_t self = ::getpid();
  const pid_t pauser = ::fork();
  if (pauser == 0) {
    ::usleep(20'000);
    ::kill(self, SIGSTOP);
    ::usleep(600'000);
    ::kill(self, SIGCONT);
    ::_exit(0);
  }
  absl::StatusOr<std::string> value = client->Get("default", Id(1), "k");
  ::waitpid(pauser, nullptr, 0);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(*value, "value " + Id(1));
}

}  // namespace
}  // namespace stategate
