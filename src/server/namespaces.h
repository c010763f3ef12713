// Namespaces: the set of namespaces a server serves right now, swapped whole on reload so a
// call sees one consistent version from start to end. Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "src/common/metadata_keys.h"
#include "src/common/namespace_config.h"
#include "stategate/v1/control.pb.h"

namespace stategate::server {

// One immutable version of the namespace set.
struct NamespaceSet {
  std::map<std::string, NamespaceConfig> by_name;
  // Changes whenever anything a client is told changes; the same content gives the same
  // version on every gateway and after restarts.
  uint64_t version = 0;
  v1::HandshakeResponse handshake;  // without server_time_us, filled per call

  const NamespaceConfig* Find(const std::string& name) const {
    auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : &it->second;
  }
};

std::shared_ptr<const NamespaceSet> MakeNamespaceSet(const std::vector<NamespaceConfig>& list,
                                                     absl::Duration max_clock_skew);

class Namespaces {
 public:
  explicit Namespaces(std::shared_ptr<const NamespaceSet> initial) : current_(std::move(initial)) {}

  std::shared_ptr<const NamespaceSet> Current() const {
    absl::MutexLock lock(&mu_);
    return current_;
  }
  void Replace(std::shared_ptr<const NamespaceSet> next) {
    absl::MutexLock lock(&mu_);
    current_ = std::move(next);
  }

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const NamespaceSet> current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stategate::server
