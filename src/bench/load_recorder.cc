#include "src/bench/load_recorder.h"

#include <algorithm>
#include <cassert>

namespace stategate::bench {

int64_t LoadStats::error_count() const {
  int64_t n = 0;
  for (const auto& [code, count] : errors) n += count;
  return n;
}

double LoadStats::slo_attainment() const {
  return ops == 0 ? 1.0 : static_cast<double>(ok_within_slo) / static_cast<double>(ops);
}

LoadRecorder::LoadRecorder(absl::Duration interval) : interval_(interval) {
  assert(interval > absl::ZeroDuration());
}

void LoadRecorder::Record(absl::Duration start_offset, absl::Duration latency,
                          const absl::Status& status, absl::Duration slo_target) {
  absl::MutexLock lock(&mu_);
  Add(start_offset, latency, status.ok() && latency <= slo_target,
      status.ok() ? "" : absl::StatusCodeToString(status.code()), std::string(status.message()));
}

void LoadRecorder::RecordUnfinished(absl::Duration start_offset, absl::Duration latency) {
  absl::MutexLock lock(&mu_);
  Add(start_offset, latency, false, kUnfinished, "still running when the run ended");
}

// The error key of a shed call (absl::StatusCodeToString).
constexpr char kShedCode[] = "RESOURCE_EXHAUSTED";

// `error` is empty for a success.
void LoadRecorder::Add(absl::Duration start_offset, absl::Duration latency, bool within_slo,
                       const std::string& error, std::string_view message) {
  if (!error.empty() && !total_.error_examples.contains(error)) {
    total_.error_examples[error] = std::string(message);
  }
  const int64_t index =
      std::max<int64_t>(0, absl::IDivDuration(start_offset, interval_, &start_offset));
  if (static_cast<size_t>(index) >= series_.size()) series_.resize(index + 1);
  const int64_t latency_us = absl::ToInt64Microseconds(std::max(latency, absl::ZeroDuration()));
  for (LoadStats* stats : {&total_, &series_[index]}) {
    ++stats->ops;
    stats->latency_us.Record(latency_us);
    if (error.empty()) {
      ++stats->ok;
      if (within_slo) ++stats->ok_within_slo;
    } else {
      ++stats->errors[error];
      if (error == kShedCode) stats->shed_latency_us.Record(latency_us);
    }
  }
}

LoadStats LoadRecorder::Total() const {
  absl::MutexLock lock(&mu_);
  return total_;
}

LoadStats LoadRecorder::Interval(int64_t index) const {
  absl::MutexLock lock(&mu_);
  if (index < 0 || static_cast<size_t>(index) >= series_.size()) return LoadStats{};
  return series_[index];
}

std::vector<LoadStats> LoadRecorder::Series() const {
  absl::MutexLock lock(&mu_);
  return series_;
}

}  // namespace stategate::bench
