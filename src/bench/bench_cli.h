// The command line of stategate-bench (tools/stategate_bench.cc holds only main).
//
//   stategate-bench [--addr HOST:PORT] [--namespace NS] [--concurrency 16,64]
//                   [--duration SECONDS] [--warmup SECONDS] [--value-bytes N] [--records N]
//                   [--ops put,get,handshake] [--timeout SECONDS] [--json FILE]
//
// Prints the table of FormatTable (qps_bench.h) and, with --json, writes ToJson to FILE.
// Exit status: 0 when the run completed (even with failed calls, which the table counts),
// 2 for bad usage or a run that could not start.
#pragma once

#include <functional>
#include <iosfwd>
#include <memory>

#include "absl/status/statusor.h"
#include "stategate/kv_client.h"

namespace stategate::bench {

using ClientFactory =
    std::function<absl::StatusOr<std::unique_ptr<KvClient>>(const KvClientOptions&)>;

int RunBenchCli(int argc, const char* const* argv, std::ostream& out, std::ostream& err,
                const ClientFactory& connect = KvClient::Connect);

}  // namespace stategate::bench
