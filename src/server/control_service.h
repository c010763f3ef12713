// ControlService: the stategate.v1.Control gRPC service. Handshake tells a client the
// namespaces it may use and their contracts (DESIGN.md, "Handshake"), answered on the gRPC
// thread: it only copies an immutable snapshot. Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include "src/common/clock.h"
#include "src/server/namespaces.h"
#include "stategate/v1/control.grpc.pb.h"

namespace stategate::server {

class ControlService final : public v1::Control::CallbackService {
 public:
  ControlService(Namespaces* namespaces, Clock* clock) : namespaces_(namespaces), clock_(clock) {}

  grpc::ServerUnaryReactor* Handshake(grpc::CallbackServerContext* ctx,
                                      const v1::HandshakeRequest* request,
                                      v1::HandshakeResponse* response) override;

 private:
  Namespaces* const namespaces_;
  Clock* const clock_;
};

}  // namespace stategate::server
