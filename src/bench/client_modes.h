// The client modes of stategate-bench: the reliable client with no mechanism ("naive"),
// with every one ("full", the defaults), or with one mechanism on top of naive, so that
// each mechanism's effect can be measured on its own.
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "stategate/kv_client.h"

namespace stategate::bench {

// Every mode, "naive" and "full" first.
inline constexpr const char* kClientModes[] = {
    "naive",   "full",      "hedging",     "retries",
    "limiter", "balancing", "gc-tolerant", "signalled-timeouts"};

// The client reliability settings of `mode`; INVALID_ARGUMENT naming the known modes.
[[nodiscard]] absl::StatusOr<ReliabilityOptions> ModeReliability(std::string_view mode);

}  // namespace stategate::bench
