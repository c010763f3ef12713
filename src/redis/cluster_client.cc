#include "src/redis/cluster_client.h"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <map>
#include <mutex>
#include <random>
#include <shared_mutex>

#include "absl/base/thread_annotations.h"
#include "absl/cleanup/cleanup.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"
#include "src/common/call_deadline.h"
#include "src/redis/cluster_protocol.h"

namespace stategate::redis {
namespace {

// Redirects followed without backoff in one call; past this the cluster is resharding
// faster than we follow, so back off.
constexpr int kMaxRedirects = 16;

// CRC16-CCITT (XMODEM), the checksum Redis Cluster hashes keys with.
uint16_t Crc16(std::string_view data) {
  uint16_t crc = 0;
  for (const char c : data) {
    crc ^= static_cast<uint16_t>(static_cast<uint8_t>(c)) << 8;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Connection = std::unique_ptr<redisContext, ContextDeleter>;

// The idle connections of one node, and whether it may be dialled now.
class NodePool {
 public:
  NodePool(std::string address, const ClusterOptions& options)
      : address_(std::move(address)), options_(options) {
    valid_ = SplitAddress(address_, &host_, &port_);
  }

  // An idle connection, or a new one. UNAVAILABLE while the node is backing off.
  absl::StatusOr<Connection> Acquire(std::atomic<int64_t>* connects) {
    {
      absl::MutexLock lock(&mu_);
      if (!idle_.empty()) {
        Connection c = std::move(idle_.back());
        idle_.pop_back();
        return c;
      }
      if (absl::Now() < down_until_) {
        return absl::UnavailableError(absl::StrCat("redis node ", address_, " is backing off"));
      }
    }
    if (!valid_) return absl::InvalidArgumentError(absl::StrCat("bad node address ", address_));
    connects->fetch_add(1, std::memory_order_relaxed);
    Connection c(
        redisConnectWithTimeout(host_.c_str(), port_, absl::ToTimeval(options_.connect_timeout)));
    if (c == nullptr || c->err != 0) {
      const std::string why = c == nullptr ? "out of memory" : c->errstr;
      absl::MutexLock lock(&mu_);
      backoff_ = std::clamp(backoff_ * 2, absl::Milliseconds(10), absl::Seconds(1));
      down_until_ = absl::Now() + backoff_;
      return absl::UnavailableError(absl::StrCat("redis node ", address_, ": ", why));
    }
    redisSetTimeout(c.get(), absl::ToTimeval(options_.io_timeout));
    redisEnableKeepAlive(c.get());
    absl::MutexLock lock(&mu_);
    backoff_ = absl::ZeroDuration();
    return c;
  }

  // Returns a healthy connection to the pool; a broken one is closed.
  void Release(Connection c) {
    if (c == nullptr || c->err != 0) return;
    absl::MutexLock lock(&mu_);
    if (static_cast<int>(idle_.size()) < options_.max_idle_per_node) idle_.push_back(std::move(c));
  }

  // Closes every idle connection (after one broke: the others likely did too).
  void DropIdle() {
    absl::MutexLock lock(&mu_);
    idle_.clear();
  }

  const std::string& address() const { return address_; }

  // Counts a call to the slots this node serves, unless `max` (> 0) are in flight already.
  bool TryEnter(int max) {
    if (max <= 0) return true;
    int now = calls_.load(std::memory_order_relaxed);
    do {
      if (now >= max) return false;
    } while (!calls_.compare_exchange_weak(now, now + 1, std::memory_order_relaxed));
    return true;
  }
  void Leave(int max) {
    if (max > 0) calls_.fetch_sub(1, std::memory_order_relaxed);
  }
  int calls() const { return calls_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int> calls_{0};
  const std::string address_;
  const ClusterOptions& options_;
  std::string host_;
  int port_ = 0;
  bool valid_ = false;
  absl::Mutex mu_;
  std::vector<Connection> idle_ ABSL_GUARDED_BY(mu_);
  absl::Time down_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
};

// Sends `commands` (after ASKING if asked) on `c` and reads every reply. An I/O error
// leaves c->err set.
absl::StatusOr<std::vector<Reply>> RunPipeline(redisContext* c,
                                               const std::vector<Command>& commands, bool asking) {
  auto append = [c](const Command& command) {
    Argv argv(command);
    return redisAppendCommandArgv(c, argv.count(), argv.args.data(), argv.lengths.data());
  };
  if (asking && append({"ASKING"}) != REDIS_OK) {
    return absl::UnavailableError(absl::StrCat("redis: ", c->errstr));
  }
  for (const Command& command : commands) {
    if (append(command) != REDIS_OK)
      return absl::UnavailableError(absl::StrCat("redis: ", c->errstr));
  }
  std::vector<Reply> replies;
  replies.reserve(commands.size());
  const size_t expected = commands.size() + (asking ? 1 : 0);
  for (size_t i = 0; i < expected; ++i) {
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) {
      if (c->err == 0) c->err = REDIS_ERR_IO;  // never reuse a connection mid-pipeline
      return absl::UnavailableError(absl::StrCat("redis: ", c->errstr));
    }
    auto* reply = static_cast<redisReply*>(raw);
    if (!(asking && i == 0)) replies.push_back(ReplyFromHiredis(*reply));
    freeReplyObject(reply);
  }
  return replies;
}

class ClusterClientImpl final : public ClusterClient {
 public:
  explicit ClusterClientImpl(ClusterOptions options) : options_(std::move(options)) {
    slot_owner_.fill(-1);
  }

  absl::Status Init() {
    if (options_.seeds.empty()) return absl::InvalidArgumentError("redis-cluster: no seed nodes");
    return RefreshTopology(/*force=*/true);
  }

  absl::StatusOr<std::vector<Reply>> Pipeline(std::string_view hash_key,
                                              const std::vector<Command>& commands) override {
    const int slot = KeySlot(hash_key);
    // In a call, nothing sleeps: the thread is better spent on calls to other shards, and
    // the caller retries on its timers (see the header).
    const bool in_call = CallDeadline() != absl::InfiniteFuture();
    const absl::Time give_up = absl::Now() + options_.retry_window;
    counters_.Count(counters_.pipelines);
    // The bulkhead: a shard that stalls or fails over holds at most max_calls_per_shard of
    // the caller's threads; the rest are refused at once and stay free for other shards.
    NodePool* shard = OwnerOf(slot);
    if (shard != nullptr && !shard->TryEnter(options_.max_calls_per_shard)) {
      counters_.Count(counters_.shard_refusals);
      return absl::UnavailableError(
          absl::StrCat("redis-cluster: the master of slot ", slot, " (", shard->address(),
                       ") already has ", options_.max_calls_per_shard,
                       " calls in flight (max_calls_per_shard): it is slow or failing over"));
    }
    absl::Cleanup leave = [this, shard] {
      if (shard != nullptr) shard->Leave(options_.max_calls_per_shard);
    };
    std::string ask_address;
    absl::Duration backoff = absl::Milliseconds(5);
    absl::Status last = absl::UnavailableError("redis-cluster: no attempt made");
    int redirects = 0;
    bool wait = false;  // back off before this attempt
    for (;;) {
      if (wait) {
        if (in_call || absl::Now() + backoff > give_up) {
          // Learn a failover's outcome for the calls that follow, even when this one is over.
          (void)RefreshTopology(/*force=*/false);
          return absl::UnavailableError(
              absl::StrCat("redis-cluster: slot ", slot, " unavailable: ", last.message()));
        }
        absl::SleepFor(backoff);
        backoff = std::min(backoff * 2, absl::Milliseconds(200));
        counters_.Count(counters_.retries);
        (void)RefreshTopology(/*force=*/false);
      }
      wait = true;
      NodePool* node = ask_address.empty() ? OwnerOf(slot) : NodeFor(ask_address);
      if (node == nullptr) {
        last = absl::UnavailableError(absl::StrCat("no master serves slot ", slot));
        continue;
      }
      const bool asking = !ask_address.empty();
      ask_address.clear();
      absl::StatusOr<Connection> conn = node->Acquire(&counters_.connects);
      if (!conn.ok()) {
        last = conn.status();
        continue;
      }
      absl::StatusOr<std::vector<Reply>> replies = RunPipeline(conn->get(), commands, asking);
      node->Release(std::move(*conn));
      if (!replies.ok()) {
        node->DropIdle();  // the node probably went away: its other connections are dead too
        last = replies.status();
        continue;
      }
      std::string retry_reason;
      const Redirect redirect = ClassifyPipeline(*replies, &retry_reason);
      switch (redirect.kind) {
        case Redirect::Kind::kNone:
          return replies;
        case Redirect::Kind::kMoved:
          counters_.Count(counters_.moved);
          Moved(redirect.slot, FullAddress(redirect.address, node->address()));
          (void)RefreshTopology(/*force=*/false);
          last = absl::UnavailableError(absl::StrCat("MOVED ", redirect.address));
          wait = ++redirects > kMaxRedirects;  // a redirect is no failure: go there now
          continue;
        case Redirect::Kind::kAsk:
          counters_.Count(counters_.asks);
          ask_address = FullAddress(redirect.address, node->address());
          last = absl::UnavailableError(absl::StrCat("ASK ", redirect.address));
          wait = ++redirects > kMaxRedirects;
          continue;
        case Redirect::Kind::kRetry:
          last = absl::UnavailableError(absl::StrCat("redis: ", retry_reason));
          break;
      }
    }
  }

  std::string MasterOf(std::string_view hash_key) override {
    NodePool* owner = OwnerOf(KeySlot(hash_key));
    return owner == nullptr ? "" : owner->address();
  }

  ClusterStats stats() const override { return counters_.Snapshot(); }

 private:
  NodePool* OwnerOf(int slot) {
    std::shared_lock lock(map_mu_);
    const int index = slot_owner_[slot];
    return index < 0 ? nullptr : nodes_[index].get();
  }

  // The pool of `address`, made on first use. Pools live as long as the client.
  NodePool* NodeFor(const std::string& address) {
    {
      std::shared_lock lock(map_mu_);
      auto it = node_index_.find(address);
      if (it != node_index_.end()) return nodes_[it->second].get();
    }
    std::unique_lock lock(map_mu_);
    return nodes_[IndexLocked(address)].get();
  }

  int IndexLocked(const std::string& address) {
    auto [it, added] = node_index_.emplace(address, static_cast<int>(nodes_.size()));
    if (added) nodes_.push_back(std::make_unique<NodePool>(address, options_));
    return it->second;
  }

  void Moved(int slot, const std::string& address) {
    if (slot < 0 || slot >= kSlots) return;
    std::unique_lock lock(map_mu_);
    slot_owner_[slot] = IndexLocked(address);
  }

  // Reads CLUSTER SLOTS from a known node (masters first, then seeds) and replaces the slot
  // map. Unless forced, at most once per 100 ms: many threads hit the same change at once.
  absl::Status RefreshTopology(bool force) {
    std::unique_lock refresh_lock(refresh_mu_);
    if (!force && absl::Now() - last_refresh_ < absl::Milliseconds(100)) return absl::OkStatus();
    last_refresh_ = absl::Now();
    counters_.Count(counters_.topology_refreshes);
    std::vector<std::string> candidates;
    {
      std::shared_lock lock(map_mu_);
      for (int index : master_indexes_) candidates.push_back(nodes_[index]->address());
      for (const auto& node : nodes_) candidates.push_back(node->address());
    }
    candidates.insert(candidates.end(), options_.seeds.begin(), options_.seeds.end());
    std::vector<std::string> seen;
    absl::Status last = absl::UnavailableError("redis-cluster: no node to ask");
    for (const std::string& address : candidates) {
      if (std::find(seen.begin(), seen.end(), address) != seen.end()) continue;
      seen.push_back(address);
      NodePool* node = NodeFor(address);
      absl::StatusOr<Connection> conn = node->Acquire(&counters_.connects);
      if (!conn.ok()) {
        last = conn.status();
        continue;
      }
      absl::StatusOr<std::vector<Reply>> replies =
          RunPipeline(conn->get(), {{"CLUSTER", "SLOTS"}}, false);
      node->Release(std::move(*conn));
      if (!replies.ok()) {
        last = replies.status();
        continue;
      }
      absl::Status applied = ApplySlots((*replies)[0], address);
      if (applied.ok()) return applied;
      last = applied;
    }
    return last;
  }

  absl::Status ApplySlots(const Reply& reply, const std::string& asked) {
    absl::StatusOr<std::vector<SlotRange>> ranges = ParseClusterSlots(reply, asked);
    if (!ranges.ok()) return ranges.status();
    std::array<int, kSlots> owners;
    owners.fill(-1);
    std::vector<int> masters;
    std::unique_lock lock(map_mu_);
    for (const SlotRange& range : *ranges) {
      const int index = IndexLocked(range.master);
      if (std::find(masters.begin(), masters.end(), index) == masters.end()) {
        masters.push_back(index);
      }
      std::fill(owners.begin() + range.first, owners.begin() + range.last + 1, index);
    }
    slot_owner_ = owners;
    master_indexes_ = std::move(masters);
    return absl::OkStatus();
  }

  const ClusterOptions options_;

  mutable std::shared_mutex map_mu_;
  std::vector<std::unique_ptr<NodePool>> nodes_;  // guarded by map_mu_; never shrinks
  std::map<std::string, int> node_index_;         // guarded by map_mu_
  std::array<int, kSlots> slot_owner_;            // guarded by map_mu_
  std::vector<int> master_indexes_;               // guarded by map_mu_

  std::mutex refresh_mu_;
  absl::Time last_refresh_ = absl::InfinitePast();  // guarded by refresh_mu_

  ClusterCounters counters_;
};

}  // namespace

Reply ReplyFromHiredis(const redisReply& r) {
  Reply out;
  switch (r.type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::kString;
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::kStatus;
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::kError;
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::kInteger;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::kArray;
      out.elements.reserve(r.elements);
      for (size_t i = 0; i < r.elements; ++i)
        out.elements.push_back(ReplyFromHiredis(*r.element[i]));
      break;
    default:
      out.type = Reply::Type::kNil;
  }
  if (out.type == Reply::Type::kString || out.type == Reply::Type::kStatus ||
      out.type == Reply::Type::kError) {
    out.str.assign(r.str, r.len);
  }
  return out;
}

int KeySlot(std::string_view key) {
  // Only the part between the first '{' and the next '}' is hashed, if it is not empty.
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return Crc16(key) % kSlots;
}

absl::StatusOr<std::unique_ptr<ClusterClient>> ClusterClient::Connect(
    const ClusterOptions& options) {
  auto client = std::make_unique<ClusterClientImpl>(options);
  if (absl::Status status = client->Init(); !status.ok()) return NoClusterAt(options.seeds, status);
  return client;
}

Script::Script(std::string body) : body_(std::move(body)) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(body_.data()), body_.size(), digest);
  sha1_hex_ = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

Command Script::EvalSha(const std::vector<std::string>& keys,
                        const std::vector<std::string>& args) const {
  Command command;
  command.reserve(3 + keys.size() + args.size());
  command.push_back("EVALSHA");
  command.push_back(sha1_hex_);
  command.push_back(std::to_string(keys.size()));
  command.insert(command.end(), keys.begin(), keys.end());
  command.insert(command.end(), args.begin(), args.end());
  return command;
}

absl::StatusOr<std::vector<Reply>> PipelineWithScript(ClusterClient& client,
                                                      std::string_view hash_key,
                                                      const std::vector<Command>& commands,
                                                      size_t script_at, const Script& script) {
  absl::StatusOr<std::vector<Reply>> replies = client.Pipeline(hash_key, commands);
  if (!replies.ok() || script_at >= replies->size()) return replies;
  const Reply& reply = (*replies)[script_at];
  if (!reply.is_error() || !reply.str.starts_with("NOSCRIPT")) return replies;
  absl::StatusOr<std::vector<Reply>> loaded = client.Pipeline(hash_key, {script.Load()});
  if (!loaded.ok()) return loaded.status();
  if ((*loaded)[0].is_error()) {
    return absl::InternalError(absl::StrCat("redis SCRIPT LOAD: ", (*loaded)[0].str));
  }
  return client.Pipeline(hash_key, commands);
}

}  // namespace stategate::redis
