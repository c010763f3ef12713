// The YCSB core workloads: operation mixes, keys, and the record distributions (zipfian,
// scrambled zipfian, latest, uniform) measured over many draws with fixed seeds, and the
// acknowledged-insert frontier, alone and under concurrent use.
#include "src/bench/ycsb.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stategate::bench::ycsb {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr double kTheta = 0.99;

// sum of 1 / i^theta for i in [1, n].
double Zeta(int64_t n, double theta = kTheta) {
  double sum = 0;
  for (int64_t i = 1; i <= n; ++i) sum += 1.0 / std::pow(static_cast<double>(i), theta);
  return sum;
}

// FNV-1a 64 as published (offset basis 0xCBF29CE484222325, prime 1099511628211) over the
// little-endian bytes of `value`, then YCSB's Math.abs: written out independently of
// ycsb.cc.
int64_t YcsbFnv(int64_t value) {
  uint64_t hash = 0xCBF29CE484222325ULL;
  for (int byte = 0; byte < 8; ++byte) {
    hash ^= (static_cast<uint64_t>(value) >> (8 * byte)) & 0xFF;
    hash *= 1099511628211ULL;
  }
  const auto signed_hash = static_cast<int64_t>(hash);
  return signed_hash < 0 ? -signed_hash : signed_hash;
}

Workload Standard(std::string_view name) {
  absl::StatusOr<Workload> workload = StandardWorkload(name);
  EXPECT_TRUE(workload.ok()) << workload.status();
  return *workload;
}

Workload ReadOnly(Distribution distribution) {
  Workload workload;
  workload.name = "custom";
  workload.read = 1.0;
  workload.request_distribution = distribution;
  return workload;
}

Workload InsertOnly() {
  Workload workload;
  workload.name = "inserts";
  workload.insert = 1.0;
  return workload;
}

TEST(StandardWorkloadTest, HasYcsbProportionsAndDistributions) {
  const Workload a = Standard("a");
  EXPECT_EQ(a.name, "a");
  EXPECT_DOUBLE_EQ(a.read, 0.5);
  EXPECT_DOUBLE_EQ(a.update, 0.5);
  EXPECT_EQ(a.request_distribution, Distribution::kZipfian);

  const Workload b = Standard("b");
  EXPECT_DOUBLE_EQ(b.read, 0.95);
  EXPECT_DOUBLE_EQ(b.update, 0.05);
  EXPECT_EQ(b.request_distribution, Distribution::kZipfian);

  const Workload c = Standard("c");
  EXPECT_DOUBLE_EQ(c.read, 1.0);
  EXPECT_EQ(c.request_distribution, Distribution::kZipfian);

  const Workload d = Standard("d");
  EXPECT_DOUBLE_EQ(d.read, 0.95);
  EXPECT_DOUBLE_EQ(d.insert, 0.05);
  EXPECT_EQ(d.request_distribution, Distribution::kLatest);

  const Workload e = Standard("e");
  EXPECT_DOUBLE_EQ(e.scan, 0.95);
  EXPECT_DOUBLE_EQ(e.insert, 0.05);
  EXPECT_EQ(e.max_scan_length, 100);
  EXPECT_EQ(e.request_distribution, Distribution::kZipfian);

  const Workload f = Standard("f");
  EXPECT_DOUBLE_EQ(f.read, 0.5);
  EXPECT_DOUBLE_EQ(f.read_modify_write, 0.5);
  EXPECT_EQ(f.request_distribution, Distribution::kZipfian);

  for (const char* name : {"a", "b", "c", "d", "e", "f"}) {
    const Workload w = Standard(name);
    EXPECT_DOUBLE_EQ(w.read + w.update + w.insert + w.scan + w.read_modify_write, 1.0) << name;
  }
}

TEST(StandardWorkloadTest, IsCaseInsensitive) {
  const Workload upper = Standard("D");
  EXPECT_EQ(upper.name, "d");
  EXPECT_EQ(upper.request_distribution, Distribution::kLatest);
}

TEST(StandardWorkloadTest, RejectsUnknownNamesListingTheKnownOnes) {
  for (const char* name : {"g", "", "ab", "workloada"}) {
    const absl::StatusOr<Workload> workload = StandardWorkload(name);
    ASSERT_FALSE(workload.ok()) << name;
    EXPECT_EQ(workload.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(workload.status().message()), HasSubstr("a, b, c, d, e and f"));
  }
}

TEST(OperationKindsTest, ListsKindsAboveZeroInOrder) {
  EXPECT_THAT(OperationKinds(Standard("a")), ElementsAre(OpKind::kRead, OpKind::kUpdate));
  EXPECT_THAT(OperationKinds(Standard("c")), ElementsAre(OpKind::kRead));
  EXPECT_THAT(OperationKinds(Standard("d")), ElementsAre(OpKind::kRead, OpKind::kInsert));
  EXPECT_THAT(OperationKinds(Standard("e")), ElementsAre(OpKind::kInsert, OpKind::kScan));
  EXPECT_THAT(OperationKinds(Standard("f")), ElementsAre(OpKind::kRead, OpKind::kReadModifyWrite));
}

TEST(OpKindNameTest, NamesEveryKind) {
  EXPECT_EQ(OpKindName(OpKind::kRead), "read");
  EXPECT_EQ(OpKindName(OpKind::kUpdate), "update");
  EXPECT_EQ(OpKindName(OpKind::kInsert), "insert");
  EXPECT_EQ(OpKindName(OpKind::kScan), "scan");
  EXPECT_EQ(OpKindName(OpKind::kReadModifyWrite), "read-modify-write");
}

TEST(RecordKeyTest, IsUserAndYcsbFnvHash) {
  // YCSB's first key, familiar from every YCSB load.
  EXPECT_EQ(RecordKey(0), "user6284781860667377211");
  // The hash of 1 has its top bit set, so Math.abs changes it.
  EXPECT_EQ(RecordKey(1), "user8517097267634966620");
  for (int64_t index : std::vector<int64_t>{0, 1, 2, 42, 999, 1'000'000, 123'456'789'012}) {
    EXPECT_EQ(RecordKey(index), "user" + std::to_string(YcsbFnv(index))) << index;
  }
}

TEST(FieldNameTest, IsFieldAndIndex) {
  EXPECT_EQ(FieldName(0), "field0");
  EXPECT_EQ(FieldName(9), "field9");
}

TEST(ExpectedInsertsTest, IsTwiceTheExpectedInsertsTruncated) {
  EXPECT_EQ(ExpectedInserts(Standard("a"), 1'000'000), 0);
  EXPECT_EQ(ExpectedInserts(Standard("d"), 1000), 100);
  EXPECT_EQ(ExpectedInserts(Standard("e"), 333), 33);  // 33.3
  EXPECT_EQ(ExpectedInserts(Standard("e"), 0), 0);
}

// Draws `draws` operations, acknowledging every insert at once.
std::map<OpKind, int64_t> CountKinds(OperationGenerator& generator, int draws, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::map<OpKind, int64_t> counts;
  for (int i = 0; i < draws; ++i) {
    const Operation op = generator.Next(rng);
    ++counts[op.kind];
    if (op.kind == OpKind::kInsert) generator.AcknowledgeInsert(op.record);
  }
  return counts;
}

TEST(OperationGeneratorTest, OperationMixMatchesEachWorkload) {
  constexpr int kDraws = 200'000;
  for (const char* name : {"a", "b", "c", "d", "e", "f"}) {
    SCOPED_TRACE(name);
    const Workload w = Standard(name);
    OperationGenerator generator(w, 1000, 10, ExpectedInserts(w, kDraws));
    const std::map<OpKind, int64_t> counts = CountKinds(generator, kDraws, 7);
    const std::map<OpKind, double> expected = {
        {OpKind::kRead, w.read},
        {OpKind::kUpdate, w.update},
        {OpKind::kInsert, w.insert},
        {OpKind::kScan, w.scan},
        {OpKind::kReadModifyWrite, w.read_modify_write},
    };
    for (const auto& [kind, proportion] : expected) {
      const auto it = counts.find(kind);
      const int64_t count = it == counts.end() ? 0 : it->second;
      if (proportion == 0) {
        EXPECT_EQ(count, 0) << OpKindName(kind);
      } else {
        EXPECT_NEAR(static_cast<double>(count) / kDraws, proportion, 0.01) << OpKindName(kind);
      }
    }
  }
}

TEST(ZipfianGeneratorTest, FirstItemHasOneOverZetaAndRanksDecrease) {
  constexpr int64_t kItems = 1000;
  constexpr int kDraws = 200'000;
  const ZipfianGenerator zipfian(kItems);
  EXPECT_EQ(zipfian.items(), kItems);
  std::mt19937_64 rng(11);
  std::vector<int64_t> counts(kItems, 0);
  for (int i = 0; i < kDraws; ++i) {
    const int64_t item = zipfian.Next(rng);
    ASSERT_GE(item, 0);
    ASSERT_LT(item, kItems);
    ++counts[item];
  }
  const double zeta = Zeta(kItems);
  // Gray's algorithm is exact for the first two items.
  EXPECT_NEAR(static_cast<double>(counts[0]) / kDraws, 1 / zeta, 0.004);
  EXPECT_NEAR(static_cast<double>(counts[1]) / kDraws, std::pow(0.5, kTheta) / zeta, 0.004);
  for (int rank = 1; rank < 10; ++rank) EXPECT_LT(counts[rank], counts[rank - 1]) << rank;
  // The tail is reached.
  EXPECT_GT(std::count_if(counts.begin() + kItems / 2, counts.end(),
                          [](int64_t count) { return count > 0; }),
            kItems / 4);
}

TEST(ZipfianGeneratorTest, HandlesOneAndTwoItems) {
  std::mt19937_64 rng(3);
  const ZipfianGenerator one(1);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(one.Next(rng), 0);

  const ZipfianGenerator two(2);
  int zeros = 0;
  constexpr int kDraws = 100'000;
  for (int i = 0; i < kDraws; ++i) {
    const int64_t item = two.Next(rng);
    ASSERT_TRUE(item == 0 || item == 1) << item;
    zeros += item == 0;
  }
  EXPECT_NEAR(static_cast<double>(zeros) / kDraws, 1 / Zeta(2), 0.01);
}

TEST(OperationGeneratorTest, ScrambledZipfianSpreadsPopularRecordsButStaysSkewed) {
  constexpr int64_t kRecords = 10'000;
  constexpr int kDraws = 200'000;
  OperationGenerator generator(Standard("c"), kRecords, 10, 0);
  std::mt19937_64 rng(5);
  std::vector<int64_t> counts(kRecords, 0);
  for (int i = 0; i < kDraws; ++i) {
    const Operation op = generator.Next(rng);
    ASSERT_EQ(op.kind, OpKind::kRead);
    ASSERT_GE(op.record, 0);
    ASSERT_LT(op.record, kRecords);
    ++counts[op.record];
  }
  // The most popular record is where rank 0 hashes to, not record 0.
  const auto most_popular = std::max_element(counts.begin(), counts.end()) - counts.begin();
  EXPECT_EQ(most_popular, YcsbFnv(0) % kRecords);
  EXPECT_NE(most_popular, 0);
  // Ranks come from YCSB's zipfian over 10^10 items (zeta 26.469...): rank 0 alone has
  // 1/26.47 of the draws.
  EXPECT_GE(static_cast<double>(counts[most_popular]) / kDraws, 0.9 / 26.469);
  // The top 1% of records hold at least the share of the top 100 ranks (zeta(100) /
  // zeta(10^10), about 20%), against 1% for a uniform distribution.
  std::vector<int64_t> sorted = counts;
  std::sort(sorted.begin(), sorted.end(), std::greater<>());
  int64_t top = 0;
  for (int64_t i = 0; i < kRecords / 100; ++i) top += sorted[i];
  EXPECT_GE(static_cast<double>(top) / kDraws, 0.9 * Zeta(kRecords / 100) / 26.469);
}

TEST(OperationGeneratorTest, ZipfianRedrawsUntilTheRecordIsAcknowledged) {
  constexpr int64_t kInitial = 1000;
  // Key space 2000: half of it has no record yet.
  OperationGenerator generator(Standard("e"), kInitial, 10, kInitial);
  std::mt19937_64 rng(9);
  std::vector<int64_t> pending;
  int64_t beyond_initial = 0;
  int64_t beyond_key_space = 0;
  for (int i = 0; i < 100'000; ++i) {
    const Operation op = generator.Next(rng);
    if (op.kind == OpKind::kInsert) {
      pending.push_back(op.record);
      // Acknowledge in batches of 10, newest first.
      if (pending.size() == 10) {
        for (auto it = pending.rbegin(); it != pending.rend(); ++it) {
          generator.AcknowledgeInsert(*it);
        }
        pending.clear();
      }
      continue;
    }
    ASSERT_GE(op.record, 0);
    ASSERT_LT(op.record, generator.acknowledged_records());
    beyond_initial += op.record >= kInitial;
    beyond_key_space += op.record >= 2 * kInitial;
  }
  // About 5000 inserts: the first 1000 made the rest of the key space reachable. As in
  // YCSB, the records inserted beyond the key space are never chosen.
  EXPECT_GT(generator.acknowledged_records(), kInitial + 4000);
  EXPECT_GT(beyond_initial, 10'000);
  EXPECT_EQ(beyond_key_space, 0);
}

TEST(OperationGeneratorTest, LatestFavoursTheNewestRecord) {
  constexpr int64_t kRecords = 1000;
  constexpr int kDraws = 100'000;
  OperationGenerator generator(ReadOnly(Distribution::kLatest), kRecords, 10, 0);
  std::mt19937_64 rng(13);
  std::vector<int64_t> counts(kRecords, 0);
  for (int i = 0; i < kDraws; ++i) {
    const Operation op = generator.Next(rng);
    ASSERT_GE(op.record, 0);
    ASSERT_LT(op.record, kRecords);
    ++counts[op.record];
  }
  EXPECT_EQ(std::max_element(counts.begin(), counts.end()) - counts.begin(), kRecords - 1);
  EXPECT_NEAR(static_cast<double>(counts[kRecords - 1]) / kDraws, 1 / Zeta(kRecords), 0.005);
  for (int64_t age = 1; age < 10; ++age) {
    EXPECT_LT(counts[kRecords - 1 - age], counts[kRecords - age]) << age;
  }
  // Record 0 is reachable (YCSB's SkewedLatestGenerator never chooses it).
  EXPECT_GT(counts[0], 0);
}

TEST(OperationGeneratorTest, LatestOnlyChoosesAcknowledgedRecordsAndFollowsTheFrontier) {
  constexpr int64_t kInitial = 100;
  OperationGenerator generator(Standard("d"), kInitial, 10, 0);
  std::mt19937_64 rng(17);
  std::mt19937_64 shuffle_rng(18);
  std::vector<int64_t> pending;
  std::set<int64_t> acknowledged_beyond;  // acknowledged, but after a gap
  int64_t frontier = kInitial;
  int64_t inserts = 0;
  std::map<int64_t, int64_t> age_counts;  // frontier - 1 - record
  for (int i = 0; i < 200'000; ++i) {
    const Operation op = generator.Next(rng);
    if (op.kind == OpKind::kInsert) {
      ASSERT_EQ(op.record, kInitial + inserts);
      ++inserts;
      pending.push_back(op.record);
      // Acknowledge a random pending insert once 5 are outstanding: out of order.
      if (pending.size() == 5) {
        std::uniform_int_distribution<size_t> pick(0, pending.size() - 1);
        const size_t chosen = pick(shuffle_rng);
        const int64_t record = pending[chosen];
        pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(chosen));
        generator.AcknowledgeInsert(record);
        acknowledged_beyond.insert(record);
        while (acknowledged_beyond.count(frontier) > 0) {
          acknowledged_beyond.erase(frontier);
          ++frontier;
        }
        ASSERT_EQ(generator.acknowledged_records(), frontier);
      }
      continue;
    }
    ASSERT_EQ(op.kind, OpKind::kRead);
    ASSERT_GE(op.record, 0);
    ASSERT_LT(op.record, frontier) << "chose an unacknowledged record";
    ++age_counts[frontier - 1 - op.record];
  }
  EXPECT_GT(frontier, kInitial + 9000);
  // The newest acknowledged record is the most popular, then the one before it.
  EXPECT_GT(age_counts[0], age_counts[1]);
  EXPECT_GT(age_counts[1], age_counts[2]);
  for (const auto& [age, count] : age_counts) {
    if (age > 0) {
      EXPECT_LT(count, age_counts[0]) << age;
    }
  }

  // Acknowledging the rest moves the frontier over all of them.
  for (int64_t record : pending) generator.AcknowledgeInsert(record);
  EXPECT_EQ(generator.acknowledged_records(), kInitial + inserts);

  // Zeta grew with the records, from zeta(100): the newest has 1 / zeta(records) of the
  // draws, as in a generator that starts with them all. (The inserts drawn now stay
  // unacknowledged, so the frontier holds still.)
  const int64_t records = kInitial + inserts;
  OperationGenerator fresh(ReadOnly(Distribution::kLatest), records, 10, 0);
  int64_t newest_fresh = 0;
  int64_t newest_grown = 0;
  int64_t reads = 0;
  constexpr int kDraws = 100'000;
  for (int i = 0; i < kDraws; ++i) {
    newest_fresh += fresh.Next(rng).record == records - 1;
    const Operation op = generator.Next(rng);
    if (op.kind != OpKind::kRead) continue;
    ++reads;
    newest_grown += op.record == records - 1;
  }
  EXPECT_EQ(generator.acknowledged_records(), records);
  EXPECT_NEAR(static_cast<double>(newest_fresh) / kDraws, 1 / Zeta(records), 0.005);
  EXPECT_NEAR(static_cast<double>(newest_grown) / static_cast<double>(reads), 1 / Zeta(records),
              0.005);
}

TEST(OperationGeneratorTest, AcknowledgedFrontierAdvancesOverContiguousRecords) {
  constexpr int64_t kInitial = 1000;
  OperationGenerator generator(InsertOnly(), kInitial, 1, 0);
  std::mt19937_64 rng(1);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(generator.Next(rng).record, kInitial + i);
  EXPECT_EQ(generator.acknowledged_records(), kInitial);
  generator.AcknowledgeInsert(kInitial + 2);
  EXPECT_EQ(generator.acknowledged_records(), kInitial);
  generator.AcknowledgeInsert(kInitial + 1);
  EXPECT_EQ(generator.acknowledged_records(), kInitial);
  generator.AcknowledgeInsert(kInitial);
  EXPECT_EQ(generator.acknowledged_records(), kInitial + 3);
  generator.AcknowledgeInsert(kInitial + 5);
  EXPECT_EQ(generator.acknowledged_records(), kInitial + 3);
  generator.AcknowledgeInsert(kInitial + 3);
  EXPECT_EQ(generator.acknowledged_records(), kInitial + 4);
  generator.AcknowledgeInsert(kInitial + 4);
  EXPECT_EQ(generator.acknowledged_records(), kInitial + 6);
}

TEST(OperationGeneratorTest, UniformCoversAcknowledgedRecordsEvenly) {
  constexpr int64_t kRecords = 100;
  constexpr int kDraws = 200'000;
  OperationGenerator generator(ReadOnly(Distribution::kUniform), kRecords, 10, 0);
  std::mt19937_64 rng(21);
  std::vector<int64_t> counts(kRecords, 0);
  for (int i = 0; i < kDraws; ++i) {
    const Operation op = generator.Next(rng);
    ASSERT_GE(op.record, 0);
    ASSERT_LT(op.record, kRecords);
    ++counts[op.record];
  }
  const double expected = static_cast<double>(kDraws) / kRecords;
  double chi_square = 0;
  for (int64_t count : counts) {
    chi_square += (count - expected) * (count - expected) / expected;
    // 2000 per bucket, standard deviation about 44.
    EXPECT_NEAR(static_cast<double>(count), expected, 0.1 * expected);
  }
  // 99 degrees of freedom: mean 99, standard deviation 14.
  EXPECT_LT(chi_square, 160);
}

TEST(OperationGeneratorTest, ScanLengthsAreUniformUpToTheMaximum) {
  OperationGenerator generator(Standard("e"), 1000, 10, ExpectedInserts(Standard("e"), 200'000));
  std::mt19937_64 rng(23);
  std::vector<int64_t> counts(101, 0);
  int64_t scans = 0;
  double sum = 0;
  for (int i = 0; i < 200'000; ++i) {
    const Operation op = generator.Next(rng);
    if (op.kind == OpKind::kInsert) {
      generator.AcknowledgeInsert(op.record);
      continue;
    }
    ASSERT_EQ(op.kind, OpKind::kScan);
    ASSERT_GE(op.scan_length, 1);
    ASSERT_LE(op.scan_length, 100);
    ++counts[op.scan_length];
    ++scans;
    sum += static_cast<double>(op.scan_length);
  }
  EXPECT_NEAR(sum / static_cast<double>(scans), 50.5, 0.3);
  for (int length = 1; length <= 100; ++length) EXPECT_GT(counts[length], 0) << length;
}

TEST(OperationGeneratorTest, WrittenFieldIsUniformOverTheFields) {
  constexpr int kFields = 10;
  OperationGenerator generator(Standard("a"), 1000, kFields, 0);
  std::mt19937_64 rng(29);
  std::vector<int64_t> counts(kFields, 0);
  int64_t updates = 0;
  for (int i = 0; i < 100'000; ++i) {
    const Operation op = generator.Next(rng);
    if (op.kind != OpKind::kUpdate) continue;
    ASSERT_GE(op.field, 0);
    ASSERT_LT(op.field, kFields);
    ++counts[op.field];
    ++updates;
  }
  for (int64_t count : counts) {
    EXPECT_NEAR(static_cast<double>(count), static_cast<double>(updates) / kFields,
                0.05 * static_cast<double>(updates) / kFields);
  }
}

TEST(OperationGeneratorTest, WithoutRecordsOperationsChooseRecordZero) {
  for (Distribution distribution :
       {Distribution::kZipfian, Distribution::kLatest, Distribution::kUniform}) {
    OperationGenerator generator(ReadOnly(distribution), 0, 10, 0);
    std::mt19937_64 rng(31);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(generator.Next(rng).record, 0);
    EXPECT_EQ(generator.acknowledged_records(), 0);
  }

  // Workload e from empty: record 0 until an insert is acknowledged, then acknowledged
  // records only, even though the zipfian key space is much larger.
  const Workload e = Standard("e");
  OperationGenerator generator(e, 0, 10, ExpectedInserts(e, 1'000'000));
  std::mt19937_64 rng(37);
  std::vector<int64_t> pending;
  for (int i = 0; i < 20'000; ++i) {
    const Operation op = generator.Next(rng);
    if (op.kind == OpKind::kInsert) {
      pending.push_back(op.record);
      if (pending.size() == 3) {
        for (int64_t record : pending) generator.AcknowledgeInsert(record);
        pending.clear();
      }
      continue;
    }
    const int64_t acknowledged = generator.acknowledged_records();
    ASSERT_GE(op.record, 0);
    ASSERT_LT(op.record, std::max<int64_t>(acknowledged, 1));
  }
  EXPECT_GT(generator.acknowledged_records(), 900);
}

TEST(OperationGeneratorTest, ConcurrentDrawsInsertsAndAcknowledgementsKeepInvariants) {
  constexpr int kThreads = 4;
  constexpr int kDrawsPerThread = 50'000;
  constexpr int64_t kInitial = 1000;
  for (const char* name : {"d", "e"}) {
    SCOPED_TRACE(name);
    const Workload w = Standard(name);
    OperationGenerator generator(w, kInitial, 10, ExpectedInserts(w, kThreads * kDrawsPerThread));
    std::vector<std::vector<int64_t>> inserted(kThreads);
    std::vector<int64_t> violations(kThreads, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937_64 rng(100 + t);
        std::vector<int64_t> pending;
        for (int i = 0; i < kDrawsPerThread; ++i) {
          const Operation op = generator.Next(rng);
          if (op.kind == OpKind::kInsert) {
            inserted[t].push_back(op.record);
            pending.push_back(op.record);
            // Hold a few back, then acknowledge newest first.
            if (pending.size() == 3) {
              for (auto it = pending.rbegin(); it != pending.rend(); ++it) {
                generator.AcknowledgeInsert(*it);
              }
              pending.clear();
            }
            continue;
          }
          // The frontier only grows, so it is past the record after the draw too.
          if (op.record < 0 || op.record >= generator.acknowledged_records()) ++violations[t];
        }
        for (int64_t record : pending) generator.AcknowledgeInsert(record);
      });
    }
    for (std::thread& thread : threads) thread.join();

    for (int t = 0; t < kThreads; ++t) EXPECT_EQ(violations[t], 0) << t;
    std::vector<int64_t> all;
    for (const auto& records : inserted) all.insert(all.end(), records.begin(), records.end());
    std::sort(all.begin(), all.end());
    ASSERT_FALSE(all.empty());
    // Every insert got its own record, contiguously after the initial ones, and all of them
    // are acknowledged.
    for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], kInitial + static_cast<int64_t>(i));
    EXPECT_EQ(generator.acknowledged_records(), kInitial + static_cast<int64_t>(all.size()));
  }
}

TEST(OperationGeneratorTest, IsMovable) {
  OperationGenerator generator(InsertOnly(), 5, 1, 0);
  std::mt19937_64 rng(41);
  EXPECT_EQ(generator.Next(rng).record, 5);
  OperationGenerator moved = std::move(generator);
  EXPECT_EQ(moved.Next(rng).record, 6);
  moved.AcknowledgeInsert(5);
  EXPECT_EQ(moved.acknowledged_records(), 6);
}

}  // namespace
}  // namespace stategate::bench::ycsb
