// Conversions between the public client types (include/stategate/types.h) and the wire
// messages (proto/stategate/v1). Pure functions.
#pragma once

#include "stategate/types.h"
#include "stategate/v1/control.pb.h"
#include "stategate/v1/kv.pb.h"

namespace stategate::client {

void ToProto(const Predicate& predicate, v1::Predicate* out);

HandshakeInfo FromProto(const v1::HandshakeResponse& response);
NamespaceSettings FromProto(const v1::NamespaceInfo& info);

// The key, version and expiry of a read item; the value is left to the caller, which
// verifies it (and may have to fetch it in chunks).
StoredItem StoredItemWithoutValue(const v1::Item& item);

}  // namespace stategate::client
