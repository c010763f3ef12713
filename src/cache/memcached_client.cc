#include "src/cache/memcached_client.h"

#include <libmemcached/memcached.h>
#include <xxhash.h>

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "src/common/status_macros.h"

namespace stategate::cache {
namespace {

// memcached reads an expiry above 30 days as an absolute unix time.
constexpr int64_t kMaxRelativeExpirySeconds = 60 * 60 * 24 * 30;

bool IsGetOk(memcached_return_t rc) {
  return rc == MEMCACHED_SUCCESS || rc == MEMCACHED_END || rc == MEMCACHED_NOTFOUND;
}

absl::Status ToStatus(const char* op, memcached_st* handle, memcached_return_t rc) {
  std::string message = absl::StrCat(
      "memcached ", op, ": ",
      handle != nullptr ? memcached_last_error_message(handle) : memcached_strerror(nullptr, rc));
  if (rc == MEMCACHED_TIMEOUT) return absl::DeadlineExceededError(message);
  return absl::UnavailableError(message);
}

absl::Status Skipped() { return absl::UnavailableError("memcached skipped: circuit open"); }

}  // namespace

void MemcachedHandleDeleter::operator()(memcached_st* handle) const { memcached_free(handle); }

MemcachedHandle NewMemcachedHandle(const std::string& host, int port, absl::Duration timeout) {
  MemcachedHandle handle(memcached_create(nullptr));
  if (handle == nullptr) return nullptr;
  memcached_st* m = handle.get();
  const uint64_t timeout_ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout));
  const uint64_t timeout_us = std::max<int64_t>(1, absl::ToInt64Microseconds(timeout));
  // Non-blocking sockets are what make the connect timeout apply.
  memcached_behavior_set(m, MEMCACHED_BEHAVIOR_NO_BLOCK, 1);
  memcached_behavior_set(m, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
  memcached_behavior_set(m, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, timeout_ms);
  memcached_behavior_set(m, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, timeout_ms);
  memcached_behavior_set(m, MEMCACHED_BEHAVIOR_SND_TIMEOUT, timeout_us);
  memcached_behavior_set(m, MEMCACHED_BEHAVIOR_RCV_TIMEOUT, timeout_us);
  if (memcached_server_add(m, host.c_str(), static_cast<in_port_t>(port)) != MEMCACHED_SUCCESS) {
    return nullptr;
  }
  return handle;
}

absl::StatusOr<std::unique_ptr<MemcachedClient>> MemcachedClient::Create(
    MemcachedClientOptions options) {
  const size_t colon = options.server.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(options.server.substr(colon + 1), &port) || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("memcached server must be host:port, got \"", options.server, "\""));
  }
  if (options.op_timeout <= absl::ZeroDuration() || options.retry_after <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("memcached op_timeout and retry_after must be positive");
  }
  if (options.clock == nullptr) options.clock = Clock::Real();
  std::string host = options.server.substr(0, colon);
  return std::unique_ptr<MemcachedClient>(
      new MemcachedClient(std::move(options), std::move(host), port));
}

MemcachedClient::MemcachedClient(MemcachedClientOptions options, std::string host, int port)
    : options_(std::move(options)), host_(std::move(host)), port_(port) {}

MemcachedClient::~MemcachedClient() = default;

std::string MemcachedClient::WireKey(const std::string& key) const {
  // 128 bits: a collision (two keys sharing a slot, so one could read the other's value) is
  // not a practical concern, and the key stays 32 characters whatever its input.
  const XXH128_hash_t hash = XXH3_128bits(key.data(), key.size());
  return absl::StrCat(options_.key_prefix, absl::Hex(hash.high64, absl::kZeroPad16),
                      absl::Hex(hash.low64, absl::kZeroPad16));
}

absl::StatusOr<time_t> MemcachedClient::Expiration(absl::Duration ttl) {
  if (ttl == absl::ZeroDuration()) return 0;
  const int64_t seconds = absl::ToInt64Seconds(ttl);  // rounds toward zero
  if (seconds < 1) {
    return absl::InvalidArgumentError("memcached ttl must be zero or at least one second");
  }
  return static_cast<time_t>(std::min(seconds, kMaxRelativeExpirySeconds));
}

MemcachedClient::Admission MemcachedClient::Admit() {
  int64_t until = open_until_us_.load();
  if (until == 0) return {Admission::kClosed, 0};
  const int64_t now = options_.clock->NowMicros();
  // Once the window has passed, exactly one caller (the one that moves the window on) probes;
  // the others keep skipping until the probe succeeds.
  const int64_t probe_until = now + absl::ToInt64Microseconds(options_.retry_after);
  if (now >= until && open_until_us_.compare_exchange_strong(until, probe_until)) {
    return {Admission::kProbe, probe_until};
  }
  ++skipped_;
  return {Admission::kSkip, 0};
}

void MemcachedClient::Finish(Admission admission, Handle handle, bool ok) {
  if (!ok) {
    ++errors_;
    // Dropping the handle closes its connection: after a timeout the stream may still hold
    // half a reply, so it is never reused.
    handle.reset();
    open_until_us_.store(options_.clock->NowMicros() +
                         absl::ToInt64Microseconds(options_.retry_after));
    return;
  }
  if (admission.kind == Admission::kProbe) {
    // Close the circuit, unless another operation failed meanwhile and moved the window.
    int64_t expected = admission.probe_until_us;
    open_until_us_.compare_exchange_strong(expected, 0);
  }
  absl::MutexLock lock(&mu_);
  if (idle_.size() < options_.max_idle_connections) idle_.push_back(std::move(handle));
}

MemcachedClient::Handle MemcachedClient::Acquire() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_.empty()) {
      Handle handle = std::move(idle_.back());
      idle_.pop_back();
      return handle;
    }
  }
  return NewMemcachedHandle(host_, port_, options_.op_timeout);
}

template <typename Op>
absl::Status MemcachedClient::WithConnection(Op op) {
  const Admission admission = Admit();
  if (admission.kind == Admission::kSkip) return Skipped();
  Handle handle = Acquire();
  if (handle == nullptr) {
    Finish(admission, nullptr, false);
    return absl::UnavailableError("memcached: cannot create a client handle");
  }
  absl::Status status = op(handle.get());
  Finish(admission, std::move(handle), status.ok());
  return status;
}

absl::StatusOr<absl::flat_hash_map<std::string, std::string>> MemcachedClient::MultiGet(
    const std::vector<std::string>& keys) {
  absl::flat_hash_map<std::string, std::string> found;
  if (keys.empty()) return found;
  absl::flat_hash_map<std::string, const std::string*> by_wire_key;
  std::vector<std::string> wire_keys;
  wire_keys.reserve(keys.size());
  for (const std::string& key : keys) {
    std::string wire = WireKey(key);
    if (by_wire_key.emplace(wire, &key).second) wire_keys.push_back(std::move(wire));
  }
  std::vector<const char*> key_ptrs;
  std::vector<size_t> key_lengths;
  for (const std::string& wire : wire_keys) {
    key_ptrs.push_back(wire.data());
    key_lengths.push_back(wire.size());
  }
  SG_RETURN_IF_ERROR(WithConnection([&](memcached_st* handle) {
    memcached_return_t rc =
        memcached_mget(handle, key_ptrs.data(), key_lengths.data(), key_ptrs.size());
    if (rc == MEMCACHED_SUCCESS) {
      memcached_result_st result;
      memcached_result_create(handle, &result);
      while (memcached_fetch_result(handle, &result, &rc) != nullptr) {
        std::string wire(memcached_result_key_value(&result), memcached_result_key_length(&result));
        auto it = by_wire_key.find(wire);
        if (it == by_wire_key.end()) continue;
        found[*it->second] =
            std::string(memcached_result_value(&result), memcached_result_length(&result));
      }
      memcached_result_free(&result);
    }
    return IsGetOk(rc) ? absl::OkStatus() : ToStatus("get", handle, rc);
  }));
  hits_ += found.size();
  misses_ += wire_keys.size() - found.size();
  return found;
}

absl::StatusOr<bool> MemcachedClient::Add(const std::string& key, const std::string& value,
                                          absl::Duration ttl) {
  SG_ASSIGN_OR_RETURN(const time_t expiration, Expiration(ttl));
  const std::string wire = WireKey(key);
  bool added = false;
  SG_RETURN_IF_ERROR(WithConnection([&](memcached_st* handle) {
    const memcached_return_t rc =
        memcached_add(handle, wire.data(), wire.size(), value.data(), value.size(), expiration, 0);
    if (rc != MEMCACHED_SUCCESS && rc != MEMCACHED_NOTSTORED && rc != MEMCACHED_DATA_EXISTS) {
      return ToStatus("add", handle, rc);
    }
    added = rc == MEMCACHED_SUCCESS;
    return absl::OkStatus();
  }));
  return added;
}

absl::Status MemcachedClient::Set(const std::string& key, const std::string& value,
                                  absl::Duration ttl) {
  SG_ASSIGN_OR_RETURN(const time_t expiration, Expiration(ttl));
  const std::string wire = WireKey(key);
  return WithConnection([&](memcached_st* handle) {
    const memcached_return_t rc =
        memcached_set(handle, wire.data(), wire.size(), value.data(), value.size(), expiration, 0);
    return rc == MEMCACHED_SUCCESS ? absl::OkStatus() : ToStatus("set", handle, rc);
  });
}

absl::Status MemcachedClient::Delete(const std::string& key) {
  const std::string wire = WireKey(key);
  absl::Status status = WithConnection([&](memcached_st* handle) {
    const memcached_return_t rc = memcached_delete(handle, wire.data(), wire.size(), 0);
    return rc == MEMCACHED_SUCCESS || rc == MEMCACHED_NOTFOUND ? absl::OkStatus()
                                                               : ToStatus("delete", handle, rc);
  });
  ++(status.ok() ? invalidations_ : invalidation_failures_);
  return status;
}

MemcachedClient::Stats MemcachedClient::stats() const {
  Stats stats;
  stats.hits = hits_.load();
  stats.misses = misses_.load();
  stats.errors = errors_.load();
  stats.skipped = skipped_.load();
  stats.invalidations = invalidations_.load();
  stats.invalidation_failures = invalidation_failures_.load();
  return stats;
}

}  // namespace stategate::cache
