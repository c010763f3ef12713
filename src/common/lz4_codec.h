// LZ4 compression of values (DESIGN.md: "LZ4 compression of values above a threshold,
// with an xxh64 checksum of every value verified end to end"). Pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace stategate {

// The LZ4 block encoding of `value` if it is smaller than `value`; nullopt when compression
// would not save a byte (already compressed or random data), so callers store it raw.
std::optional<std::string> Lz4CompressIfSmaller(std::string_view value);

// Decodes an LZ4 block that must expand to exactly `uncompressed_size` bytes; DATA_LOSS
// naming `what` if it does not (corrupt or truncated input never reads out of bounds).
absl::StatusOr<std::string> Lz4Decompress(std::string_view compressed, size_t uncompressed_size,
                                          std::string_view what);

}  // namespace stategate
