// The command line of stategate-bench (tools/stategate_bench.cc holds only main). Three modes:
//
// Closed-loop QPS (the default; qps_bench.h) against one running gateway:
//   stategate-bench [--addr HOST:PORT] [--namespace NS] [--concurrency 16,64]
//                   [--duration SECONDS] [--warmup SECONDS] [--value-bytes N] [--records N]
//                   [--ops put,get,handshake] [--timeout SECONDS] [--json FILE]
// Prints the table of FormatTable and, with --json, writes ToJson to FILE.
//
// Workloads (ycsb_bench.h), selected by --workload, --target or --scenario:
//   stategate-bench [--workload a,...,f] [--target stategate-rocksdb,stategate-redis,redis,
//                   redis-cluster,memcached,empty] [--scenario none,slow-replica,...]
//                   [--mode naive,full,...] [--records 10000] [--record 10x100]
//                   [--ops N] [--duration 20] [--rate 500 | --threads N] [--replicas 3]
//                   [--timeout 1] [--slow-ms 200] [--client-threads 256]
//                   [--server-binary PATH] [--out FILE.json] [--report FILE.html]
// Starts what each target needs, prints a progress line per second on `err` and
// FormatYcsbTable on `out`; --out writes the JSON, --report the HTML page (report_html.h).
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
