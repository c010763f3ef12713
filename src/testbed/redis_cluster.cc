#include "src/testbed/redis_cluster.h"

#include <hiredis/hiredis.h>

#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "src/common/status_macros.h"

namespace stategate::testbed {
namespace {

constexpr int kSlots = 16384;
// Redis Cluster's bus listens on the client port plus this.
constexpr int kBusPortOffset = 10000;
// A node that exits while starting (most likely: its free port was taken meanwhile) is
// started again on new ports this many times in all.
constexpr int kStartAttempts = 3;
// How often readiness and failover are polled, and the timeout of one poll's command.
constexpr absl::Duration kPoll = absl::Milliseconds(100);
constexpr absl::Duration kCommandTimeout = absl::Seconds(2);

struct RedisContextDeleter {
  void operator()(redisContext* context) const { redisFree(context); }
};
struct RedisReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};

// A command whose reply must be text (bulk string or status): the text, or an error.
absl::StatusOr<std::string> TextCommand(int port, const std::vector<std::string>& args) {
  SG_ASSIGN_OR_RETURN(RedisReply reply, RedisCommand(port, args, kCommandTimeout));
  if (reply.type != RedisReply::Type::kString && reply.type != RedisReply::Type::kStatus) {
    return absl::UnavailableError(absl::StrCat(
        "127.0.0.1:", port, " answered ", absl::StrJoin(args, " "), " with ",
        reply.type == RedisReply::Type::kError ? reply.str : "a reply that is not text"));
  }
  return reply.str;
}

// "key:value" lines of INFO and CLUSTER INFO.
std::map<std::string, std::string> ParseInfo(absl::string_view text) {
  std::map<std::string, std::string> fields;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    fields[std::string(line.substr(0, colon))] = std::string(line.substr(colon + 1));
  }
  return fields;
}

std::string Field(const std::map<std::string, std::string>& fields, const std::string& key) {
  auto it = fields.find(key);
  return it == fields.end() ? "" : it->second;
}

// A node as one line of CLUSTER NODES describes it.
struct ListedNode {
  RedisNode node;
  std::string master_id;
  bool myself = false;  // the node that was asked
  bool failed = false;  // flagged "fail" (not merely "fail?")
};

// Parses CLUSTER NODES: "<id> <ip:port@cport[,hostname]> <flags> <master> <ping-sent>
// <pong-recv> <config-epoch> <link-state> <slot> <slot> ...". Pids are left -1.
absl::StatusOr<std::vector<ListedNode>> ParseClusterNodeLines(absl::string_view text) {
  std::vector<ListedNode> listed;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    if (line.back() == '\r') line.remove_suffix(1);
    const std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.size() < 8) {
      return absl::InternalError(absl::StrCat("unexpected CLUSTER NODES line: ", line));
    }
    ListedNode entry;
    entry.node.id = std::string(fields[0]);
    absl::string_view address = fields[1].substr(0, fields[1].find_first_of("@,"));
    const size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos ||
        !absl::SimpleAtoi(address.substr(colon + 1), &entry.node.port)) {
      return absl::InternalError(absl::StrCat("unexpected CLUSTER NODES address: ", fields[1]));
    }
    for (absl::string_view flag : absl::StrSplit(fields[2], ',')) {
      if (flag == "slave") entry.node.role = RedisRole::kReplica;
      if (flag == "myself") entry.myself = true;
      if (flag == "fail") entry.failed = true;
    }
    if (fields[3] != "-") entry.master_id = std::string(fields[3]);
    for (size_t i = 8; i < fields.size(); ++i) {
      if (fields[i].front() == '[') continue;  // a slot being migrated or imported
      const std::vector<absl::string_view> bounds = absl::StrSplit(fields[i], '-');
      int first = 0, last = 0;
      if (!absl::SimpleAtoi(bounds[0], &first) ||
          !absl::SimpleAtoi(bounds.size() > 1 ? bounds[1] : bounds[0], &last)) {
        return absl::InternalError(absl::StrCat("unexpected CLUSTER NODES slots: ", fields[i]));
      }
      entry.node.slots.emplace_back(first, last);
    }
    listed.push_back(std::move(entry));
  }
  for (ListedNode& entry : listed) {
    for (const ListedNode& other : listed) {
      if (!entry.master_id.empty() && other.node.id == entry.master_id) {
        entry.node.master_port = other.node.port;
      }
    }
  }
  return listed;
}

absl::StatusOr<std::vector<RedisNode>> ParseClusterNodes(absl::string_view text) {
  SG_ASSIGN_OR_RETURN(std::vector<ListedNode> listed, ParseClusterNodeLines(text));
  std::vector<RedisNode> nodes;
  for (ListedNode& entry : listed) nodes.push_back(std::move(entry.node));
  return nodes;
}

// For each slot, the port of the master that serves it in `nodes` (0: none).
std::vector<int> SlotOwners(const std::vector<RedisNode>& nodes) {
  std::vector<int> owners(kSlots, 0);
  for (const RedisNode& node : nodes) {
    if (node.role != RedisRole::kMaster) continue;
    for (const auto& [first, last] : node.slots) {
      for (int slot = std::max(first, 0); slot <= std::min(last, kSlots - 1); ++slot) {
        owners[slot] = node.port;
      }
    }
  }
  return owners;
}

}  // namespace

// ---- RedisCluster ----

absl::StatusOr<std::unique_ptr<RedisCluster>> RedisCluster::Start(RedisClusterOptions options) {
  if (options.masters < 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("a Redis Cluster needs at least 3 masters, got ", options.masters));
  }
  if (options.replicas_per_master < 0 ||
      options.masters * (1 + options.replicas_per_master) > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("replicas_per_master must be >= 0 with at most 100 nodes in all, got ",
                     options.replicas_per_master));
  }
  if (options.node_timeout < absl::Milliseconds(1) ||
      options.start_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("node_timeout and start_timeout must be positive");
  }
  std::string dir = options.dir;
  const bool owns_dir = dir.empty();
  if (owns_dir) {
    SG_ASSIGN_OR_RETURN(dir, MakeTempDir("stategate-redis-"));
  } else {
    std::error_code error;
    std::filesystem::create_directories(dir, error);
    if (error) {
      return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", error.message()));
    }
  }
  const absl::Time deadline = absl::Now() + options.start_timeout;
  // From here on the destructor stops whatever started when an error is returned.
  std::unique_ptr<RedisCluster> cluster(new RedisCluster(std::move(options), dir, owns_dir));
  SG_RETURN_IF_ERROR(cluster->StartNodes(deadline));
  SG_RETURN_IF_ERROR(cluster->CreateCluster(deadline));
  SG_RETURN_IF_ERROR(cluster->WaitUntilReady(deadline));
  return cluster;
}

RedisCluster::~RedisCluster() {
  Stop();
  if (owns_dir_) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

absl::Status RedisCluster::SpawnNode(Process& process, const std::vector<int>& taken) {
  // Both the client port and the bus port (+10000) must be free.
  int port = -1;
  for (int attempt = 0; attempt < 1000 && port < 0; ++attempt) {
    const int candidate = FreePort();
    if (candidate < 0) {
      return absl::InternalError(absl::StrCat("no free port: ", std::strerror(errno)));
    }
    const int bus = candidate + kBusPortOffset;
    if (bus > 65535) continue;
    bool clash = false;
    for (int other : taken) {
      clash = clash || other == candidate || other == bus || other + kBusPortOffset == candidate ||
              other + kBusPortOffset == bus;
    }
    if (!clash && PortIsFree(bus)) port = candidate;
  }
  if (port < 0) return absl::UnavailableError("found no free port pair P, P+10000");
  // A new node starts empty, even in a directory an earlier cluster used.
  std::error_code ignored;
  std::filesystem::remove_all(absl::StrCat(dir_, "/", port), ignored);
  return SpawnNodeOn(process, port);
}

absl::Status RedisCluster::SpawnNodeOn(Process& process, int port) {
  const std::string node_dir = absl::StrCat(dir_, "/", port);
  std::error_code error;
  std::filesystem::create_directories(node_dir, error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot create ", node_dir, ": ", error.message()));
  }
  ChildProcessOptions child;
  child.binary = options_.redis_server;
  child.args = {"--port",
                absl::StrCat(port),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                absl::StrCat("nodes-", port, ".conf"),
                "--cluster-node-timeout",
                absl::StrCat(absl::ToInt64Milliseconds(options_.node_timeout)),
                // While a lost master's slots wait for their replica's promotion, the other
                // masters go on serving theirs (the default, yes, answers CLUSTERDOWN for
                // every key until the whole keyspace is covered again).
                "--cluster-require-full-coverage",
                "no",
                "--dir",
                node_dir,
                "--save",
                "",
                "--appendonly",
                "no",
                "--repl-diskless-sync",
                "yes",
                "--repl-diskless-sync-delay",
                "0",
                "--daemonize",
                "no",
                "--protected-mode",
                "no"};
  child.log_path = absl::StrCat(dir_, "/redis-", port, ".log");
  SG_ASSIGN_OR_RETURN(process.child, ChildProcess::Start(std::move(child)));
  process.port = port;
  return absl::OkStatus();
}

absl::Status RedisCluster::StartNodes(absl::Time deadline) {
  const int total = options_.masters * (1 + options_.replicas_per_master);
  processes_.resize(total);
  std::vector<int> taken;
  // Start them all, then wait for each.
  for (Process& process : processes_) {
    SG_RETURN_IF_ERROR(SpawnNode(process, taken));
    taken.push_back(process.port);
  }
  for (Process& process : processes_) {
    int attempt = 1;
    while (true) {
      if (!process.child->Running()) {
        const std::string why = absl::StrCat("redis-server on port ", process.port, " ",
                                             DescribeWaitStatus(*process.child->wait_status()),
                                             "; its log:\n", process.child->LogTail());
        if (attempt == kStartAttempts) return absl::UnavailableError(why);
        ++attempt;
        SG_RETURN_IF_ERROR(SpawnNode(process, taken));  // most likely the port was taken
        taken.push_back(process.port);
        continue;
      }
      absl::StatusOr<std::string> pong = TextCommand(process.port, {"PING"});
      if (pong.ok() && *pong == "PONG") break;
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("redis-server on port ", process.port, " did not answer PING: ",
                         pong.status().ToString(), "; its log:\n", process.child->LogTail()));
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  return absl::OkStatus();
}

absl::Status RedisCluster::CreateCluster(absl::Time deadline) {
  ChildProcessOptions create;
  create.binary = options_.redis_cli;
  create.args = {"--cluster", "create"};
  for (const std::string& seed : seeds()) create.args.push_back(seed);
  create.args.push_back("--cluster-replicas");
  create.args.push_back(absl::StrCat(options_.replicas_per_master));
  create.args.push_back("--cluster-yes");
  create.log_path = absl::StrCat(dir_, "/cluster-create.log");
  SG_ASSIGN_OR_RETURN(std::unique_ptr<ChildProcess> cli, ChildProcess::Start(std::move(create)));
  const std::optional<int> status = cli->Wait(deadline - absl::Now());
  if (!status.has_value()) {
    cli->Kill();
    return absl::DeadlineExceededError(absl::StrCat(
        "redis-cli --cluster create did not finish in time; its output:\n", cli->LogTail()));
  }
  if (!WIFEXITED(*status) || WEXITSTATUS(*status) != 0) {
    return absl::InternalError(absl::StrCat("redis-cli --cluster create ",
                                            DescribeWaitStatus(*status), "; its output:\n",
                                            cli->LogTail()));
  }
  return absl::OkStatus();
}

absl::Status RedisCluster::WaitUntilReady(absl::Time deadline) {
  const int total = static_cast<int>(processes_.size());
  std::string problem;
  auto check = [&]() -> absl::Status {
    for (const Process& process : processes_) {
      if (!process.child->Running()) {
        return absl::UnavailableError(
            absl::StrCat("redis-server on port ", process.port, " ",
                         DescribeWaitStatus(*process.child->wait_status()), "; its log:\n",
                         process.child->LogTail()));
      }
      SG_ASSIGN_OR_RETURN(const std::string text, TextCommand(process.port, {"CLUSTER", "INFO"}));
      const std::map<std::string, std::string> info = ParseInfo(text);
      if (Field(info, "cluster_state") != "ok" ||
          Field(info, "cluster_slots_assigned") != absl::StrCat(kSlots) ||
          Field(info, "cluster_slots_ok") != absl::StrCat(kSlots) ||
          Field(info, "cluster_known_nodes") != absl::StrCat(total)) {
        return absl::UnavailableError(absl::StrCat("port ", process.port, ": ", text));
      }
    }
    SG_RETURN_IF_ERROR(RefreshNodes());
    if (static_cast<int>(masters().size()) != options_.masters ||
        static_cast<int>(replicas().size()) != total - options_.masters) {
      return absl::UnavailableError(
          absl::StrCat(masters().size(), " masters and ", replicas().size(), " replicas so far"));
    }
    for (const RedisNode& node : nodes_) {
      SG_ASSIGN_OR_RETURN(const std::string text, TextCommand(node.port, {"INFO", "replication"}));
      const std::map<std::string, std::string> info = ParseInfo(text);
      // connected_slaves counts replicas still loading the initial sync too.
      int online = 0;
      for (const auto& [key, value] : info) {
        if (key.rfind("slave", 0) == 0 && absl::StrContains(value, "state=online")) ++online;
      }
      const bool ready =
          node.role == RedisRole::kReplica
              ? Field(info, "master_link_status") == "up"
              : Field(info, "connected_slaves") == absl::StrCat(options_.replicas_per_master) &&
                    online == options_.replicas_per_master;
      if (!ready) return absl::UnavailableError(absl::StrCat("port ", node.port, ": ", text));
    }
    return absl::OkStatus();
  };
  while (true) {
    const absl::Status status = check();
    if (status.ok()) return absl::OkStatus();
    // A node that died will not come back: no use waiting.
    for (const Process& process : processes_) {
      if (process.child->pid() < 0) return status;
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the Redis Cluster did not become ready in time; last seen: ", status.message()));
    }
    absl::SleepFor(kPoll);
  }
}

absl::Status RedisCluster::RefreshNodes() {
  absl::Status last = absl::UnavailableError("no node of the cluster runs");
  for (int port : RunningPorts()) {
    absl::StatusOr<std::string> text = TextCommand(port, {"CLUSTER", "NODES"});
    if (!text.ok()) {
      last = text.status();
      continue;
    }
    SG_ASSIGN_OR_RETURN(std::vector<RedisNode> listed, ParseClusterNodes(*text));
    std::vector<RedisNode> nodes;
    for (const Process& process : processes_) {
      auto it = std::find_if(listed.begin(), listed.end(),
                             [&](const RedisNode& node) { return node.port == process.port; });
      if (it == listed.end()) {
        return absl::UnavailableError(
            absl::StrCat("port ", port, " does not know port ", process.port, " yet:\n", *text));
      }
      it->pid = process.child->pid();
      nodes.push_back(std::move(*it));
    }
    nodes_ = std::move(nodes);
    return absl::OkStatus();
  }
  return last;
}

std::vector<int> RedisCluster::RunningPorts() const {
  std::vector<int> ports;
  for (const Process& process : processes_) {
    if (process.child != nullptr && process.child->pid() > 0) ports.push_back(process.port);
  }
  return ports;
}

pid_t RedisCluster::PidOf(int port) const {
  for (const Process& process : processes_) {
    if (process.port == port && process.child != nullptr) return process.child->pid();
  }
  return -1;
}

std::vector<std::string> RedisCluster::seeds() const {
  std::vector<std::string> seeds;
  for (const Process& process : processes_)
    seeds.push_back(absl::StrCat("127.0.0.1:", process.port));
  return seeds;
}

std::string RedisCluster::seed_list() const { return absl::StrJoin(seeds(), ","); }

std::vector<RedisNode> RedisCluster::masters() const {
  std::vector<RedisNode> masters;
  for (const RedisNode& node : nodes_) {
    if (node.alive() && node.role == RedisRole::kMaster) masters.push_back(node);
  }
  return masters;
}

std::vector<RedisNode> RedisCluster::replicas() const {
  std::vector<RedisNode> replicas;
  for (const RedisNode& node : nodes_) {
    if (node.alive() && node.role == RedisRole::kReplica) replicas.push_back(node);
  }
  return replicas;
}

absl::StatusOr<RedisNode> RedisCluster::MasterOfSlot(int slot) const {
  if (slot < 0 || slot >= kSlots) {
    return absl::InvalidArgumentError(absl::StrCat("slot ", slot, " is not in [0, 16383]"));
  }
  absl::Status last = absl::UnavailableError("no node of the cluster runs");
  for (int port : RunningPorts()) {
    absl::StatusOr<std::string> text = TextCommand(port, {"CLUSTER", "NODES"});
    if (!text.ok()) {
      last = text.status();
      continue;
    }
    SG_ASSIGN_OR_RETURN(std::vector<RedisNode> listed, ParseClusterNodes(*text));
    for (RedisNode& node : listed) {
      if (node.role != RedisRole::kMaster) continue;
      for (const auto& [first, last_slot] : node.slots) {
        if (first <= slot && slot <= last_slot) {
          node.pid = PidOf(node.port);
          return node;
        }
      }
    }
    return absl::NotFoundError(
        absl::StrCat("slot ", slot, " is not assigned (as port ", port, " sees it)"));
  }
  return last;
}

absl::Status RedisCluster::KillNode(int port) {
  for (Process& process : processes_) {
    if (process.port != port || process.child == nullptr || process.child->pid() < 0) continue;
    process.child->Kill();
    for (RedisNode& node : nodes_) {
      if (node.port == port) node.pid = -1;
    }
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat("no running node of this cluster on port ", port));
}

absl::Status RedisCluster::RestartNode(int port, absl::Duration timeout) {
  auto process = std::find_if(processes_.begin(), processes_.end(),
                              [&](const Process& p) { return p.port == port; });
  if (process == processes_.end()) {
    return absl::NotFoundError(absl::StrCat("no node of this cluster on port ", port));
  }
  if (process->child != nullptr && process->child->Running()) {
    return absl::FailedPreconditionError(absl::StrCat("the node on port ", port, " runs"));
  }
  // Same port, directory and nodes-<port>.conf: the node keeps its ID and rejoins.
  SG_RETURN_IF_ERROR(SpawnNodeOn(*process, port));
  const absl::Time deadline = absl::Now() + timeout;
  auto check = [&]() -> absl::Status {
    if (!process->child->Running()) {
      return absl::UnavailableError(absl::StrCat("redis-server on port ", port, " ",
                                                 DescribeWaitStatus(*process->child->wait_status()),
                                                 "; its log:\n", process->child->LogTail()));
    }
    SG_ASSIGN_OR_RETURN(const std::string info, TextCommand(port, {"CLUSTER", "INFO"}));
    if (Field(ParseInfo(info), "cluster_state") != "ok") {
      return absl::UnavailableError(absl::StrCat("port ", port, ": ", info));
    }
    SG_ASSIGN_OR_RETURN(const std::string text, TextCommand(port, {"CLUSTER", "NODES"}));
    SG_ASSIGN_OR_RETURN(const std::vector<ListedNode> listed, ParseClusterNodeLines(text));
    auto self = std::find_if(listed.begin(), listed.end(),
                             [](const ListedNode& entry) { return entry.myself; });
    if (self == listed.end()) {
      return absl::InternalError(absl::StrCat("port ", port, " does not list itself:\n", text));
    }
    if (self->node.role == RedisRole::kReplica) {
      SG_ASSIGN_OR_RETURN(const std::string replication,
                          TextCommand(port, {"INFO", "replication"}));
      if (Field(ParseInfo(replication), "master_link_status") != "up") {
        return absl::UnavailableError(absl::StrCat("port ", port, ": ", replication));
      }
    }
    // The others no longer flag it as failed and see it as it sees itself: until its gossip
    // reaches them they take a returning master for a master without slots.
    for (int other : RunningPorts()) {
      if (other == port) continue;
      SG_ASSIGN_OR_RETURN(const std::string seen, TextCommand(other, {"CLUSTER", "NODES"}));
      SG_ASSIGN_OR_RETURN(const std::vector<ListedNode> others, ParseClusterNodeLines(seen));
      for (const ListedNode& entry : others) {
        if (entry.node.port != port) continue;
        if (entry.failed) {
          return absl::UnavailableError(
              absl::StrCat("port ", other, " still flags port ", port, " failed"));
        }
        if (entry.node.role != self->node.role || entry.master_id != self->master_id) {
          return absl::UnavailableError(absl::StrCat("port ", other, " sees port ", port,
                                                     " otherwise than it sees itself:\n", seen));
        }
      }
    }
    return RefreshNodes();
  };
  while (true) {
    const absl::Status status = check();
    if (status.ok() || process->child->pid() < 0) return status;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("port ", port, " did not rejoin within ",
                                                      absl::FormatDuration(timeout),
                                                      "; last seen: ", status.message()));
    }
    absl::SleepFor(kPoll);
  }
}

absl::Status RedisCluster::WaitForFailover(int killed_port, absl::Duration timeout) {
  auto killed = std::find_if(nodes_.begin(), nodes_.end(),
                             [&](const RedisNode& node) { return node.port == killed_port; });
  if (killed == nodes_.end()) {
    return absl::NotFoundError(absl::StrCat("no node of this cluster on port ", killed_port));
  }
  const std::vector<std::pair<int, int>> orphaned = killed->slots;
  const absl::Time deadline = absl::Now() + timeout;
  auto check = [&]() -> absl::Status {
    const std::vector<int> running = RunningPorts();
    if (running.empty()) return absl::FailedPreconditionError("no node of the cluster runs");
    for (int port : running) {
      SG_ASSIGN_OR_RETURN(const std::string info, TextCommand(port, {"CLUSTER", "INFO"}));
      if (Field(ParseInfo(info), "cluster_state") != "ok") {
        return absl::UnavailableError(absl::StrCat("port ", port, ": ", info));
      }
      SG_ASSIGN_OR_RETURN(const std::string text, TextCommand(port, {"CLUSTER", "NODES"}));
      SG_ASSIGN_OR_RETURN(const std::vector<RedisNode> listed, ParseClusterNodes(text));
      const std::vector<int> owners = SlotOwners(listed);
      for (const auto& [first, last] : orphaned) {
        for (int slot = first; slot <= last; ++slot) {
          if (owners[slot] == killed_port || PidOf(owners[slot]) <= 0) {
            return absl::UnavailableError(absl::StrCat(
                "port ", port, " sees slot ", slot, " served by port ", owners[slot], ":\n", text));
          }
        }
      }
    }
    return RefreshNodes();
  };
  while (true) {
    const absl::Status status = check();
    if (status.ok() || status.code() == absl::StatusCode::kFailedPrecondition) return status;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("no failover of port ", killed_port,
                                                      " within ", absl::FormatDuration(timeout),
                                                      "; last seen: ", status.message()));
    }
    absl::SleepFor(kPoll);
  }
}

void RedisCluster::Stop() {
  for (Process& process : processes_) {
    if (process.child != nullptr) process.child->Kill();
  }
  for (RedisNode& node : nodes_) node.pid = -1;
}

// ---- Free functions ----

absl::StatusOr<RedisReply> RedisCommand(int port, const std::vector<std::string>& args,
                                        absl::Duration timeout) {
  SG_ASSIGN_OR_RETURN(std::vector<RedisReply> replies, RedisCommands(port, {args}, timeout));
  return std::move(replies.front());
}

absl::StatusOr<std::vector<RedisReply>> RedisCommands(
    int port, const std::vector<std::vector<std::string>>& commands, absl::Duration timeout) {
  if (commands.empty()) return absl::InvalidArgumentError("no command given");
  for (const std::vector<std::string>& args : commands) {
    if (args.empty()) return absl::InvalidArgumentError("an empty command");
  }
  const timeval tv = absl::ToTimeval(timeout);
  std::unique_ptr<redisContext, RedisContextDeleter> context(
      redisConnectWithTimeout("127.0.0.1", port, tv));
  if (context == nullptr) return absl::ResourceExhaustedError("cannot allocate a hiredis context");
  if (context->err != 0) {
    return absl::UnavailableError(
        absl::StrCat("connecting to 127.0.0.1:", port, ": ", context->errstr));
  }
  if (redisSetTimeout(context.get(), tv) != REDIS_OK) {
    return absl::InternalError(absl::StrCat("setting a timeout: ", context->errstr));
  }
  std::vector<RedisReply> replies;
  for (const std::vector<std::string>& args : commands) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const std::string& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    std::unique_ptr<redisReply, RedisReplyDeleter> reply(static_cast<redisReply*>(redisCommandArgv(
        context.get(), static_cast<int>(argv.size()), argv.data(), lengths.data())));
    if (reply == nullptr) {
      return absl::UnavailableError(
          absl::StrCat("127.0.0.1:", port, " ", args[0], ": ", context->errstr));
    }
    replies.push_back(redis::ReplyFromHiredis(*reply));
  }
  return replies;
}

}  // namespace stategate::testbed
