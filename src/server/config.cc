#include "src/server/config.h"

#include <fstream>
#include <initializer_list>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "src/common/priority.h"
#include "src/common/status_macros.h"
#include "src/server/admission.h"

namespace stategate::server {
namespace {

// Walks a YAML map, remembering which keys were read so that unknown ones are reported.
class Fields {
 public:
  Fields(const YAML::Node& node, std::string path) : node_(node), path_(std::move(path)) {}

  absl::Status CheckMap() const {
    if (node_ && !node_.IsNull() && !node_.IsMap()) {
      return absl::InvalidArgumentError(absl::StrCat(path_, " must be a map"));
    }
    return absl::OkStatus();
  }

  // The value at key, or an undefined node when it is absent or null.
  YAML::Node Get(const std::string& key) {
    seen_.insert(key);
    if (!node_ || !node_.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    const YAML::Node& map = node_;  // const lookup: a missing key is not inserted
    YAML::Node value = map[key];
    if (!value || value.IsNull()) return YAML::Node(YAML::NodeType::Undefined);
    return value;
  }

  template <typename T>
  absl::Status Read(const std::string& key, T& out) {
    YAML::Node value = Get(key);
    if (!value) return absl::OkStatus();
    try {
      out = value.as<T>();
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(absl::StrCat(Path(key), ": ", e.what()));
    }
    return absl::OkStatus();
  }

  absl::Status ReadDuration(const std::string& key, absl::Duration& out) {
    std::string text;
    SG_RETURN_IF_ERROR(Read(key, text));
    if (text.empty()) return absl::OkStatus();
    if (!absl::ParseDuration(text, &out) || out < absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Path(key), ": '", text, "' is not a duration (e.g. 250ms, 10s, 1h)"));
    }
    return absl::OkStatus();
  }

  // One of a fixed set of names, read as its value; `out` keeps its default when absent.
  template <typename E>
  absl::Status ReadChoice(const std::string& key,
                          std::initializer_list<std::pair<const char*, E>> choices, E& out) {
    if (!Get(key)) return absl::OkStatus();
    std::string text;
    SG_RETURN_IF_ERROR(Read(key, text));
    std::vector<std::string> names;
    for (const auto& [name, value] : choices) {
      if (text == name) {
        out = value;
        return absl::OkStatus();
      }
      names.push_back(name);
    }
    // "a or b", "a, b or c"
    const std::string last = names.back();
    names.pop_back();
    const std::string list =
        names.empty() ? last : absl::StrCat(absl::StrJoin(names, ", "), " or ", last);
    return absl::InvalidArgumentError(absl::StrCat(Path(key), ": '", text, "' is not ", list));
  }

  absl::Status CheckNoUnknown() const {
    if (!node_ || !node_.IsMap()) return absl::OkStatus();
    for (const auto& entry : node_) {
      const std::string key = entry.first.as<std::string>();
      if (!seen_.contains(key)) {
        return absl::InvalidArgumentError(absl::StrCat(Path(key), " is not a known field"));
      }
    }
    return absl::OkStatus();
  }

  std::string Path(const std::string& key) const { return absl::StrCat(path_, ".", key); }

 private:
  YAML::Node node_;
  std::string path_;
  std::set<std::string> seen_;
};

absl::Status ParseSlo(Fields& parent, const std::string& key, Slo& slo) {
  Fields fields(parent.Get(key), parent.Path(key));
  SG_RETURN_IF_ERROR(fields.CheckMap());
  SG_RETURN_IF_ERROR(fields.ReadDuration("target", slo.target));
  SG_RETURN_IF_ERROR(fields.ReadDuration("max", slo.max));
  return fields.CheckNoUnknown();
}

absl::Status ParseAppliesToField(Fields& fields, AppliesTo& out) {
  std::string text;
  SG_RETURN_IF_ERROR(fields.Read("applies_to", text));
  SG_ASSIGN_OR_RETURN(out, ParseAppliesTo(text, fields.Path("applies_to")));
  return absl::OkStatus();
}

absl::StatusOr<FaultSpec> ParseFaults(Fields& parent) {
  FaultSpec spec;
  Fields faults(parent.Get("faults"), parent.Path("faults"));
  SG_RETURN_IF_ERROR(faults.CheckMap());

  Fields latency(faults.Get("latency"), faults.Path("latency"));
  SG_RETURN_IF_ERROR(latency.CheckMap());
  SG_RETURN_IF_ERROR(latency.ReadDuration("delay", spec.latency.delay));
  SG_RETURN_IF_ERROR(latency.Read("share", spec.latency.share));
  SG_RETURN_IF_ERROR(ParseAppliesToField(latency, spec.latency.applies_to));
  SG_RETURN_IF_ERROR(latency.CheckNoUnknown());

  Fields error(faults.Get("error"), faults.Path("error"));
  SG_RETURN_IF_ERROR(error.CheckMap());
  SG_RETURN_IF_ERROR(error.Read("rate", spec.error.rate));
  std::string code;
  SG_RETURN_IF_ERROR(error.Read("code", code));
  if (!code.empty()) {
    SG_ASSIGN_OR_RETURN(spec.error.code, ParseErrorCode(code, error.Path("code")));
  }
  SG_RETURN_IF_ERROR(ParseAppliesToField(error, spec.error.applies_to));
  SG_RETURN_IF_ERROR(error.ReadDuration("pushback", spec.error.pushback));
  SG_RETURN_IF_ERROR(error.CheckNoUnknown());

  SG_RETURN_IF_ERROR(faults.CheckNoUnknown());
  return spec;
}

absl::Status ParseAdmission(Fields& parent, AdmissionConfig& admission) {
  Fields fields(parent.Get("admission"), parent.Path("admission"));
  SG_RETURN_IF_ERROR(fields.CheckMap());
  SG_RETURN_IF_ERROR(fields.Read("limiter", admission.limiter));
  SG_RETURN_IF_ERROR(fields.Read("initial_limit", admission.initial_limit));
  SG_RETURN_IF_ERROR(fields.Read("min_limit", admission.min_limit));
  SG_RETURN_IF_ERROR(fields.Read("max_limit", admission.max_limit));
  SG_RETURN_IF_ERROR(fields.Read("max_queue", admission.max_queue));
  SG_RETURN_IF_ERROR(fields.ReadDuration("max_queue_wait", admission.max_queue_wait));
  SG_RETURN_IF_ERROR(fields.ReadDuration("retry_pushback", admission.retry_pushback));
  std::string priority;
  SG_RETURN_IF_ERROR(fields.Read("default_priority", priority));
  if (!priority.empty()) {
    SG_ASSIGN_OR_RETURN(admission.default_priority,
                        ParsePriority(priority, fields.Path("default_priority")));
  }
  return fields.CheckNoUnknown();
}

struct ParsedNamespace {
  NamespaceConfig ns;
  std::optional<FaultSpec> faults;  // set when the namespace has a `faults:` field
};

absl::StatusOr<ParsedNamespace> ParseNamespace(const YAML::Node& node, const std::string& path) {
  ParsedNamespace parsed;
  NamespaceConfig& ns = parsed.ns;
  Fields fields(node, path);
  SG_RETURN_IF_ERROR(fields.CheckMap());
  SG_RETURN_IF_ERROR(fields.Read("name", ns.name));
  SG_RETURN_IF_ERROR(fields.Read("abstraction", ns.abstraction));

  Fields storage(fields.Get("storage"), fields.Path("storage"));
  SG_RETURN_IF_ERROR(storage.CheckMap());
  SG_RETURN_IF_ERROR(storage.Read("engine", ns.engine));
  SG_RETURN_IF_ERROR(storage.ReadChoice(
      "durability", {{"sync", Durability::kSync}, {"async", Durability::kAsync}}, ns.durability));
  SG_RETURN_IF_ERROR(storage.Read("replicas_ack", ns.replicas_ack));
  SG_RETURN_IF_ERROR(storage.ReadChoice(
      "replica_shortfall",
      {{"refuse", ReplicaShortfall::kRefuse}, {"degrade", ReplicaShortfall::kDegrade}},
      ns.replica_shortfall));
  SG_RETURN_IF_ERROR(storage.CheckNoUnknown());

  SG_RETURN_IF_ERROR(ParseAdmission(fields, ns.admission));

  Fields cache(fields.Get("cache"), fields.Path("cache"));
  SG_RETURN_IF_ERROR(cache.CheckMap());
  SG_RETURN_IF_ERROR(cache.Read("engine", ns.cache.engine));
  SG_RETURN_IF_ERROR(cache.ReadDuration("ttl", ns.cache.ttl));
  SG_RETURN_IF_ERROR(cache.CheckNoUnknown());

  Fields slo(fields.Get("slo"), fields.Path("slo"));
  SG_RETURN_IF_ERROR(slo.CheckMap());
  SG_RETURN_IF_ERROR(ParseSlo(slo, "point_read", ns.point_read));
  SG_RETURN_IF_ERROR(ParseSlo(slo, "range_read", ns.range_read));
  SG_RETURN_IF_ERROR(ParseSlo(slo, "write", ns.write));
  SG_RETURN_IF_ERROR(slo.CheckNoUnknown());

  Fields limits(fields.Get("limits"), fields.Path("limits"));
  SG_RETURN_IF_ERROR(limits.CheckMap());
  SG_RETURN_IF_ERROR(limits.Read("max_key_bytes", ns.limits.max_key_bytes));
  SG_RETURN_IF_ERROR(limits.Read("max_value_bytes", ns.limits.max_value_bytes));
  SG_RETURN_IF_ERROR(limits.Read("max_items_per_call", ns.limits.max_items_per_call));
  SG_RETURN_IF_ERROR(limits.Read("max_request_bytes", ns.limits.max_request_bytes));
  SG_RETURN_IF_ERROR(limits.Read("max_page_bytes", ns.limits.max_page_bytes));
  SG_RETURN_IF_ERROR(limits.CheckNoUnknown());

  Fields client(fields.Get("client"), fields.Path("client"));
  SG_RETURN_IF_ERROR(client.CheckMap());
  SG_RETURN_IF_ERROR(
      client.Read("compression_threshold_bytes", ns.client.compression_threshold_bytes));
  SG_RETURN_IF_ERROR(client.Read("chunk_bytes", ns.client.chunk_bytes));
  SG_RETURN_IF_ERROR(client.Read("page_size_bytes", ns.client.page_size_bytes));
  SG_RETURN_IF_ERROR(client.Read("hedging", ns.client.hedging));
  SG_RETURN_IF_ERROR(client.Read("near_cache", ns.client.near_cache));
  SG_RETURN_IF_ERROR(client.CheckNoUnknown());

  if (fields.Get("faults")) {
    SG_ASSIGN_OR_RETURN(parsed.faults, ParseFaults(fields));
  }

  SG_RETURN_IF_ERROR(fields.CheckNoUnknown());
  return parsed;
}

absl::Status Positive(const std::string& field, int64_t value) {
  if (value <= 0) return absl::InvalidArgumentError(absl::StrCat(field, " must be > 0"));
  return absl::OkStatus();
}

absl::Status ValidateSlo(const std::string& field, const Slo& slo) {
  if (slo.target <= absl::ZeroDuration() || slo.max < slo.target) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": target must be > 0 and max >= target"));
  }
  return absl::OkStatus();
}

constexpr int kMaxReplicasAck = 5;
// memcached reads an expiry above 30 days as a unix time.
constexpr absl::Duration kMaxCacheTtl = absl::Hours(24 * 30);

absl::Status ValidateNamespace(const NamespaceConfig& ns) {
  static const std::regex kName("[A-Za-z0-9_-]{1,64}");
  if (!std::regex_match(ns.name, kName)) {
    return absl::InvalidArgumentError(
        absl::StrCat("namespace name '", ns.name, "' must be 1 to 64 of A-Z a-z 0-9 _ -"));
  }
  const std::string at = "namespace " + ns.name + ": ";
  if (ns.abstraction != "kv") {
    return absl::InvalidArgumentError(
        absl::StrCat(at, "abstraction '", ns.abstraction, "' is not served (this server has: kv)"));
  }
  if (ns.engine != "rocksdb" && ns.engine != "redis-cluster") {
    return absl::InvalidArgumentError(absl::StrCat(
        at, "storage.engine '", ns.engine, "' is not available (have: rocksdb, redis-cluster)"));
  }
  if (ns.replicas_ack < 0 || ns.replicas_ack > kMaxReplicasAck) {
    return absl::InvalidArgumentError(
        absl::StrCat(at, "storage.replicas_ack must be in [0, ", kMaxReplicasAck, "]"));
  }
  if (ns.replicas_ack > 0 && ns.engine != "redis-cluster") {
    return absl::InvalidArgumentError(
        absl::StrCat(at, "storage.replicas_ack applies to engine redis-cluster only"));
  }
  if (ns.replica_shortfall == ReplicaShortfall::kDegrade && ns.engine != "redis-cluster") {
    return absl::InvalidArgumentError(
        absl::StrCat(at, "storage.replica_shortfall applies to engine redis-cluster only"));
  }
  if (absl::Status admission = ValidateAdmission(ns.admission); !admission.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(at, admission.message()));
  }
  if (ns.cache.engine != "none" && ns.cache.engine != "memcached") {
    return absl::InvalidArgumentError(
        absl::StrCat(at, "cache.engine '", ns.cache.engine, "' must be none or memcached"));
  }
  if (ns.cache.ttl < absl::Seconds(1) || ns.cache.ttl > kMaxCacheTtl) {
    return absl::InvalidArgumentError(
        absl::StrCat(at, "cache.ttl must be in [1s, ", absl::FormatDuration(kMaxCacheTtl), "]"));
  }
  SG_RETURN_IF_ERROR(ValidateSlo(at + "slo.point_read", ns.point_read));
  SG_RETURN_IF_ERROR(ValidateSlo(at + "slo.range_read", ns.range_read));
  SG_RETURN_IF_ERROR(ValidateSlo(at + "slo.write", ns.write));
  SG_RETURN_IF_ERROR(Positive(at + "limits.max_key_bytes", ns.limits.max_key_bytes));
  SG_RETURN_IF_ERROR(Positive(at + "limits.max_value_bytes", ns.limits.max_value_bytes));
  SG_RETURN_IF_ERROR(Positive(at + "limits.max_items_per_call", ns.limits.max_items_per_call));
  SG_RETURN_IF_ERROR(Positive(at + "limits.max_request_bytes", ns.limits.max_request_bytes));
  SG_RETURN_IF_ERROR(Positive(at + "limits.max_page_bytes", ns.limits.max_page_bytes));
  SG_RETURN_IF_ERROR(Positive(at + "client.chunk_bytes", ns.client.chunk_bytes));
  SG_RETURN_IF_ERROR(Positive(at + "client.page_size_bytes", ns.client.page_size_bytes));
  if (ns.client.compression_threshold_bytes < 0) {
    return absl::InvalidArgumentError(at + "client.compression_threshold_bytes must be >= 0");
  }
  // A chunk travels in one request, with room for the rest of the request.
  constexpr int64_t kRequestOverhead = 64 * 1024;
  if (ns.client.chunk_bytes + kRequestOverhead > ns.limits.max_request_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        at, "client.chunk_bytes (", ns.client.chunk_bytes,
        ") plus 64 KiB must fit in limits.max_request_bytes (", ns.limits.max_request_bytes, ")"));
  }
  if (ns.client.page_size_bytes > ns.limits.max_page_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(at, "client.page_size_bytes must be <= limits.max_page_bytes"));
  }
  if (ns.client.near_cache != "off" && ns.client.near_cache != "lru" &&
      ns.client.near_cache != "total") {
    return absl::InvalidArgumentError(
        absl::StrCat(at, "client.near_cache must be off, lru or total"));
  }
  return absl::OkStatus();
}

}  // namespace

ServerConfig DefaultConfig() {
  ServerConfig config;
  NamespaceConfig ns;
  ns.name = "default";
  config.namespaces.push_back(ns);
  return config;
}

absl::Status ValidateConfig(const ServerConfig& config) {
  if (config.tombstone_grace < config.max_clock_skew) {
    return absl::InvalidArgumentError(
        "tombstone_grace must be >= max_clock_skew, or a late retry could resurrect deleted data");
  }
  if (config.drain_notice < absl::ZeroDuration() || config.drain_notice > absl::Minutes(1)) {
    return absl::InvalidArgumentError(absl::StrCat("drain_notice must be in [0s, 1m], got ",
                                                   absl::FormatDuration(config.drain_notice)));
  }
  if (config.max_clock_skew <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("max_clock_skew must be > 0");
  }
  if (config.worker_threads < 1 || config.worker_threads > 1024) {
    return absl::InvalidArgumentError("worker_threads must be in [1, 1024]");
  }
  if (config.redis_cluster.replicas_ack_timeout <= absl::ZeroDuration() ||
      config.redis_cluster.retry_window <= absl::ZeroDuration() ||
      config.redis_cluster.purge_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "redis_cluster.replicas_ack_timeout, retry_window and purge_interval must be > 0");
  }
  if (config.redis_cluster.max_calls_per_shard < 0 ||
      config.redis_cluster.max_calls_per_shard > config.worker_threads) {
    return absl::InvalidArgumentError(absl::StrCat(
        "redis_cluster.max_calls_per_shard must be in [0, worker_threads = ", config.worker_threads,
        "], got ", config.redis_cluster.max_calls_per_shard));
  }
  if (config.memcached.op_timeout <= absl::ZeroDuration() ||
      config.memcached.op_timeout > absl::Seconds(1)) {
    return absl::InvalidArgumentError("memcached.op_timeout must be in (0, 1s]");
  }
  std::set<std::string> names;
  for (const NamespaceConfig& ns : config.namespaces) {
    SG_RETURN_IF_ERROR(ValidateNamespace(ns));
    if (ns.engine == "redis-cluster" && config.redis_cluster.seeds.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "namespace ", ns.name,
          ": storage.engine redis-cluster needs redis_cluster.seeds (or --redis-cluster)"));
    }
    if (ns.cache.engine == "memcached" && config.memcached.address.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("namespace ", ns.name,
                       ": cache.engine memcached needs memcached.address (or --memcached)"));
    }
    if (!names.insert(ns.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("namespace ", ns.name, " is declared twice"));
    }
  }
  for (const auto& [name, spec] : config.faults) {
    if (!names.contains(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("faults are set for namespace '", name, "', which is not declared"));
    }
    SG_RETURN_IF_ERROR(ValidateFaultSpec(spec, absl::StrCat("namespace ", name, ": faults")));
  }
  return absl::OkStatus();
}

absl::StatusOr<ServerConfig> ParseConfig(const std::string& yaml) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config is not valid YAML: ", e.what()));
  }
  ServerConfig config;
  Fields fields(root, "config");
  SG_RETURN_IF_ERROR(fields.CheckMap());
  SG_RETURN_IF_ERROR(fields.Read("listen", config.listen));
  SG_RETURN_IF_ERROR(fields.Read("data_dir", config.data_dir));
  SG_RETURN_IF_ERROR(fields.ReadDuration("max_clock_skew", config.max_clock_skew));
  SG_RETURN_IF_ERROR(fields.ReadDuration("tombstone_grace", config.tombstone_grace));
  SG_RETURN_IF_ERROR(fields.ReadDuration("chunk_gc_interval", config.chunk_gc_interval));
  SG_RETURN_IF_ERROR(fields.ReadDuration("drain_notice", config.drain_notice));
  SG_RETURN_IF_ERROR(fields.ReadDuration("drain_timeout", config.drain_timeout));
  SG_RETURN_IF_ERROR(fields.Read("worker_threads", config.worker_threads));
  SG_RETURN_IF_ERROR(fields.Read("page_token_secret", config.page_token_secret));
  Fields redis(fields.Get("redis_cluster"), "config.redis_cluster");
  SG_RETURN_IF_ERROR(redis.CheckMap());
  SG_RETURN_IF_ERROR(redis.Read("seeds", config.redis_cluster.seeds));
  SG_RETURN_IF_ERROR(
      redis.ReadDuration("replicas_ack_timeout", config.redis_cluster.replicas_ack_timeout));
  SG_RETURN_IF_ERROR(redis.ReadDuration("retry_window", config.redis_cluster.retry_window));
  SG_RETURN_IF_ERROR(redis.ReadDuration("purge_interval", config.redis_cluster.purge_interval));
  SG_RETURN_IF_ERROR(redis.Read("max_calls_per_shard", config.redis_cluster.max_calls_per_shard));
  SG_RETURN_IF_ERROR(redis.CheckNoUnknown());
  Fields memcached(fields.Get("memcached"), "config.memcached");
  SG_RETURN_IF_ERROR(memcached.CheckMap());
  SG_RETURN_IF_ERROR(memcached.Read("address", config.memcached.address));
  SG_RETURN_IF_ERROR(memcached.ReadDuration("op_timeout", config.memcached.op_timeout));
  SG_RETURN_IF_ERROR(memcached.CheckNoUnknown());
  YAML::Node namespaces = fields.Get("namespaces");
  if (namespaces) {
    if (!namespaces.IsSequence()) {
      return absl::InvalidArgumentError("config.namespaces must be a list");
    }
    for (size_t i = 0; i < namespaces.size(); ++i) {
      SG_ASSIGN_OR_RETURN(
          ParsedNamespace parsed,
          ParseNamespace(namespaces[i], absl::StrCat("config.namespaces[", i, "]")));
      if (parsed.faults.has_value()) config.faults[parsed.ns.name] = *parsed.faults;
      config.namespaces.push_back(std::move(parsed.ns));
    }
  }
  SG_RETURN_IF_ERROR(fields.CheckNoUnknown());
  SG_RETURN_IF_ERROR(ValidateConfig(config));
  return config;
}

absl::StatusOr<ServerConfig> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
  std::stringstream text;
  text << in.rdbuf();
  return ParseConfig(text.str());
}

}  // namespace stategate::server
