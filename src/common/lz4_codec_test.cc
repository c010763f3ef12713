#include "src/common/lz4_codec.h"

#include <gtest/gtest.h>

#include <random>

namespace stategate {
namespace {

std::string JsonLikeDocument(int n) {
  std::string doc = "[";
  for (int i = 0; i < n; ++i) {
    doc += "{\"id\":" + std::to_string(i) + ",\"name\":\"user" + std::to_string(i) +
           "\",\"country\":\"NL\",\"plan\":\"premium\",\"active\":true},";
  }
  return doc + "]";
}

TEST(Lz4CodecTest, RoundTripsCompressibleValues) {
  const std::string doc = JsonLikeDocument(200);
  std::optional<std::string> compressed = Lz4CompressIfSmaller(doc);
  ASSERT_TRUE(compressed.has_value());
  EXPECT_LT(compressed->size(), doc.size() / 2);
  absl::StatusOr<std::string> back = Lz4Decompress(*compressed, doc.size(), "doc");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, doc);
}

TEST(Lz4CodecTest, IncompressibleValuesStayRaw) {
  std::mt19937 gen(1);
  std::string random(4096, '\0');
  for (char& c : random) c = static_cast<char>(gen());
  EXPECT_FALSE(Lz4CompressIfSmaller(random).has_value());
  EXPECT_FALSE(Lz4CompressIfSmaller("").has_value());
  EXPECT_FALSE(Lz4CompressIfSmaller("a").has_value());
}

TEST(Lz4CodecTest, CorruptOrMislabelledInputIsDataLoss) {
  const std::string doc = JsonLikeDocument(50);
  std::string compressed = *Lz4CompressIfSmaller(doc);
  EXPECT_EQ(Lz4Decompress(compressed, doc.size() + 1, "doc").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(
      Lz4Decompress(compressed.substr(0, compressed.size() / 2), doc.size(), "doc").status().code(),
      absl::StatusCode::kDataLoss);
  EXPECT_EQ(Lz4Decompress("\xff\xff\xff\xff garbage", 1000, "doc").status().code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace stategate
