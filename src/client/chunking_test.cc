#include "src/client/chunking.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/common/checksum.h"

namespace stategate::client {
namespace {

using ::testing::ElementsAre;

TEST(ChecksumTest, IsXxh64WithSeedZero) {
  // Reference values of XXH64(seed 0).
  EXPECT_EQ(Xxh64(""), 0xEF46DB3751D8E999ULL);
  EXPECT_EQ(Xxh64("a"), 0xD24EC4F1A98C6E5BULL);
}

TEST(ChecksumTest, VerifyReportsDataLoss) {
  EXPECT_TRUE(VerifyChecksum("abc", Xxh64("abc"), "k").ok());
  const absl::Status s = VerifyChecksum("abd", Xxh64("abc"), "item k");
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("item k"));
}

TEST(ChunkCountTest, InlineUpToChunkBytes) {
  EXPECT_EQ(*ChunkCount(0, 4), 0u);
  EXPECT_EQ(*ChunkCount(4, 4), 0u);
  EXPECT_EQ(*ChunkCount(5, 4), 2u);
  EXPECT_EQ(*ChunkCount(8, 4), 2u);
  EXPECT_EQ(*ChunkCount(9, 4), 3u);
}

TEST(ChunkCountTest, RejectsBadChunkSizeAndTooManyChunks) {
  EXPECT_EQ(ChunkCount(10, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ChunkCount(10, -1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ChunkCount(uint64_t{1} << 40, 1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SplitIntoChunksTest, SplitsIntoFixedSizePieces) {
  EXPECT_THAT(SplitIntoChunks("abcdefghij", 4), ElementsAre("abcd", "efgh", "ij"));
  EXPECT_THAT(SplitIntoChunks("abcdefgh", 4), ElementsAre("abcd", "efgh"));
  EXPECT_THAT(SplitIntoChunks("ab", 4), ElementsAre("ab"));
  EXPECT_TRUE(SplitIntoChunks("", 4).empty());
}

TEST(JoinChunksTest, RoundTripsWithSplit) {
  std::string value;
  for (int i = 0; i < 10'000; ++i) value.push_back(static_cast<char>(i * 31 + 7));
  for (int64_t chunk_bytes : {1, 7, 1000, 4096, 9999, 10'000}) {
    std::vector<std::string> chunks;
    for (std::string_view c : SplitIntoChunks(value, chunk_bytes)) chunks.emplace_back(c);
    EXPECT_EQ(chunks.size(), *ChunkCount(value.size(), chunk_bytes) == 0
                                 ? 1u
                                 : *ChunkCount(value.size(), chunk_bytes));
    absl::StatusOr<std::string> joined = JoinChunks(chunks, value.size(), Xxh64(value), "v");
    ASSERT_TRUE(joined.ok()) << joined.status();
    EXPECT_EQ(*joined, value);
  }
}

TEST(JoinChunksTest, DetectsCorruptionAndMissingBytes) {
  const std::string value = "0123456789";
  const uint64_t sum = Xxh64(value);
  EXPECT_EQ(JoinChunks({"0123", "4X67", "89"}, 10, sum, "v").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(JoinChunks({"0123", "4567"}, 10, sum, "v").status().code(),
            absl::StatusCode::kDataLoss);
  // Without a stored checksum or size there is nothing to verify against.
  EXPECT_EQ(*JoinChunks({"01", "23"}, 0, 0, "v"), "0123");
}

}  // namespace
}  // namespace stategate::client
