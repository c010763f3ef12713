#include "src/redis/cluster_protocol.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace stategate::redis {

bool SplitAddress(const std::string& address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return false;
  *host = address.substr(0, colon);
  return absl::SimpleAtoi(address.substr(colon + 1), port) && *port > 0 && *port < 65536;
}

std::string FullAddress(const std::string& announced, const std::string& asked) {
  if (!announced.empty() && announced[0] != ':') return announced;
  return asked.substr(0, asked.rfind(':')) + announced;
}

Redirect Classify(const Reply& reply) {
  Redirect r;
  if (!reply.is_error()) return r;
  const std::vector<std::string> words = absl::StrSplit(reply.str, ' ');
  const std::string& verb = words[0];
  if ((verb == "MOVED" || verb == "ASK") && words.size() == 3) {
    r.kind = verb == "MOVED" ? Redirect::Kind::kMoved : Redirect::Kind::kAsk;
    if (!absl::SimpleAtoi(words[1], &r.slot)) r.slot = -1;
    // Redis 7 may announce "host:port@bus" or ":port" (unknown host = the one we asked).
    r.address = words[2].substr(0, words[2].find('@'));
    return r;
  }
  if (verb == "TRYAGAIN" || verb == "CLUSTERDOWN" || verb == "LOADING" || verb == "MASTERDOWN" ||
      verb == "READONLY") {
    r.kind = Redirect::Kind::kRetry;
  }
  return r;
}

Redirect ClassifyPipeline(const std::vector<Reply>& replies, std::string* retry_reason) {
  Redirect redirect;
  for (const Reply& reply : replies) {
    redirect = Classify(reply);
    if (redirect.kind != Redirect::Kind::kNone) break;
  }
  if (redirect.kind == Redirect::Kind::kRetry) {
    for (const Reply& reply : replies) {
      if (reply.is_error()) *retry_reason = reply.str;
    }
  }
  return redirect;
}

// CLUSTER SLOTS: [[start, end, [host, port, id, ...], replicas...], ...]
absl::StatusOr<std::vector<SlotRange>> ParseClusterSlots(const Reply& reply,
                                                         const std::string& asked) {
  if (reply.type != Reply::Type::kArray) {
    return absl::UnavailableError(absl::StrCat("CLUSTER SLOTS from ", asked, ": ", reply.str));
  }
  std::vector<SlotRange> ranges;
  for (const Reply& range : reply.elements) {
    if (range.elements.size() < 3 || range.elements[2].elements.size() < 2) continue;
    const Reply& master = range.elements[2];
    std::string host = master.elements[0].str;
    if (host.empty()) host = asked.substr(0, asked.rfind(':'));
    const int64_t first = std::max<int64_t>(range.elements[0].integer, 0);
    const int64_t last = std::min<int64_t>(range.elements[1].integer, kSlots - 1);
    if (first > last) continue;
    ranges.push_back(SlotRange{static_cast<int>(first), static_cast<int>(last),
                               absl::StrCat(host, ":", master.elements[1].integer)});
  }
  if (ranges.empty()) {
    return absl::UnavailableError(absl::StrCat("CLUSTER SLOTS from ", asked, ": no slots"));
  }
  return ranges;
}

Argv::Argv(const Command& command) {
  args.reserve(command.size());
  lengths.reserve(command.size());
  for (const std::string& arg : command) {
    args.push_back(arg.data());
    lengths.push_back(arg.size());
  }
}

absl::Status NoClusterAt(const std::vector<std::string>& seeds, const absl::Status& why) {
  return absl::UnavailableError(
      absl::StrCat("redis-cluster ", absl::StrJoin(seeds, ","), ": ", why.message()));
}

ClusterStats ClusterCounters::Snapshot() const {
  ClusterStats s;
  s.pipelines = pipelines.load();
  s.moved = moved.load();
  s.asks = asks.load();
  s.retries = retries.load();
  s.topology_refreshes = topology_refreshes.load();
  s.connects = connects.load();
  s.shard_refusals = shard_refusals.load();
  return s;
}

}  // namespace stategate::redis
