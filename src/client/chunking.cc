#include "src/client/chunking.h"

#include <cassert>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "src/common/checksum.h"

namespace stategate::client {

absl::Status VerifyChecksum(std::string_view value, uint64_t expected, std::string_view what) {
  const uint64_t actual = Xxh64(value);
  if (actual == expected) return absl::OkStatus();
  return absl::DataLossError(
      absl::StrFormat("checksum mismatch for %s: stored %016x, computed %016x over %d bytes", what,
                      expected, actual, value.size()));
}

absl::StatusOr<uint32_t> ChunkCount(uint64_t size, int64_t chunk_bytes) {
  if (chunk_bytes <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("chunk_bytes must be > 0, got ", chunk_bytes));
  }
  const uint64_t per_chunk = static_cast<uint64_t>(chunk_bytes);
  if (size <= per_chunk) return 0;
  const uint64_t count = size / per_chunk + (size % per_chunk != 0 ? 1 : 0);
  if (count > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("value of ", size, " bytes needs ", count, " chunks of ", chunk_bytes,
                     " bytes; at most ", std::numeric_limits<uint32_t>::max(), " allowed"));
  }
  return static_cast<uint32_t>(count);
}

std::vector<std::string_view> SplitIntoChunks(std::string_view value, int64_t chunk_bytes) {
  assert(chunk_bytes > 0);
  const size_t per_chunk = static_cast<size_t>(chunk_bytes);
  std::vector<std::string_view> chunks;
  chunks.reserve(value.size() / per_chunk + 1);
  for (size_t offset = 0; offset < value.size(); offset += per_chunk) {
    chunks.push_back(value.substr(offset, per_chunk));
  }
  return chunks;
}

absl::StatusOr<std::string> JoinChunks(const std::vector<std::string>& chunks,
                                       uint64_t expected_size, uint64_t checksum,
                                       std::string_view what) {
  size_t total = 0;
  for (const std::string& chunk : chunks) total += chunk.size();
  if (expected_size > 0 && total != expected_size) {
    return absl::DataLossError(
        absl::StrFormat("size mismatch for %s: stored %d bytes, read %d in %d chunks", what,
                        expected_size, total, chunks.size()));
  }
  std::string value;
  value.reserve(total);
  for (const std::string& chunk : chunks) value.append(chunk);
  if (checksum != 0) {
    if (absl::Status s = VerifyChecksum(value, checksum, what); !s.ok()) return s;
  }
  return value;
}

}  // namespace stategate::client
