#include "src/client/token.h"

#include "absl/random/random.h"

namespace stategate::client {

void IdempotencyToken::ToProto(v1::IdempotencyToken* out) const {
  out->set_generation_time_us(generation_time_us);
  out->set_nonce(nonce);
}

IdempotencyToken TokenGenerator::Next() const {
  // absl::BitGen is seeded from OS entropy per instance; one per thread avoids locking.
  thread_local absl::BitGen gen;
  IdempotencyToken token;
  token.generation_time_us = clock_->NowMicros();
  token.nonce.resize(kNonceBytes);
  for (int i = 0; i < kNonceBytes; i += 8) {
    const uint64_t bits = absl::Uniform<uint64_t>(gen);
    for (int b = 0; b < 8; ++b) token.nonce[i + b] = static_cast<char>(bits >> (8 * b));
  }
  return token;
}

}  // namespace stategate::client
