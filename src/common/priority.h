// The wire form of a call's Priority (stategate/types.h): the names that config files and
// the metadata (kPriorityMetadataKey, metadata_keys.h) use. One home, so the client that
// sends a priority and the gateway that reads it cannot disagree.
#pragma once

#include <array>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "src/common/metadata_keys.h"
#include "src/common/quote.h"
#include "stategate/types.h"

namespace stategate {

inline constexpr int kPriorityTiers = 3;
// Every tier, the most important first (the order a gateway admits them in).
inline constexpr std::array<Priority, kPriorityTiers> kAllPriorities = {
    Priority::kCritical, Priority::kNormal, Priority::kSheddable};

// 0 for critical .. 2 for sheddable.
inline int PriorityRank(Priority priority) { return static_cast<int>(priority); }

// The share of a concurrency limit a call of this tier may fill: under pressure sheddable
// calls are refused first (past half the limit), then normal ones (past 80 %), and the last
// fifth stays for critical calls (Netflix's partitioned limiter, with fixed shares). The
// client's limiter applies it; the gateway's admission orders its queue by tier instead.
inline double LimitShare(Priority priority) {
  switch (priority) {
    case Priority::kCritical:
      return 1.0;
    case Priority::kNormal:
      return 0.8;
    case Priority::kSheddable:
      return 0.5;
  }
  return 1.0;
}

inline absl::string_view PriorityName(Priority priority) {
  switch (priority) {
    case Priority::kCritical:
      return "critical";
    case Priority::kNormal:
      return "normal";
    case Priority::kSheddable:
      return "sheddable";
  }
  return "normal";
}

// The priority named `name`; INVALID_ARGUMENT naming `field` and the names allowed.
inline absl::StatusOr<Priority> ParsePriority(absl::string_view name, absl::string_view field) {
  for (Priority priority : kAllPriorities) {
    if (name == PriorityName(priority)) return priority;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(field, " must be critical, normal or sheddable, got ", QuoteInput(name)));
}

}  // namespace stategate
