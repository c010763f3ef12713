// Memory-only engine calls: how the request path reads on the thread a call arrived on
// without ever waiting there for a disk or a network (DESIGN.md, "No thread waits on the
// network").
//
// While a ScopedMemoryOnly lives on a thread, every engine call made from that thread that
// returns a status (all but HasTable and ShardOf, which the request path does not make) either
// answers from what the engine already holds in memory (RocksDB's memtables and block
// cache) or returns WouldBlockError() at once, having read nothing from a disk or a
// network and changed nothing. The caller then runs the call again, without the scope, on
// a thread that may wait (an engine lane). Writes always need I/O (a WAL, a replica) and
// return WouldBlockError() in this mode.
//
// Every engine honours it: one that cannot tell what it holds in memory returns
// WouldBlockError() for every call (Redis Cluster, memcached are network stores).
//
// (The mode travels as thread state, as the call deadline does in call_deadline.h, because
// the abstractions' calls make several engine calls with no parameter for it; it becomes an
// argument when the engine interface becomes asynchronous.)
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/cord.h"

namespace stategate::storage {

// This thread's mode; use MemoryOnly() and ScopedMemoryOnly.
inline bool& ThreadMemoryOnlyFlag() {
  thread_local bool memory_only = false;
  return memory_only;
}
// The status payload that marks WouldBlockError.
inline constexpr char kWouldBlockPayload[] = "stategate/would-block";

// Whether engine calls on this thread must not wait for I/O.
inline bool MemoryOnly() { return ThreadMemoryOnlyFlag(); }

// Engine calls on this thread are memory-only for the scope's lifetime. Nests.
class ScopedMemoryOnly {
 public:
  ScopedMemoryOnly() : saved_(ThreadMemoryOnlyFlag()) { ThreadMemoryOnlyFlag() = true; }
  ~ScopedMemoryOnly() { ThreadMemoryOnlyFlag() = saved_; }
  ScopedMemoryOnly(const ScopedMemoryOnly&) = delete;
  ScopedMemoryOnly& operator=(const ScopedMemoryOnly&) = delete;

 private:
  const bool saved_;
};

// What a memory-only call returns when answering needs I/O. UNAVAILABLE, so that a caller
// unaware of the mode would retry it; marked, so that IsWouldBlock tells it from a real
// outage.
[[nodiscard]] inline absl::Status WouldBlockError(std::string_view what) {
  absl::Status status = absl::UnavailableError(std::string("memory-only ") + std::string(what) +
                                               " needs I/O; run it where I/O may wait");
  status.SetPayload(kWouldBlockPayload, absl::Cord("1"));
  return status;
}

[[nodiscard]] inline bool IsWouldBlock(const absl::Status& status) {
  return absl::IsUnavailable(status) && status.GetPayload(kWouldBlockPayload).has_value();
}

}  // namespace stategate::storage
