#include "src/bench/client_modes.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace stategate::bench {

absl::StatusOr<ReliabilityOptions> ModeReliability(std::string_view mode) {
  ReliabilityOptions o = ReliabilityOptions::Naive();
  if (mode == "naive") return o;
  if (mode == "full") return ReliabilityOptions{};
  if (mode == "hedging") {
    o.hedging = true;
  } else if (mode == "retries") {
    o.retries = true;
  } else if (mode == "limiter") {
    o.limiter = ReliabilityOptions{}.limiter;
  } else if (mode == "balancing") {
    o.load_balancing = true;
  } else if (mode == "gc-tolerant") {
    o.gc_tolerant_timeouts = true;
  } else if (mode == "signalled-timeouts") {
    o.signalled_timeouts = true;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown mode '", std::string(mode),
                                                   "'; expected one of ",
                                                   absl::StrJoin(kClientModes, ", ")));
  }
  return o;
}

}  // namespace stategate::bench
