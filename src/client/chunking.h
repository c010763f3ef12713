// Value checksums and the splitting of large values into chunks and joining them back
// (DESIGN.md, "Fixed units of work"). Pure functions; no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace stategate::client {

// Used when a namespace does not say its chunk size.
inline constexpr int64_t kDefaultChunkBytes = 1 << 20;

// DATA_LOSS naming `what` when Xxh64(value) (src/common/checksum.h) != expected.
absl::Status VerifyChecksum(std::string_view value, uint64_t expected, std::string_view what);

// How many chunks a value of `size` bytes travels in: 0 when it fits inline
// (size <= chunk_bytes), otherwise ceil(size / chunk_bytes). INVALID_ARGUMENT when
// chunk_bytes is not positive or the count does not fit the wire's uint32.
absl::StatusOr<uint32_t> ChunkCount(uint64_t size, int64_t chunk_bytes);

// The chunks of `value`, each chunk_bytes long but the last; views into `value`.
// Requires chunk_bytes > 0. An empty value has no chunks.
std::vector<std::string_view> SplitIntoChunks(std::string_view value, int64_t chunk_bytes);

// Concatenates chunks read back and checks the result against what the item's metadata
// says: its size (when expected_size > 0) and its checksum (when checksum != 0).
// DATA_LOSS naming `what` on a mismatch.
absl::StatusOr<std::string> JoinChunks(const std::vector<std::string>& chunks,
                                       uint64_t expected_size, uint64_t checksum,
                                       std::string_view what);

}  // namespace stategate::client
