#include "src/server/faults.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "src/common/quote.h"

namespace stategate::server {
namespace {

// Every code a fault may inject: all of gRPC's but OK.
constexpr absl::StatusCode kInjectableCodes[] = {
    absl::StatusCode::kCancelled,          absl::StatusCode::kUnknown,
    absl::StatusCode::kInvalidArgument,    absl::StatusCode::kDeadlineExceeded,
    absl::StatusCode::kNotFound,           absl::StatusCode::kAlreadyExists,
    absl::StatusCode::kPermissionDenied,   absl::StatusCode::kResourceExhausted,
    absl::StatusCode::kFailedPrecondition, absl::StatusCode::kAborted,
    absl::StatusCode::kOutOfRange,         absl::StatusCode::kUnimplemented,
    absl::StatusCode::kInternal,           absl::StatusCode::kUnavailable,
    absl::StatusCode::kDataLoss,           absl::StatusCode::kUnauthenticated,
};

absl::Status CheckShare(double value, absl::string_view field) {
  // Written so that NaN fails too.
  if (!(value >= 0.0 && value <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is ", value, "; must be in [0, 1]"));
  }
  return absl::OkStatus();
}

absl::Status CheckDuration(absl::Duration value, absl::string_view field) {
  if (value < absl::ZeroDuration() || value > kMaxFaultDuration) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is ", absl::FormatDuration(value),
                                                   "; must be in [0, ",
                                                   absl::FormatDuration(kMaxFaultDuration), "]"));
  }
  return absl::OkStatus();
}

bool Applies(AppliesTo applies_to, Access access) {
  switch (applies_to) {
    case AppliesTo::kAll:
      return true;
    case AppliesTo::kReads:
      return access == Access::kRead;
    case AppliesTo::kWrites:
      return access == Access::kWrite;
  }
  return false;
}

std::string Calls(double share, AppliesTo applies_to) {
  const std::string which = applies_to == AppliesTo::kAll ? "all calls" : AppliesToName(applies_to);
  if (share >= 1.0) return which;
  return absl::StrCat(share * 100, "% of ", which);
}

// Sleeps `duration` using only async-signal-safe calls (for a child of a threaded fork).
void SleepInChild(absl::Duration duration) {
  timespec remaining = absl::ToTimespec(duration);
  while (::nanosleep(&remaining, &remaining) != 0 && errno == EINTR) {
  }
}

}  // namespace

bool FaultSpec::Active() const {
  return (latency.delay > absl::ZeroDuration() && latency.share > 0.0) || error.rate > 0.0;
}

absl::Status ValidateFaultSpec(const FaultSpec& spec, absl::string_view field) {
  if (absl::Status s = CheckDuration(spec.latency.delay, absl::StrCat(field, ".latency.delay"));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckShare(spec.latency.share, absl::StrCat(field, ".latency.share"));
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckShare(spec.error.rate, absl::StrCat(field, ".error.rate")); !s.ok()) {
    return s;
  }
  if (spec.error.code == absl::StatusCode::kOk) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".error.code must not be OK"));
  }
  if (std::find(std::begin(kInjectableCodes), std::end(kInjectableCodes), spec.error.code) ==
      std::end(kInjectableCodes)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".error.code ",
                                                   static_cast<int>(spec.error.code),
                                                   " is not a gRPC status code (1 to 16)"));
  }
  return CheckDuration(spec.error.pushback, absl::StrCat(field, ".error.pushback"));
}

absl::StatusOr<absl::StatusCode> ParseErrorCode(absl::string_view name, absl::string_view field) {
  const std::string upper = absl::AsciiStrToUpper(name);
  std::vector<std::string> known;
  for (absl::StatusCode code : kInjectableCodes) {
    known.push_back(absl::StatusCodeToString(code));
    if (known.back() == upper) return code;
  }
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", QuoteInput(name),
                                                 " is not a gRPC status code other than OK (",
                                                 absl::StrJoin(known, ", "), ")"));
}

absl::StatusOr<AppliesTo> ParseAppliesTo(absl::string_view name, absl::string_view field) {
  if (name.empty() || name == "all") return AppliesTo::kAll;
  if (name == "reads") return AppliesTo::kReads;
  if (name == "writes") return AppliesTo::kWrites;
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": ", QuoteInput(name), " is not all, reads or writes"));
}

std::string AppliesToName(AppliesTo applies_to) {
  switch (applies_to) {
    case AppliesTo::kAll:
      return "all";
    case AppliesTo::kReads:
      return "reads";
    case AppliesTo::kWrites:
      return "writes";
  }
  return "?";
}

std::string DescribeFaults(const FaultSpec& spec) {
  std::vector<std::string> parts;
  if (spec.latency.delay > absl::ZeroDuration() && spec.latency.share > 0.0) {
    parts.push_back(absl::StrCat("latency ", absl::FormatDuration(spec.latency.delay), " on ",
                                 Calls(spec.latency.share, spec.latency.applies_to)));
  }
  if (spec.error.rate > 0.0) {
    std::string error = absl::StrCat(absl::StatusCodeToString(spec.error.code), " on ",
                                     Calls(spec.error.rate, spec.error.applies_to));
    if (spec.error.code == absl::StatusCode::kResourceExhausted) {
      absl::StrAppend(&error, " with pushback ", absl::FormatDuration(spec.error.pushback));
    }
    parts.push_back(std::move(error));
  }
  return parts.empty() ? "none" : absl::StrJoin(parts, "; ");
}

FaultInjector::FaultInjector(Uniform uniform) : uniform_(std::move(uniform)) {
  if (!uniform_) uniform_ = SeededUniform(std::random_device()());
}

FaultInjector::Uniform FaultInjector::SeededUniform(uint64_t seed) {
  return [engine = std::mt19937_64(seed), dist = std::uniform_real_distribution<double>(
                                              0.0, 1.0)]() mutable { return dist(engine); };
}

void FaultInjector::Set(const std::string& ns, const FaultSpec& spec) {
  absl::MutexLock lock(&mu_);
  if (spec.Active()) {
    specs_[ns] = spec;
  } else {
    specs_.erase(ns);
  }
}

void FaultInjector::ReplaceAll(const std::map<std::string, FaultSpec>& specs) {
  absl::MutexLock lock(&mu_);
  specs_.clear();
  for (const auto& [ns, spec] : specs) {
    if (spec.Active()) specs_[ns] = spec;
  }
}

FaultSpec FaultInjector::Get(const std::string& ns) const {
  absl::MutexLock lock(&mu_);
  auto it = specs_.find(ns);
  return it == specs_.end() ? FaultSpec() : it->second;
}

bool FaultInjector::Draw(double probability) {
  if (probability <= 0.0) return false;
  if (probability >= 1.0) return true;
  return uniform_() < probability;
}

FaultDecision FaultInjector::Decide(const std::string& ns, Access access) {
  FaultDecision decision;
  absl::MutexLock lock(&mu_);
  auto it = specs_.find(ns);
  if (it == specs_.end()) return decision;
  const FaultSpec& spec = it->second;
  if (Applies(spec.latency.applies_to, access) && spec.latency.delay > absl::ZeroDuration() &&
      Draw(spec.latency.share)) {
    decision.delay = spec.latency.delay;
  }
  if (Applies(spec.error.applies_to, access) && Draw(spec.error.rate)) {
    decision.error =
        absl::Status(spec.error.code, absl::StrCat("injected fault (stategate --fault-injection): ",
                                                   absl::StatusCodeToString(spec.error.code),
                                                   " for namespace '", ns, "'"));
    if (spec.error.code == absl::StatusCode::kResourceExhausted) {
      decision.retry_pushback = spec.error.pushback;
    }
  }
  return decision;
}

absl::Status PauseProcess(absl::Duration duration) {
  if (absl::Status s = CheckDuration(duration, "duration"); !s.ok()) return s;
  if (duration == absl::ZeroDuration()) return absl::OkStatus();
  // One pause at a time: overlapping ones would continue each other early.
  static absl::Mutex pause_mu(absl::kConstInit);
  absl::MutexLock lock(&pause_mu);

  const pid_t self = ::getpid();
  // _Fork runs no atfork handlers (gRPC's among them) and the child calls only
  // async-signal-safe functions, as it must in a child of a threaded process.
  const pid_t child = ::_Fork();
  if (child < 0) {
    return absl::InternalError(absl::StrCat("cannot fork to pause: ", std::strerror(errno)));
  }
  if (child == 0) {
    // The child stops its parent itself, so SIGCONT can never come first: sent later by the
    // same sender, it always finds the stop delivered (or discards one still pending).
    ::kill(self, SIGSTOP);
    SleepInChild(duration);
    ::kill(self, SIGCONT);
    ::_exit(0);
  }
  // This thread stops with the rest of the process and returns when the child has exited.
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return absl::OkStatus();
}

}  // namespace stategate::server
