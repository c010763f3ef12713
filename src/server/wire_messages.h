// Requests and responses as the wire carries them. Services take their requests as raw
// bytes (gRPC's raw callback methods) and parse them here, because gRPC's own parsing
// answers bytes that are not the request message with UNIMPLEMENTED and no message; ours
// answers INVALID_ARGUMENT naming the message and its size, and gives the size of the
// request as it arrived, for the request limits.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "src/common/grpc_status.h"

namespace stategate::server {

// Parses `bytes` into `message`. INVALID_ARGUMENT when they are not a `Message`.
template <typename Message>
[[nodiscard]] absl::Status ParseRequest(const grpc::ByteBuffer& bytes, Message& message) {
  grpc::ByteBuffer copy(bytes);  // shares the slices: the parse consumes its buffer
  if (!grpc::SerializationTraits<Message>::Deserialize(&copy, &message).ok()) {
    return absl::InvalidArgumentError(absl::StrCat("the request's ", bytes.Length(),
                                                   " bytes are not a valid ",
                                                   Message::descriptor()->full_name()));
  }
  return absl::OkStatus();
}

// Serializes `message` into `bytes`; INTERNAL if protobuf cannot (never for our messages).
template <typename Message>
[[nodiscard]] absl::Status SerializeResponse(const Message& message, grpc::ByteBuffer& bytes) {
  bool own_buffer = false;
  return FromGrpcStatus(
      grpc::SerializationTraits<Message>::Serialize(message, &bytes, &own_buffer));
}

}  // namespace stategate::server
