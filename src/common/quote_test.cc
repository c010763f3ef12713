#include "src/common/quote.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace stategate {
namespace {

using ::testing::HasSubstr;

TEST(QuoteInputTest, ShortInputIsQuotedWhole) { EXPECT_EQ(QuoteInput("user42"), "'user42'"); }

TEST(QuoteInputTest, BinaryIsEscaped) {
  EXPECT_EQ(QuoteInput(std::string("a\0\xff'", 4)), R"('a\x00\xff\'')");
}

TEST(QuoteInputTest, LongInputIsCutAndItsLengthGiven) {
  const std::string quoted = QuoteInput(std::string(20000, 'n'));
  EXPECT_EQ(quoted, "'" + std::string(kMaxQuotedBytes, 'n') + "...' (20000 bytes)");
}

TEST(QuoteInputTest, LongBinaryInputStaysShort) {
  // Escaping may grow each byte to four; the cut is made before escaping.
  const std::string quoted = QuoteInput(std::string(4096, '\x01'));
  EXPECT_LE(quoted.size(), 4 * kMaxQuotedBytes + 32);
  EXPECT_THAT(quoted, HasSubstr("(4096 bytes)"));
}

TEST(BoundStatusMessageTest, ShortMessagesAreKept) {
  EXPECT_EQ(BoundStatusMessage("no such item"), "no such item");
}

TEST(BoundStatusMessageTest, LongMessagesAreCutAndSaySo) {
  const std::string bounded = BoundStatusMessage(std::string(100000, 'x'));
  EXPECT_EQ(bounded.size(), kMaxStatusMessageBytes);
  EXPECT_THAT(bounded, HasSubstr("(message cut)"));
}

}  // namespace
}  // namespace stategate
