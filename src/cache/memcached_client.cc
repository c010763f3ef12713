#include "src/cache/memcached_client.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "src/common/await.h"

namespace stategate::cache {
namespace {

// memcached reads an expiry above 30 days as an absolute unix time.
constexpr int64_t kMaxRelativeExpirySeconds = 60 * 60 * 24 * 30;
// Operations on the connection at once; more are refused at once (UNAVAILABLE). At the
// default op_timeout this is far above what a healthy server has outstanding.
constexpr size_t kMaxWaiting = 4096;
// A reply line longer than this is not memcached's.
constexpr size_t kMaxLine = 1024;
// A value larger than this is not one this client stored (memcached's items are 1 MiB by
// default, 1 GiB at most).
constexpr int64_t kMaxValueBytes = int64_t{1} << 30;

absl::Status Skipped() { return absl::UnavailableError("memcached skipped: circuit open"); }

absl::StatusOr<time_t> Expiration(absl::Duration ttl) {
  if (ttl == absl::ZeroDuration()) return 0;
  const int64_t seconds = absl::ToInt64Seconds(ttl);  // rounds toward zero
  if (seconds < 1) {
    return absl::InvalidArgumentError("memcached ttl must be zero or at least one second");
  }
  return static_cast<time_t>(std::min(seconds, kMaxRelativeExpirySeconds));
}

struct EventDeleter {
  void operator()(event* e) const { event_free(e); }
};
using Event = std::unique_ptr<event, EventDeleter>;

void UseThreads() {
  // event_active() from other threads (Submit) needs libevent's locks.
  static std::once_flag once;
  std::call_once(once, [] { evthread_use_pthreads(); });
}

}  // namespace

// One operation: its request, how to read its reply, and whom to answer.
struct MemcachedClient::Op {
  enum class Kind { kGet, kStore, kDelete };
  Kind kind = Kind::kGet;
  std::string request;
  // kGet: wire key -> the caller's key, for every key asked for.
  absl::flat_hash_map<std::string, std::string> wanted;
  Admission admission{Admission::kClosed, 0};
  // On the monotonic clock: a step of the wall clock must not stretch or cut the wait.
  std::chrono::steady_clock::time_point deadline;
  // The reply, as it is read.
  Found found;
  bool stored = false;
  // Set when memcached refused this one operation (SERVER_ERROR, e.g. an item too large
  // for it): the operation fails, but the connection and the server are fine.
  std::string refused;
  absl::AnyInvocable<void(absl::Status status, Op& op) &&> done;
};

// The loop thread, its one connection and the operations on it.
class MemcachedClient::Loop {
 public:
  Loop(MemcachedClient* client, sockaddr_storage address, socklen_t address_length)
      : client_(client), address_(address), address_length_(address_length) {
    UseThreads();
    base_ = event_base_new();
    wake_ = Event(event_new(base_, -1, EV_PERSIST, &Loop::OnWake, this));
    timer_ = Event(evtimer_new(base_, &Loop::OnTimer, this));
    thread_ = std::thread([this] {
      event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY);
      // Normally because the destructor asked; if libevent gave up on its own, nothing would
      // answer what is in flight or comes later: answer it all now, and refuse the rest.
      std::vector<std::unique_ptr<Op>> left;
      {
        absl::MutexLock lock(&inbox_mu_);
        stopping_ = true;
        left.swap(inbox_);
      }
      Drop(ShuttingDown());
      for (std::unique_ptr<Op>& op : left) Answer(std::move(op), ShuttingDown());
    });
  }

  ~Loop() {
    {
      absl::MutexLock lock(&inbox_mu_);
      stopping_ = true;
    }
    event_active(wake_.get(), EV_READ, 0);
    thread_.join();
    std::vector<std::unique_ptr<Op>> late;
    {
      absl::MutexLock lock(&inbox_mu_);
      late.swap(inbox_);
    }
    for (std::unique_ptr<Op>& op : late) Answer(std::move(op), ShuttingDown());
    wake_.reset();
    timer_.reset();
    event_base_free(base_);
  }

  // Any thread.
  void Submit(std::unique_ptr<Op> op) {
    {
      absl::MutexLock lock(&inbox_mu_);
      if (!stopping_) {
        inbox_.push_back(std::move(op));
        op = nullptr;
      }
    }
    if (op != nullptr) {
      Answer(std::move(op), ShuttingDown());
      return;
    }
    event_active(wake_.get(), EV_READ, 0);
  }

 private:
  enum class Parsed { kNeedMore, kDone, kBroken };

  static std::chrono::steady_clock::time_point Now() { return std::chrono::steady_clock::now(); }

  static absl::Status ShuttingDown() {
    return absl::UnavailableError("memcached: the client is shutting down");
  }

  // Answers `op`; the circuit learns whether memcached worked (`server_ok`, by default
  // whether the operation did).
  void Answer(std::unique_ptr<Op> op, absl::Status status, std::optional<bool> server_ok = {}) {
    client_->Finish(op->admission, server_ok.value_or(status.ok()));
    Op& ref = *op;
    std::move(ref.done)(std::move(status), ref);
  }

  // ---- On the loop thread from here on ----

  static void OnWake(evutil_socket_t, short, void* arg) { static_cast<Loop*>(arg)->Wake(); }
  static void OnTimer(evutil_socket_t, short, void* arg) { static_cast<Loop*>(arg)->Expire(); }
  static void OnRead(bufferevent*, void* arg) { static_cast<Loop*>(arg)->Read(); }
  static void OnEvent(bufferevent*, short what, void* arg) {
    auto* loop = static_cast<Loop*>(arg);
    if ((what & BEV_EVENT_CONNECTED) != 0) return;
    const int error = EVUTIL_SOCKET_ERROR();
    loop->Drop(absl::UnavailableError(absl::StrCat(
        "memcached: ", (what & BEV_EVENT_EOF) != 0 ? "the server closed the connection" : "",
        (what & BEV_EVENT_ERROR) != 0 ? evutil_socket_error_to_string(error) : "")));
  }

  void Wake() {
    std::vector<std::unique_ptr<Op>> arrived;
    bool stopping;
    {
      absl::MutexLock lock(&inbox_mu_);
      arrived.swap(inbox_);
      stopping = stopping_;
    }
    for (std::unique_ptr<Op>& op : arrived) {
      if (stopping) {
        Answer(std::move(op), ShuttingDown());
      } else {
        Send(std::move(op));
      }
    }
    if (stopping) {
      Drop(ShuttingDown());
      event_base_loopbreak(base_);
    }
  }

  void Send(std::unique_ptr<Op> op) {
    if (waiting_.size() >= kMaxWaiting) {
      Answer(std::move(op), absl::UnavailableError(absl::StrCat("memcached: ", kMaxWaiting,
                                                                " operations already in flight")));
      return;
    }
    if (connection_ == nullptr && !Dial()) {
      Answer(std::move(op), absl::UnavailableError(absl::StrCat(
                                "memcached: cannot connect: ",
                                evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()))));
      return;
    }
    // Until the connection is up, bufferevent keeps what is written.
    bufferevent_write(connection_, op->request.data(), op->request.size());
    waiting_.push_back(std::move(op));
    if (waiting_.size() == 1) ArmTimer();
  }

  bool Dial() {
    connection_ = bufferevent_socket_new(base_, -1, BEV_OPT_CLOSE_ON_FREE);
    if (connection_ == nullptr) return false;
    bufferevent_setcb(connection_, &Loop::OnRead, nullptr, &Loop::OnEvent, this);
    bufferevent_enable(connection_, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(connection_, reinterpret_cast<sockaddr*>(&address_),
                                   static_cast<int>(address_length_)) != 0) {
      bufferevent_free(connection_);
      connection_ = nullptr;
      return false;
    }
    const int one = 1;
    setsockopt(bufferevent_getfd(connection_), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return true;
  }

  // Closes the connection and fails every operation on it with `why`.
  void Drop(absl::Status why) {
    if (connection_ != nullptr) {
      bufferevent_free(connection_);
      connection_ = nullptr;
    }
    evtimer_del(timer_.get());
    std::deque<std::unique_ptr<Op>> failed;
    failed.swap(waiting_);
    for (std::unique_ptr<Op>& op : failed) Answer(std::move(op), why);
  }

  // The timer is set for the oldest operation's deadline; every operation has the same
  // op_timeout, so it is also the earliest.
  void ArmTimer() {
    if (waiting_.empty()) {
      evtimer_del(timer_.get());
      return;
    }
    const absl::Duration left_for = absl::FromChrono(waiting_.front()->deadline - Now());
    const timeval left = absl::ToTimeval(std::max(left_for, absl::ZeroDuration()));
    evtimer_add(timer_.get(), &left);
  }

  void Expire() {
    if (!waiting_.empty() && waiting_.front()->deadline <= Now()) {
      // The rest wait behind it on the same connection: a late reply may still come, and
      // replies are matched by order, so the connection cannot be used any more.
      Drop(absl::DeadlineExceededError("memcached: no reply within op_timeout"));
      return;
    }
    ArmTimer();
  }

  void Read() {
    evbuffer* in = bufferevent_get_input(connection_);
    while (!waiting_.empty()) {
      std::string broken;
      const Parsed parsed = Parse(in, *waiting_.front(), &broken);
      if (parsed == Parsed::kNeedMore) break;
      if (parsed == Parsed::kBroken) {
        Drop(absl::UnavailableError(
            absl::StrCat("memcached: unexpected reply \"", absl::CHexEscape(broken), "\"")));
        return;
      }
      std::unique_ptr<Op> op = std::move(waiting_.front());
      waiting_.pop_front();
      if (op->refused.empty()) {
        Answer(std::move(op), absl::OkStatus());
      } else {
        absl::Status refused = absl::UnavailableError(absl::StrCat("memcached: ", op->refused));
        Answer(std::move(op), std::move(refused), /*server_ok=*/true);
      }
    }
    if (waiting_.empty() && evbuffer_get_length(in) > 0) {
      Drop(absl::UnavailableError("memcached: a reply nobody asked for"));
      return;
    }
    ArmTimer();
  }

  // The first line in `in` (without its CRLF) and its length with the CRLF, if a whole
  // one is there.
  static std::optional<std::string> PeekLine(evbuffer* in, size_t* with_eol) {
    size_t eol = 0;
    const evbuffer_ptr at = evbuffer_search_eol(in, nullptr, &eol, EVBUFFER_EOL_CRLF_STRICT);
    if (at.pos < 0) return std::nullopt;
    std::string line(static_cast<size_t>(at.pos), '\0');
    evbuffer_copyout(in, line.data(), line.size());
    *with_eol = line.size() + eol;
    return line;
  }

  // Reads op's reply from `in` if it is all there; kBroken (with the offending line in
  // `broken`) for anything memcached would not send.
  static Parsed Parse(evbuffer* in, Op& op, std::string* broken) {
    for (;;) {
      size_t with_eol = 0;
      std::optional<std::string> line = PeekLine(in, &with_eol);
      if (!line.has_value()) {
        if (evbuffer_get_length(in) <= kMaxLine) return Parsed::kNeedMore;
        *broken = "(a line without an end)";
        return Parsed::kBroken;
      }
      if (op.kind == Op::Kind::kStore && line->starts_with("SERVER_ERROR")) {
        op.refused = *std::move(line);
        evbuffer_drain(in, with_eol);
        return Parsed::kDone;
      }
      if (op.kind == Op::Kind::kStore || op.kind == Op::Kind::kDelete) {
        const bool known = op.kind == Op::Kind::kStore
                               ? *line == "STORED" || *line == "NOT_STORED" || *line == "EXISTS"
                               : *line == "DELETED" || *line == "NOT_FOUND";
        if (!known) {
          *broken = *std::move(line);
          return Parsed::kBroken;
        }
        op.stored = *line == "STORED";
        evbuffer_drain(in, with_eol);
        return Parsed::kDone;
      }
      if (*line == "END") {
        evbuffer_drain(in, with_eol);
        return Parsed::kDone;
      }
      // VALUE <key> <flags> <bytes>
      const std::vector<absl::string_view> parts = absl::StrSplit(*line, ' ');
      int64_t bytes = 0;
      if (parts.size() != 4 || parts[0] != "VALUE" || !absl::SimpleAtoi(parts[3], &bytes) ||
          bytes < 0 || bytes > kMaxValueBytes) {
        *broken = *std::move(line);
        return Parsed::kBroken;
      }
      const size_t size = static_cast<size_t>(bytes);
      if (evbuffer_get_length(in) < with_eol + size + 2) return Parsed::kNeedMore;
      evbuffer_drain(in, with_eol);
      std::string value(size, '\0');
      evbuffer_remove(in, value.data(), size);
      char end[2] = {0, 0};
      evbuffer_remove(in, end, 2);
      if (end[0] != '\r' || end[1] != '\n') {
        *broken = "(a value without its end)";
        return Parsed::kBroken;
      }
      if (auto it = op.wanted.find(parts[1]); it != op.wanted.end()) {
        op.found[it->second] = std::move(value);
      }
    }
  }

  MemcachedClient* const client_;
  sockaddr_storage address_;
  const socklen_t address_length_;
  event_base* base_ = nullptr;
  Event wake_;
  Event timer_;
  bufferevent* connection_ = nullptr;        // null: none open
  std::deque<std::unique_ptr<Op>> waiting_;  // sent on connection_, oldest first

  absl::Mutex inbox_mu_;
  std::vector<std::unique_ptr<Op>> inbox_ ABSL_GUARDED_BY(inbox_mu_);
  bool stopping_ ABSL_GUARDED_BY(inbox_mu_) = false;
  std::thread thread_;
};

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
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found); rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat("memcached server \"", options.server,
                                                   "\": cannot resolve: ", gai_strerror(rc)));
  }
  sockaddr_storage address{};
  const socklen_t length = found->ai_addrlen;
  std::memcpy(&address, found->ai_addr, length);
  freeaddrinfo(found);
  if (address.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&address)->sin_port = htons(static_cast<uint16_t>(port));
  } else {
    reinterpret_cast<sockaddr_in6*>(&address)->sin6_port = htons(static_cast<uint16_t>(port));
  }
  std::unique_ptr<MemcachedClient> client(new MemcachedClient(std::move(options)));
  client->loop_ = std::make_unique<Loop>(client.get(), address, length);
  return client;
}

MemcachedClient::MemcachedClient(MemcachedClientOptions options) : options_(std::move(options)) {}

MemcachedClient::~MemcachedClient() = default;

std::string MemcachedClient::WireKey(const std::string& key) const {
  // 128 bits: a collision (two keys sharing a slot, so one could read the other's value) is
  // not a practical concern, and the key stays 32 characters whatever its input.
  const XXH128_hash_t hash = XXH3_128bits(key.data(), key.size());
  return absl::StrCat(options_.key_prefix, absl::Hex(hash.high64, absl::kZeroPad16),
                      absl::Hex(hash.low64, absl::kZeroPad16));
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

void MemcachedClient::Finish(Admission admission, bool ok) {
  if (!ok) {
    ++errors_;
    open_until_us_.store(options_.clock->NowMicros() +
                         absl::ToInt64Microseconds(options_.retry_after));
    return;
  }
  if (admission.kind == Admission::kProbe) {
    // Close the circuit, unless another operation failed meanwhile and moved the window.
    int64_t expected = admission.probe_until_us;
    open_until_us_.compare_exchange_strong(expected, 0);
  }
}

void MemcachedClient::Submit(std::unique_ptr<Op> op) {
  op->admission = Admit();
  if (op->admission.kind == Admission::kSkip) {
    Op& ref = *op;
    std::move(ref.done)(Skipped(), ref);
    return;
  }
  op->deadline = std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(options_.op_timeout);
  loop_->Submit(std::move(op));
}

void MemcachedClient::MultiGetAsync(const std::vector<std::string>& keys, GetDone done) {
  if (keys.empty()) {
    std::move(done)(Found());
    return;
  }
  auto op = std::make_unique<Op>();
  op->kind = Op::Kind::kGet;
  op->request = "get";
  for (const std::string& key : keys) {
    std::string wire = WireKey(key);
    if (op->wanted.contains(wire)) continue;
    absl::StrAppend(&op->request, " ", wire);
    op->wanted.emplace(std::move(wire), key);
  }
  op->request += "\r\n";
  op->done = [this, done = std::move(done)](absl::Status status, Op& op) mutable {
    if (!status.ok()) {
      std::move(done)(std::move(status));
      return;
    }
    hits_ += op.found.size();
    misses_ += op.wanted.size() - op.found.size();
    std::move(done)(std::move(op.found));
  };
  Submit(std::move(op));
}

void MemcachedClient::Store(const char* command, const std::string& key, const std::string& value,
                            absl::Duration ttl, AddDone done) {
  absl::StatusOr<time_t> expiration = Expiration(ttl);
  if (!expiration.ok()) return std::move(done)(expiration.status());
  auto op = std::make_unique<Op>();
  op->kind = Op::Kind::kStore;
  op->request =
      absl::StrCat(command, " ", WireKey(key), " 0 ", *expiration, " ", value.size(), "\r\n");
  op->request.append(value);
  op->request += "\r\n";
  op->done = [done = std::move(done)](absl::Status status, Op& op) mutable {
    if (!status.ok()) return std::move(done)(std::move(status));
    std::move(done)(op.stored);
  };
  Submit(std::move(op));
}

void MemcachedClient::AddAsync(const std::string& key, const std::string& value, absl::Duration ttl,
                               AddDone done) {
  Store("add", key, value, ttl, std::move(done));
}

void MemcachedClient::SetAsync(const std::string& key, const std::string& value, absl::Duration ttl,
                               Done done) {
  Store("set", key, value, ttl, [done = std::move(done)](absl::StatusOr<bool> stored) mutable {
    if (stored.ok() && !*stored)
      return std::move(done)(absl::UnavailableError("memcached set: not stored"));
    std::move(done)(stored.status());
  });
}

void MemcachedClient::DeleteAsync(const std::string& key, Done done) {
  auto op = std::make_unique<Op>();
  op->kind = Op::Kind::kDelete;
  op->request = absl::StrCat("delete ", WireKey(key), "\r\n");
  op->done = [this, done = std::move(done)](absl::Status status, Op&) mutable {
    ++(status.ok() ? invalidations_ : invalidation_failures_);
    std::move(done)(std::move(status));
  };
  Submit(std::move(op));
}

absl::StatusOr<MemcachedClient::Found> MemcachedClient::MultiGet(
    const std::vector<std::string>& keys) {
  // Not Await: g++ 12 then sees a flat_hash_map freeing its static empty group (a false
  // -Wfree-nonheap-object).
  absl::StatusOr<Found> result;
  AwaitDone([&](auto done) {
    MultiGetAsync(keys, [&result, done = std::move(done)](absl::StatusOr<Found> found) mutable {
      result = std::move(found);
      done();
    });
  });
  return result;
}

absl::StatusOr<bool> MemcachedClient::Add(const std::string& key, const std::string& value,
                                          absl::Duration ttl) {
  return Await<absl::StatusOr<bool>>(
      [&](auto done) { AddAsync(key, value, ttl, std::move(done)); });
}

absl::Status MemcachedClient::Set(const std::string& key, const std::string& value,
                                  absl::Duration ttl) {
  return Await<absl::Status>([&](auto done) { SetAsync(key, value, ttl, std::move(done)); });
}

absl::Status MemcachedClient::Delete(const std::string& key) {
  return Await<absl::Status>([&](auto done) { DeleteAsync(key, std::move(done)); });
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
