// Conversion between grpc::Status and absl::Status. Their codes are the same, so the
// conversion is one to one: same code, same message (bounded in length on the way to the
// wire, see BoundStatusMessage). Server and client convert here and nowhere else.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "src/common/quote.h"

namespace stategate {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      BoundStatusMessage(status.message()));
}

inline absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace stategate
