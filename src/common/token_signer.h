// TokenSigner: makes opaque tokens (page tokens) that the server can trust when they come
// back: payload || HMAC-SHA256(secret, payload)[0..16). A tampered token or one signed with
// another secret fails Verify. Thread-safe (immutable after construction).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace stategate {

class TokenSigner {
 public:
  // An empty secret makes a random one: tokens then live as long as this process.
  explicit TokenSigner(std::string secret);

  std::string Sign(std::string_view payload) const;
  // The payload of a token Sign made; INVALID_ARGUMENT naming `field` otherwise.
  [[nodiscard]] absl::StatusOr<std::string> Verify(std::string_view token,
                                                   std::string_view field) const;

 private:
  std::string Mac(std::string_view payload) const;
  std::string secret_;
};

}  // namespace stategate
