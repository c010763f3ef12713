// Quoting a caller's bytes in an error message. A status message travels back in a gRPC
// trailer, and a client refuses trailers above its metadata limit (8 KiB by default), so a
// long or binary input quoted whole would turn a clear error into RESOURCE_EXHAUSTED at the
// client. Every message that repeats what a caller sent quotes it through QuoteInput.
#pragma once

#include <cstddef>
#include <string>
#include "absl/strings/string_view.h"

namespace stategate {

// Input longer than this many bytes is cut in a quote.
inline constexpr size_t kMaxQuotedBytes = 40;

// `bytes` in single quotes, C-escaped (so binary is readable and the quote is printable);
// input over kMaxQuotedBytes is cut there and its full length given:
// 'user42', or 'aaaa...' (20000 bytes).
std::string QuoteInput(absl::string_view bytes);

// Longest status message sent to a client; longer ones are cut (see quote.cc for why).
inline constexpr size_t kMaxStatusMessageBytes = 1024;

// `message` cut to kMaxStatusMessageBytes, saying so when it was cut.
std::string BoundStatusMessage(absl::string_view message);

}  // namespace stategate
