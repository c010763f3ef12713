#include "src/common/token_signer.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "absl/strings/str_cat.h"

namespace stategate {
namespace {
constexpr size_t kMacBytes = 16;
}  // namespace

TokenSigner::TokenSigner(std::string secret) : secret_(std::move(secret)) {
  if (secret_.empty()) {
    secret_.resize(32);
    RAND_bytes(reinterpret_cast<unsigned char*>(secret_.data()), 32);
  }
}

std::string TokenSigner::Mac(std::string_view payload) const {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), mac, &mac_len);
  return std::string(reinterpret_cast<const char*>(mac), kMacBytes);
}

std::string TokenSigner::Sign(std::string_view payload) const {
  std::string token(payload);
  token += Mac(payload);
  return token;
}

absl::StatusOr<std::string> TokenSigner::Verify(std::string_view token,
                                                std::string_view field) const {
  if (token.size() < kMacBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(field), " is not a token this server issued"));
  }
  const std::string_view payload = token.substr(0, token.size() - kMacBytes);
  const std::string expected = Mac(payload);
  if (CRYPTO_memcmp(expected.data(), token.data() + payload.size(), kMacBytes) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        std::string(field), " is not a token this server issued (tampered or foreign)"));
  }
  return std::string(payload);
}

}  // namespace stategate
