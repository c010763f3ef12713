#include "src/storage/conformance_test_suite.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <latch>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "src/storage/memory_only.h"

namespace stategate::storage {

void PrintTo(const EngineFactory& factory, std::ostream* os) {
  *os << "EngineFactory{" << factory.name << "}";
}

std::string EngineFactoryName(const ::testing::TestParamInfo<EngineFactory>& info) {
  return info.param.name;
}

namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;
using ::testing::Pair;

#define SG_EXPECT_OK(expr)                                       \
  do {                                                           \
    const absl::Status sg_status_ = (expr);                      \
    EXPECT_TRUE(sg_status_.ok()) << #expr << ": " << sg_status_; \
  } while (0)

#define SG_ASSERT_OK(expr)                                       \
  do {                                                           \
    const absl::Status sg_status_ = (expr);                      \
    ASSERT_TRUE(sg_status_.ok()) << #expr << ": " << sg_status_; \
  } while (0)

// Long enough that no tombstone written by a test reaches the end of its grace.
constexpr absl::Duration kGrace = absl::Hours(1);

// A string of the given bytes; spelled out because "\x00a" is one byte, not two.
std::string B(std::initializer_list<int> bytes) {
  std::string out;
  for (int b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

PutOp P(std::string key, std::string value, int64_t expires_at_us = 0) {
  return PutOp{std::move(key), std::move(value), expires_at_us};
}
DeleteKeyOp D(std::string key) { return DeleteKeyOp{std::move(key)}; }
DeleteRangeOp DR(std::string start, std::string end) {
  return DeleteRangeOp{std::move(start), std::move(end)};
}

KeySpan Range(std::string start, std::string end, std::optional<std::string> after = std::nullopt) {
  KeySpan span;
  span.start = std::move(start);
  span.end = std::move(end);
  span.after = std::move(after);
  return span;
}

KeySpan ByKeys(std::vector<std::string> keys, std::optional<std::string> after = std::nullopt) {
  KeySpan span;
  span.by_keys = true;
  span.keys = std::move(keys);
  span.after = std::move(after);
  return span;
}

std::vector<std::string> Keys(const std::vector<StoredItem>& items) {
  std::vector<std::string> keys;
  for (const StoredItem& item : items) keys.push_back(item.key);
  return keys;
}

// Everything a reader can observe of an item, comparable.
using ItemState = std::tuple<std::string, std::string, int64_t, std::string, int64_t>;
std::vector<ItemState> States(const std::vector<StoredItem>& items) {
  std::vector<ItemState> out;
  for (const StoredItem& i : items) {
    out.emplace_back(i.key, i.value, i.version.time_us, i.version.nonce, i.expires_at_us);
  }
  return out;
}

size_t Bytes(const std::vector<StoredItem>& items) {
  size_t bytes = 0;
  for (const StoredItem& item : items) bytes += item.key.size() + item.value.size();
  return bytes;
}

std::string Pad(int i) { return absl::StrFormat("%04d", i); }

}  // namespace

// ---- Fixture ----

void StorageEngineConformance::SetUp() {
  base_us_ = clock_.NowMicros();
  engine_ = GetParam().make(&clock_, kGrace);
  ASSERT_NE(engine_, nullptr) << "factory " << GetParam().name << " made no engine";
  table_ = NewTable("main");
  SG_ASSERT_OK(engine_->CreateTable(table_));
}

void StorageEngineConformance::TearDown() {
  if (engine_ != nullptr) {
    for (const std::string& table : tables_) {
      if (engine_->HasTable(table)) engine_->DropTable(table).IgnoreError();
    }
  }
  engine_.reset();
  if (GetParam().teardown) GetParam().teardown();
}

std::string StorageEngineConformance::NewTable(const std::string& hint) {
  static std::mt19937_64 rng{std::random_device{}()};
  static std::mutex mu;
  uint64_t suffix;
  {
    std::lock_guard lock(mu);
    suffix = rng();
  }
  std::string name = absl::StrCat("sg_conformance_", hint, "_", absl::Hex(suffix));
  tables_.push_back(name);
  return name;
}

Version StorageEngineConformance::V(int64_t offset_us, const std::string& nonce) const {
  return Version{base_us_ + offset_us, nonce};
}

absl::Status StorageEngineConformance::Apply(const std::string& record, const Version& version,
                                             std::vector<WriteOp> ops) {
  RecordWrite write;
  write.table = table_;
  write.record_id = record;
  write.version = version;
  write.ops = std::move(ops);
  return engine_->Write(write);
}

absl::Status StorageEngineConformance::Put(const std::string& record, const std::string& key,
                                           const std::string& value, const Version& version,
                                           int64_t expires_at_us) {
  return Apply(record, version, {P(key, value, expires_at_us)});
}

std::vector<StoredItem> StorageEngineConformance::ReadSpan(const std::string& record,
                                                           const KeySpan& span) {
  absl::StatusOr<RecordSlice> slice = engine_->Read(table_, record, span, ReadLimits{});
  if (!slice.ok()) {
    ADD_FAILURE() << "Read(" << record << "): " << slice.status();
    return {};
  }
  EXPECT_FALSE(slice->resume_after.has_value())
      << "an unlimited read set resume_after = " << *slice->resume_after;
  return std::move(slice->items);
}

std::vector<std::pair<std::string, std::string>> StorageEngineConformance::ReadAll(
    const std::string& record) {
  std::vector<std::pair<std::string, std::string>> out;
  for (StoredItem& item : ReadSpan(record)) out.emplace_back(item.key, item.value);
  return out;
}

std::vector<StoredItem> StorageEngineConformance::ReadPaged(const std::string& record, KeySpan span,
                                                            const ReadLimits& limits, int* pages) {
  std::vector<StoredItem> all;
  int reads = 0;
  for (;;) {
    if (++reads > 10'000) {
      ADD_FAILURE() << "paging does not end";
      break;
    }
    absl::StatusOr<RecordSlice> slice = engine_->Read(table_, record, span, limits);
    if (!slice.ok()) {
      ADD_FAILURE() << "Read(" << record << "): " << slice.status();
      break;
    }
    EXPECT_LE(slice->items.size(), limits.max_items) << "page " << reads;
    if (slice->items.size() > 1) {
      EXPECT_LE(Bytes(slice->items), limits.max_bytes)
          << "page " << reads << " of " << slice->items.size() << " items exceeds max_bytes";
    }
    for (StoredItem& item : slice->items) all.push_back(std::move(item));
    if (!slice->resume_after.has_value()) break;
    if (slice->items.empty()) {
      ADD_FAILURE() << "page " << reads << " is empty but sets resume_after";
      break;
    }
    EXPECT_EQ(*slice->resume_after, all.back().key) << "resume_after is not the last key";
    span.after = *slice->resume_after;
  }
  if (pages != nullptr) *pages = reads;
  return all;
}

std::vector<StorageEngineConformance::ScannedItem> StorageEngineConformance::ScanPaged(
    const ReadLimits& limits, int* pages, int* mid_record_resumes) {
  std::vector<ScannedItem> all;
  std::optional<ScanPosition> position;
  std::set<std::string> finished_records;
  std::optional<std::string> current_record;
  int scans = 0;
  int mid_record = 0;
  for (;;) {
    if (++scans > 10'000) {
      ADD_FAILURE() << "scan paging does not end";
      break;
    }
    absl::StatusOr<TableSlice> slice = engine_->Scan(table_, position, limits);
    if (!slice.ok()) {
      ADD_FAILURE() << "Scan: " << slice.status();
      break;
    }
    size_t items = 0;
    size_t bytes = 0;
    for (const ScannedRecord& record : slice->records) {
      EXPECT_FALSE(record.items.empty()) << "record " << record.record_id << " has no items";
      items += record.items.size();
      bytes += Bytes(record.items);
      if (current_record != record.record_id) {
        // A record's items must come together (possibly over several pages).
        if (current_record.has_value()) finished_records.insert(*current_record);
        EXPECT_FALSE(finished_records.contains(record.record_id))
            << "record " << record.record_id << " appears twice";
        current_record = record.record_id;
      }
      for (const StoredItem& item : record.items) {
        if (!all.empty() && all.back().record_id == record.record_id) {
          EXPECT_LT(all.back().key, item.key) << "record " << record.record_id;
        }
        all.push_back(ScannedItem{record.record_id, item.key, item.value});
      }
    }
    EXPECT_LE(items, limits.max_items) << "page " << scans;
    if (items > 1) {
      EXPECT_LE(bytes, limits.max_bytes) << "page " << scans;
    }
    if (!slice->resume.has_value()) break;
    if (items == 0) {
      ADD_FAILURE() << "scan page " << scans << " is empty but sets resume";
      break;
    }
    if (slice->resume->key.has_value()) ++mid_record;
    position = slice->resume;
  }
  if (pages != nullptr) *pages = scans;
  if (mid_record_resumes != nullptr) *mid_record_resumes = mid_record;
  return all;
}

// ---- Tables ----

TEST_P(StorageEngineConformance, CreateTableIsIdempotentAndKeepsData) {
  EXPECT_TRUE(engine_->HasTable(table_));
  SG_ASSERT_OK(Put("r", "k", "v", V(1)));
  SG_EXPECT_OK(engine_->CreateTable(table_));
  EXPECT_TRUE(engine_->HasTable(table_));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("k", "v")));
}

TEST_P(StorageEngineConformance, DropTableRemovesTableAndData) {
  SG_ASSERT_OK(Put("r1", "k", "v", V(1)));
  SG_ASSERT_OK(Put("r2", "k", "v", V(1)));
  SG_ASSERT_OK(engine_->DropTable(table_));
  EXPECT_FALSE(engine_->HasTable(table_));
  EXPECT_EQ(Put("r1", "k", "v", V(2)).code(), absl::StatusCode::kNotFound);

  SG_ASSERT_OK(engine_->CreateTable(table_));
  EXPECT_TRUE(engine_->HasTable(table_));
  EXPECT_THAT(ReadAll("r1"), IsEmpty());
  EXPECT_THAT(ReadAll("r2"), IsEmpty());
  EXPECT_THAT(ScanPaged(ReadLimits{}), IsEmpty());
  // Tombstones went too: an older write is accepted again.
  SG_ASSERT_OK(Put("r1", "k", "again", V(0)));
  EXPECT_THAT(ReadAll("r1"), ElementsAre(Pair("k", "again")));
}

TEST_P(StorageEngineConformance, DropMissingTableIsNotFound) {
  const std::string missing = NewTable("missing");
  EXPECT_FALSE(engine_->HasTable(missing));
  EXPECT_EQ(engine_->DropTable(missing).code(), absl::StatusCode::kNotFound);
}

TEST_P(StorageEngineConformance, WriteToMissingTableIsNotFound) {
  const std::string missing = NewTable("missing");
  RecordWrite write;
  write.table = missing;
  write.record_id = "r";
  write.version = V(1);
  write.ops = {P("k", "v")};
  EXPECT_EQ(engine_->Write(write).code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(engine_->HasTable(missing));
}

TEST_P(StorageEngineConformance, TablesAreIndependent) {
  const std::string other = NewTable("other");
  SG_ASSERT_OK(engine_->CreateTable(other));
  SG_ASSERT_OK(Put("r", "k", "main", V(1)));
  RecordWrite write;
  write.table = other;
  write.record_id = "r";
  write.version = V(1);
  write.ops = {P("k", "other")};
  SG_ASSERT_OK(engine_->Write(write));

  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("k", "main")));
  SG_ASSERT_OK(engine_->DropTable(other));
  EXPECT_TRUE(engine_->HasTable(table_));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("k", "main")));
}

TEST_P(StorageEngineConformance, TableNamesAreArbitrary) {
  // Namespace names become table names; none may collide with an engine's internals.
  for (const std::string& name : {std::string("default"), std::string("with space/and.dots")}) {
    SCOPED_TRACE(name);
    tables_.push_back(name);
    if (engine_->HasTable(name)) engine_->DropTable(name).IgnoreError();
    SG_EXPECT_OK(engine_->CreateTable(name));
    EXPECT_TRUE(engine_->HasTable(name));
    RecordWrite write;
    write.table = name;
    write.record_id = "r";
    write.version = V(1);
    write.ops = {P("k", "v")};
    SG_EXPECT_OK(engine_->Write(write));
    absl::StatusOr<RecordSlice> slice = engine_->Read(name, "r", KeySpan{}, ReadLimits{});
    ASSERT_TRUE(slice.ok()) << slice.status();
    EXPECT_THAT(Keys(slice->items), ElementsAre("k"));
    SG_EXPECT_OK(engine_->DropTable(name));
    EXPECT_FALSE(engine_->HasTable(name));
  }
}

// ---- Put and read ----

TEST_P(StorageEngineConformance, PutAndReadSingleItem) {
  const int64_t expires = clock_.NowMicros() + 3'600'000'000;
  SG_ASSERT_OK(Put("r", "k", "value", V(7, "nonce-1"), expires));
  const std::vector<StoredItem> items = ReadSpan("r");
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].key, "k");
  EXPECT_EQ(items[0].value, "value");
  EXPECT_EQ(items[0].version, V(7, "nonce-1"));
  EXPECT_EQ(items[0].expires_at_us, expires);
}

TEST_P(StorageEngineConformance, PutAndReadMultipleItemsInOneWrite) {
  SG_ASSERT_OK(Apply("r", V(1), {P("c", "3"), P("a", "1"), P("b", "2")}));
  const std::vector<StoredItem> items = ReadSpan("r");
  EXPECT_THAT(Keys(items), ElementsAre("a", "b", "c"));
  for (const StoredItem& item : items) {
    EXPECT_EQ(item.version, V(1));
    EXPECT_EQ(item.expires_at_us, 0);
  }
  SG_ASSERT_OK(Apply("r", V(2), {P("d", "4"), P("a", "1b")}));
  EXPECT_THAT(ReadAll("r"),
              ElementsAre(Pair("a", "1b"), Pair("b", "2"), Pair("c", "3"), Pair("d", "4")));
}

TEST_P(StorageEngineConformance, MissingRecordReadsEmpty) {
  EXPECT_THAT(ReadSpan("nobody"), IsEmpty());
  EXPECT_THAT(ReadSpan("nobody", ByKeys({"a", "b"})), IsEmpty());
  EXPECT_THAT(ReadPaged("nobody", KeySpan{}, ReadLimits{.max_items = 1}), IsEmpty());
}

TEST_P(StorageEngineConformance, EmptyKeyAndEmptyValueAreLive) {
  // A plain map is {"" -> value}; a set is {key -> ""}.
  SG_ASSERT_OK(Apply("r", V(1), {P("", "plain"), P("member", "")}));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("", "plain"), Pair("member", "")));
  EXPECT_THAT(Keys(ReadSpan("r", ByKeys({"", "member"}))), ElementsAre("", "member"));
}

TEST_P(StorageEngineConformance, KeysAreOrderedBytewise) {
  const std::vector<std::string> sorted = {
      "",        B({0x00}),      B({0x00, 0x00}), B({0x01}),
      "a",       B({'a', 0x00}), B({'a', 0xff}),  "b",
      B({0x7f}), B({0x80}),      B({0xff}),       B({0xff, 0xff})};
  std::vector<std::string> shuffled = sorted;
  std::mt19937 rng(42);
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  // Half in one write, the rest one write each.
  std::vector<WriteOp> ops;
  for (size_t i = 0; i < shuffled.size() / 2; ++i) ops.push_back(P(shuffled[i], shuffled[i]));
  SG_ASSERT_OK(Apply("r", V(1), ops));
  for (size_t i = shuffled.size() / 2; i < shuffled.size(); ++i) {
    SG_ASSERT_OK(Put("r", shuffled[i], shuffled[i], V(2)));
  }
  const std::vector<StoredItem> items = ReadSpan("r");
  EXPECT_THAT(Keys(items), ElementsAreArray(sorted));
  for (const StoredItem& item : items) EXPECT_EQ(item.key, item.value);

  EXPECT_THAT(Keys(ReadSpan("r", Range(B({0x00}), B({0xff})))),
              ElementsAreArray(sorted.begin() + 1, sorted.end() - 2));
  EXPECT_THAT(Keys(ReadSpan("r", Range(B({0xff}), ""))), ElementsAre(B({0xff}), B({0xff, 0xff})));
  EXPECT_THAT(Keys(ReadSpan("r", Range("a", B({'a', 0xff})))), ElementsAre("a", B({'a', 0x00})));
  EXPECT_THAT(Keys(ReadPaged("r", KeySpan{}, ReadLimits{.max_items = 1})),
              ElementsAreArray(sorted));
}

TEST_P(StorageEngineConformance, RecordIdsAreDistinctBytewise) {
  const std::vector<std::string> ids = {
      "a", "ab", B({'a', 0x00}), B({0x00}), B({0xff}), B({0xff, 0x00}), B({0x00, 0xff, 0x01})};
  for (size_t i = 0; i < ids.size(); ++i) {
    SG_ASSERT_OK(Apply(ids[i], V(1), {P("k", absl::StrCat("v", i)), P(B({0x00}), "z")}));
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_THAT(ReadAll(ids[i]), ElementsAre(Pair(B({0x00}), "z"), Pair("k", absl::StrCat("v", i))))
        << "record #" << i;
  }
  // Deleting one record leaves those whose ids share its prefix.
  SG_ASSERT_OK(Apply("a", V(2), {DR("", "")}));
  EXPECT_THAT(ReadAll("a"), IsEmpty());
  for (size_t i = 1; i < ids.size(); ++i) {
    EXPECT_THAT(ReadAll(ids[i]), ElementsAre(Pair(B({0x00}), "z"), Pair("k", absl::StrCat("v", i))))
        << "record #" << i;
  }
  std::vector<std::string> scanned;
  for (const ScannedItem& item : ScanPaged(ReadLimits{})) {
    if (item.key == "k") scanned.push_back(item.record_id);
  }
  std::sort(scanned.begin(), scanned.end());
  std::vector<std::string> expected(ids.begin() + 1, ids.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(scanned, expected);
}

TEST_P(StorageEngineConformance, ReadByKeysSkipsMissingKeys) {
  SG_ASSERT_OK(Apply("r", V(1), {P("a", "1"), P("c", "3"), P("e", "5")}));
  SG_ASSERT_OK(Apply("r", V(2), {D("e")}));
  EXPECT_THAT(Keys(ReadSpan("r", ByKeys({"a", "b", "c", "d", "e", "f"}))), ElementsAre("a", "c"));
  EXPECT_THAT(Keys(ReadSpan("r", ByKeys({"c"}))), ElementsAre("c"));
  EXPECT_THAT(ReadSpan("r", ByKeys({"x", "y"})), IsEmpty());
  EXPECT_THAT(ReadSpan("r", ByKeys({})), IsEmpty());
  // The keys, not the range fields, select.
  KeySpan span = ByKeys({"c"});
  span.start = "d";
  EXPECT_THAT(Keys(ReadSpan("r", span)), ElementsAre("c"));
}

TEST_P(StorageEngineConformance, ReadByRange) {
  SG_ASSERT_OK(Apply("r", V(1), {P("a", "1"), P("b", "2"), P("c", "3"), P("d", "4")}));
  EXPECT_THAT(Keys(ReadSpan("r", Range("b", "d"))), ElementsAre("b", "c"));
  EXPECT_THAT(Keys(ReadSpan("r", Range("b", ""))), ElementsAre("b", "c", "d"));
  EXPECT_THAT(Keys(ReadSpan("r", Range("", "c"))), ElementsAre("a", "b"));
  EXPECT_THAT(Keys(ReadSpan("r", Range("bb", "cc"))), ElementsAre("c"));
  EXPECT_THAT(Keys(ReadSpan("r", Range("", ""))), ElementsAre("a", "b", "c", "d"));
  EXPECT_THAT(ReadSpan("r", Range("b", "b")), IsEmpty());
  EXPECT_THAT(ReadSpan("r", Range("e", "")), IsEmpty());
}

TEST_P(StorageEngineConformance, ReadAfterResumes) {
  SG_ASSERT_OK(Apply("r", V(1), {P("a", "1"), P("b", "2"), P("c", "3"), P("d", "4")}));
  EXPECT_THAT(Keys(ReadSpan("r", Range("", "", "b"))), ElementsAre("c", "d"));
  EXPECT_THAT(Keys(ReadSpan("r", Range("", "", "bb"))), ElementsAre("c", "d"));
  EXPECT_THAT(Keys(ReadSpan("r", Range("", "", ""))), ElementsAre("a", "b", "c", "d"));
  EXPECT_THAT(Keys(ReadSpan("r", Range("", "", B({'b', 0x00})))), ElementsAre("c", "d"));
  // `after` before the start: the start governs.
  EXPECT_THAT(Keys(ReadSpan("r", Range("c", "", "a"))), ElementsAre("c", "d"));
  EXPECT_THAT(Keys(ReadSpan("r", Range("a", "d", "b"))), ElementsAre("c"));
  EXPECT_THAT(ReadSpan("r", Range("a", "c", "c")), IsEmpty());
  EXPECT_THAT(ReadSpan("r", Range("", "", "d")), IsEmpty());
  EXPECT_THAT(Keys(ReadSpan("r", ByKeys({"a", "b", "c", "d"}, "b"))), ElementsAre("c", "d"));
  EXPECT_THAT(Keys(ReadSpan("r", ByKeys({"a", "c", "d"}, "b"))), ElementsAre("c", "d"));
  EXPECT_THAT(ReadSpan("r", ByKeys({"a", "b"}, "b")), IsEmpty());
}

// ---- Limits and paging ----

TEST_P(StorageEngineConformance, MaxItemsPagesThroughEveryItemOnce) {
  std::vector<std::string> keys;
  std::vector<WriteOp> ops;
  for (int i = 0; i < 23; ++i) {
    keys.push_back(absl::StrCat("k", Pad(i)));
    ops.push_back(P(keys.back(), absl::StrCat("v", i)));
  }
  SG_ASSERT_OK(Apply("r", V(1), ops));
  // Some dead items in the middle must not end or stall a page.
  SG_ASSERT_OK(Apply("r", V(2), {D("k0005"), D("k0006"), DR("k0010", "k0013")}));
  std::vector<std::string> live;
  for (const std::string& k : keys) {
    if (k != "k0005" && k != "k0006" && !(k >= "k0010" && k < "k0013")) live.push_back(k);
  }
  for (size_t max_items : {size_t{1}, size_t{2}, size_t{5}, live.size(), live.size() + 1}) {
    SCOPED_TRACE(absl::StrCat("max_items=", max_items));
    int pages = 0;
    EXPECT_THAT(Keys(ReadPaged("r", KeySpan{}, ReadLimits{.max_items = max_items}, &pages)),
                ElementsAreArray(live));
    EXPECT_GE(static_cast<size_t>(pages), (live.size() + max_items - 1) / max_items);
    EXPECT_THAT(Keys(ReadPaged("r", Range("k0004", "k0020"), ReadLimits{.max_items = max_items})),
                ElementsAreArray(std::find(live.begin(), live.end(), "k0004"),
                                 std::find(live.begin(), live.end(), "k0020")));
    EXPECT_THAT(Keys(ReadPaged("r", ByKeys(keys), ReadLimits{.max_items = max_items})),
                ElementsAreArray(live));
  }
  // A page that stops early says where to resume.
  absl::StatusOr<RecordSlice> first =
      engine_->Read(table_, "r", KeySpan{}, ReadLimits{.max_items = 3});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(Keys(first->items), ElementsAre("k0000", "k0001", "k0002"));
  EXPECT_EQ(first->resume_after, std::optional<std::string>("k0002"));
}

TEST_P(StorageEngineConformance, MaxBytesPagesThroughEveryItemOnce) {
  std::vector<std::string> keys;
  std::vector<WriteOp> ops;
  for (int i = 0; i < 10; ++i) {
    keys.push_back(absl::StrCat("k", i));         // 2 bytes
    ops.push_back(P(keys.back(), "0123456789"));  // + 10 bytes = 12 per item
  }
  SG_ASSERT_OK(Apply("r", V(1), ops));
  for (size_t max_bytes : {size_t{1}, size_t{12}, size_t{30}, size_t{36}, size_t{1000}}) {
    SCOPED_TRACE(absl::StrCat("max_bytes=", max_bytes));
    EXPECT_THAT(Keys(ReadPaged("r", KeySpan{}, ReadLimits{.max_bytes = max_bytes})),
                ElementsAreArray(keys));
  }
  absl::StatusOr<RecordSlice> slice =
      engine_->Read(table_, "r", KeySpan{}, ReadLimits{.max_bytes = 1});
  ASSERT_TRUE(slice.ok()) << slice.status();
  EXPECT_THAT(Keys(slice->items), ElementsAre("k0"));  // one item even if it alone is over
  EXPECT_EQ(slice->resume_after, std::optional<std::string>("k0"));
  slice = engine_->Read(table_, "r", KeySpan{}, ReadLimits{.max_bytes = 30});
  ASSERT_TRUE(slice.ok()) << slice.status();
  EXPECT_THAT(Keys(slice->items), ElementsAre("k0", "k1"));  // a third would make 36
  EXPECT_EQ(slice->resume_after, std::optional<std::string>("k1"));
}

TEST_P(StorageEngineConformance, PastSoftDeadlineStillMakesProgress) {
  std::vector<std::string> keys;
  std::vector<WriteOp> ops;
  for (int i = 0; i < 5; ++i) {
    keys.push_back(absl::StrCat("k", i));
    ops.push_back(P(keys.back(), "v"));
  }
  SG_ASSERT_OK(Apply("r", V(1), ops));
  const ReadLimits past{.soft_deadline = clock_.Now() - absl::Seconds(1)};
  absl::StatusOr<RecordSlice> slice = engine_->Read(table_, "r", KeySpan{}, past);
  ASSERT_TRUE(slice.ok()) << slice.status();
  ASSERT_GE(slice->items.size(), 1u);
  EXPECT_LT(slice->items.size(), keys.size());
  ASSERT_TRUE(slice->resume_after.has_value());
  EXPECT_EQ(*slice->resume_after, slice->items.back().key);
  EXPECT_THAT(Keys(ReadPaged("r", KeySpan{}, past)), ElementsAreArray(keys));
  EXPECT_THAT(Keys(ReadPaged("r", ByKeys(keys), past)), ElementsAreArray(keys));

  const ReadLimits future{.soft_deadline = clock_.Now() + absl::Hours(1)};
  slice = engine_->Read(table_, "r", KeySpan{}, future);
  ASSERT_TRUE(slice.ok()) << slice.status();
  EXPECT_THAT(Keys(slice->items), ElementsAreArray(keys));
  EXPECT_FALSE(slice->resume_after.has_value());
}

// ---- Last write wins ----

TEST_P(StorageEngineConformance, NewerVersionWins) {
  SG_ASSERT_OK(Put("r", "k", "old", V(1)));
  SG_ASSERT_OK(Put("r", "k", "new", V(2)));
  const std::vector<StoredItem> items = ReadSpan("r");
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].value, "new");
  EXPECT_EQ(items[0].version, V(2));
}

TEST_P(StorageEngineConformance, OlderVersionIsIgnored) {
  SG_ASSERT_OK(Put("r", "k", "new", V(2), clock_.NowMicros() + 10'000'000));
  SG_ASSERT_OK(Put("r", "k", "old", V(1)));
  const std::vector<StoredItem> items = ReadSpan("r");
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].value, "new");
  EXPECT_EQ(items[0].version, V(2));
  EXPECT_EQ(items[0].expires_at_us, clock_.NowMicros() + 10'000'000);
}

TEST_P(StorageEngineConformance, EqualVersionReplayIsNoOp) {
  SG_ASSERT_OK(Apply("r", V(1, "n"), {P("a", "1"), P("b", "2")}));
  SG_ASSERT_OK(Apply("r", V(1, "n"), {P("a", "1"), P("b", "2")}));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("a", "1"), Pair("b", "2")));
  // Equal versions are the same logical write: a different payload under it changes nothing.
  SG_ASSERT_OK(Apply("r", V(1, "n"), {P("a", "other"), D("b")}));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("a", "1"), Pair("b", "2")));
}

TEST_P(StorageEngineConformance, SameTimeOrderedByNonce) {
  SG_ASSERT_OK(Put("r", "k", "b", V(5, "b")));
  SG_ASSERT_OK(Put("r", "k", "a", V(5, "a")));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("k", "b")));
  SG_ASSERT_OK(Put("r", "k", "c", V(5, "c")));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("k", "c")));
  // Nonces are bytes, compared bytewise.
  SG_ASSERT_OK(Put("r", "k", "ff", V(5, B({0xff}))));
  SG_ASSERT_OK(Put("r", "k", "7f", V(5, B({0x7f}))));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("k", "ff")));
  // Time first, nonce second.
  SG_ASSERT_OK(Put("r", "k", "earlier", V(4, B({0xff, 0xff}))));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("k", "ff")));
  SG_ASSERT_OK(Put("r", "k", "later", V(6, "")));
  const std::vector<StoredItem> items = ReadSpan("r");
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].value, "later");
  EXPECT_EQ(items[0].version, V(6, ""));
}

TEST_P(StorageEngineConformance, VersionsArePerItem) {
  SG_ASSERT_OK(Apply("r", V(2), {P("a", "a2")}));
  SG_ASSERT_OK(Apply("r", V(1), {P("a", "a1"), P("b", "b1")}));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("a", "a2"), Pair("b", "b1")));
}

// ---- Deletes ----

TEST_P(StorageEngineConformance, PointDeleteThenLateOlderPutStaysDeleted) {
  SG_ASSERT_OK(Apply("r", V(1), {P("k", "v1"), P("other", "o")}));
  SG_ASSERT_OK(Apply("r", V(3), {D("k")}));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("other", "o")));
  SG_ASSERT_OK(Put("r", "k", "v2", V(2)));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("other", "o")));
  SG_ASSERT_OK(Put("r", "k", "same", V(3)));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("other", "o")));
  SG_ASSERT_OK(Put("r", "k", "v4", V(4)));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("k", "v4"), Pair("other", "o")));
}

TEST_P(StorageEngineConformance, DeleteOfAbsentKeyBlocksOlderPut) {
  SG_ASSERT_OK(Apply("r", V(3), {D("k")}));
  EXPECT_THAT(ReadAll("r"), IsEmpty());
  SG_ASSERT_OK(Put("r", "k", "late", V(2)));
  EXPECT_THAT(ReadAll("r"), IsEmpty());
}

TEST_P(StorageEngineConformance, OlderPointDeleteIsIgnored) {
  SG_ASSERT_OK(Put("r", "k", "v3", V(3)));
  SG_ASSERT_OK(Apply("r", V(2), {D("k")}));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("k", "v3")));
}

TEST_P(StorageEngineConformance, RangeDeleteRemovesOnlyItsRange) {
  SG_ASSERT_OK(
      Apply("r", V(1), {P("a", "1"), P("b", "2"), P("bb", "3"), P("c", "4"), P("d", "5")}));
  SG_ASSERT_OK(Apply("r", V(2), {DR("b", "c")}));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("a", "1"), Pair("c", "4"), Pair("d", "5")));
  SG_ASSERT_OK(Apply("r", V(3), {DR("c", "")}));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("a", "1")));
}

TEST_P(StorageEngineConformance, RangeDeleteThenLateOlderPutStaysDeleted) {
  SG_ASSERT_OK(Apply("r", V(1), {P("a", "1"), P("m", "2"), P("z", "3")}));
  SG_ASSERT_OK(Apply("r", V(5), {DR("b", "y")}));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("a", "1"), Pair("z", "3")));
  // Late retries of older writes, inside the range: stay deleted, whether or not the key
  // was there before.
  SG_ASSERT_OK(Put("r", "m", "late", V(4)));
  SG_ASSERT_OK(Put("r", "n", "late", V(3)));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("a", "1"), Pair("z", "3")));
  // Outside the range an older write still applies, by its own item's version.
  SG_ASSERT_OK(Put("r", "y", "outside", V(2)));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("a", "1"), Pair("y", "outside"), Pair("z", "3")));
  // Newer puts inside the range apply.
  SG_ASSERT_OK(Put("r", "m", "newer", V(6)));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("a", "1"), Pair("m", "newer"), Pair("y", "outside"),
                                        Pair("z", "3")));
}

TEST_P(StorageEngineConformance, RangeDeleteKeepsNewerCells) {
  SG_ASSERT_OK(Apply("r", V(1), {P("a", "1"), P("b", "1")}));
  SG_ASSERT_OK(Apply("r", V(5), {P("c", "5")}));
  SG_ASSERT_OK(Apply("r", V(7), {P("d", "7")}));
  SG_ASSERT_OK(Apply("r", V(5, "x"), {DR("", "")}));  // newer than c's (5, "")
  SG_ASSERT_OK(Apply("r", V(3), {DR("a", "e")}));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("d", "7")));
  SG_ASSERT_OK(Apply("r", V(6), {DR("", "")}));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("d", "7")));
  SG_ASSERT_OK(Apply("r", V(2), {DR("a", "z")}));  // a late retry of an older range delete
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("d", "7")));
}

TEST_P(StorageEngineConformance, RecordDeleteRemovesEverything) {
  SG_ASSERT_OK(Apply("r", V(1), {P("", "e"), P("a", "1"), P(B({0xff, 0xff}), "2")}));
  SG_ASSERT_OK(Apply("r2", V(1), {P("a", "other record")}));
  SG_ASSERT_OK(Apply("r", V(2), {DR("", "")}));
  EXPECT_THAT(ReadAll("r"), IsEmpty());
  EXPECT_THAT(ReadAll("r2"), ElementsAre(Pair("a", "other record")));
  SG_ASSERT_OK(Apply("r", V(1, "z"), {P("a", "late"), P("new", "late")}));
  EXPECT_THAT(ReadAll("r"), IsEmpty());
  SG_ASSERT_OK(Apply("r", V(3), {P("a", "newer")}));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("a", "newer")));
  EXPECT_THAT(ScanPaged(ReadLimits{}),
              ::testing::UnorderedElementsAre(ScannedItem{"r", "a", "newer"},
                                              ScannedItem{"r2", "a", "other record"}));
}

// ---- Folding within one write ----

TEST_P(StorageEngineConformance, FoldPutThenDeleteSameKey) {
  SG_ASSERT_OK(Apply("r", V(2), {P("k", "v"), P("j", "j"), D("k")}));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("j", "j")));
  // The delete left a tombstone at the write's version.
  SG_ASSERT_OK(Put("r", "k", "late", V(1)));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("j", "j")));
}

TEST_P(StorageEngineConformance, FoldDeleteThenPutSameKey) {
  SG_ASSERT_OK(Put("r", "k", "old", V(1)));
  SG_ASSERT_OK(Apply("r", V(2), {D("k"), P("k", "v")}));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("k", "v")));
}

TEST_P(StorageEngineConformance, FoldDeleteRangeThenPutInside) {
  SG_ASSERT_OK(Apply("r", V(1), {P("a", "1"), P("b", "2"), P("c", "3"), P("d", "4")}));
  SG_ASSERT_OK(Apply("r", V(2), {DR("a", "d"), P("b", "new"), P("bb", "added")}));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("b", "new"), Pair("bb", "added"), Pair("d", "4")));
  const std::vector<StoredItem> items = ReadSpan("r", ByKeys({"b"}));
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].version, V(2));
  // The range tombstone still blocks older writes to the rest of its range.
  SG_ASSERT_OK(Apply("r", V(1, "z"), {P("a", "late"), P("c", "late")}));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("b", "new"), Pair("bb", "added"), Pair("d", "4")));
  // A record delete followed by puts: "replace the record".
  SG_ASSERT_OK(Apply("r", V(3), {DR("", ""), P("x", "only")}));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("x", "only")));
}

TEST_P(StorageEngineConformance, FoldPutThenDeleteRange) {
  SG_ASSERT_OK(Apply("r", V(1), {P("a", "1")}));
  SG_ASSERT_OK(Apply("r", V(2), {P("b", "2"), P("m", "outside"), DR("a", "c"), P("z", "z")}));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("m", "outside"), Pair("z", "z")));
}

TEST_P(StorageEngineConformance, ReplayOfMixedWriteIsIdempotent) {
  SG_ASSERT_OK(Apply("r", V(1),
                     {P("a", "A"), P("b", "B"), P("c", "C"), P("d", "D"), P("e", "E"), P("x", "X"),
                      P("xx", "XX")}));
  const int64_t expires = clock_.NowMicros() + 3'600'000'000;
  const std::vector<WriteOp> mixed = {P("a", "A2"),         D("b"),      DR("c", "e"), P("d", "D2"),
                                      P("f", "F", expires), D("absent"), DR("x", ""),  P("y", "Y")};
  SG_ASSERT_OK(Apply("r", V(5), mixed));
  const std::vector<ItemState> once = States(ReadSpan("r"));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("a", "A2"), Pair("d", "D2"), Pair("e", "E"),
                                        Pair("f", "F"), Pair("y", "Y")));
  SG_ASSERT_OK(Apply("r", V(5), mixed));
  EXPECT_EQ(States(ReadSpan("r")), once);
  SG_ASSERT_OK(Apply("r", V(5), mixed));
  EXPECT_EQ(States(ReadSpan("r")), once);

  // A replay after a newer write leaves the newer write in place.
  SG_ASSERT_OK(Apply("r", V(6), {P("b", "B6"), P("c", "C6"), P("y", "Y6")}));
  const std::vector<ItemState> after_newer = States(ReadSpan("r"));
  SG_ASSERT_OK(Apply("r", V(5), mixed));
  EXPECT_EQ(States(ReadSpan("r")), after_newer);
  EXPECT_THAT(ReadAll("r"),
              ElementsAre(Pair("a", "A2"), Pair("b", "B6"), Pair("c", "C6"), Pair("d", "D2"),
                          Pair("e", "E"), Pair("f", "F"), Pair("y", "Y6")));
}

// ---- Expiry ----

TEST_P(StorageEngineConformance, PastExpiryIsNotReturned) {
  SG_ASSERT_OK(Apply("r", V(1), {P("gone", "v", clock_.NowMicros() - 1), P("kept", "v")}));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("kept", "v")));
  EXPECT_THAT(ReadSpan("r", ByKeys({"gone"})), IsEmpty());
  EXPECT_THAT(Keys(ReadPaged("r", KeySpan{}, ReadLimits{.max_items = 1})), ElementsAre("kept"));
}

TEST_P(StorageEngineConformance, ExpiryFollowsTheClock) {
  const int64_t expires = clock_.NowMicros() + 10'000'000;
  SG_ASSERT_OK(Apply("r", V(1), {P("ttl", "v", expires), P("forever", "v")}));
  std::vector<StoredItem> items = ReadSpan("r", ByKeys({"ttl"}));
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].expires_at_us, expires);
  clock_.Advance(absl::Seconds(9));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("forever", "v"), Pair("ttl", "v")));
  clock_.Advance(absl::Seconds(2));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("forever", "v")));
  EXPECT_THAT(ScanPaged(ReadLimits{}), ElementsAre(ScannedItem{"r", "forever", "v"}));
  // A newer put brings the key back.
  SG_ASSERT_OK(Put("r", "ttl", "again", V(2)));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("forever", "v"), Pair("ttl", "again")));
}

// ---- Purge ----

TEST_P(StorageEngineConformance, PurgeKeepsTombstonesAndExpiredItemsWithinGrace) {
  SG_ASSERT_OK(Apply("r", V(1), {P("ttl", "v", clock_.NowMicros() + 1'000'000)}));
  SG_ASSERT_OK(Apply("r", V(3), {D("k"), DR("m", "n")}));
  clock_.Advance(kGrace - absl::Seconds(10));
  SG_ASSERT_OK(engine_->Purge(table_));
  SG_ASSERT_OK(Put("r", "k", "late", V(2)));
  SG_ASSERT_OK(Put("r", "m1", "late", V(2)));
  SG_ASSERT_OK(Put("r", "ttl", "late", V(0)));
  EXPECT_THAT(ReadAll("r"), IsEmpty());
}

TEST_P(StorageEngineConformance, PurgeDropsWhatOutlivedItsGrace) {
  SG_ASSERT_OK(Apply("r", V(1), {P("ttl", "v", clock_.NowMicros() + 1'000'000)}));
  SG_ASSERT_OK(Apply("r", V(3), {D("k"), DR("m", "n")}));
  clock_.Advance(kGrace + absl::Seconds(10));
  SG_ASSERT_OK(engine_->Purge(table_));
  // With the tombstones and the expired item gone, writes as old as those they blocked apply
  // again. (The Key-Value layer's clock-skew check keeps such old writes from arriving.)
  SG_ASSERT_OK(Put("r", "k", "old", V(2)));
  SG_ASSERT_OK(Put("r", "m1", "old", V(2)));
  SG_ASSERT_OK(Put("r", "ttl", "old", V(0)));
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("k", "old"), Pair("m1", "old"), Pair("ttl", "old")));
}

TEST_P(StorageEngineConformance, PurgeOfMissingTableIsNotFound) {
  EXPECT_EQ(engine_->Purge(NewTable("missing")).code(), absl::StatusCode::kNotFound);
}

// ---- Scan ----

TEST_P(StorageEngineConformance, ScanEmptyTable) {
  absl::StatusOr<TableSlice> slice = engine_->Scan(table_, std::nullopt, ReadLimits{});
  ASSERT_TRUE(slice.ok()) << slice.status();
  EXPECT_THAT(slice->records, IsEmpty());
  EXPECT_FALSE(slice->resume.has_value());
}

TEST_P(StorageEngineConformance, ScanPagesThroughEveryLiveItemOnce) {
  std::vector<ScannedItem> expected;
  for (int r = 0; r < 7; ++r) {
    const std::string id = r == 6 ? B({0x00, 'r', 0xff}) : absl::StrCat("rec", r);
    std::vector<WriteOp> ops;
    for (int k = 0; k <= r; ++k) {
      ops.push_back(P(absl::StrCat("k", k), absl::StrCat(r, ".", k)));
      expected.push_back(ScannedItem{id, absl::StrCat("k", k), absl::StrCat(r, ".", k)});
    }
    SG_ASSERT_OK(Apply(id, V(1), ops));
  }
  // Records with no live items: deleted by key, by range, expired.
  SG_ASSERT_OK(Apply("dead-keys", V(1), {P("a", "1"), P("b", "2")}));
  SG_ASSERT_OK(Apply("dead-keys", V(2), {D("a"), D("b")}));
  SG_ASSERT_OK(Apply("dead-range", V(1), {P("a", "1"), P("b", "2")}));
  SG_ASSERT_OK(Apply("dead-range", V(2), {DR("", "")}));
  SG_ASSERT_OK(Apply("dead-ttl", V(1), {P("a", "1", clock_.NowMicros() + 1'000'000)}));
  SG_ASSERT_OK(Apply("only-tombstone", V(1), {D("a")}));
  clock_.Advance(absl::Seconds(2));
  // Dead items inside live records.
  SG_ASSERT_OK(Apply("rec5", V(2), {D("k2"), DR("k4", "")}));
  std::erase_if(expected, [](const ScannedItem& i) {
    return i.record_id == "rec5" && (i.key == "k2" || i.key >= "k4");
  });
  std::sort(expected.begin(), expected.end(), [](const ScannedItem& a, const ScannedItem& b) {
    return std::tie(a.record_id, a.key) < std::tie(b.record_id, b.key);
  });

  for (size_t max_items : {size_t{1}, size_t{2}, size_t{3}, size_t{1000}}) {
    SCOPED_TRACE(absl::StrCat("max_items=", max_items));
    int pages = 0;
    int mid_record = 0;
    std::vector<ScannedItem> scanned =
        ScanPaged(ReadLimits{.max_items = max_items}, &pages, &mid_record);
    std::sort(scanned.begin(), scanned.end(), [](const ScannedItem& a, const ScannedItem& b) {
      return std::tie(a.record_id, a.key) < std::tie(b.record_id, b.key);
    });
    EXPECT_EQ(scanned, expected);
    if (max_items < 1000) {
      EXPECT_GE(static_cast<size_t>(pages), (expected.size() + max_items - 1) / max_items);
    }
    if (max_items == 2 || max_items == 3) {
      EXPECT_GT(mid_record, 0) << "no page ended inside a record";
    }
  }
}

TEST_P(StorageEngineConformance, ScanResumesAfterRecordAndAfterKey) {
  for (const char* id : {"a", "b", "c"}) {
    SG_ASSERT_OK(Apply(id, V(1), {P("k1", id), P("k2", id), P("k3", id)}));
  }
  const std::vector<ScannedItem> all = ScanPaged(ReadLimits{});
  ASSERT_EQ(all.size(), 9u);
  const std::string second = all[3].record_id;  // engine order
  ASSERT_EQ(all[5].record_id, second);

  // After the whole second record: only the third.
  absl::StatusOr<TableSlice> slice =
      engine_->Scan(table_, ScanPosition{second, std::nullopt}, ReadLimits{});
  ASSERT_TRUE(slice.ok()) << slice.status();
  ASSERT_EQ(slice->records.size(), 1u);
  EXPECT_EQ(slice->records[0].record_id, all[6].record_id);
  EXPECT_THAT(Keys(slice->records[0].items), ElementsAre("k1", "k2", "k3"));
  EXPECT_FALSE(slice->resume.has_value());

  // After an item of the second record: the rest of it, then the third.
  slice = engine_->Scan(table_, ScanPosition{second, "k1"}, ReadLimits{});
  ASSERT_TRUE(slice.ok()) << slice.status();
  ASSERT_EQ(slice->records.size(), 2u);
  EXPECT_EQ(slice->records[0].record_id, second);
  EXPECT_THAT(Keys(slice->records[0].items), ElementsAre("k2", "k3"));
  EXPECT_EQ(slice->records[1].record_id, all[6].record_id);

  // After the last item of the second record: as after the whole record.
  slice = engine_->Scan(table_, ScanPosition{second, "k3"}, ReadLimits{});
  ASSERT_TRUE(slice.ok()) << slice.status();
  ASSERT_EQ(slice->records.size(), 1u);
  EXPECT_EQ(slice->records[0].record_id, all[6].record_id);

  // A page that stops inside a record resumes inside it.
  slice = engine_->Scan(table_, std::nullopt, ReadLimits{.max_items = 2});
  ASSERT_TRUE(slice.ok()) << slice.status();
  ASSERT_EQ(slice->records.size(), 1u);
  EXPECT_EQ(slice->records[0].record_id, all[0].record_id);
  EXPECT_THAT(Keys(slice->records[0].items), ElementsAre("k1", "k2"));
  ASSERT_TRUE(slice->resume.has_value());
  EXPECT_EQ(slice->resume->record_id, all[0].record_id);
  EXPECT_EQ(slice->resume->key, std::optional<std::string>("k2"));
}

TEST_P(StorageEngineConformance, ScanLimitedByBytesAndDeadline) {
  std::vector<ScannedItem> expected;
  for (const char* id : {"a", "b", "c"}) {
    for (const char* key : {"k1", "k2"}) {
      expected.push_back(ScannedItem{id, key, "0123456789"});
    }
    SG_ASSERT_OK(Apply(id, V(1), {P("k1", "0123456789"), P("k2", "0123456789")}));
  }
  auto sorted = [](std::vector<ScannedItem> items) {
    std::sort(items.begin(), items.end(), [](const ScannedItem& a, const ScannedItem& b) {
      return std::tie(a.record_id, a.key) < std::tie(b.record_id, b.key);
    });
    return items;
  };
  for (size_t max_bytes : {size_t{1}, size_t{12}, size_t{30}}) {
    SCOPED_TRACE(absl::StrCat("max_bytes=", max_bytes));
    EXPECT_EQ(sorted(ScanPaged(ReadLimits{.max_bytes = max_bytes})), expected);
  }
  const ReadLimits past{.soft_deadline = clock_.Now() - absl::Seconds(1)};
  absl::StatusOr<TableSlice> slice = engine_->Scan(table_, std::nullopt, past);
  ASSERT_TRUE(slice.ok()) << slice.status();
  ASSERT_FALSE(slice->records.empty());
  EXPECT_TRUE(slice->resume.has_value());
  int pages = 0;
  EXPECT_EQ(sorted(ScanPaged(past, &pages)), expected);
  EXPECT_GT(pages, 1);
}

// ---- Concurrency ----

TEST_P(StorageEngineConformance, ConcurrentWritersConvergeToMaxVersion) {
  constexpr int kThreads = 4;
  constexpr int kWritesPerThread = 50;
  constexpr int kWrites = kThreads * kWritesPerThread;
  // Write j has version (j / 2, "a" or "b"): distinct, ordered by j, pairs sharing a time.
  auto version = [this](int j) { return V(j / 2, j % 2 == 0 ? "a" : "b"); };
  std::vector<std::vector<int>> plan(kThreads);
  for (int j = 0; j < kWrites; ++j) plan[j % kThreads].push_back(j);
  for (int t = 0; t < kThreads; ++t) {
    std::mt19937 rng(t);
    std::shuffle(plan[t].begin(), plan[t].end(), rng);
  }
  std::atomic<int> failures{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int j : plan[t]) {
        RecordWrite write;
        write.table = table_;
        write.record_id = "hot";
        write.version = version(j);
        write.ops = {P("k", absl::StrCat(j)), P(absl::StrCat("w", Pad(j)), ""),
                     P("z", absl::StrCat(j))};
        write.sync = false;
        if (!engine_->Write(write).ok()) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);

  const std::vector<StoredItem> items = ReadSpan("hot");
  ASSERT_EQ(items.size(), static_cast<size_t>(kWrites + 2));
  EXPECT_EQ(items.front().key, "k");
  EXPECT_EQ(items.front().value, absl::StrCat(kWrites - 1));
  EXPECT_EQ(items.front().version, version(kWrites - 1));
  EXPECT_EQ(items.back().key, "z");
  EXPECT_EQ(items.back().value, absl::StrCat(kWrites - 1));
  for (int j = 0; j < kWrites; ++j) {
    EXPECT_EQ(items[j + 1].key, absl::StrCat("w", Pad(j)));
    EXPECT_EQ(items[j + 1].version, version(j));
  }
}

// ---- Large values ----

// memory_only.h: a memory-only call either answers exactly as a normal call would, or
// returns WouldBlockError having changed nothing; a write always needs I/O.
TEST_P(StorageEngineConformance, MemoryOnlyCallsAnswerAsUsualOrWouldBlock) {
  SG_ASSERT_OK(Put("r", "a", "1", V(1)));
  SG_ASSERT_OK(Put("r", "b", "2", V(1)));
  {
    ScopedMemoryOnly memory_only;
    const absl::Status write = Put("r", "a", "changed", V(2));
    EXPECT_TRUE(IsWouldBlock(write)) << write;
    absl::StatusOr<RecordSlice> read = engine_->Read(table_, "r", KeySpan{}, ReadLimits{});
    if (read.ok()) {
      ASSERT_EQ(read->items.size(), 2u);
      EXPECT_EQ(read->items[0].value, "1");
      EXPECT_EQ(read->items[1].value, "2");
    } else {
      EXPECT_TRUE(IsWouldBlock(read.status())) << read.status();
    }
    absl::StatusOr<TableSlice> scan = engine_->Scan(table_, std::nullopt, ReadLimits{});
    if (scan.ok()) {
      ASSERT_EQ(scan->records.size(), 1u);
      EXPECT_EQ(scan->records[0].items.size(), 2u);
    } else {
      EXPECT_TRUE(IsWouldBlock(scan.status())) << scan.status();
    }
  }
  EXPECT_FALSE(MemoryOnly());
  EXPECT_THAT(ReadAll("r"), ElementsAre(Pair("a", "1"), Pair("b", "2")));
}

TEST_P(StorageEngineConformance, LargeValuesRoundTrip) {
  constexpr size_t kMiB = size_t{1} << 20;
  std::string big(kMiB, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
  std::string big2 = big;
  std::reverse(big2.begin(), big2.end());
  SG_ASSERT_OK(Apply("r", V(1), {P("big", big), P("big2", big2), P("small", "s")}));
  const std::vector<StoredItem> items = ReadSpan("r");
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].value.size(), kMiB);
  EXPECT_TRUE(items[0].value == big) << "1 MiB value differs";
  EXPECT_TRUE(items[1].value == big2) << "second 1 MiB value differs";
  EXPECT_EQ(items[2].value, "s");

  const std::vector<StoredItem> paged = ReadPaged("r", KeySpan{}, ReadLimits{.max_bytes = 1});
  ASSERT_EQ(paged.size(), 3u);
  EXPECT_TRUE(paged[1].value == big2);

  SG_ASSERT_OK(Put("r", "big", big2, V(2)));
  const std::vector<StoredItem> replaced = ReadSpan("r", ByKeys({"big"}));
  ASSERT_EQ(replaced.size(), 1u);
  EXPECT_TRUE(replaced[0].value == big2);
}

}  // namespace stategate::storage
