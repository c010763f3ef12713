#include "src/bench/direct_targets.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/redis/cluster_client.h"
#include "src/testbed/memcached_server.h"
#include "src/testbed/redis_cluster.h"
#include "src/testbed/redis_server.h"

namespace stategate::bench {
namespace {

// SIGSTOPs `pid` and waits (up to 1 s) until every one of its threads has stopped: kill()
// returns before a thread running on another core reaches the stop, and a multi-threaded
// server (memcached) could otherwise still answer the next request.
bool StopAndWait(pid_t pid) {
  if (::kill(pid, SIGSTOP) != 0) return false;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  const absl::Time give_up = absl::Now() + absl::Seconds(1);
  while (absl::Now() < give_up) {
    bool all_stopped = true;
    std::error_code error;
    for (const auto& task : std::filesystem::directory_iterator(tasks, error)) {
      std::ifstream in(task.path() / "stat");
      std::string line;
      std::getline(in, line);
      const size_t close = line.rfind(')');
      if (close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'T') {
        all_stopped = false;
      }
    }
    if (!error && all_stopped) return true;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return false;
}

using ::testing::ElementsAreArray;
using ::testing::UnorderedElementsAreArray;
using ycsb::OpKind;

// Long enough for any operation on a healthy local server, and for a failover.
constexpr absl::Duration kOpWait = absl::Seconds(20);

// Collects what the targets' ReadObserver sees.
class Observed {
 public:
  ReadObserver observer() {
    return [this](const TargetOp& op, const std::vector<ReadRecord>& read) {
      absl::MutexLock lock(&mu_);
      last_[op.key] = read;
    };
  }
  // What the last read, scan or read-modify-write of `key` read.
  std::vector<ReadRecord> Last(const std::string& key) {
    absl::MutexLock lock(&mu_);
    return last_[key];
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, std::vector<ReadRecord>> last_ ABSL_GUARDED_BY(mu_);
};

// Starts `op` and waits for its outcome; fails the test if `done` runs other than once.
absl::Status RunOp(Target& target, TargetOp op) {
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto status = std::make_shared<absl::Status>();
  auto finished = std::make_shared<absl::Notification>();
  target.Start(std::move(op), [calls, status, finished](absl::Status s) {
    if (calls->fetch_add(1) == 0) {
      *status = std::move(s);
      finished->Notify();
    }
  });
  if (!finished->WaitForNotificationWithTimeout(kOpWait)) {
    ADD_FAILURE() << "an operation did not complete in " << kOpWait;
    return absl::DeadlineExceededError("test: no outcome");
  }
  absl::SleepFor(absl::Milliseconds(1));  // room for a second, wrong, call of done
  EXPECT_EQ(calls->load(), 1);
  return *status;
}

TargetOp Op(OpKind kind, std::string key, RecordFields fields = {}, int64_t scan_length = 0) {
  TargetOp op;
  op.kind = kind;
  op.key = std::move(key);
  op.fields = std::move(fields);
  op.scan_length = scan_length;
  return op;
}

RecordFields FieldsOf(int record, absl::string_view tag = "v") {
  RecordFields fields;
  for (int f = 0; f < 3; ++f) {
    fields.emplace_back(absl::StrCat("field", f), absl::StrCat(tag, record, "-", f));
  }
  return fields;
}

int64_t Bytes(const std::string& key, const RecordFields& fields = {}) {
  int64_t bytes = key.size();
  for (const auto& [name, value] : fields) bytes += name.size() + value.size();
  return bytes;
}

// The checks every target passes: insert, read, update, read-modify-write, a missing key.
// `partial_update_keeps_other_fields` is false for memcached, whose update stores the given
// fields only. Keys start with `prefix`.
void ExerciseRecords(Target& target, Observed& observed, const std::string& prefix,
                     bool partial_update_keeps_other_fields) {
  const int64_t before = target.payload_bytes_sent();
  int64_t expected_bytes = 0;
  constexpr int kRecords = 20;
  for (int i = 0; i < kRecords; ++i) {
    const std::string key = absl::StrCat(prefix, i);
    ASSERT_TRUE(RunOp(target, Op(OpKind::kInsert, key, FieldsOf(i))).ok()) << key;
    expected_bytes += Bytes(key, FieldsOf(i));
  }
  for (int i = 0; i < kRecords; ++i) {
    const std::string key = absl::StrCat(prefix, i);
    const absl::Status status = RunOp(target, Op(OpKind::kRead, key));
    ASSERT_TRUE(status.ok()) << status;
    expected_bytes += Bytes(key);
    const std::vector<ReadRecord> read = observed.Last(key);
    ASSERT_EQ(read.size(), 1u);
    EXPECT_EQ(read[0].key, key);
    EXPECT_THAT(read[0].fields, UnorderedElementsAreArray(FieldsOf(i)));
  }

  // Update one field.
  const std::string updated = absl::StrCat(prefix, 0);
  const RecordFields update = {{"field1", "new value"}};
  ASSERT_TRUE(RunOp(target, Op(OpKind::kUpdate, updated, update)).ok());
  expected_bytes += Bytes(updated, update);
  ASSERT_TRUE(RunOp(target, Op(OpKind::kRead, updated)).ok());
  expected_bytes += Bytes(updated);
  RecordFields after_update = update;
  if (partial_update_keeps_other_fields) {
    after_update = FieldsOf(0);
    after_update[1].second = "new value";
  }
  ASSERT_EQ(observed.Last(updated).size(), 1u);
  EXPECT_THAT(observed.Last(updated)[0].fields, UnorderedElementsAreArray(after_update));

  // Read-modify-write: reads the whole record, then writes.
  const std::string modified = absl::StrCat(prefix, 1);
  const RecordFields write = {{"field2", "modified"}};
  ASSERT_TRUE(RunOp(target, Op(OpKind::kReadModifyWrite, modified, write)).ok());
  expected_bytes += Bytes(modified) + Bytes(modified, write);
  ASSERT_EQ(observed.Last(modified).size(), 1u);
  EXPECT_THAT(observed.Last(modified)[0].fields, UnorderedElementsAreArray(FieldsOf(1)));
  ASSERT_TRUE(RunOp(target, Op(OpKind::kRead, modified)).ok());
  expected_bytes += Bytes(modified);
  RecordFields after_write = write;
  if (partial_update_keeps_other_fields) {
    after_write = FieldsOf(1);
    after_write[2].second = "modified";
  }
  EXPECT_THAT(observed.Last(modified)[0].fields, UnorderedElementsAreArray(after_write));

  // A record that does not exist.
  const std::string missing = absl::StrCat(prefix, "missing");
  absl::Status status = RunOp(target, Op(OpKind::kRead, missing));
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
  expected_bytes += Bytes(missing);
  status = RunOp(target, Op(OpKind::kReadModifyWrite, missing, write));
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
  expected_bytes += Bytes(missing);  // the read only: nothing to modify
  EXPECT_TRUE(absl::IsNotFound(RunOp(target, Op(OpKind::kRead, missing))));
  expected_bytes += Bytes(missing);

  // Operations that make no sense are refused before they are sent.
  EXPECT_TRUE(absl::IsInvalidArgument(RunOp(target, Op(OpKind::kUpdate, updated))));
  EXPECT_TRUE(absl::IsInvalidArgument(RunOp(target, Op(OpKind::kRead, ""))));

  EXPECT_EQ(target.payload_bytes_sent() - before, expected_bytes);
}

// Many operations from several threads at once: every one completes, exactly once, OK.
void ExerciseConcurrently(Target& target, const std::string& prefix) {
  constexpr int kThreads = 6;
  constexpr int kKeys = 10;
  constexpr int kPerThread = 200;
  // Shared with the callbacks, which may outlive this function if the test fails.
  struct State {
    absl::Mutex mu;
    int done ABSL_GUARDED_BY(mu) = 0;
    std::atomic<int> failed{0};
    std::atomic<int> twice{0};
  };
  auto state = std::make_shared<State>();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&target, &prefix, state, t] {
      // The records first, so that no read races its insert.
      for (int k = 0; k < kKeys; ++k) {
        const std::string key = absl::StrCat(prefix, t, "-", k);
        EXPECT_TRUE(RunOp(target, Op(OpKind::kInsert, key, FieldsOf(k))).ok()) << key;
      }
      for (int i = 0; i < kPerThread; ++i) {
        const std::string key = absl::StrCat(prefix, t, "-", i % kKeys);
        const OpKind kind = i % 3 == 0   ? OpKind::kUpdate
                            : i % 3 == 1 ? OpKind::kRead
                                         : OpKind::kReadModifyWrite;
        RecordFields fields = kind == OpKind::kRead ? RecordFields{} : FieldsOf(i, "w");
        auto called = std::make_shared<std::atomic<bool>>(false);
        target.Start(Op(kind, key, std::move(fields)), [state, called](absl::Status status) {
          if (called->exchange(true)) ++state->twice;
          if (!status.ok()) {
            ++state->failed;
            ADD_FAILURE() << status;
          }
          absl::MutexLock lock(&state->mu);
          ++state->done;
        });
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  absl::MutexLock lock(&state->mu);
  EXPECT_TRUE(state->mu.AwaitWithTimeout(absl::Condition(
                                             +[](State* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) {
                                               return s->done == kThreads * kPerThread;
                                             },
                                             state.get()),
                                         kOpWait))
      << state->done << " of " << kThreads * kPerThread << " completed";
  EXPECT_EQ(state->failed.load(), 0);
  EXPECT_EQ(state->twice.load(), 0);
}

// The keys of `index` (ZRANGE WITHSCORES) in index order, with their scores.
std::vector<std::pair<int64_t, std::string>> IndexEntries(const testbed::RedisReply& reply) {
  std::vector<std::pair<int64_t, std::string>> entries;
  for (size_t i = 0; i + 1 < reply.elements.size(); i += 2) {
    int64_t score = 0;
    EXPECT_TRUE(absl::SimpleAtoi(reply.elements[i + 1].str, &score));
    entries.emplace_back(score, reply.elements[i].str);
  }
  return entries;
}

// Scans from several start keys and checks each against the index as Redis holds it (read
// with ZRANGE on `index_port`): the records from the start key's score on, in index order,
// `length` of them or as many as there are.
void ExerciseScan(Target& target, Observed& observed, const std::string& prefix, int index_port) {
  ASSERT_TRUE(target.Supports(OpKind::kScan));
  constexpr int kRecords = 30;
  for (int i = 0; i < kRecords; ++i) {
    ASSERT_TRUE(RunOp(target, Op(OpKind::kInsert, absl::StrCat(prefix, i), FieldsOf(i))).ok());
  }
  absl::StatusOr<testbed::RedisReply> index =
      testbed::RedisCommand(index_port, {"ZRANGE", kRedisIndexKey, "0", "-1", "WITHSCORES"});
  ASSERT_TRUE(index.ok()) << index.status();
  const std::vector<std::pair<int64_t, std::string>> entries = IndexEntries(*index);
  ASSERT_GE(entries.size(), static_cast<size_t>(kRecords));
  // Every key is indexed under RedisIndexScore, and Redis keeps them sorted by it.
  for (const auto& [score, key] : entries) EXPECT_EQ(score, RedisIndexScore(key)) << key;
  EXPECT_TRUE(std::is_sorted(entries.begin(), entries.end()));

  for (const int start : {0, 7, 29}) {
    for (const int64_t length : {int64_t{1}, int64_t{5}, int64_t{100}}) {
      const std::string key = absl::StrCat(prefix, start);
      const int64_t before = target.payload_bytes_sent();
      ASSERT_TRUE(RunOp(target, Op(OpKind::kScan, key, {}, length)).ok());
      std::vector<std::string> expected;
      int64_t expected_bytes = 0;
      for (const auto& [score, member] : entries) {
        if (score < RedisIndexScore(key) || static_cast<int64_t>(expected.size()) == length) {
          continue;
        }
        expected.push_back(member);
        expected_bytes += member.size();
      }
      std::vector<std::string> keys;
      for (const ReadRecord& record : observed.Last(key)) {
        keys.push_back(record.key);
        int i = -1;
        if (record.key.rfind(prefix, 0) == 0 &&
            absl::SimpleAtoi(record.key.substr(prefix.size()), &i)) {
          EXPECT_THAT(record.fields, UnorderedElementsAreArray(FieldsOf(i))) << record.key;
        }
      }
      EXPECT_THAT(keys, ElementsAreArray(expected)) << "from " << key << ", length " << length;
      EXPECT_EQ(target.payload_bytes_sent() - before, expected_bytes);
    }
  }
}

TEST(DirectTargetsTest, RedisIndexScoreIsJavasStringHashCode) {
  EXPECT_EQ(RedisIndexScore(""), 0);
  EXPECT_EQ(RedisIndexScore("a"), 97);
  EXPECT_EQ(RedisIndexScore("abc"), 96354);
  EXPECT_EQ(RedisIndexScore("hello"), 99162322);
  EXPECT_EQ(RedisIndexScore("polygenelubricants"), INT32_MIN);  // wraps as Java's int does
}

TEST(DirectTargetsTest, MemcachedRecordsRoundTrip) {
  const RecordFields fields = {{"field0", "value"}, {"", ""}, {"f", std::string("a\0b\n", 4)}};
  absl::StatusOr<RecordFields> decoded = DecodeMemcachedRecord(EncodeMemcachedRecord(fields));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(*decoded, fields);
  EXPECT_EQ(EncodeMemcachedRecord({{"ab", "c"}}), std::string("\2\0\0\0ab\1\0\0\0c", 11));
  EXPECT_TRUE(DecodeMemcachedRecord("").ok());
  EXPECT_TRUE(absl::IsDataLoss(DecodeMemcachedRecord("\5\0\0\0ab").status()));
  EXPECT_TRUE(absl::IsDataLoss(DecodeMemcachedRecord("\2\0\0\0ab").status()));  // no value
}

TEST(DirectTargetsTest, BadArgumentsAreRefused) {
  EXPECT_TRUE(absl::IsInvalidArgument(ConnectRedisTarget("nowhere", 2).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ConnectRedisTarget("127.0.0.1:1", 0).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ConnectRedisClusterTarget({}, 2).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ConnectMemcachedTarget("127.0.0.1:x", 2).status()));
  DirectTargetOptions options;
  options.io_timeout = absl::ZeroDuration();
  EXPECT_TRUE(absl::IsInvalidArgument(ConnectMemcachedTarget("127.0.0.1:1", 2, options).status()));
}

TEST(DirectTargetsTest, NothingListeningIsUnavailable) {
  const int port = testbed::FreePort();
  ASSERT_GT(port, 0);
  const std::string address = absl::StrCat("127.0.0.1:", port);
  absl::Status status = ConnectRedisTarget(address, 2).status();
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("redis " + address));
  status = ConnectMemcachedTarget(address, 2).status();
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("memcached " + address));
  status = ConnectRedisClusterTarget({address}, 2).status();
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
}

// ---- redis ----

class RedisTargetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<testbed::RedisServer>> server = testbed::RedisServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  std::unique_ptr<Target> Connect(int threads, DirectTargetOptions options = {}) {
    options.on_read = observed_.observer();
    absl::StatusOr<std::unique_ptr<Target>> target =
        ConnectRedisTarget(server_->address(), threads, std::move(options));
    EXPECT_TRUE(target.ok()) << target.status();
    return target.ok() ? *std::move(target) : nullptr;
  }

  Observed observed_;
  std::unique_ptr<testbed::RedisServer> server_;
};

TEST_F(RedisTargetTest, RecordsLiveInHashesAndScansFollowTheIndex) {
  std::unique_ptr<Target> target = Connect(4);
  ASSERT_NE(target, nullptr);
  ExerciseRecords(*target, observed_, "user", /*partial_update_keeps_other_fields=*/true);
  // YCSB's data model, as Redis holds it.
  absl::StatusOr<testbed::RedisReply> type =
      testbed::RedisCommand(server_->port(), {"TYPE", "user3"});
  ASSERT_TRUE(type.ok()) << type.status();
  EXPECT_EQ(type->str, "hash");
  absl::StatusOr<testbed::RedisReply> score =
      testbed::RedisCommand(server_->port(), {"ZSCORE", kRedisIndexKey, "user3"});
  ASSERT_TRUE(score.ok()) << score.status();
  EXPECT_EQ(score->str, absl::StrCat(RedisIndexScore("user3")));

  ExerciseScan(*target, observed_, "scan", server_->port());
  // A scan from beyond every score reads nothing, successfully.
  ASSERT_TRUE(testbed::RedisCommand(server_->port(), {"DEL", kRedisIndexKey}).ok());
  EXPECT_TRUE(RunOp(*target, Op(OpKind::kScan, "user0", {}, 10)).ok());
  EXPECT_TRUE(observed_.Last("user0").empty());
  EXPECT_TRUE(absl::IsInvalidArgument(RunOp(*target, Op(OpKind::kScan, "user0", {}, 0))));
}

TEST_F(RedisTargetTest, ManyConcurrentOperationsAllComplete) {
  std::unique_ptr<Target> target = Connect(8);
  ASSERT_NE(target, nullptr);
  ExerciseConcurrently(*target, "concurrent");
}

TEST_F(RedisTargetTest, AnErrorReplyIsInternal) {
  std::unique_ptr<Target> target = Connect(2);
  ASSERT_NE(target, nullptr);
  ASSERT_TRUE(testbed::RedisCommand(server_->port(), {"SET", "string", "x"}).ok());
  const absl::Status status = RunOp(*target, Op(OpKind::kRead, "string"));
  EXPECT_TRUE(absl::IsInternal(status)) << status;
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("WRONGTYPE"));
  // The connection is still good.
  EXPECT_TRUE(RunOp(*target, Op(OpKind::kInsert, "fine", FieldsOf(0))).ok());
}

TEST_F(RedisTargetTest, AKilledServerFailsOperationsQuicklyAndABrokenConnectionIsReplaced) {
  std::unique_ptr<Target> target = Connect(4);
  ASSERT_NE(target, nullptr);
  ASSERT_TRUE(RunOp(*target, Op(OpKind::kInsert, "user1", FieldsOf(1))).ok());

  // Connections closed by the server: the operation that finds one broken fails, the next
  // ones connect anew.
  ASSERT_TRUE(testbed::RedisCommand(server_->port(), {"CLIENT", "KILL", "TYPE", "normal"}).ok());
  absl::Status last;
  for (int i = 0; i < 8; ++i) last = RunOp(*target, Op(OpKind::kRead, "user1"));
  EXPECT_TRUE(last.ok()) << last;

  const int64_t before = target->payload_bytes_sent();
  server_->Kill();
  const absl::Time start = absl::Now();
  for (int i = 0; i < 10; ++i) {
    const absl::Status status = RunOp(*target, Op(OpKind::kRead, "user1"));
    EXPECT_TRUE(absl::IsUnavailable(status)) << status;
    EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr(server_->address()));
    const absl::Status write = RunOp(*target, Op(OpKind::kUpdate, "user1", FieldsOf(2)));
    EXPECT_TRUE(absl::IsUnavailable(write)) << write;
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_GT(target->payload_bytes_sent(), before);
}

TEST_F(RedisTargetTest, APausedServerTimesOutAndTheDestructorWaits) {
  DirectTargetOptions options;
  options.io_timeout = absl::Milliseconds(200);
  std::unique_ptr<Target> target = Connect(2, options);
  ASSERT_NE(target, nullptr);
  ASSERT_TRUE(RunOp(*target, Op(OpKind::kInsert, "user1", FieldsOf(1))).ok());

  ASSERT_TRUE(StopAndWait(server_->pid()));
  const absl::Time start = absl::Now();
  const absl::Status status = RunOp(*target, Op(OpKind::kRead, "user1"));
  EXPECT_TRUE(absl::IsDeadlineExceeded(status)) << status;
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));

  // Queued operations on a target being destroyed: each still completes exactly once.
  std::atomic<int> done{0};
  for (int i = 0; i < 20; ++i) {
    target->Start(Op(OpKind::kRead, "user1"), [&](absl::Status) { ++done; });
  }
  target.reset();
  EXPECT_EQ(done.load(), 20);
  ASSERT_EQ(::kill(server_->pid(), SIGCONT), 0);
}

// ---- redis-cluster ----

class RedisClusterTargetTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<testbed::RedisCluster>> cluster = testbed::RedisCluster::Start();
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = cluster->release();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  void SetUp() override { ASSERT_NE(cluster_, nullptr); }

  std::unique_ptr<Target> Connect(int threads) {
    DirectTargetOptions options;
    options.on_read = observed_.observer();
    absl::StatusOr<std::unique_ptr<Target>> target =
        ConnectRedisClusterTarget(cluster_->seeds(), threads, std::move(options));
    EXPECT_TRUE(target.ok()) << target.status();
    return target.ok() ? *std::move(target) : nullptr;
  }

  static testbed::RedisCluster* cluster_;
  Observed observed_;
};

testbed::RedisCluster* RedisClusterTargetTest::cluster_ = nullptr;

TEST_F(RedisClusterTargetTest, RecordsLiveInTheirSlotsAndScansFollowTheIndex) {
  std::unique_ptr<Target> target = Connect(4);
  ASSERT_NE(target, nullptr);
  ExerciseRecords(*target, observed_, "user", /*partial_update_keeps_other_fields=*/true);
  absl::StatusOr<testbed::RedisNode> index_master =
      cluster_->MasterOfSlot(redis::KeySlot(kRedisIndexKey));
  ASSERT_TRUE(index_master.ok()) << index_master.status();
  // The records of a scan come from several masters.
  std::set<int> masters;
  for (int i = 0; i < 30; ++i) {
    absl::StatusOr<testbed::RedisNode> owner =
        cluster_->MasterOfSlot(redis::KeySlot(absl::StrCat("scan", i)));
    ASSERT_TRUE(owner.ok()) << owner.status();
    masters.insert(owner->port);
  }
  EXPECT_GT(masters.size(), 1u);
  ExerciseScan(*target, observed_, "scan", index_master->port);
}

TEST_F(RedisClusterTargetTest, ManyConcurrentOperationsAllComplete) {
  std::unique_ptr<Target> target = Connect(8);
  ASSERT_NE(target, nullptr);
  ExerciseConcurrently(*target, "concurrent");
}

// Last of the suite: it fails a master over.
TEST_F(RedisClusterTargetTest, OperationsCarryOnThroughAFailover) {
  std::unique_ptr<Target> target = Connect(4);
  ASSERT_NE(target, nullptr);
  const std::string key = "failover";
  ASSERT_TRUE(RunOp(*target, Op(OpKind::kInsert, key, FieldsOf(1))).ok());
  absl::StatusOr<testbed::RedisNode> master = cluster_->MasterOfSlot(redis::KeySlot(key));
  ASSERT_TRUE(master.ok()) << master.status();
  // Let the replica have the record before its master dies. (WAIT would not do: it counts
  // only the writes of its own connection, and the target wrote on another.)
  int replica_port = 0;
  for (const testbed::RedisNode& node : cluster_->replicas()) {
    if (node.master_port == master->port) replica_port = node.port;
  }
  ASSERT_NE(replica_port, 0);
  bool replicated = false;
  for (int i = 0; i < 200 && !replicated; ++i) {
    absl::StatusOr<std::vector<testbed::RedisReply>> replies =
        testbed::RedisCommands(replica_port, {{"READONLY"}, {"EXISTS", key}});
    replicated = replies.ok() && replies->size() == 2 && (*replies)[1].integer == 1;
    if (!replicated) absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE(replicated) << "the replica never got " << key;
  ASSERT_TRUE(cluster_->KillNode(master->port).ok());

  // Within the retry window the operation waits out the failover instead of failing.
  const absl::Status read = RunOp(*target, Op(OpKind::kRead, key));
  EXPECT_TRUE(read.ok()) << read;
  const absl::Status update = RunOp(*target, Op(OpKind::kUpdate, key, {{"field0", "after"}}));
  EXPECT_TRUE(update.ok()) << update;
  ASSERT_TRUE(RunOp(*target, Op(OpKind::kRead, key)).ok());
  ASSERT_EQ(observed_.Last(key).size(), 1u);
  EXPECT_THAT(observed_.Last(key)[0].fields,
              ::testing::Contains(std::pair<std::string, std::string>("field0", "after")));
}

// ---- memcached ----

class MemcachedTargetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<testbed::MemcachedServer>> server =
        testbed::MemcachedServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  std::unique_ptr<Target> Connect(int threads, DirectTargetOptions options = {}) {
    options.on_read = observed_.observer();
    absl::StatusOr<std::unique_ptr<Target>> target =
        ConnectMemcachedTarget(server_->address(), threads, std::move(options));
    EXPECT_TRUE(target.ok()) << target.status();
    return target.ok() ? *std::move(target) : nullptr;
  }

  Observed observed_;
  std::unique_ptr<testbed::MemcachedServer> server_;
};

TEST_F(MemcachedTargetTest, RecordsAreOneValueAndScansAreUnsupported) {
  std::unique_ptr<Target> target = Connect(4);
  ASSERT_NE(target, nullptr);
  ExerciseRecords(*target, observed_, "user", /*partial_update_keeps_other_fields=*/false);

  EXPECT_FALSE(target->Supports(OpKind::kScan));
  for (OpKind kind : {OpKind::kRead, OpKind::kUpdate, OpKind::kInsert, OpKind::kReadModifyWrite}) {
    EXPECT_TRUE(target->Supports(kind));
  }
  const int64_t before = target->payload_bytes_sent();
  const absl::Status scan = RunOp(*target, Op(OpKind::kScan, "user0", {}, 10));
  EXPECT_TRUE(absl::IsUnimplemented(scan)) << scan;
  EXPECT_EQ(target->payload_bytes_sent(), before);
}

TEST_F(MemcachedTargetTest, ManyConcurrentOperationsAllComplete) {
  std::unique_ptr<Target> target = Connect(8);
  ASSERT_NE(target, nullptr);
  ExerciseConcurrently(*target, "concurrent");
}

TEST_F(MemcachedTargetTest, AKilledServerFailsOperationsQuickly) {
  std::unique_ptr<Target> target = Connect(4);
  ASSERT_NE(target, nullptr);
  ASSERT_TRUE(RunOp(*target, Op(OpKind::kInsert, "user1", FieldsOf(1))).ok());
  const int64_t before = target->payload_bytes_sent();
  server_->Kill();
  const absl::Time start = absl::Now();
  for (int i = 0; i < 10; ++i) {
    const absl::Status status = RunOp(*target, Op(OpKind::kRead, "user1"));
    EXPECT_TRUE(absl::IsUnavailable(status)) << status;
    EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr(server_->address()));
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_GT(target->payload_bytes_sent(), before);
}

TEST_F(MemcachedTargetTest, APausedServerTimesOut) {
  DirectTargetOptions options;
  options.io_timeout = absl::Milliseconds(200);
  std::unique_ptr<Target> target = Connect(2, options);
  ASSERT_NE(target, nullptr);
  ASSERT_TRUE(RunOp(*target, Op(OpKind::kInsert, "user1", FieldsOf(1))).ok());
  ASSERT_TRUE(StopAndWait(server_->pid()));
  const absl::Time start = absl::Now();
  const absl::Status status = RunOp(*target, Op(OpKind::kRead, "user1"));
  EXPECT_TRUE(absl::IsDeadlineExceeded(status)) << status;
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  ASSERT_EQ(::kill(server_->pid(), SIGCONT), 0);
  // The next operation gets a new connection and works again.
  absl::Status again = absl::UnknownError("not run");
  for (int i = 0; i < 3 && !again.ok(); ++i) again = RunOp(*target, Op(OpKind::kRead, "user1"));
  EXPECT_TRUE(again.ok()) << again;
}

}  // namespace
}  // namespace stategate::bench
