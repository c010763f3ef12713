#include "src/redis/async_cluster_client.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "src/redis/cluster_protocol.h"

namespace stategate::redis {
namespace {

// Redirects followed at once in one call; past this the cluster is resharding faster than
// we follow, so back off.
constexpr int kMaxRedirects = 16;
// A call's retries back off from the first to the last, doubling.
constexpr absl::Duration kFirstBackoff = absl::Milliseconds(5);
constexpr absl::Duration kMaxBackoff = absl::Milliseconds(200);
// A node that refused a connection is not dialled again for this long, doubling.
constexpr absl::Duration kFirstNodeBackoff = absl::Milliseconds(10);
constexpr absl::Duration kMaxNodeBackoff = absl::Seconds(1);
// Many calls meet the same change at once: the slot map is read at most this often.
constexpr absl::Duration kRefreshInterval = absl::Milliseconds(100);
// How often connections are checked for a late reply or a connect that takes too long.
constexpr absl::Duration kIoCheckInterval = absl::Milliseconds(50);
// Connections to one node at most, those held by blocking commands included.
constexpr size_t kMaxConnectionsPerNode = 64;

AsyncClusterClient::Commands ClusterSlots() {
  return std::make_shared<const std::vector<Command>>(std::vector<Command>{{"CLUSTER", "SLOTS"}});
}

// A command that holds its connection until it returns: Redis answers nothing sent after
// it on that connection meanwhile.
bool IsBlocking(const Command& command) {
  return !command.empty() && absl::EqualsIgnoreCase(command[0], "WAIT");
}

struct EventDeleter {
  void operator()(event* e) const { event_free(e); }
};
using Event = std::unique_ptr<event, EventDeleter>;

timeval Timeval(absl::Duration d) { return absl::ToTimeval(std::max(d, absl::ZeroDuration())); }

void UseThreads() {
  // event_active() from other threads (Pipeline) needs libevent's locks.
  static std::once_flag once;
  std::call_once(once, [] { evthread_use_pthreads(); });
}

class Impl;
struct Call;
struct Node;

// One sending of a call's pipeline on one connection.
struct Send {
  Impl* client = nullptr;
  Call* call = nullptr;  // null once the call was answered without this send
  struct Connection* connection = nullptr;
  size_t expected = 0;  // replies, ASKING's included
  size_t received = 0;
  bool asking = false;
  bool lost = false;      // the connection went before every reply came
  bool blocking = false;  // holds its connection until it returns (IsBlocking)
  absl::Time sent;
  std::vector<Reply> replies;
};

struct Connection {
  Impl* client = nullptr;
  Node* node = nullptr;
  redisAsyncContext* context = nullptr;  // null: not connected
  bool connecting = false;
  absl::Time dialled;
  int blocking = 0;         // sends in flight that hold the connection (IsBlocking)
  std::deque<Send*> sends;  // in flight, oldest first: Redis answers a connection in order
};

struct Node {
  std::string address;
  std::string host;
  int port = 0;
  bool valid = false;
  std::vector<std::unique_ptr<Connection>> connections;
  absl::Time down_until = absl::InfinitePast();
  absl::Duration backoff = absl::ZeroDuration();
  int calls = 0;  // calls to the slots it serves, for max_calls_per_shard
};

struct Call {
  Impl* client = nullptr;
  int slot = -1;
  bool topology = false;  // a CLUSTER SLOTS read: goes to the next candidate node
  bool fail_fast = false;
  AsyncClusterClient::Commands commands;
  absl::Time deadline;
  AsyncClusterClient::Done done;
  Node* shard = nullptr;  // counted in shard->calls
  std::string ask_address;
  int redirects = 0;
  absl::Duration backoff = kFirstBackoff;
  absl::Status last = absl::UnavailableError("no attempt made");
  Send* send = nullptr;
  Event deadline_timer;
  Event attempt_timer;
};

class Impl final : public AsyncClusterClient {
 public:
  explicit Impl(ClusterOptions options) : options_(std::move(options)) {
    owners_.fill(nullptr);
    UseThreads();
    base_ = event_base_new();
    wake_ = Event(event_new(base_, -1, EV_PERSIST, &Impl::OnWake, this));
    io_check_ = Event(event_new(base_, -1, EV_PERSIST, &Impl::OnIoCheck, this));
    const timeval every = Timeval(kIoCheckInterval);
    event_add(io_check_.get(), &every);
    loop_ = std::thread([this] { event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY); });
  }

  ~Impl() override {
    {
      absl::MutexLock lock(&inbox_mu_);
      stopping_ = true;
    }
    event_active(wake_.get(), EV_READ, 0);
    loop_.join();
    // Calls made by the last callbacks, after the loop answered the rest.
    std::vector<std::unique_ptr<Call>> late;
    {
      absl::MutexLock lock(&inbox_mu_);
      late.swap(inbox_);
    }
    for (std::unique_ptr<Call>& call : late) {
      std::move(call->done)(absl::UnavailableError("redis-cluster: the client is shutting down"));
    }
    wake_.reset();
    io_check_.reset();
    event_base_free(base_);
  }

  // Reads the slot map from the seeds, one after another, before any call is made.
  absl::Status Bootstrap() {
    if (options_.seeds.empty()) {
      return absl::InvalidArgumentError("redis-cluster: no seed nodes");
    }
    absl::Notification read;
    absl::Status status;
    auto call = std::make_unique<Call>();
    call->topology = true;
    call->commands = ClusterSlots();
    call->deadline = absl::Now() + (options_.connect_timeout + options_.io_timeout) *
                                       static_cast<int64_t>(options_.seeds.size());
    call->done = [&](Replies replies) {
      status = replies.status();
      read.Notify();
    };
    Submit(std::move(call));
    read.WaitForNotification();  // the call's deadline bounds it
    return status;
  }

  using AsyncClusterClient::Pipeline;
  void Pipeline(std::string_view hash_key, Commands commands, CallOptions options,
                Done done) override {
    auto call = std::make_unique<Call>();
    call->slot = KeySlot(hash_key);
    call->commands = std::move(commands);
    call->deadline = options.deadline == absl::InfiniteFuture()
                         ? absl::Now() + options_.retry_window
                         : options.deadline;
    call->fail_fast = options.fail_fast;
    call->done = std::move(done);
    Submit(std::move(call));
  }

  std::string MasterOf(std::string_view hash_key) const override {
    std::shared_lock lock(map_mu_);
    const Node* owner = owners_[KeySlot(hash_key)];
    return owner == nullptr ? "" : owner->address;
  }

  ClusterStats stats() const override { return counters_.Snapshot(); }

 private:
  void Submit(std::unique_ptr<Call> call) {
    {
      absl::MutexLock lock(&inbox_mu_);
      inbox_.push_back(std::move(call));
    }
    event_active(wake_.get(), EV_READ, 0);
  }

  // ---- On the loop thread from here on ----

  static void OnWake(evutil_socket_t, short, void* arg) { static_cast<Impl*>(arg)->Wake(); }

  void Wake() {
    std::vector<std::unique_ptr<Call>> arrived;
    bool stopping;
    {
      absl::MutexLock lock(&inbox_mu_);
      arrived.swap(inbox_);
      stopping = stopping_;
    }
    for (std::unique_ptr<Call>& call : arrived) Start(std::move(call));
    if (stopping) Stop();
  }

  void Start(std::unique_ptr<Call> owned) {
    Call* call = owned.get();
    call->client = this;
    calls_.emplace(call, std::move(owned));
    call->deadline_timer = Event(evtimer_new(base_, &Impl::OnDeadline, call));
    call->attempt_timer = Event(evtimer_new(base_, &Impl::OnAttemptTimer, call));
    const timeval left = Timeval(call->deadline - absl::Now());
    evtimer_add(call->deadline_timer.get(), &left);
    if (!call->topology) {
      // The bulkhead: a shard that stalls or fails over holds at most max_calls_per_shard
      // calls; the rest are refused at once.
      Node* shard = owners_[call->slot];
      const int max = options_.max_calls_per_shard;
      if (shard != nullptr && max > 0 && shard->calls >= max) {
        counters_.Count(counters_.shard_refusals);
        Answer(call, absl::UnavailableError(absl::StrCat(
                         "redis-cluster: the master of slot ", call->slot, " (", shard->address,
                         ") already has ", max,
                         " calls in flight (max_calls_per_shard): it is slow or failing over")));
        return;
      }
      if (shard != nullptr) {
        call->shard = shard;
        ++shard->calls;
      }
    }
    // Attempts run from the loop's timers, never inside a hiredis callback, where the
    // connection that called back may be going away.
    ScheduleAttempt(call, absl::ZeroDuration());
  }

  void ScheduleAttempt(Call* call, absl::Duration delay) {
    const timeval after = Timeval(delay);
    evtimer_add(call->attempt_timer.get(), &after);
  }

  static void OnAttemptTimer(evutil_socket_t, short, void* arg) {
    auto* call = static_cast<Call*>(arg);
    call->client->SendAttempt(call);
  }

  void SendAttempt(Call* call) {
    Node* node = nullptr;
    if (call->topology) {
      node = NodeFor(NextCandidate());
    } else if (!call->ask_address.empty()) {
      node = NodeFor(call->ask_address);
    } else {
      node = owners_[call->slot];
    }
    if (node == nullptr) {
      Retry(call, absl::UnavailableError(absl::StrCat("no master serves slot ", call->slot)));
      return;
    }
    const bool blocking = std::any_of(call->commands->begin(), call->commands->end(), IsBlocking);
    Connection* connection = ConnectionTo(node, blocking);
    if (connection == nullptr) {
      Retry(call, absl::UnavailableError(
                      absl::StrCat("redis node ", node->address,
                                   node->valid ? " is backing off" : " has a bad address")));
      return;
    }
    auto* send = new struct Send;
    send->client = this;
    send->call = call;
    send->connection = connection;
    send->asking = !call->ask_address.empty();
    send->sent = absl::Now();
    call->ask_address.clear();
    bool appended = true;
    if (send->asking) appended = Append(connection, {"ASKING"}, send);
    for (size_t i = 0; appended && i < call->commands->size(); ++i) {
      appended = Append(connection, (*call->commands)[i], send);
    }
    counters_.Count(counters_.pipelines);
    if (send->expected == 0) {  // nothing went out
      delete send;
      Retry(call, absl::UnavailableError(
                      absl::StrCat("redis node ", node->address, ": the connection is closing")));
      return;
    }
    // A send cut short by a closing connection ends once what went out is answered or
    // lost; then the call is sent again.
    if (!appended) send->lost = true;
    send->blocking = blocking;
    if (blocking) ++connection->blocking;
    connection->sends.push_back(send);
    call->send = send;
  }

  bool Append(Connection* connection, const Command& command, struct Send* send) {
    Argv argv(command);
    if (redisAsyncCommandArgv(connection->context, &Impl::OnReply, send, argv.count(),
                              argv.args.data(), argv.lengths.data()) != REDIS_OK) {
      return false;
    }
    ++send->expected;
    return true;
  }

  static void OnReply(redisAsyncContext*, void* reply, void* privdata) {
    auto* send = static_cast<struct Send*>(privdata);
    const bool asking_reply = send->asking && send->received == 0;
    if (reply == nullptr) {
      send->lost = true;
    } else if (!asking_reply) {
      send->replies.push_back(ReplyFromHiredis(*static_cast<redisReply*>(reply)));
    }
    if (++send->received == send->expected) send->client->Completed(send);
  }

  void Completed(struct Send* raw) {
    std::unique_ptr<struct Send> send(raw);
    std::deque<struct Send*>& sends = send->connection->sends;
    auto it = std::find(sends.begin(), sends.end(), raw);
    if (it != sends.end()) sends.erase(it);
    if (send->blocking) --send->connection->blocking;
    Call* call = send->call;
    if (call == nullptr) return;  // answered already (its deadline)
    call->send = nullptr;
    const std::string& address = send->connection->node->address;
    if (send->lost || send->replies.size() != call->commands->size()) {
      Retry(call,
            absl::UnavailableError(absl::StrCat("redis node ", address, ": connection lost")));
      return;
    }
    std::string retry_reason;
    const Redirect redirect = ClassifyPipeline(send->replies, &retry_reason);
    switch (redirect.kind) {
      case Redirect::Kind::kNone:
        if (call->topology) {
          absl::Status applied = ApplySlots(send->replies[0], address);
          if (!applied.ok()) {
            Retry(call, std::move(applied));  // another node may know
            return;
          }
        }
        Answer(call, std::move(send->replies));
        return;
      case Redirect::Kind::kMoved:
        counters_.Count(counters_.moved);
        SetOwner(redirect.slot, NodeFor(FullAddress(redirect.address, address)));
        RefreshTopology();
        Redirected(call, absl::StrCat("MOVED ", redirect.address));
        return;
      case Redirect::Kind::kAsk:
        counters_.Count(counters_.asks);
        call->ask_address = FullAddress(redirect.address, address);
        Redirected(call, absl::StrCat("ASK ", redirect.address));
        return;
      case Redirect::Kind::kRetry:
        Retry(call, absl::UnavailableError(absl::StrCat("redis: ", retry_reason)));
        return;
    }
  }

  // A redirect is no failure: go there now, unless the cluster moves faster than we follow.
  void Redirected(Call* call, std::string why) {
    call->last = absl::UnavailableError(std::move(why));
    if (++call->redirects > kMaxRedirects) {
      call->ask_address.clear();
      Retry(call, call->last);
      return;
    }
    ScheduleAttempt(call, absl::ZeroDuration());
  }

  // Learns what changed and tries again after the call's backoff, if its deadline allows.
  void Retry(Call* call, absl::Status why) {
    call->last = std::move(why);
    counters_.Count(counters_.retries);
    RefreshTopology();
    const absl::Duration delay = call->backoff;
    call->backoff = std::min(call->backoff * 2, kMaxBackoff);
    if (call->fail_fast || absl::Now() + delay >= call->deadline) {
      Answer(call, Unanswered(*call));
      return;
    }
    ScheduleAttempt(call, delay);
  }

  static absl::Status Unanswered(const Call& call) {
    if (call.topology) {
      return absl::UnavailableError(
          absl::StrCat("redis-cluster: no node gave the slot map: ", call.last.message()));
    }
    return absl::UnavailableError(
        absl::StrCat("redis-cluster: slot ", call.slot, " unavailable: ", call.last.message()));
  }

  static void OnDeadline(evutil_socket_t, short, void* arg) {
    auto* call = static_cast<Call*>(arg);
    // libevent times from the start of the loop's turn, so a timer may fire a little early.
    if (const absl::Time now = absl::Now(); now < call->deadline) {
      const timeval left = Timeval(call->deadline - now);
      evtimer_add(call->deadline_timer.get(), &left);
      return;
    }
    if (call->send != nullptr) {
      call->last = absl::UnavailableError(absl::StrCat(
          "no reply from ", call->send->connection->node->address, " before the call's deadline"));
    }
    call->client->Answer(call, Unanswered(*call));
  }

  void Answer(Call* call, Replies replies) {
    if (call->shard != nullptr) --call->shard->calls;
    if (call->send != nullptr) call->send->call = nullptr;  // its replies are not waited for
    auto it = calls_.find(call);
    std::unique_ptr<Call> owned = std::move(it->second);
    calls_.erase(it);
    Done done = std::move(call->done);
    owned.reset();  // its timers with it
    std::move(done)(std::move(replies));
  }

  // The connection a call goes on: a live one not held by a blocking command, with the
  // fewest replies outstanding; one without any for a call that blocks. Another is dialled
  // while those are busy (up to connections_per_node) or held (up to
  // kMaxConnectionsPerNode). Null if none can be had now.
  Connection* ConnectionTo(Node* node, bool blocking) {
    Connection* best = nullptr;
    size_t live = 0;
    for (const std::unique_ptr<Connection>& c : node->connections) {
      if (!Usable(*c)) continue;
      ++live;
      if (c->blocking > 0 || (blocking && !c->sends.empty())) continue;
      if (best == nullptr || c->sends.size() < best->sends.size()) best = c.get();
    }
    if (best != nullptr && best->sends.empty()) return best;
    const size_t cap = best == nullptr ? kMaxConnectionsPerNode
                                       : static_cast<size_t>(options_.connections_per_node);
    if (live >= cap || !node->valid || absl::Now() < node->down_until) return best;
    for (const std::unique_ptr<Connection>& c : node->connections) {
      if (c->context == nullptr) return Dial(c.get()) ? c.get() : best;
    }
    if (node->connections.size() >= kMaxConnectionsPerNode) return best;
    auto c = std::make_unique<Connection>();
    c->client = this;
    c->node = node;
    Connection* added = c.get();
    node->connections.push_back(std::move(c));
    return Dial(added) ? added : best;
  }

  static bool Usable(const Connection& c) {
    return c.context != nullptr &&
           (c.context->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)) == 0;
  }

  bool Dial(Connection* c) {
    counters_.Count(counters_.connects);
    redisAsyncContext* context = redisAsyncConnect(c->node->host.c_str(), c->node->port);
    if (context == nullptr || context->err != 0) {
      if (context != nullptr) redisAsyncFree(context);
      NodeRefused(c->node);
      return false;
    }
    context->data = c;
    redisLibeventAttach(context, base_);
    redisAsyncSetConnectCallback(context, &Impl::OnConnect);
    redisAsyncSetDisconnectCallback(context, &Impl::OnDisconnect);
    c->context = context;
    c->connecting = true;
    c->dialled = absl::Now();
    return true;
  }

  static void OnConnect(const redisAsyncContext* context, int status) {
    auto* c = static_cast<Connection*>(context->data);
    if (c->context != context) return;
    c->connecting = false;
    if (status == REDIS_OK) {
      c->node->backoff = absl::ZeroDuration();
      return;
    }
    c->context = nullptr;  // hiredis frees it, after failing what was queued on it
    c->client->NodeRefused(c->node);
  }

  static void OnDisconnect(const redisAsyncContext* context, int) {
    auto* c = static_cast<Connection*>(context->data);
    if (c->context == context) c->context = nullptr;
  }

  void NodeRefused(Node* node) {
    node->backoff = std::clamp(node->backoff * 2, kFirstNodeBackoff, kMaxNodeBackoff);
    node->down_until = absl::Now() + node->backoff;
  }

  // Closes `c`: what was sent on it is lost and goes to another attempt.
  static void Close(Connection* c) {
    redisAsyncContext* context = c->context;
    c->context = nullptr;
    c->connecting = false;
    redisAsyncFree(context);
  }

  static void OnIoCheck(evutil_socket_t, short, void* arg) { static_cast<Impl*>(arg)->IoCheck(); }

  // A reply io_timeout late, or a connect longer than connect_timeout, closes its
  // connection: a node that stopped answering must not hold calls past their deadline's
  // retries, nor connections forever.
  void IoCheck() {
    const absl::Time now = absl::Now();
    // By index: closing fails calls over to their timers, which may dial.
    for (size_t n = 0; n < nodes_.size(); ++n) {
      Node* node = nodes_[n].get();
      for (size_t i = 0; i < node->connections.size(); ++i) {
        Connection* c = node->connections[i].get();
        if (c->context == nullptr) continue;
        if (c->connecting && now - c->dialled > options_.connect_timeout) {
          NodeRefused(node);
          Close(c);
        } else if (!c->sends.empty() && now - c->sends.front()->sent > options_.io_timeout) {
          Close(c);
        }
      }
    }
  }

  Node* NodeFor(const std::string& address) {
    auto it = node_index_.find(address);
    if (it != node_index_.end()) return it->second;
    auto node = std::make_unique<Node>();
    node->address = address;
    node->valid = SplitAddress(address, &node->host, &node->port);
    Node* raw = node.get();
    nodes_.push_back(std::move(node));
    node_index_.emplace(address, raw);
    return raw;
  }

  void SetOwner(int slot, Node* node) {
    if (slot < 0 || slot >= kSlots) return;
    std::unique_lock lock(map_mu_);
    owners_[slot] = node;
  }

  // Where the next CLUSTER SLOTS goes: the masters first, then every node seen, then the
  // seeds, in turn, so that a node that does not answer is not asked twice running.
  std::string NextCandidate() {
    std::vector<std::string> candidates;
    auto add = [&](const std::string& address) {
      if (std::find(candidates.begin(), candidates.end(), address) == candidates.end()) {
        candidates.push_back(address);
      }
    };
    for (const Node* master : masters_) add(master->address);
    for (const std::unique_ptr<Node>& node : nodes_) add(node->address);
    for (const std::string& seed : options_.seeds) add(seed);
    return candidates[candidate_turn_++ % candidates.size()];
  }

  void RefreshTopology() {
    const absl::Time now = absl::Now();
    if (refreshing_ || now - last_refresh_ < kRefreshInterval) return;
    refreshing_ = true;
    last_refresh_ = now;
    counters_.Count(counters_.topology_refreshes);
    auto call = std::make_unique<Call>();
    call->topology = true;
    call->commands = ClusterSlots();
    call->deadline = now + options_.connect_timeout + options_.io_timeout;
    call->done = [this](Replies) { refreshing_ = false; };
    Start(std::move(call));
  }

  absl::Status ApplySlots(const Reply& reply, const std::string& asked) {
    absl::StatusOr<std::vector<SlotRange>> ranges = ParseClusterSlots(reply, asked);
    if (!ranges.ok()) return ranges.status();
    std::array<Node*, kSlots> owners;
    owners.fill(nullptr);
    std::vector<Node*> masters;
    for (const SlotRange& range : *ranges) {
      Node* node = NodeFor(range.master);
      if (std::find(masters.begin(), masters.end(), node) == masters.end()) masters.push_back(node);
      std::fill(owners.begin() + range.first, owners.begin() + range.last + 1, node);
    }
    masters_ = std::move(masters);
    std::unique_lock lock(map_mu_);
    owners_ = owners;
    return absl::OkStatus();
  }

  // Answers every call, closes every connection, and ends the loop.
  void Stop() {
    std::vector<Call*> open;
    for (const auto& [call, owned] : calls_) open.push_back(call);
    for (Call* call : open) {
      Answer(call, absl::UnavailableError("redis-cluster: the client is shutting down"));
    }
    for (size_t n = 0; n < nodes_.size(); ++n) {
      Node* node = nodes_[n].get();
      for (size_t i = 0; i < node->connections.size(); ++i) {
        if (node->connections[i]->context != nullptr) Close(node->connections[i].get());
      }
    }
    event_base_loopbreak(base_);
  }

  const ClusterOptions options_;
  event_base* base_ = nullptr;
  Event wake_;
  Event io_check_;
  std::thread loop_;

  absl::Mutex inbox_mu_;
  std::vector<std::unique_ptr<Call>> inbox_ ABSL_GUARDED_BY(inbox_mu_);
  bool stopping_ ABSL_GUARDED_BY(inbox_mu_) = false;

  // The loop thread's alone.
  std::unordered_map<Call*, std::unique_ptr<Call>> calls_;
  std::vector<std::unique_ptr<Node>> nodes_;  // never shrinks
  std::map<std::string, Node*> node_index_;
  std::vector<Node*> masters_;
  size_t candidate_turn_ = 0;
  bool refreshing_ = false;
  absl::Time last_refresh_ = absl::InfinitePast();

  // Written by the loop thread, read by MasterOf on any thread.
  mutable std::shared_mutex map_mu_;
  std::array<Node*, kSlots> owners_;

  ClusterCounters counters_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<AsyncClusterClient>> AsyncClusterClient::Connect(
    const ClusterOptions& options) {
  auto client = std::make_unique<Impl>(options);
  if (absl::Status status = client->Bootstrap(); !status.ok())
    return NoClusterAt(options.seeds, status);
  return client;
}

void PipelineWithScript(AsyncClusterClient& client, std::string_view hash_key,
                        AsyncClusterClient::Commands commands, size_t script_at,
                        const Script& script, CallOptions options, AsyncClusterClient::Done done) {
  // The commands are shared with the second run, after a NOSCRIPT, not copied.
  client.Pipeline(hash_key, commands, options,
                  [&client, key = std::string(hash_key), commands, script_at, load = script.Load(),
                   options, done = std::move(done)](AsyncClusterClient::Replies replies) mutable {
                    const bool noscript = replies.ok() && script_at < replies->size() &&
                                          (*replies)[script_at].is_error() &&
                                          (*replies)[script_at].str.starts_with("NOSCRIPT");
                    if (!noscript) {
                      std::move(done)(std::move(replies));
                      return;
                    }
                    client.Pipeline(
                        key, std::vector<Command>{std::move(load)}, options,
                        [&client, key, commands = std::move(commands), options,
                         done = std::move(done)](AsyncClusterClient::Replies loaded) mutable {
                          if (!loaded.ok()) {
                            std::move(done)(loaded.status());
                            return;
                          }
                          if ((*loaded)[0].is_error()) {
                            std::move(done)(absl::InternalError(
                                absl::StrCat("redis SCRIPT LOAD: ", (*loaded)[0].str)));
                            return;
                          }
                          client.Pipeline(key, std::move(commands), options, std::move(done));
                        });
                  });
}

}  // namespace stategate::redis
