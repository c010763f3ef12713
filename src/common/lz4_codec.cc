#include "src/common/lz4_codec.h"

#include <lz4.h>

#include <climits>

#include "absl/strings/str_cat.h"

namespace stategate {

std::optional<std::string> Lz4CompressIfSmaller(std::string_view value) {
  if (value.empty() || value.size() > static_cast<size_t>(LZ4_MAX_INPUT_SIZE)) {
    return std::nullopt;
  }
  // Only a result smaller than the input is worth having, so the output buffer is one byte
  // short of the input: LZ4 gives up (returns 0) as soon as it cannot fit.
  std::string out(value.size() - 1, '\0');
  const int written = LZ4_compress_default(value.data(), out.data(), static_cast<int>(value.size()),
                                           static_cast<int>(out.size()));
  if (written <= 0) return std::nullopt;
  out.resize(static_cast<size_t>(written));
  return out;
}

absl::StatusOr<std::string> Lz4Decompress(std::string_view compressed, size_t uncompressed_size,
                                          std::string_view what) {
  if (compressed.size() > INT_MAX || uncompressed_size > INT_MAX) {
    return absl::DataLossError(absl::StrCat("lz4 value of ", std::string(what), " is too large"));
  }
  std::string out(uncompressed_size, '\0');
  const int n =
      LZ4_decompress_safe(compressed.data(), out.data(), static_cast<int>(compressed.size()),
                          static_cast<int>(uncompressed_size));
  if (n < 0 || static_cast<size_t>(n) != uncompressed_size) {
    return absl::DataLossError(absl::StrCat("lz4 value of ", std::string(what),
                                            " does not decode to its ", uncompressed_size,
                                            " bytes"));
  }
  return out;
}

}  // namespace stategate
