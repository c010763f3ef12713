#include "src/bench/direct_targets.h"

#include <hiredis/hiredis.h>
#include <libmemcached/memcached.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "src/bench/pooled_target.h"
#include "src/common/status_macros.h"
#include "src/redis/cluster_client.h"

namespace stategate::bench {
namespace {

using ycsb::OpKind;

int64_t FieldBytes(const RecordFields& fields) {
  int64_t bytes = 0;
  for (const auto& [name, value] : fields) bytes += name.size() + value.size();
  return bytes;
}

// "host:port" -> host, port.
absl::Status SplitAddress(const std::string& address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), port) || *port <= 0 || *port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("address must be host:port, got \"", address, "\""));
  }
  *host = address.substr(0, colon);
  return absl::OkStatus();
}

absl::Status CheckOptions(int threads, const DirectTargetOptions& options) {
  if (threads < 1) {
    return absl::InvalidArgumentError(absl::StrCat("threads must be at least 1, got ", threads));
  }
  if (options.io_timeout <= absl::ZeroDuration() ||
      options.cluster_retry_window <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("io_timeout and cluster_retry_window must be positive");
  }
  return absl::OkStatus();
}

// ---- DirectTarget: the validation and read observation all three targets share ----

class DirectTarget : public PooledTarget {
 protected:
  DirectTarget(std::string name, int threads, DirectTargetOptions options)
      : PooledTarget(std::move(name), threads), options_(std::move(options)) {}

  void Observe(const TargetOp& op, const std::vector<ReadRecord>& read) const {
    if (options_.on_read) options_.on_read(op, read);
  }
  // The record a read or read-modify-write read.
  void ObserveOne(const TargetOp& op, RecordFields fields) const {
    if (!options_.on_read) return;
    std::vector<ReadRecord> read;
    read.push_back({op.key, std::move(fields)});
    options_.on_read(op, read);
  }

  const DirectTargetOptions& options() const { return options_; }

  absl::Status Validate(const TargetOp& op) const override {
    if (!Supports(op.kind)) {
      return absl::UnimplementedError(
          absl::StrCat("does not support ", std::string(ycsb::OpKindName(op.kind)), " operations"));
    }
    if (op.key.empty()) return absl::InvalidArgumentError("an operation without a key");
    const bool writes = op.kind == OpKind::kInsert || op.kind == OpKind::kUpdate ||
                        op.kind == OpKind::kReadModifyWrite;
    if (writes && op.fields.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("a ", std::string(ycsb::OpKindName(op.kind)),
                                                     " of ", op.key, " with no fields"));
    }
    if (op.kind == OpKind::kScan && op.scan_length < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("scan length must be at least 1, got ", op.scan_length));
    }
    return absl::OkStatus();
  }

 private:
  const DirectTargetOptions options_;
};

// ---- Redis: YCSB's redis data model over a way to send commands ----

// A command and the key whose slot it must run on.
struct Routed {
  std::string hash_key;
  redis::Command command;
};

absl::Status ErrorReply(const redis::Command& command, const redis::Reply& reply) {
  const std::string message = absl::StrCat(command[0], ": ", reply.str);
  // A server still loading its data or busy with a script will answer later.
  if (reply.str.rfind("LOADING", 0) == 0 || reply.str.rfind("BUSY", 0) == 0) {
    return absl::UnavailableError(message);
  }
  return absl::InternalError(message);
}

absl::Status UnexpectedReply(const redis::Command& command) {
  return absl::InternalError(absl::StrCat("unexpected reply to ", command[0], " ", command[1]));
}

// HGETALL's reply as fields; NOT_FOUND for an empty hash, which is how Redis shows a key that
// does not exist.
absl::StatusOr<RecordFields> ParseHash(const redis::Command& command, redis::Reply reply) {
  if (reply.is_error()) return ErrorReply(command, reply);
  if (reply.type != redis::Reply::Type::kArray || reply.elements.size() % 2 != 0) {
    return UnexpectedReply(command);
  }
  if (reply.elements.empty()) return absl::NotFoundError(absl::StrCat("no record ", command[1]));
  RecordFields fields;
  fields.reserve(reply.elements.size() / 2);
  for (size_t i = 0; i < reply.elements.size(); i += 2) {
    fields.emplace_back(std::move(reply.elements[i].str), std::move(reply.elements[i + 1].str));
  }
  return fields;
}

absl::Status CheckInteger(const redis::Command& command, const redis::Reply& reply) {
  if (reply.is_error()) return ErrorReply(command, reply);
  if (reply.type != redis::Reply::Type::kInteger) return UnexpectedReply(command);
  return absl::OkStatus();
}

class RedisModelTarget : public DirectTarget {
 public:
  bool Supports(OpKind) const override { return true; }

 protected:
  using DirectTarget::DirectTarget;

  // Runs `commands`, each on the node of its hash key's slot, and returns one reply per
  // command in order, error replies included.
  virtual absl::StatusOr<std::vector<redis::Reply>> Send(const std::vector<Routed>& commands) = 0;

 private:
  absl::Status Run(const TargetOp& op) final {
    switch (op.kind) {
      case OpKind::kRead: {
        SG_ASSIGN_OR_RETURN(RecordFields fields, Read(op.key));
        ObserveOne(op, std::move(fields));
        return absl::OkStatus();
      }
      case OpKind::kUpdate:
        return Write(op.key, op.fields);
      case OpKind::kInsert:
        SG_RETURN_IF_ERROR(Write(op.key, op.fields));
        return Index(op.key);
      case OpKind::kScan:
        return Scan(op);
      case OpKind::kReadModifyWrite: {
        SG_ASSIGN_OR_RETURN(RecordFields fields, Read(op.key));
        ObserveOne(op, std::move(fields));
        return Write(op.key, op.fields);
      }
    }
    return absl::InternalError("unknown operation kind");
  }

  absl::StatusOr<RecordFields> Read(const std::string& key) {
    std::vector<Routed> commands = {{key, {"HGETALL", key}}};
    Sent(key.size());
    SG_ASSIGN_OR_RETURN(std::vector<redis::Reply> replies, Send(commands));
    return ParseHash(commands[0].command, std::move(replies[0]));
  }

  absl::Status Write(const std::string& key, const RecordFields& fields) {
    Routed hset{key, {"HSET", key}};
    for (const auto& [name, value] : fields) {
      hset.command.push_back(name);
      hset.command.push_back(value);
    }
    Sent(key.size() + FieldBytes(fields));
    SG_ASSIGN_OR_RETURN(std::vector<redis::Reply> replies, Send({hset}));
    return CheckInteger(hset.command, replies[0]);
  }

  absl::Status Index(const std::string& key) {
    Routed zadd{kRedisIndexKey, {"ZADD", kRedisIndexKey, absl::StrCat(RedisIndexScore(key)), key}};
    SG_ASSIGN_OR_RETURN(std::vector<redis::Reply> replies, Send({zadd}));
    return CheckInteger(zadd.command, replies[0]);
  }

  absl::Status Scan(const TargetOp& op) {
    Routed range{kRedisIndexKey,
                 {"ZRANGEBYSCORE", kRedisIndexKey, absl::StrCat(RedisIndexScore(op.key)), "+inf",
                  "LIMIT", "0", absl::StrCat(op.scan_length)}};
    SG_ASSIGN_OR_RETURN(std::vector<redis::Reply> replies, Send({range}));
    const redis::Reply& keys = replies[0];
    if (keys.is_error()) return ErrorReply(range.command, keys);
    if (keys.type != redis::Reply::Type::kArray) return UnexpectedReply(range.command);
    std::vector<ReadRecord> read;
    if (!keys.elements.empty()) {
      std::vector<Routed> reads;
      reads.reserve(keys.elements.size());
      int64_t bytes = 0;
      for (const redis::Reply& key : keys.elements) {
        if (key.type != redis::Reply::Type::kString) return UnexpectedReply(range.command);
        reads.push_back({key.str, {"HGETALL", key.str}});
        bytes += key.str.size();
      }
      Sent(bytes);
      SG_ASSIGN_OR_RETURN(std::vector<redis::Reply> records, Send(reads));
      for (size_t i = 0; i < records.size(); ++i) {
        absl::StatusOr<RecordFields> fields = ParseHash(reads[i].command, std::move(records[i]));
        // Indexed but gone (deleted by someone else): not part of the scan.
        if (absl::IsNotFound(fields.status())) continue;
        if (!fields.ok()) return fields.status();
        read.push_back({reads[i].hash_key, *std::move(fields)});
      }
    }
    Observe(op, read);
    return absl::OkStatus();
  }
};

// ---- redis: one redis-server through hiredis ----

struct ContextDeleter {
  void operator()(redisContext* context) const { redisFree(context); }
};
using Connection = std::unique_ptr<redisContext, ContextDeleter>;

// The failure hiredis recorded on `context`. hiredis 0.14 reports a timed-out connect or read
// as an I/O error whose text is strerror(ETIMEDOUT) or strerror(EAGAIN) (SO_RCVTIMEO); later
// versions have REDIS_ERR_TIMEOUT.
absl::Status ConnectionError(const redisContext& context, absl::string_view what) {
  const std::string message = absl::StrCat(what, ": ", context.errstr);
  bool timeout = false;
#ifdef REDIS_ERR_TIMEOUT
  timeout = context.err == REDIS_ERR_TIMEOUT;
#endif
  if (context.err == REDIS_ERR_IO) {
    for (int error : {EAGAIN, EWOULDBLOCK, ETIMEDOUT, EINPROGRESS}) {
      timeout = timeout || std::strcmp(context.errstr, std::strerror(error)) == 0;
    }
  }
  return timeout ? absl::DeadlineExceededError(message) : absl::UnavailableError(message);
}

class RedisTarget final : public RedisModelTarget {
 public:
  static absl::StatusOr<std::unique_ptr<Target>> Connect(const std::string& address, int threads,
                                                         DirectTargetOptions options) {
    SG_RETURN_IF_ERROR(CheckOptions(threads, options));
    std::string host;
    int port = 0;
    SG_RETURN_IF_ERROR(SplitAddress(address, &host, &port));
    std::unique_ptr<RedisTarget> target(
        new RedisTarget(address, host, port, threads, std::move(options)));
    if (absl::Status status = target->Ping(); !status.ok()) {
      return absl::Status(status.code(), absl::StrCat("redis ", address, ": ", status.message()));
    }
    return target;
  }

  ~RedisTarget() override { StopWorkers(); }

 private:
  RedisTarget(const std::string& address, std::string host, int port, int threads,
              DirectTargetOptions options)
      : RedisModelTarget(absl::StrCat("redis ", address), threads, std::move(options)),
        host_(std::move(host)),
        port_(port) {}

  // Connects, and keeps the connection if the server answers PING.
  absl::Status Ping() {
    SG_ASSIGN_OR_RETURN(Connection connection, NewConnection());
    std::unique_ptr<redisReply, decltype(&freeReplyObject)> pong(
        static_cast<redisReply*>(redisCommand(connection.get(), "PING")), &freeReplyObject);
    if (pong == nullptr) return ConnectionError(*connection, "PING");
    if (pong->type != REDIS_REPLY_STATUS) {
      return absl::UnavailableError(
          absl::StrCat("answered PING with ", std::string(pong->str, pong->len)));
    }
    Release(std::move(connection));
    return absl::OkStatus();
  }

  // One pipeline on one connection: a single node serves every key.
  absl::StatusOr<std::vector<redis::Reply>> Send(const std::vector<Routed>& commands) override {
    Connection connection;
    {
      absl::MutexLock lock(&mu_);
      if (!idle_.empty()) {
        connection = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    if (connection == nullptr) {
      SG_ASSIGN_OR_RETURN(connection, NewConnection());
    }
    redisContext* c = connection.get();
    for (const Routed& routed : commands) {
      std::vector<const char*> argv;
      std::vector<size_t> lengths;
      argv.reserve(routed.command.size());
      lengths.reserve(routed.command.size());
      for (const std::string& arg : routed.command) {
        argv.push_back(arg.data());
        lengths.push_back(arg.size());
      }
      if (redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lengths.data()) !=
          REDIS_OK) {
        return ConnectionError(*c, routed.command[0]);
      }
    }
    std::vector<redis::Reply> replies;
    replies.reserve(commands.size());
    for (const Routed& routed : commands) {
      void* raw = nullptr;
      if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) {
        // The connection is dropped here: it may still hold the rest of the replies.
        return ConnectionError(*c, routed.command[0]);
      }
      auto* reply = static_cast<redisReply*>(raw);
      replies.push_back(redis::ReplyFromHiredis(*reply));
      freeReplyObject(reply);
    }
    Release(std::move(connection));
    return replies;
  }

  absl::StatusOr<Connection> NewConnection() const {
    const timeval timeout = absl::ToTimeval(options().io_timeout);
    Connection connection(redisConnectWithTimeout(host_.c_str(), port_, timeout));
    if (connection == nullptr) {
      return absl::ResourceExhaustedError("cannot allocate a hiredis context");
    }
    if (connection->err != 0) return ConnectionError(*connection, "connect");
    if (redisSetTimeout(connection.get(), timeout) != REDIS_OK) {
      return ConnectionError(*connection, "setting the I/O timeout");
    }
    return connection;
  }

  void Release(Connection connection) {
    if (connection->err != 0) return;
    absl::MutexLock lock(&mu_);
    idle_.push_back(std::move(connection));
  }

  const std::string host_;
  const int port_;
  absl::Mutex mu_;
  // At most one per worker: a worker holds one while it runs an operation.
  std::vector<Connection> idle_ ABSL_GUARDED_BY(mu_);
};

// ---- redis-cluster: a Redis Cluster through redis::ClusterClient ----

class RedisClusterTarget final : public RedisModelTarget {
 public:
  static absl::StatusOr<std::unique_ptr<Target>> Connect(const std::vector<std::string>& seeds,
                                                         int threads, DirectTargetOptions options) {
    SG_RETURN_IF_ERROR(CheckOptions(threads, options));
    if (seeds.empty()) return absl::InvalidArgumentError("redis-cluster: no seed addresses");
    for (const std::string& seed : seeds) {
      std::string host;
      int port = 0;
      SG_RETURN_IF_ERROR(SplitAddress(seed, &host, &port));
    }
    const std::string name = absl::StrCat("redis-cluster ", absl::StrJoin(seeds, ","));
    redis::ClusterOptions cluster;
    cluster.seeds = seeds;
    cluster.connect_timeout = options.io_timeout;
    cluster.io_timeout = options.io_timeout;
    cluster.retry_window = options.cluster_retry_window;
    absl::StatusOr<std::unique_ptr<redis::ClusterClient>> client =
        redis::ClusterClient::Connect(cluster);
    if (!client.ok()) {
      return absl::Status(client.status().code(),
                          absl::StrCat(name, ": ", client.status().message()));
    }
    return std::unique_ptr<Target>(
        new RedisClusterTarget(name, *std::move(client), threads, std::move(options)));
  }

  ~RedisClusterTarget() override { StopWorkers(); }

 private:
  RedisClusterTarget(std::string name, std::unique_ptr<redis::ClusterClient> client, int threads,
                     DirectTargetOptions options)
      : RedisModelTarget(std::move(name), threads, std::move(options)),
        client_(std::move(client)) {}

  // One pipeline per slot, each on that slot's master (ClusterClient cannot send a pipeline
  // that spans slots: another master may own them). Slots go in the order they first appear.
  absl::StatusOr<std::vector<redis::Reply>> Send(const std::vector<Routed>& commands) override {
    std::vector<redis::Reply> replies(commands.size());
    std::vector<int> order;  // slots in order of first appearance
    std::map<int, std::vector<size_t>> by_slot;
    for (size_t i = 0; i < commands.size(); ++i) {
      const int slot = redis::KeySlot(commands[i].hash_key);
      std::vector<size_t>& indexes = by_slot[slot];
      if (indexes.empty()) order.push_back(slot);
      indexes.push_back(i);
    }
    for (const int slot : order) {
      const std::vector<size_t>& indexes = by_slot[slot];
      std::vector<redis::Command> pipeline;
      pipeline.reserve(indexes.size());
      for (const size_t i : indexes) pipeline.push_back(commands[i].command);
      SG_ASSIGN_OR_RETURN(std::vector<redis::Reply> slot_replies,
                          client_->Pipeline(commands[indexes.front()].hash_key, pipeline));
      if (slot_replies.size() != indexes.size()) {
        return absl::InternalError(absl::StrCat("slot ", slot, ": ", slot_replies.size(),
                                                " replies to ", indexes.size(), " commands"));
      }
      for (size_t j = 0; j < indexes.size(); ++j) replies[indexes[j]] = std::move(slot_replies[j]);
    }
    return replies;
  }

  const std::unique_ptr<redis::ClusterClient> client_;
};

// ---- memcached: one memcached through libmemcached ----

struct HandleDeleter {
  void operator()(memcached_st* handle) const { memcached_free(handle); }
};
using Handle = std::unique_ptr<memcached_st, HandleDeleter>;

// A libmemcached handle for the one server host:port, with non-blocking sockets, TCP_NODELAY
// and every wait (connect, poll, send, receive) bounded by `timeout`; null when libmemcached
// cannot allocate it or refuses the server. Not thread-safe: one thread uses a handle.
Handle NewMemcachedHandle(const std::string& host, int port, absl::Duration timeout) {
  Handle handle(memcached_create(nullptr));
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

absl::Status MemcachedError(absl::string_view op, memcached_st* handle, memcached_return_t rc) {
  const std::string message = absl::StrCat(op, ": ", memcached_last_error_message(handle));
  switch (rc) {
    case MEMCACHED_TIMEOUT:
      return absl::DeadlineExceededError(message);
    case MEMCACHED_PROTOCOL_ERROR:
    case MEMCACHED_CLIENT_ERROR:
    case MEMCACHED_SERVER_ERROR:
    case MEMCACHED_ERROR:
    case MEMCACHED_NOTSTORED:
    case MEMCACHED_E2BIG:
      return absl::InternalError(message);
    case MEMCACHED_BAD_KEY_PROVIDED:
    case MEMCACHED_KEY_TOO_BIG:
      return absl::InvalidArgumentError(message);
    case MEMCACHED_MEMORY_ALLOCATION_FAILURE:
    case MEMCACHED_SERVER_MEMORY_ALLOCATION_FAILURE:
      return absl::ResourceExhaustedError(message);
    default:
      // Connection failures, reads and writes that broke, a server marked dead.
      return absl::UnavailableError(message);
  }
}

class MemcachedTarget final : public DirectTarget {
 public:
  static absl::StatusOr<std::unique_ptr<Target>> Connect(const std::string& address, int threads,
                                                         DirectTargetOptions options) {
    SG_RETURN_IF_ERROR(CheckOptions(threads, options));
    std::string host;
    int port = 0;
    SG_RETURN_IF_ERROR(SplitAddress(address, &host, &port));
    const std::string name = absl::StrCat("memcached ", address);
    Handle prototype = NewMemcachedHandle(host, port, options.io_timeout);
    if (prototype == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": libmemcached cannot make a client for this address"));
    }
    std::unique_ptr<MemcachedTarget> target(
        new MemcachedTarget(name, std::move(prototype), threads, std::move(options)));
    if (absl::Status status = target->Version(); !status.ok()) {
      return absl::Status(status.code(), absl::StrCat(name, ": ", status.message()));
    }
    return target;
  }

  ~MemcachedTarget() override { StopWorkers(); }

  bool Supports(OpKind kind) const override { return kind != OpKind::kScan; }

 private:
  MemcachedTarget(std::string name, Handle prototype, int threads, DirectTargetOptions options)
      : DirectTarget(std::move(name), threads, std::move(options)),
        prototype_(std::move(prototype)) {}

  // Asks the server its version, and keeps the connection if it answers.
  absl::Status Version() {
    SG_ASSIGN_OR_RETURN(Handle handle, Acquire());
    const memcached_return_t rc = memcached_version(handle.get());
    if (rc != MEMCACHED_SUCCESS) return MemcachedError("version", handle.get(), rc);
    Release(std::move(handle));
    return absl::OkStatus();
  }

  absl::Status Run(const TargetOp& op) override {
    switch (op.kind) {
      case OpKind::kRead: {
        SG_ASSIGN_OR_RETURN(RecordFields fields, Get(op.key));
        ObserveOne(op, std::move(fields));
        return absl::OkStatus();
      }
      case OpKind::kUpdate:
      case OpKind::kInsert:
        return Set(op.key, op.fields);
      case OpKind::kReadModifyWrite: {
        SG_ASSIGN_OR_RETURN(RecordFields fields, Get(op.key));
        ObserveOne(op, std::move(fields));
        return Set(op.key, op.fields);
      }
      case OpKind::kScan:
        break;  // refused by Start
    }
    return absl::InternalError("unsupported operation kind");
  }

  absl::StatusOr<RecordFields> Get(const std::string& key) {
    SG_ASSIGN_OR_RETURN(Handle handle, Acquire());
    Sent(key.size());
    size_t length = 0;
    uint32_t flags = 0;
    memcached_return_t rc = MEMCACHED_SUCCESS;
    std::unique_ptr<char, decltype(&std::free)> value(
        memcached_get(handle.get(), key.data(), key.size(), &length, &flags, &rc), &std::free);
    if (rc == MEMCACHED_NOTFOUND) {
      Release(std::move(handle));
      return absl::NotFoundError(absl::StrCat("no record ", key));
    }
    // A handle that failed is dropped: after a timeout its stream may hold half a reply.
    if (rc != MEMCACHED_SUCCESS) return MemcachedError("get", handle.get(), rc);
    Release(std::move(handle));
    return DecodeMemcachedRecord(value == nullptr ? std::string_view()
                                                  : std::string_view(value.get(), length));
  }

  absl::Status Set(const std::string& key, const RecordFields& fields) {
    SG_ASSIGN_OR_RETURN(Handle handle, Acquire());
    const std::string value = EncodeMemcachedRecord(fields);
    Sent(key.size() + FieldBytes(fields));
    const memcached_return_t rc =
        memcached_set(handle.get(), key.data(), key.size(), value.data(), value.size(), 0, 0);
    if (rc != MEMCACHED_SUCCESS) return MemcachedError("set", handle.get(), rc);
    Release(std::move(handle));
    return absl::OkStatus();
  }

  // An idle handle, or a new clone of the prototype (which connects on first use).
  absl::StatusOr<Handle> Acquire() {
    absl::MutexLock lock(&mu_);
    if (!idle_.empty()) {
      Handle handle = std::move(idle_.back());
      idle_.pop_back();
      return handle;
    }
    // Cloning reads the prototype: under the lock, as libmemcached's own pool does.
    Handle handle(memcached_clone(nullptr, prototype_.get()));
    if (handle == nullptr) {
      return absl::ResourceExhaustedError("cannot allocate a libmemcached handle");
    }
    return handle;
  }

  void Release(Handle handle) {
    absl::MutexLock lock(&mu_);
    idle_.push_back(std::move(handle));
  }

  absl::Mutex mu_;
  const Handle prototype_ ABSL_GUARDED_BY(mu_);
  // At most one per worker: a worker holds one while it runs an operation.
  std::vector<Handle> idle_ ABSL_GUARDED_BY(mu_);
};

void AppendLengthPrefixed(std::string_view bytes, std::string* out) {
  const uint32_t length = static_cast<uint32_t>(bytes.size());
  for (int shift = 0; shift < 32; shift += 8) out->push_back(static_cast<char>(length >> shift));
  out->append(bytes);
}

bool ReadLengthPrefixed(std::string_view* in, std::string* bytes) {
  if (in->size() < 4) return false;
  uint32_t length = 0;
  for (int i = 0; i < 4; ++i) {
    length |= static_cast<uint32_t>(static_cast<unsigned char>((*in)[i])) << (8 * i);
  }
  in->remove_prefix(4);
  if (in->size() < length) return false;
  bytes->assign(in->substr(0, length));
  in->remove_prefix(length);
  return true;
}

}  // namespace

int32_t RedisIndexScore(std::string_view key) {
  // Unsigned arithmetic wraps as Java's int does; the result is the same bits.
  uint32_t hash = 0;
  for (const char c : key) hash = 31 * hash + static_cast<unsigned char>(c);
  return static_cast<int32_t>(hash);
}

std::string EncodeMemcachedRecord(const RecordFields& fields) {
  std::string out;
  out.reserve(FieldBytes(fields) + 8 * fields.size());
  for (const auto& [name, value] : fields) {
    AppendLengthPrefixed(name, &out);
    AppendLengthPrefixed(value, &out);
  }
  return out;
}

absl::StatusOr<RecordFields> DecodeMemcachedRecord(std::string_view value) {
  RecordFields fields;
  while (!value.empty()) {
    std::string name, field_value;
    if (!ReadLengthPrefixed(&value, &name) || !ReadLengthPrefixed(&value, &field_value)) {
      return absl::DataLossError("a memcached value that is not an encoded record");
    }
    fields.emplace_back(std::move(name), std::move(field_value));
  }
  return fields;
}

absl::StatusOr<std::unique_ptr<Target>> ConnectRedisTarget(const std::string& address, int threads,
                                                           DirectTargetOptions options) {
  return RedisTarget::Connect(address, threads, std::move(options));
}

absl::StatusOr<std::unique_ptr<Target>> ConnectRedisClusterTarget(
    const std::vector<std::string>& seeds, int threads, DirectTargetOptions options) {
  return RedisClusterTarget::Connect(seeds, threads, std::move(options));
}

absl::StatusOr<std::unique_ptr<Target>> ConnectMemcachedTarget(const std::string& address,
                                                               int threads,
                                                               DirectTargetOptions options) {
  return MemcachedTarget::Connect(address, threads, std::move(options));
}

}  // namespace stategate::bench
