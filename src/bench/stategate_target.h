// The stategate targets of stategate-bench's workloads (target.h): a YCSB record is one
// record id whose fields are its items, read and written through the reliable client
// (KvClient) — or, for the "empty" baseline, every operation is one Handshake, the cheapest
// call a gateway answers, which is the floor of any gRPC service on this machine.
#pragma once

#include <memory>
#include <string>

#include "src/bench/target.h"
#include "stategate/kv_client.h"

namespace stategate::bench {

// Operations of `client` on namespace `ns`: reads and writes through its asynchronous
// calls, scans on `threads` threads of the target (Scan is blocking). A scan reads
// `scan_length` records from the start of the namespace: the API pages through a whole
// namespace and cannot start at a key, so the start key of a YCSB scan is not used.
std::unique_ptr<Target> MakeStategateTarget(std::shared_ptr<KvClient> client, std::string ns,
                                            int threads);

// Every operation is `client->Handshake({ns})`, whatever its kind, on `threads` threads of
// the target (Handshake is blocking).
std::unique_ptr<Target> MakeEmptyCallTarget(std::shared_ptr<KvClient> client, std::string ns,
                                            int threads);

}  // namespace stategate::bench
