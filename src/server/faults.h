// Fault injection (DESIGN.md, "Fault injection"): per-namespace added latency and injected
// errors, decided per call by a FaultInjector, and a whole-process pause. Only a gateway
// started with --fault-injection has a FaultInjector; without one no call pays anything.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/server/pushback.h"

namespace stategate::server {

// The longest injected delay, pushback or pause: long enough for any test, short enough
// that a typo cannot wedge a server for hours.
inline constexpr absl::Duration kMaxFaultDuration = absl::Seconds(60);

// Which calls a fault applies to. Reads are GetItems, ScanItems and GetChunk; writes are
// PutItems, DeleteItems, MutateItems and PutChunk.
enum class Access { kRead, kWrite };
enum class AppliesTo { kAll, kReads, kWrites };

struct LatencyFault {
  // Added before the call runs. Default: none.
  absl::Duration delay = absl::ZeroDuration();
  // Share of calls delayed, in [0, 1]; 1 = every call (a fixed latency). Default: 1.
  double share = 1.0;
  AppliesTo applies_to = AppliesTo::kAll;

  friend bool operator==(const LatencyFault&, const LatencyFault&) = default;
};

struct ErrorFault {
  // Share of calls failed instead of run, in [0, 1]. Default: none.
  double rate = 0.0;
  // The code they fail with; anything but OK. Default: UNAVAILABLE.
  absl::StatusCode code = absl::StatusCode::kUnavailable;
  AppliesTo applies_to = AppliesTo::kAll;
  // Sent as grpc-retry-pushback-ms with RESOURCE_EXHAUSTED (only). Default: 100 ms.
  absl::Duration pushback = kDefaultRetryPushback;

  friend bool operator==(const ErrorFault&, const ErrorFault&) = default;
};

// The faults of one namespace. The default value injects nothing.
struct FaultSpec {
  LatencyFault latency;
  ErrorFault error;

  // True if this spec can affect a call.
  bool Active() const;
  friend bool operator==(const FaultSpec&, const FaultSpec&) = default;
};

// Checks ranges: shares and rates in [0, 1], durations in [0, kMaxFaultDuration], a code
// other than OK. INVALID_ARGUMENT naming the field (prefixed by `field`) and the limit.
[[nodiscard]] absl::Status ValidateFaultSpec(const FaultSpec& spec,
                                             absl::string_view field = "faults");

// "UNAVAILABLE", "resource_exhausted", ... (any case); INVALID_ARGUMENT naming `field`,
// and listing the known names, for anything else, including OK.
[[nodiscard]] absl::StatusOr<absl::StatusCode> ParseErrorCode(absl::string_view name,
                                                              absl::string_view field);
// "all" (or ""), "reads", "writes"; INVALID_ARGUMENT naming `field` otherwise.
[[nodiscard]] absl::StatusOr<AppliesTo> ParseAppliesTo(absl::string_view name,
                                                       absl::string_view field);
std::string AppliesToName(AppliesTo applies_to);

// One line for logs, e.g. "latency 50ms on 10% of reads; UNAVAILABLE on 5% of all calls".
std::string DescribeFaults(const FaultSpec& spec);

// What to do to one call: wait `delay`, then fail with `error` if set, else run it.
struct FaultDecision {
  absl::Duration delay = absl::ZeroDuration();
  std::optional<absl::Status> error;
  // For an error of RESOURCE_EXHAUSTED: how long the client should back off.
  absl::Duration retry_pushback = absl::ZeroDuration();
};

// FaultInjector: the fault specs in force, by namespace, and the per-call decision.
// Thread-safe.
class FaultInjector {
 public:
  // Draws uniformly from [0, 1); called with the injector's lock held.
  using Uniform = std::function<double()>;

  // `uniform` defaults to a randomly seeded generator; tests pass SeededUniform.
  explicit FaultInjector(Uniform uniform = nullptr);

  // A deterministic generator for tests.
  static Uniform SeededUniform(uint64_t seed);

  // Replaces the faults of `ns`; a spec that injects nothing clears them. The caller
  // validates (ValidateFaultSpec) and checks the namespace exists.
  void Set(const std::string& ns, const FaultSpec& spec);
  // Replaces every namespace's faults (config load and reload).
  void ReplaceAll(const std::map<std::string, FaultSpec>& specs);
  // The faults of `ns`; the default spec if none.
  FaultSpec Get(const std::string& ns) const;

  // Draws the faults of one call to `ns`. Each fault draws only when its share or rate is
  // strictly between 0 and 1, so 0 and 1 are exact and use no randomness.
  FaultDecision Decide(const std::string& ns, Access access);

 private:
  bool Draw(double probability) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  Uniform uniform_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, FaultSpec> specs_ ABSL_GUARDED_BY(mu_);
};

// Stops the whole process (every thread, as SIGSTOP does) for `duration`, then lets it
// continue; returns once it runs again. A forked child stops this process, sleeps and sends
// SIGCONT, so the order of stop and continue is fixed and nothing can leave the process
// stopped for good; the child is reaped before returning. Signals that arrive meanwhile
// stay pending and are handled afterwards. INVALID_ARGUMENT outside [0, kMaxFaultDuration];
// INTERNAL if the child cannot be started. Pauses from several threads run one at a time.
[[nodiscard]] absl::Status PauseProcess(absl::Duration duration);

}  // namespace stategate::server
