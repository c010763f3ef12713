// The command line of stategate-bench (tools/stategate_bench.cc holds only main). Three modes:
//
// Closed-loop QPS (the default; qps_bench.h) against one running gateway:
//   stategate-bench [--addr HOST:PORT] [--namespace NS] [--concurrency 16,64]
//                   [--duration SECONDS] [--warmup SECONDS] [--value-bytes N] [--records N]
//                   [--ops put,get,handshake] [--timeout SECONDS] [--json FILE]
// Prints the table of FormatTable and, with --json, writes ToJson to FILE.
//
// Faults (fault_bench.h), selected by --scenario:
//   stategate-bench --scenario none,slow-replica,paused-replica,error-replica
//                   [--mode naive,full,...] [--replicas 3] [--server-binary PATH]
//                   [--engine rocksdb|redis-cluster] [--memcached]
//                   [--addr A,B,C] [--namespace NS] [--records 1000] [--value-bytes 1024]
//                   [--read-share 0.9] [--rate 500] [--duration 10] [--timeout 1]
//                   [--slow-ms 200] [--out FILE]
// Starts local gateways (Fleet::StartLocal) unless --addr names running ones, prints
// FormatFaultTable, progress on `err`, and with --out writes FaultBenchJson to FILE. With
// --engine redis-cluster it first starts a local Redis Cluster (testbed::RedisCluster, 3
// masters + 3 replicas) and every gateway runs `--redis-cluster` over it (and, with
// --memcached, `--memcached` with one local memcached); stopped after the gateways.
//
// Gateway over Redis Cluster vs redis-benchmark (vs_redis.h), selected by --vs-redis:
//   stategate-bench --vs-redis [--concurrency 16,64] [--duration 5] [--warmup 0.5]
//                   [--value-bytes 1024] [--records 10000] [--redis-requests 0]
//                   [--timeout 5] [--server-binary PATH] [--redis-benchmark PATH]
//                   [--json FILE]
// Prints FormatVsRedisTable, progress on `err`, and with --json writes VsRedisJson to FILE.
//
// Exit status: 0 when the runs completed (even with failed calls, which the table counts),
// 2 for bad usage or a run that could not start or finish.
#pragma once

#include <functional>
#include <iosfwd>
#include <memory>

#include "absl/status/statusor.h"
#include "stategate/kv_client.h"

namespace stategate::bench {

using ClientFactory =
    std::function<absl::StatusOr<std::unique_ptr<KvClient>>(const KvClientOptions&)>;

// `connect` makes every client of either mode.
int RunBenchCli(int argc, const char* const* argv, std::ostream& out, std::ostream& err,
                const ClientFactory& connect = KvClient::Connect);

}  // namespace stategate::bench
