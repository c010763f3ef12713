// Idempotency tokens (DESIGN.md, "API contracts"): one per logical mutation, made by the
// client and reused by every retry and hedge of it. The generation time is the write's
// version; the 16-byte random nonce breaks ties between writes made in the same microsecond.
#pragma once

#include <cstdint>
#include <string>

#include "src/common/clock.h"
#include "stategate/v1/kv.pb.h"

namespace stategate::client {

inline constexpr int kNonceBytes = 16;

struct IdempotencyToken {
  int64_t generation_time_us = 0;
  std::string nonce;  // kNonceBytes random bytes

  void ToProto(v1::IdempotencyToken* out) const;
};

// Makes tokens from a clock and a per-thread random generator seeded by the OS.
// Thread-safe.
class TokenGenerator {
 public:
  explicit TokenGenerator(const Clock* clock) : clock_(clock) {}

  IdempotencyToken Next() const;

 private:
  const Clock* clock_;
};

}  // namespace stategate::client
