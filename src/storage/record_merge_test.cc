#include "src/storage/record_merge.h"

#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stategate::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::string B(std::initializer_list<int> bytes) {
  std::string out;
  for (int b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

// A readable form of a folded write: "k=v" for puts, "k=-" for deletes, "[s,e)" for ranges.
std::vector<std::string> Points(const FoldedWrite& folded) {
  std::vector<std::string> out;
  for (const auto& [key, put] : folded.points) {
    out.push_back(key + "=" + (put.has_value() ? put->value : "-"));
  }
  return out;
}
std::vector<std::string> Ranges(const FoldedWrite& folded) {
  std::vector<std::string> out;
  for (const DeleteRangeOp& r : folded.ranges) out.push_back("[" + r.start + "," + r.end + ")");
  return out;
}
std::vector<std::string> Tombstones(const internal::RecordMeta& meta) {
  std::vector<std::string> out;
  for (const internal::RangeTombstone& t : meta.range_tombstones()) {
    out.push_back("[" + t.start() + "," + t.end() + ")@" + std::to_string(t.version_us()) +
                  t.nonce());
  }
  return out;
}

internal::RangeTombstone* AddRaw(internal::RecordMeta& meta, const std::string& start,
                                 const std::string& end, int64_t version_us,
                                 const std::string& nonce = "") {
  internal::RangeTombstone* t = meta.add_range_tombstones();
  t->set_start(start);
  t->set_end(end);
  t->set_version_us(version_us);
  t->set_nonce(nonce);
  return t;
}

internal::StoredCell Cell(int64_t version_us, const std::string& nonce = "",
                          int64_t expires_at_us = 0, bool tombstone = false) {
  internal::StoredCell cell;
  cell.set_version_us(version_us);
  cell.set_nonce(nonce);
  cell.set_expires_at_us(expires_at_us);
  cell.set_tombstone(tombstone);
  cell.set_value("v");
  return cell;
}

// ---- Version ----

TEST(VersionTest, OrdersByTimeThenNonce) {
  EXPECT_LT((Version{1, "z"}), (Version{2, ""}));
  EXPECT_LT((Version{2, "a"}), (Version{2, "b"}));
  EXPECT_LT((Version{2, ""}), (Version{2, B({0x00})}));
  EXPECT_LT((Version{2, B({0x7f})}), (Version{2, B({0xff})}));  // bytewise, not signed char
  EXPECT_EQ((Version{2, "a"}), (Version{2, "a"}));
}

TEST(VersionTest, VersionOfStoredForms) {
  EXPECT_EQ(VersionOf(Cell(5, "n")), (Version{5, "n"}));
  internal::RecordMeta meta;
  EXPECT_EQ(VersionOf(*AddRaw(meta, "a", "b", 7, "m")), (Version{7, "m"}));
}

// ---- Fold ----

TEST(FoldTest, Empty) {
  const FoldedWrite folded = Fold({});
  EXPECT_THAT(folded.points, IsEmpty());
  EXPECT_THAT(folded.ranges, IsEmpty());
}

TEST(FoldTest, LastOpPerKeyWins) {
  const FoldedWrite folded =
      Fold({PutOp{"b", "1"}, PutOp{"a", "1"}, PutOp{"b", "2"}, DeleteKeyOp{"c"}, PutOp{"c", "3"},
            PutOp{"d", "4"}, DeleteKeyOp{"d"}});
  EXPECT_THAT(Points(folded), ElementsAre("a=1", "b=2", "c=3", "d=-"));
  EXPECT_THAT(folded.ranges, IsEmpty());
}

TEST(FoldTest, KeepsExpiry) {
  const FoldedWrite folded = Fold({PutOp{"k", "v", 123}});
  ASSERT_TRUE(folded.points.at("k").has_value());
  EXPECT_EQ(folded.points.at("k")->expires_at_us, 123);
}

TEST(FoldTest, RangeDropsEarlierOpsInsideIt) {
  const FoldedWrite folded = Fold({PutOp{"a", "1"}, PutOp{"b", "2"}, DeleteKeyOp{"bz"},
                                   PutOp{"c", "3"}, PutOp{"d", "4"}, DeleteRangeOp{"b", "d"}});
  // Start inclusive, end exclusive.
  EXPECT_THAT(Points(folded), ElementsAre("a=1", "d=4"));
  EXPECT_THAT(Ranges(folded), ElementsAre("[b,d)"));
}

TEST(FoldTest, RangeWithEmptyEndIsUnbounded) {
  const FoldedWrite folded =
      Fold({PutOp{"a", "1"}, PutOp{"m", "2"}, PutOp{B({0xff, 0xff}), "3"}, DeleteRangeOp{"b", ""}});
  EXPECT_THAT(Points(folded), ElementsAre("a=1"));
  EXPECT_THAT(Ranges(folded), ElementsAre("[b,)"));
}

TEST(FoldTest, RecordDeleteDropsEverythingBefore) {
  const FoldedWrite folded = Fold({PutOp{"", "e"}, PutOp{"a", "1"}, DeleteKeyOp{B({0xff})},
                                   DeleteRangeOp{"", ""}, PutOp{"z", "after"}});
  EXPECT_THAT(Points(folded), ElementsAre("z=after"));
  EXPECT_THAT(Ranges(folded), ElementsAre("[,)"));
}

TEST(FoldTest, OpsAfterRangeSurvive) {
  const FoldedWrite folded =
      Fold({DeleteRangeOp{"a", "z"}, PutOp{"m", "1"}, DeleteKeyOp{"n"}, PutOp{"zz", "out"}});
  EXPECT_THAT(Points(folded), ElementsAre("m=1", "n=-", "zz=out"));
  EXPECT_THAT(Ranges(folded), ElementsAre("[a,z)"));
}

TEST(FoldTest, RangesKeptInOrder) {
  const FoldedWrite folded = Fold({DeleteRangeOp{"c", "d"}, PutOp{"c1", "x"},
                                   DeleteRangeOp{"a", "b"}, DeleteRangeOp{"c", "e"}});
  EXPECT_THAT(Points(folded), IsEmpty());
  EXPECT_THAT(Ranges(folded), ElementsAre("[c,d)", "[a,b)", "[c,e)"));
}

TEST(FoldTest, BytewiseBoundaries) {
  const FoldedWrite folded =
      Fold({PutOp{B({0x00}), "lo"}, PutOp{B({0x7f}), "mid"}, PutOp{B({0x80}), "hi"},
            PutOp{B({0xff}), "top"}, DeleteRangeOp{B({0x7f}), B({0xff})}});
  ASSERT_EQ(folded.points.size(), 2u);
  EXPECT_TRUE(folded.points.contains(B({0x00})));
  EXPECT_TRUE(folded.points.contains(B({0xff})));
}

// ---- InRange ----

TEST(InRangeTest, StartInclusiveEndExclusive) {
  EXPECT_TRUE(InRange("b", "b", "d"));
  EXPECT_TRUE(InRange("c", "b", "d"));
  EXPECT_TRUE(InRange("cz", "b", "d"));
  EXPECT_FALSE(InRange("d", "b", "d"));
  EXPECT_FALSE(InRange("a", "b", "d"));
  EXPECT_FALSE(InRange("", "b", "d"));
  EXPECT_FALSE(InRange("b", "b", "b"));  // empty range
}

TEST(InRangeTest, EmptyBounds) {
  EXPECT_TRUE(InRange("", "", ""));
  EXPECT_TRUE(InRange("anything", "", ""));
  EXPECT_TRUE(InRange(B({0xff, 0xff}), "", ""));
  EXPECT_TRUE(InRange("z", "b", ""));
  EXPECT_FALSE(InRange("a", "b", ""));
  EXPECT_TRUE(InRange("", "", "a"));
  EXPECT_FALSE(InRange("a", "", "a"));
}

TEST(InRangeTest, Bytewise) {
  EXPECT_TRUE(InRange(B({0x80}), B({0x7f}), B({0xff})));
  EXPECT_FALSE(InRange(B({0xff}), B({0x7f}), B({0xff})));
  EXPECT_TRUE(InRange(B({0x00}), "", B({0x01})));
  EXPECT_TRUE(InRange(B({'a', 0x00}), "a", "b"));
  EXPECT_FALSE(InRange("a", B({'a', 0x00}), "b"));
}

// ---- CoveredByNewerTombstone ----

TEST(CoveredByNewerTombstoneTest, NeedsNewerAndCovering) {
  internal::RecordMeta meta;
  AddRaw(meta, "b", "d", 10, "n");
  EXPECT_TRUE(CoveredByNewerTombstone(meta, "c", Version{9, "z"}));
  EXPECT_TRUE(CoveredByNewerTombstone(meta, "c", Version{10, "m"}));
  EXPECT_FALSE(CoveredByNewerTombstone(meta, "c", Version{10, "n"}));  // equal: not newer
  EXPECT_FALSE(CoveredByNewerTombstone(meta, "c", Version{11, ""}));
  EXPECT_FALSE(CoveredByNewerTombstone(meta, "d", Version{1, ""}));
  EXPECT_FALSE(CoveredByNewerTombstone(meta, "a", Version{1, ""}));
  EXPECT_FALSE(CoveredByNewerTombstone(internal::RecordMeta(), "c", Version{1, ""}));
}

// ---- AddRangeTombstone ----

TEST(AddRangeTombstoneTest, AddsToEmpty) {
  internal::RecordMeta meta;
  EXPECT_TRUE(AddRangeTombstone(meta, DeleteRangeOp{"a", "c"}, Version{5, "n"}));
  EXPECT_THAT(Tombstones(meta), ElementsAre("[a,c)@5n"));
}

TEST(AddRangeTombstoneTest, ReplayReturnsFalseAndDedupes) {
  internal::RecordMeta meta;
  ASSERT_TRUE(AddRangeTombstone(meta, DeleteRangeOp{"a", "c"}, Version{5, "n"}));
  EXPECT_FALSE(AddRangeTombstone(meta, DeleteRangeOp{"a", "c"}, Version{5, "n"}));
  EXPECT_FALSE(AddRangeTombstone(meta, DeleteRangeOp{"a", "c"}, Version{5, "n"}));
  EXPECT_THAT(Tombstones(meta), ElementsAre("[a,c)@5n"));

  ASSERT_TRUE(AddRangeTombstone(meta, DeleteRangeOp{"", ""}, Version{6, ""}));
  EXPECT_FALSE(AddRangeTombstone(meta, DeleteRangeOp{"", ""}, Version{6, ""}));
  EXPECT_THAT(Tombstones(meta), ElementsAre("[,)@6"));
}

TEST(AddRangeTombstoneTest, ShadowedByNewerCoveringTombstone) {
  internal::RecordMeta meta;
  ASSERT_TRUE(AddRangeTombstone(meta, DeleteRangeOp{"a", "z"}, Version{10, ""}));
  // An older range inside a newer one adds nothing.
  EXPECT_FALSE(AddRangeTombstone(meta, DeleteRangeOp{"b", "c"}, Version{9, ""}));
  EXPECT_FALSE(AddRangeTombstone(meta, DeleteRangeOp{"a", "z"}, Version{9, "zz"}));
  EXPECT_THAT(Tombstones(meta), ElementsAre("[a,z)@10"));
  // Not contained: kept.
  EXPECT_TRUE(AddRangeTombstone(meta, DeleteRangeOp{"b", "zz"}, Version{9, ""}));
  EXPECT_TRUE(AddRangeTombstone(meta, DeleteRangeOp{"b", ""}, Version{8, ""}));
  EXPECT_THAT(Tombstones(meta), ElementsAre("[a,z)@10", "[b,zz)@9", "[b,)@8"));
}

TEST(AddRangeTombstoneTest, UnboundedNewerShadowsEverythingOlder) {
  internal::RecordMeta meta;
  ASSERT_TRUE(AddRangeTombstone(meta, DeleteRangeOp{"", ""}, Version{10, ""}));
  EXPECT_FALSE(AddRangeTombstone(meta, DeleteRangeOp{"m", ""}, Version{3, ""}));
  EXPECT_FALSE(AddRangeTombstone(meta, DeleteRangeOp{"", "b"}, Version{3, ""}));
  EXPECT_FALSE(AddRangeTombstone(meta, DeleteRangeOp{B({0xff}), ""}, Version{10, ""}));
  EXPECT_THAT(Tombstones(meta), ElementsAre("[,)@10"));
}

TEST(AddRangeTombstoneTest, NewerDropsRedundantOlder) {
  internal::RecordMeta meta;
  ASSERT_TRUE(AddRangeTombstone(meta, DeleteRangeOp{"b", "c"}, Version{1, ""}));
  ASSERT_TRUE(AddRangeTombstone(meta, DeleteRangeOp{"d", "e"}, Version{2, ""}));
  ASSERT_TRUE(AddRangeTombstone(meta, DeleteRangeOp{"x", ""}, Version{3, ""}));
  ASSERT_TRUE(AddRangeTombstone(meta, DeleteRangeOp{"a", "f"}, Version{9, ""}));  // contains 2
  EXPECT_THAT(Tombstones(meta), ElementsAre("[x,)@3", "[a,f)@9"));
  ASSERT_TRUE(AddRangeTombstone(meta, DeleteRangeOp{"", ""}, Version{10, ""}));
  EXPECT_THAT(Tombstones(meta), ElementsAre("[,)@10"));
}

TEST(AddRangeTombstoneTest, KeepsWhatTheNewOneDoesNotSay) {
  internal::RecordMeta meta;
  // An older tombstone only partly inside the new range.
  ASSERT_TRUE(AddRangeTombstone(meta, DeleteRangeOp{"a", "m"}, Version{1, ""}));
  ASSERT_TRUE(AddRangeTombstone(meta, DeleteRangeOp{"c", "z"}, Version{2, ""}));
  // A newer tombstone inside the new, older, wider range.
  ASSERT_TRUE(AddRangeTombstone(meta, DeleteRangeOp{"n", "o"}, Version{5, ""}));
  ASSERT_TRUE(AddRangeTombstone(meta, DeleteRangeOp{"", ""}, Version{4, ""}));
  EXPECT_THAT(Tombstones(meta), ElementsAre("[n,o)@5", "[,)@4"));
  // An unbounded older one is not inside a bounded newer one.
  internal::RecordMeta meta2;
  ASSERT_TRUE(AddRangeTombstone(meta2, DeleteRangeOp{"c", ""}, Version{1, ""}));
  ASSERT_TRUE(AddRangeTombstone(meta2, DeleteRangeOp{"a", "z"}, Version{2, ""}));
  EXPECT_THAT(Tombstones(meta2), ElementsAre("[c,)@1", "[a,z)@2"));
}

TEST(AddRangeTombstoneTest, SameTimeOrderedByNonce) {
  internal::RecordMeta meta;
  ASSERT_TRUE(AddRangeTombstone(meta, DeleteRangeOp{"a", "z"}, Version{5, "b"}));
  EXPECT_FALSE(AddRangeTombstone(meta, DeleteRangeOp{"a", "z"}, Version{5, "a"}));
  EXPECT_TRUE(AddRangeTombstone(meta, DeleteRangeOp{"a", "z"}, Version{5, "c"}));
  EXPECT_THAT(Tombstones(meta), ElementsAre("[a,z)@5c"));
}

// ---- PruneRangeTombstones ----

TEST(PruneRangeTombstonesTest, RemovesOnlyOlderThanCutoff) {
  internal::RecordMeta meta;
  AddRaw(meta, "a", "b", 99);
  AddRaw(meta, "b", "c", 100);
  AddRaw(meta, "c", "d", 101);
  AddRaw(meta, "d", "e", 5);
  PruneRangeTombstones(meta, 100);
  EXPECT_THAT(Tombstones(meta), ElementsAre("[b,c)@100", "[c,d)@101"));
  PruneRangeTombstones(meta, 0);
  EXPECT_THAT(Tombstones(meta), ElementsAre("[b,c)@100", "[c,d)@101"));
  PruneRangeTombstones(meta, 1000);
  EXPECT_THAT(Tombstones(meta), IsEmpty());
  PruneRangeTombstones(meta, 1000);  // empty stays empty
  EXPECT_THAT(Tombstones(meta), IsEmpty());
}

// ---- IsLive ----

TEST(IsLiveTest, PlainCellIsLive) {
  EXPECT_TRUE(IsLive(Cell(5), internal::RecordMeta(), "k", 1000));
}

TEST(IsLiveTest, TombstoneIsNotLive) {
  EXPECT_FALSE(IsLive(Cell(5, "", 0, /*tombstone=*/true), internal::RecordMeta(), "k", 1000));
}

TEST(IsLiveTest, ExpiryIsInclusiveOfNow) {
  const internal::RecordMeta meta;
  EXPECT_TRUE(IsLive(Cell(5, "", /*expires_at_us=*/1001), meta, "k", 1000));
  EXPECT_FALSE(IsLive(Cell(5, "", /*expires_at_us=*/1000), meta, "k", 1000));
  EXPECT_FALSE(IsLive(Cell(5, "", /*expires_at_us=*/999), meta, "k", 1000));
  EXPECT_TRUE(IsLive(Cell(5, "", /*expires_at_us=*/0), meta, "k", 1'000'000'000));
}

TEST(IsLiveTest, CoveredByNewerRangeTombstoneIsNotLive) {
  internal::RecordMeta meta;
  AddRaw(meta, "b", "d", 10, "n");
  EXPECT_FALSE(IsLive(Cell(9), meta, "c", 1000));
  EXPECT_FALSE(IsLive(Cell(10, "m"), meta, "c", 1000));
  EXPECT_TRUE(IsLive(Cell(10, "n"), meta, "c", 1000));  // same write: a put after the range
  EXPECT_TRUE(IsLive(Cell(11), meta, "c", 1000));
  EXPECT_TRUE(IsLive(Cell(9), meta, "d", 1000));  // outside
  EXPECT_TRUE(IsLive(Cell(9), meta, "a", 1000));
  AddRaw(meta, "", "", 20);
  EXPECT_FALSE(IsLive(Cell(11), meta, "z", 1000));
  EXPECT_FALSE(IsLive(Cell(11), meta, "", 1000));
}

}  // namespace
}  // namespace stategate::storage
