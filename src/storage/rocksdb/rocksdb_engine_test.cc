#include "src/storage/rocksdb/rocksdb_engine.h"

#include <memory>
#include <string>
#include <utility>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/common/clock.h"
#include "src/storage/conformance_test_suite.h"
#include "src/storage/engine_wrapper.h"
#include "src/storage/memory_only.h"
#include "test/lib/temp_dir.h"

namespace stategate::storage {
namespace {

using ::stategate::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Item = std::pair<std::string, std::string>;

// An engine that owns the directory it lives in and removes it after closing.
// An engine that owns the directory it lives in and removes it after closing.
class DirOwningEngine : public StorageEngineWrapper {
 public:
  DirOwningEngine(std::unique_ptr<TempDir> dir, std::unique_ptr<StorageEngine> engine)
      : StorageEngineWrapper(std::move(engine)), dir_(std::move(dir)) {}
  ~DirOwningEngine() override { ResetTarget(); }  // close the database, then remove its files

 private:
  std::unique_ptr<TempDir> dir_;
};

std::unique_ptr<StorageEngine> MakeRocksDb(Clock* clock, absl::Duration tombstone_grace) {
  auto dir = std::make_unique<TempDir>();
  absl::StatusOr<std::unique_ptr<StorageEngine>> engine =
      OpenRocksDbEngine(RocksDbOptions{dir->path() + "/db", clock, tombstone_grace});
  if (!engine.ok()) {
    ADD_FAILURE() << "OpenRocksDbEngine: " << engine.status();
    return nullptr;
  }
  return std::make_unique<DirOwningEngine>(std::move(dir), *std::move(engine));
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(RocksDb, StorageEngineConformance,
                         ::testing::Values(EngineFactory{"rocksdb", MakeRocksDb, nullptr}),
                         EngineFactoryName);

namespace {

// ---- RocksDB-specific: what survives closing and reopening the database ----

class RocksDbEngineTest : public ::testing::Test {
 protected:
  std::unique_ptr<StorageEngine> Open() {
    absl::StatusOr<std::unique_ptr<StorageEngine>> engine =
        OpenRocksDbEngine(RocksDbOptions{dir_.path() + "/db", &clock_, absl::Hours(1)});
    EXPECT_TRUE(engine.ok()) << engine.status();
    return engine.ok() ? *std::move(engine) : nullptr;
  }

  Version V(int64_t offset_us) const { return Version{clock_.NowMicros() + offset_us, ""}; }

  static RecordWrite Write(const std::string& table, const std::string& id, Version version,
                           std::vector<WriteOp> ops) {
    RecordWrite write;
    write.table = table;
    write.record_id = id;
    write.version = std::move(version);
    write.ops = std::move(ops);
    return write;
  }

  static std::vector<Item> ReadAll(StorageEngine& engine, const std::string& table,
                                   const std::string& id) {
    std::vector<Item> out;
    absl::StatusOr<RecordSlice> slice = engine.Read(table, id, KeySpan{}, ReadLimits{});
    EXPECT_TRUE(slice.ok()) << slice.status();
    if (!slice.ok()) return out;
    for (const StoredItem& item : slice->items) out.emplace_back(item.key, item.value);
    return out;
  }

  FakeClock clock_;
  TempDir dir_;
};

TEST_F(RocksDbEngineTest, DataSurvivesReopen) {
  {
    std::unique_ptr<StorageEngine> engine = Open();
    ASSERT_NE(engine, nullptr);
    ASSERT_TRUE(engine->CreateTable("t").ok());
    ASSERT_TRUE(
        engine->Write(Write("t", "r", V(1), {PutOp{"a", "1"}, PutOp{"b", "2"}, PutOp{"c", "3"}}))
            .ok());
    ASSERT_TRUE(engine->Write(Write("t", "r", V(3), {DeleteKeyOp{"a"}})).ok());
    ASSERT_TRUE(engine->Write(Write("t", "r", V(3), {DeleteRangeOp{"c", ""}})).ok());
    RecordWrite unsynced = Write("t", "r2", V(1), {PutOp{"x", "y"}});
    unsynced.sync = false;
    ASSERT_TRUE(engine->Write(unsynced).ok());
  }
  std::unique_ptr<StorageEngine> engine = Open();
  ASSERT_NE(engine, nullptr);
  EXPECT_THAT(ReadAll(*engine, "t", "r"), ElementsAre(Item("b", "2")));
  EXPECT_THAT(ReadAll(*engine, "t", "r2"), ElementsAre(Item("x", "y")));
  // Point and range tombstones survived too: late older writes stay deleted.
  ASSERT_TRUE(engine->Write(Write("t", "r", V(2), {PutOp{"a", "late"}, PutOp{"d", "late"}})).ok());
  EXPECT_THAT(ReadAll(*engine, "t", "r"), ElementsAre(Item("b", "2")));
  // And the engine keeps working after reopening.
  ASSERT_TRUE(engine->Write(Write("t", "r", V(4), {PutOp{"a", "new"}})).ok());
  EXPECT_THAT(ReadAll(*engine, "t", "r"), ElementsAre(Item("a", "new"), Item("b", "2")));
}

TEST_F(RocksDbEngineTest, TablesSurviveReopen) {
  {
    std::unique_ptr<StorageEngine> engine = Open();
    ASSERT_NE(engine, nullptr);
    ASSERT_TRUE(engine->CreateTable("kept").ok());
    ASSERT_TRUE(engine->CreateTable("empty").ok());
    ASSERT_TRUE(engine->CreateTable("default").ok());  // RocksDB's own column family's name
    ASSERT_TRUE(engine->Write(Write("default", "r", V(1), {PutOp{"k", "d"}})).ok());
    ASSERT_TRUE(engine->CreateTable("dropped").ok());
    ASSERT_TRUE(engine->Write(Write("kept", "r", V(1), {PutOp{"k", "v"}})).ok());
    ASSERT_TRUE(engine->Write(Write("dropped", "r", V(1), {PutOp{"k", "v"}})).ok());
    ASSERT_TRUE(engine->DropTable("dropped").ok());
  }
  {
    std::unique_ptr<StorageEngine> engine = Open();
    ASSERT_NE(engine, nullptr);
    EXPECT_TRUE(engine->HasTable("kept"));
    EXPECT_TRUE(engine->HasTable("empty"));
    EXPECT_TRUE(engine->HasTable("default"));
    EXPECT_THAT(ReadAll(*engine, "default", "r"), ElementsAre(Item("k", "d")));
    EXPECT_FALSE(engine->HasTable("dropped"));
    EXPECT_THAT(ReadAll(*engine, "kept", "r"), ElementsAre(Item("k", "v")));
    EXPECT_THAT(ReadAll(*engine, "empty", "r"), IsEmpty());
    EXPECT_EQ(engine->Write(Write("dropped", "r", V(2), {PutOp{"k", "v"}})).code(),
              absl::StatusCode::kNotFound);
    ASSERT_TRUE(engine->CreateTable("dropped").ok());
    EXPECT_THAT(ReadAll(*engine, "dropped", "r"), IsEmpty());
  }
  // Reopening twice in a row, with a table created in between.
  std::unique_ptr<StorageEngine> engine = Open();
  ASSERT_NE(engine, nullptr);
  EXPECT_TRUE(engine->HasTable("kept"));
  EXPECT_TRUE(engine->HasTable("dropped"));
  EXPECT_THAT(ReadAll(*engine, "kept", "r"), ElementsAre(Item("k", "v")));
}

// memory_only.h on RocksDB: memtables and the block cache answer; a block only on disk
// makes the call WouldBlock, and a normal read of it brings it into the cache.
TEST_F(RocksDbEngineTest, MemoryOnlyReadsComeFromMemtablesAndTheBlockCache) {
  {
    std::unique_ptr<StorageEngine> engine = Open();
    ASSERT_NE(engine, nullptr);
    ASSERT_TRUE(engine->CreateTable("t").ok());
    ASSERT_TRUE(engine->Write(Write("t", "r", V(1), {PutOp{"a", "1"}, PutOp{"b", "2"}})).ok());
    ScopedMemoryOnly memory_only;
    EXPECT_THAT(ReadAll(*engine, "t", "r"), ElementsAre(Item("a", "1"), Item("b", "2")));
  }
  // Reopening flushes the recovered log to a table file; its blocks are not cached yet.
  std::unique_ptr<StorageEngine> engine = Open();
  ASSERT_NE(engine, nullptr);
  KeySpan by_key;
  by_key.by_keys = true;
  by_key.keys = {"b"};
  {
    ScopedMemoryOnly memory_only;
    absl::StatusOr<RecordSlice> read = engine->Read("t", "r", KeySpan{}, ReadLimits{});
    EXPECT_TRUE(IsWouldBlock(read.status())) << read.status();
    absl::StatusOr<RecordSlice> point = engine->Read("t", "r", by_key, ReadLimits{});
    EXPECT_TRUE(IsWouldBlock(point.status())) << point.status();
    absl::StatusOr<TableSlice> scan = engine->Scan("t", std::nullopt, ReadLimits{});
    EXPECT_TRUE(IsWouldBlock(scan.status())) << scan.status();
  }
  EXPECT_THAT(ReadAll(*engine, "t", "r"), ElementsAre(Item("a", "1"), Item("b", "2")));
  ScopedMemoryOnly memory_only;
  EXPECT_THAT(ReadAll(*engine, "t", "r"), ElementsAre(Item("a", "1"), Item("b", "2")));
  absl::StatusOr<RecordSlice> point = engine->Read("t", "r", by_key, ReadLimits{});
  ASSERT_TRUE(point.ok()) << point.status();
  ASSERT_EQ(point->items.size(), 1u);
  EXPECT_EQ(point->items[0].value, "2");
}

}  // namespace
}  // namespace stategate::storage
