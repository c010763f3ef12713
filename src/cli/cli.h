// stategate-cli: operate on a gateway's Key-Value data from a shell.
//
//   stategate-cli [--addr HOST:PORT] [--namespace NS] [--timeout SECONDS] COMMAND
//     put ID KEY [--ttl SECONDS]   value read from standard input, bytes as they are
//     get ID KEY                   writes exactly the value's bytes
//     get ID                       lists the record's items: key (C-escaped) TAB size
//     delete ID [KEY]              the item, or the whole record
//     scan                         one line per item: id TAB key TAB size (C-escaped)
//     handshake                    the namespaces' settings
//
// Exit status: 0 on success, 1 for NOT_FOUND, 2 for any other failure or bad usage; a failure
// prints its gRPC status code name and message on the error stream.
#pragma once

#include <functional>
#include <iosfwd>
#include <memory>

#include "absl/status/statusor.h"
#include "stategate/kv_client.h"

namespace stategate::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitNotFound = 1;
inline constexpr int kExitFailure = 2;

using ClientFactory =
    std::function<absl::StatusOr<std::unique_ptr<KvClient>>(const KvClientOptions&)>;

// Runs the command line `argv`, reading standard input from `in` and writing to `out` and
// `err`; returns the exit status. `connect` makes the client (default: KvClient::Connect).
int RunCli(int argc, const char* const* argv, std::istream& in, std::ostream& out,
           std::ostream& err, const ClientFactory& connect = KvClient::Connect);

}  // namespace stategate::cli
