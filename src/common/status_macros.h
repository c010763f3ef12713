// SG_RETURN_IF_ERROR / SG_ASSIGN_OR_RETURN: early return on a non-OK absl::Status(Or).
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SG_STATUS_CONCAT_INNER_(a, b) a##b
#define SG_STATUS_CONCAT_(a, b) SG_STATUS_CONCAT_INNER_(a, b)

#define SG_RETURN_IF_ERROR(expr)                              \
  do {                                                        \
    if (absl::Status sg_status_ = (expr); !sg_status_.ok()) { \
      return sg_status_;                                      \
    }                                                         \
  } while (0)

#define SG_ASSIGN_OR_RETURN(lhs, expr) \
  SG_ASSIGN_OR_RETURN_IMPL_(SG_STATUS_CONCAT_(sg_statusor_, __LINE__), lhs, expr)

#define SG_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                              \
  if (!statusor.ok()) {                                \
    return std::move(statusor).status();               \
  }                                                    \
  lhs = std::move(statusor).value()
