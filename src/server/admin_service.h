// AdminService: the stategate.v1.Admin gRPC service (proto/stategate/v1/admin.proto) —
// setting faults at run time and pausing the process — and the conversion of fault specs
// to and from the wire. Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "src/common/worker_pool.h"
#include "src/server/faults.h"
#include "src/server/namespaces.h"
#include "stategate/v1/admin.grpc.pb.h"

namespace stategate::server {

// Unset fields take their defaults. INVALID_ARGUMENT naming the field (as "faults.<path>")
// and its limit for anything out of range or unknown.
[[nodiscard]] absl::StatusOr<FaultSpec> FaultSpecFromProto(const v1::FaultSpec& proto);
// Every field filled in; the empty message when `spec` injects nothing.
v1::FaultSpec FaultSpecToProto(const FaultSpec& spec);

class AdminService final : public v1::Admin::CallbackService {
 public:
  // `faults` is null when the server was started without --fault-injection: then every call
  // is FAILED_PRECONDITION. Pauses run on `pool`.
  AdminService(FaultInjector* faults, Namespaces* namespaces, WorkerPool* pool)
      : faults_(faults), namespaces_(namespaces), pool_(pool) {}

  grpc::ServerUnaryReactor* SetFaults(grpc::CallbackServerContext* ctx,
                                      const v1::SetFaultsRequest* request,
                                      v1::SetFaultsResponse* response) override;
  grpc::ServerUnaryReactor* GetFaults(grpc::CallbackServerContext* ctx,
                                      const v1::GetFaultsRequest* request,
                                      v1::GetFaultsResponse* response) override;
  grpc::ServerUnaryReactor* Pause(grpc::CallbackServerContext* ctx, const v1::PauseRequest* request,
                                  v1::PauseResponse* response) override;

 private:
  // The namespace set, after stamping its version on the call; or FAILED_PRECONDITION
  // without --fault-injection.
  absl::StatusOr<std::shared_ptr<const NamespaceSet>> Begin(grpc::CallbackServerContext* ctx);
  absl::Status CheckNamespace(const NamespaceSet& set, const std::string& ns) const;

  FaultInjector* const faults_;
  Namespaces* const namespaces_;
  WorkerPool* const pool_;
};

}  // namespace stategate::server
