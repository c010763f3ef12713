// Retry pushback (DESIGN.md, "Status codes"): a call the server sheds with
// RESOURCE_EXHAUSTED tells the client how long to back off in the trailing metadata key
// grpc-retry-pushback-ms, which gRPC's own retry policy also honours. Every place that
// sheds (admission control, injected faults) sets it here and nowhere else.
#pragma once

#include <grpcpp/server_context.h>

#include <algorithm>
#include <string>

#include "absl/time/time.h"

namespace stategate::server {

inline constexpr char kRetryPushbackKey[] = "grpc-retry-pushback-ms";
inline constexpr absl::Duration kDefaultRetryPushback = absl::Milliseconds(100);

// Adds the pushback trailer to a call that is about to finish. Whole milliseconds, rounded
// up so that a positive pushback never reads as "retry at once"; negative counts as 0.
inline void SetRetryPushback(grpc::ServerContextBase& ctx, absl::Duration pushback) {
  const int64_t ms =
      std::max<int64_t>(0, absl::ToInt64Milliseconds(absl::Ceil(pushback, absl::Milliseconds(1))));
  ctx.AddTrailingMetadata(kRetryPushbackKey, std::to_string(ms));
}

}  // namespace stategate::server
