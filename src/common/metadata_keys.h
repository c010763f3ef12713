// The gRPC metadata keys of stategate's own signals, shared by the gateway and the client.
#pragma once

namespace stategate {

// Trailing metadata of every response: the version of the server's namespace config
// (control.proto); a client that sees a new one handshakes again.
inline constexpr char kConfigVersionKey[] = "stategate-config-version";

// Trailing metadata of responses from a gateway that is draining: it will stop accepting
// calls shortly, and a client with other gateways sends its next calls there.
inline constexpr char kDrainingKey[] = "stategate-draining";

// Trailing metadata of an UNAVAILABLE answer that is about one shard behind the gateway
// (its value), not the gateway: a client keeps sending the gateway its other calls.
inline constexpr char kShardUnavailableKey[] = "stategate-shard-unavailable";

// Request metadata: the call's priority tier (critical, normal, sheddable).
inline constexpr char kPriorityMetadataKey[] = "stategate-priority";

}  // namespace stategate
