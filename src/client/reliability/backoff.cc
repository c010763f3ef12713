#include "src/client/reliability/backoff.h"

#include <algorithm>
#include <cstdint>

#include "absl/random/distributions.h"

namespace stategate::reliability {

absl::Duration Backoff::Ceiling(int attempt) const {
  const absl::Duration cap = options_.cap;
  absl::Duration ceiling = std::min(options_.base, cap);
  if (ceiling <= absl::ZeroDuration()) return absl::ZeroDuration();
  // Doubling stops at the cap, so this loops at most log2(cap / base) times and never
  // multiplies past it.
  for (int i = 0; i < attempt && ceiling < cap; ++i) ceiling = std::min(ceiling * 2, cap);
  return ceiling;
}

absl::Duration Backoff::Delay(int attempt, absl::BitGenRef gen) const {
  const int64_t ceiling_ns = absl::ToInt64Nanoseconds(Ceiling(attempt));
  if (ceiling_ns <= 0) return absl::ZeroDuration();
  return absl::Nanoseconds(absl::Uniform(absl::IntervalClosed, gen, int64_t{0}, ceiling_ns));
}

}  // namespace stategate::reliability
