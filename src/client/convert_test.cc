#include "src/client/convert.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stategate::client {
namespace {

using ::testing::ElementsAre;

TEST(ConvertTest, Predicates) {
  v1::Predicate all;
  ToProto(Predicate::All(), &all);
  EXPECT_TRUE(all.has_all());

  v1::Predicate keys;
  ToProto(Predicate::Keys({"a", std::string("\0b", 2)}), &keys);
  ASSERT_TRUE(keys.has_keys());
  EXPECT_THAT(keys.keys().keys(), ElementsAre("a", std::string("\0b", 2)));

  v1::Predicate range;
  ToProto(Predicate::Range("a", ""), &range);
  ASSERT_TRUE(range.has_range());
  EXPECT_EQ(range.range().start(), "a");
  EXPECT_EQ(range.range().end(), "");
}

TEST(ConvertTest, Handshake) {
  v1::HandshakeResponse r;
  r.set_config_version(7);
  r.set_server_time_us(1'000'000);
  r.set_max_clock_skew_us(30'000'000);
  v1::NamespaceInfo* ns = r.add_namespaces();
  ns->set_name("default");
  ns->set_abstraction("kv");
  ns->mutable_slos()->mutable_point_read()->set_target_us(1000);
  ns->mutable_slos()->mutable_point_read()->set_max_us(5000);
  ns->mutable_client()->set_chunk_bytes(4096);
  ns->mutable_client()->set_near_cache("lru");
  ns->mutable_limits()->set_max_value_bytes(1 << 20);

  const HandshakeInfo info = FromProto(r);
  EXPECT_EQ(info.config_version, 7u);
  EXPECT_EQ(info.server_time, absl::FromUnixSeconds(1));
  EXPECT_EQ(info.max_clock_skew, absl::Seconds(30));
  ASSERT_EQ(info.namespaces.size(), 1u);
  EXPECT_EQ(info.namespaces[0].name, "default");
  EXPECT_EQ(info.namespaces[0].point_read_slo.target, absl::Milliseconds(1));
  EXPECT_EQ(info.namespaces[0].point_read_slo.max, absl::Milliseconds(5));
  EXPECT_EQ(info.namespaces[0].chunk_bytes, 4096);
  EXPECT_EQ(info.namespaces[0].near_cache, "lru");
  EXPECT_EQ(info.namespaces[0].max_value_bytes, 1 << 20);
}

TEST(ConvertTest, StoredItemExpiry) {
  v1::Item item;
  item.set_key("k");
  item.mutable_metadata()->mutable_version()->set_generation_time_us(5);
  StoredItem forever = StoredItemWithoutValue(item);
  EXPECT_EQ(forever.key, "k");
  EXPECT_EQ(forever.version, absl::FromUnixMicros(5));
  EXPECT_EQ(forever.expires_at, absl::InfiniteFuture());
  item.mutable_metadata()->set_expires_at_us(9);
  EXPECT_EQ(StoredItemWithoutValue(item).expires_at, absl::FromUnixMicros(9));
}

}  // namespace
}  // namespace stategate::client
