// The checksum of every stored value: xxh64 with seed 0 of the uncompressed bytes.
#pragma once

#include <cstdint>
#include <string_view>

#include <xxhash.h>

namespace stategate {

inline uint64_t Xxh64(std::string_view bytes) { return XXH64(bytes.data(), bytes.size(), 0); }

// Checksums a value that arrives in pieces (chunks). Not thread-safe.
class Xxh64Stream {
 public:
  Xxh64Stream() : state_(XXH64_createState()) { XXH64_reset(state_, 0); }
  ~Xxh64Stream() { XXH64_freeState(state_); }
  Xxh64Stream(const Xxh64Stream&) = delete;
  Xxh64Stream& operator=(const Xxh64Stream&) = delete;

  void Update(std::string_view bytes) { XXH64_update(state_, bytes.data(), bytes.size()); }
  uint64_t Digest() const { return XXH64_digest(state_); }

 private:
  XXH64_state_t* state_;
};

}  // namespace stategate
