#include "src/server/namespaces.h"

#include "absl/strings/str_cat.h"

#include "src/common/checksum.h"

namespace stategate::server {
namespace {

v1::Slo ToProto(const Slo& slo) {
  v1::Slo out;
  out.set_target_us(absl::ToInt64Microseconds(slo.target));
  out.set_max_us(absl::ToInt64Microseconds(slo.max));
  return out;
}

v1::NamespaceInfo ToProto(const NamespaceConfig& ns) {
  v1::NamespaceInfo info;
  info.set_name(ns.name);
  info.set_abstraction(ns.abstraction);
  *info.mutable_slos()->mutable_point_read() = ToProto(ns.point_read);
  *info.mutable_slos()->mutable_range_read() = ToProto(ns.range_read);
  *info.mutable_slos()->mutable_write() = ToProto(ns.write);
  v1::ClientSettings* client = info.mutable_client();
  client->set_compression_threshold_bytes(ns.client.compression_threshold_bytes);
  client->set_chunk_bytes(ns.client.chunk_bytes);
  client->set_page_size_bytes(ns.client.page_size_bytes);
  client->set_hedging(ns.client.hedging);
  client->set_near_cache(ns.client.near_cache);
  v1::NamespaceLimits* limits = info.mutable_limits();
  limits->set_max_key_bytes(ns.limits.max_key_bytes);
  limits->set_max_value_bytes(ns.limits.max_value_bytes);
  limits->set_max_items_per_call(ns.limits.max_items_per_call);
  limits->set_max_request_bytes(ns.limits.max_request_bytes);
  return info;
}

}  // namespace

std::shared_ptr<const NamespaceSet> MakeNamespaceSet(const std::vector<NamespaceConfig>& list,
                                                     absl::Duration max_clock_skew) {
  auto set = std::make_shared<NamespaceSet>();
  for (const NamespaceConfig& ns : list) {
    set->by_name[ns.name] = ns;
  }
  for (const auto& [name, ns] : set->by_name) {  // sorted: the version must not depend on order
    *set->handshake.add_namespaces() = ToProto(ns);
  }
  set->handshake.set_max_clock_skew_us(absl::ToInt64Microseconds(max_clock_skew));
  std::string canonical;
  set->handshake.SerializeToString(&canonical);
  // Durability and engine are not signalled but change behaviour; include them too.
  for (const auto& [name, ns] : set->by_name) {
    canonical += ns.engine;
    canonical += ns.durability == Durability::kSync ? "sync" : "async";
    canonical += absl::StrCat("|", ns.replicas_ack, "|", static_cast<int>(ns.replica_shortfall),
                              "|", ns.cache.engine, "|",
                              absl::ToInt64Milliseconds(ns.cache.ttl));
  }
  set->version = Xxh64(canonical);
  set->handshake.set_config_version(set->version);
  return set;
}

}  // namespace stategate::server
