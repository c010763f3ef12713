#include "src/client/convert.h"

namespace stategate::client {
namespace {

LatencySlo FromProto(const v1::Slo& slo) {
  return LatencySlo{.target = absl::Microseconds(slo.target_us()),
                    .max = absl::Microseconds(slo.max_us())};
}

}  // namespace

void ToProto(const Predicate& predicate, v1::Predicate* out) {
  switch (predicate.kind) {
    case Predicate::Kind::kAll:
      out->mutable_all();
      return;
    case Predicate::Kind::kKeys: {
      v1::Predicate::Keys* keys = out->mutable_keys();
      for (const std::string& key : predicate.keys) keys->add_keys(key);
      return;
    }
    case Predicate::Kind::kRange:
      out->mutable_range()->set_start(predicate.start);
      out->mutable_range()->set_end(predicate.end);
      return;
  }
}

NamespaceSettings FromProto(const v1::NamespaceInfo& info) {
  NamespaceSettings s;
  s.name = info.name();
  s.abstraction = info.abstraction();
  s.point_read_slo = FromProto(info.slos().point_read());
  s.range_read_slo = FromProto(info.slos().range_read());
  s.write_slo = FromProto(info.slos().write());
  s.compression_threshold_bytes = info.client().compression_threshold_bytes();
  s.chunk_bytes = info.client().chunk_bytes();
  s.page_size_bytes = info.client().page_size_bytes();
  s.hedging = info.client().hedging();
  s.near_cache = info.client().near_cache();
  s.max_key_bytes = info.limits().max_key_bytes();
  s.max_value_bytes = info.limits().max_value_bytes();
  s.max_items_per_call = info.limits().max_items_per_call();
  s.max_request_bytes = info.limits().max_request_bytes();
  return s;
}

HandshakeInfo FromProto(const v1::HandshakeResponse& response) {
  HandshakeInfo info;
  info.config_version = response.config_version();
  info.server_time = absl::FromUnixMicros(response.server_time_us());
  info.max_clock_skew = absl::Microseconds(response.max_clock_skew_us());
  info.namespaces.reserve(response.namespaces_size());
  for (const v1::NamespaceInfo& ns : response.namespaces()) {
    info.namespaces.push_back(FromProto(ns));
  }
  return info;
}

StoredItem StoredItemWithoutValue(const v1::Item& item) {
  StoredItem out;
  out.key = item.key();
  out.version = absl::FromUnixMicros(item.metadata().version().generation_time_us());
  if (item.metadata().expires_at_us() != 0) {
    out.expires_at = absl::FromUnixMicros(item.metadata().expires_at_us());
  }
  return out;
}

}  // namespace stategate::client
