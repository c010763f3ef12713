// Target: one system a YCSB workload runs against (ycsb_bench.h) — stategate through its
// client, Redis or memcached directly, or the gateway's empty call — behind one
// asynchronous interface, so that every target runs the same operations under the same
// open- or closed-loop generator and is measured the same way.
//
// Thread-safe: operations are started from any thread, and their callbacks run on the
// target's own threads.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "src/bench/ycsb.h"
#include "stategate/types.h"

namespace stategate::bench {

// One YCSB operation, with its keys and values already chosen.
struct TargetOp {
  ycsb::OpKind kind = ycsb::OpKind::kRead;
  // The record (kScan: the record to start from, inclusive).
  std::string key;
  // kInsert: every field of the record; kUpdate and kReadModifyWrite: the fields to write
  // (the read of kReadModifyWrite reads the whole record). Empty otherwise.
  std::vector<std::pair<std::string, std::string>> fields;
  // kScan: how many records to read.
  int64_t scan_length = 0;
  // The call's priority at the gateway (stategate targets); unset: the namespace default.
  std::optional<Priority> priority;
};

// The outcome of an operation. A read of a record that does not exist is NOT_FOUND.
using OpDone = std::function<void(absl::Status)>;

// `status` with its message prefixed by the target's name ("redis 127.0.0.1:6379: ..."), as
// every target reports its errors; OK stays OK.
inline absl::Status NameTargetError(const std::string& target, absl::Status status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(target, ": ", status.message()));
}

class Target {
 public:
  virtual ~Target() = default;

  // Whether this target can run operations of `kind` at all (memcached cannot scan). A
  // workload with an operation its target does not support is not run on it.
  virtual bool Supports(ycsb::OpKind kind) const = 0;

  // Starts `op`; `done` runs exactly once, on any thread, possibly before Start returns.
  // Start must not block on the operation: targets with only blocking clients run it on
  // threads of their own.
  virtual void Start(TargetOp op, OpDone done) = 0;

  // Bytes of keys and values this target has sent so far (the payload, not the wire
  // bytes: every target counts them the same way).
  virtual int64_t payload_bytes_sent() const = 0;
};

}  // namespace stategate::bench
