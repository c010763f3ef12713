#include "src/server/engines.h"

#include <gtest/gtest.h>

#include <random>

#include "absl/strings/str_split.h"
#include "src/common/clock.h"
#include "src/kv/kv_store.h"
#include "test/lib/test_servers.h"

namespace stategate::server {
namespace {

using storage::DeleteKeyOp;
using storage::PutOp;
using storage::RecordWrite;

TEST(EnginesTest, PurgeExpiredPurgesRedisClusterTables) {
  FakeClock clock(absl::FromUnixSeconds(1'800'000'000));
  ServerConfig config = DefaultConfig();
  config.redis_cluster.seeds = absl::StrSplit(testing::SharedRedisClusterSeeds(), ',');
  NamespaceConfig& ns = config.namespaces[0];
  ns.name = "engines_test_" + std::to_string(std::random_device()());
  ns.engine = "redis-cluster";
  Engines engines(config, &clock);
  ASSERT_TRUE(engines.Place(config.namespaces).ok());
  storage::StorageEngine& router = *engines.router();
  ASSERT_TRUE(router.CreateTable(ns.name).ok());
  ASSERT_TRUE(router.CreateTable(kv::ChunkTable(ns.name)).ok());

  auto write = [&](storage::WriteOp op, int64_t time_us) {
    RecordWrite w;
    w.table = ns.name;
    w.record_id = "r";
    w.version = storage::Version{time_us, "n"};
    w.ops.push_back(std::move(op));
    return router.Write(w);
  };
  auto keys = [&] {
    absl::StatusOr<storage::RecordSlice> slice = router.Read(ns.name, "r", {}, {});
    EXPECT_TRUE(slice.ok()) << slice.status();
    return slice.ok() ? slice->items.size() : 0;
  };
  const int64_t t = clock.NowMicros();
  ASSERT_TRUE(write(DeleteKeyOp{"k"}, t + 2).ok());
  ASSERT_TRUE(write(PutOp{"k", "late", 0}, t + 1).ok());
  EXPECT_EQ(keys(), 0u) << "the tombstone keeps the older put out";

  // Past the grace, a purge removes the tombstone: the older put applies again.
  clock.Advance(config.tombstone_grace + absl::Seconds(1));
  ASSERT_TRUE(engines.PurgeExpired().ok());
  ASSERT_TRUE(write(PutOp{"k", "late", 0}, t + 1).ok());
  EXPECT_EQ(keys(), 1u);

  EXPECT_TRUE(router.DropTable(ns.name).ok());
  EXPECT_TRUE(router.DropTable(kv::ChunkTable(ns.name)).ok());
}

}  // namespace
}  // namespace stategate::server
