// Construction of a KvClient over a channel the caller made, with an injected clock: for
// tests (in-process servers, fake time) and tools that tune the channel themselves.
#pragma once

#include <memory>
#include <vector>

#include "grpcpp/channel.h"
#include "src/common/clock.h"
#include "stategate/kv_client.h"

namespace stategate::client {

// The clock stamps idempotency tokens; it must outlive the client.
std::unique_ptr<KvClient> NewKvClient(const KvClientOptions& options,
                                      std::shared_ptr<grpc::Channel> channel,
                                      const Clock* clock = Clock::Real());

// Over several channels: one endpoint each (gateways holding the same data).
std::unique_ptr<KvClient> NewKvClient(const KvClientOptions& options,
                                      std::vector<std::shared_ptr<grpc::Channel>> channels,
                                      const Clock* clock = Clock::Real());

}  // namespace stategate::client
