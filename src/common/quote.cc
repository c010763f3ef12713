#include "src/common/quote.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace stategate {

std::string QuoteInput(absl::string_view bytes) {
  if (bytes.size() <= kMaxQuotedBytes) return absl::StrCat("'", absl::CHexEscape(bytes), "'");
  return absl::StrCat("'", absl::CHexEscape(bytes.substr(0, kMaxQuotedBytes)), "...' (",
                      bytes.size(), " bytes)");
}

// A last line of defence behind QuoteInput: whatever a message holds (an engine's or a
// library's text included), the trailer stays far below a client's metadata limit, even
// percent-encoded (up to 3 bytes per byte).
std::string BoundStatusMessage(absl::string_view message) {
  if (message.size() <= kMaxStatusMessageBytes) return std::string(message);
  constexpr absl::string_view kCut = "... (message cut)";
  return absl::StrCat(message.substr(0, kMaxStatusMessageBytes - kCut.size()), kCut);
}

}  // namespace stategate
