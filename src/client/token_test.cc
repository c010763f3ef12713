#include "src/client/token.h"

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace stategate::client {
namespace {

TEST(TokenGeneratorTest, StampsClockTimeAndSixteenByteNonce) {
  FakeClock clock(absl::FromUnixMicros(1'700'000'000'123'456));
  TokenGenerator tokens(&clock);
  IdempotencyToken t = tokens.Next();
  EXPECT_EQ(t.generation_time_us, 1'700'000'000'123'456);
  EXPECT_EQ(t.nonce.size(), 16u);
  clock.Advance(absl::Milliseconds(5));
  EXPECT_EQ(tokens.Next().generation_time_us, 1'700'000'000'128'456);
}

TEST(TokenGeneratorTest, NoncesAreUniqueAcrossThreadsAtTheSameInstant) {
  FakeClock clock;  // time stands still: only the nonce tells tokens apart
  TokenGenerator tokens(&clock);
  absl::Mutex mu;
  std::set<std::string> nonces;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      std::vector<std::string> mine;
      for (int i = 0; i < kPerThread; ++i) mine.push_back(tokens.Next().nonce);
      absl::MutexLock lock(&mu);
      nonces.insert(mine.begin(), mine.end());
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(nonces.size(), size_t{kThreads * kPerThread});
}

TEST(TokenGeneratorTest, NonceBytesAreNotConstant) {
  TokenGenerator tokens(Clock::Real());
  // Every byte position takes more than one value over a few hundred tokens.
  std::vector<std::set<char>> seen(kNonceBytes);
  for (int i = 0; i < 300; ++i) {
    const std::string nonce = tokens.Next().nonce;
    for (int b = 0; b < kNonceBytes; ++b) seen[b].insert(nonce[b]);
  }
  for (int b = 0; b < kNonceBytes; ++b) EXPECT_GT(seen[b].size(), 100u) << "byte " << b;
}

TEST(IdempotencyTokenTest, ToProto) {
  IdempotencyToken t{.generation_time_us = 42, .nonce = std::string(16, 'x')};
  v1::IdempotencyToken proto;
  t.ToProto(&proto);
  EXPECT_EQ(proto.generation_time_us(), 42);
  EXPECT_EQ(proto.nonce(), std::string(16, 'x'));
}

}  // namespace
}  // namespace stategate::client
