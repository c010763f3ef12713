#include "src/server/admin_service.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "src/common/grpc_status.h"
#include "src/common/quote.h"
#include "src/common/status_macros.h"

namespace stategate::server {
namespace {

absl::StatusOr<absl::Duration> FromMicros(int64_t micros, absl::string_view field) {
  if (micros < 0 || absl::Microseconds(micros) > kMaxFaultDuration) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " is ", micros, "; must be in [0, ", absl::ToInt64Microseconds(kMaxFaultDuration),
        "] (", absl::FormatDuration(kMaxFaultDuration), ")"));
  }
  return absl::Microseconds(micros);
}

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* ctx, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

absl::StatusOr<FaultSpec> FaultSpecFromProto(const v1::FaultSpec& proto) {
  FaultSpec spec;
  const v1::LatencyFault& latency = proto.latency();
  SG_ASSIGN_OR_RETURN(spec.latency.delay,
                      FromMicros(latency.delay_us(), "faults.latency.delay_us"));
  if (latency.has_share()) spec.latency.share = latency.share();
  SG_ASSIGN_OR_RETURN(spec.latency.applies_to,
                      ParseAppliesTo(latency.applies_to(), "faults.latency.applies_to"));

  const v1::ErrorFault& error = proto.error();
  spec.error.rate = error.rate();
  if (!error.code().empty()) {
    SG_ASSIGN_OR_RETURN(spec.error.code, ParseErrorCode(error.code(), "faults.error.code"));
  }
  SG_ASSIGN_OR_RETURN(spec.error.applies_to,
                      ParseAppliesTo(error.applies_to(), "faults.error.applies_to"));
  if (error.has_pushback_us()) {
    SG_ASSIGN_OR_RETURN(spec.error.pushback,
                        FromMicros(error.pushback_us(), "faults.error.pushback_us"));
  }
  SG_RETURN_IF_ERROR(ValidateFaultSpec(spec, "faults"));
  return spec;
}

v1::FaultSpec FaultSpecToProto(const FaultSpec& spec) {
  v1::FaultSpec proto;
  if (!spec.Active()) return proto;
  v1::LatencyFault* latency = proto.mutable_latency();
  latency->set_delay_us(absl::ToInt64Microseconds(spec.latency.delay));
  latency->set_share(spec.latency.share);
  latency->set_applies_to(AppliesToName(spec.latency.applies_to));
  v1::ErrorFault* error = proto.mutable_error();
  error->set_rate(spec.error.rate);
  error->set_code(absl::StatusCodeToString(spec.error.code));
  error->set_applies_to(AppliesToName(spec.error.applies_to));
  error->set_pushback_us(absl::ToInt64Microseconds(spec.error.pushback));
  return proto;
}

absl::StatusOr<std::shared_ptr<const NamespaceSet>> AdminService::Begin(
    grpc::CallbackServerContext* ctx) {
  std::shared_ptr<const NamespaceSet> set = namespaces_->Current();
  ctx->AddTrailingMetadata(kConfigVersionKey, std::to_string(set->version));
  if (faults_ == nullptr) {
    return absl::FailedPreconditionError(
        "fault injection is off: the server was not started with --fault-injection");
  }
  return set;
}

absl::Status AdminService::CheckNamespace(const NamespaceSet& set, const std::string& ns) const {
  if (set.Find(ns) == nullptr) {
    return absl::NotFoundError(absl::StrCat("namespace ", QuoteInput(ns), " is not served here"));
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* AdminService::SetFaults(grpc::CallbackServerContext* ctx,
                                                  const v1::SetFaultsRequest* request,
                                                  v1::SetFaultsResponse* response) {
  absl::StatusOr<std::shared_ptr<const NamespaceSet>> set = Begin(ctx);
  if (!set.ok()) return Finish(ctx, set.status());
  if (absl::Status s = CheckNamespace(**set, request->namespace_()); !s.ok()) {
    return Finish(ctx, s);
  }
  absl::StatusOr<FaultSpec> spec = FaultSpecFromProto(request->faults());
  if (!spec.ok()) return Finish(ctx, spec.status());
  faults_->Set(request->namespace_(), *spec);
  spdlog::warn("fault injection: namespace {}: {}", request->namespace_(), DescribeFaults(*spec));
  *response->mutable_faults() = FaultSpecToProto(*spec);
  return Finish(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminService::GetFaults(grpc::CallbackServerContext* ctx,
                                                  const v1::GetFaultsRequest* request,
                                                  v1::GetFaultsResponse* response) {
  absl::StatusOr<std::shared_ptr<const NamespaceSet>> set = Begin(ctx);
  if (!set.ok()) return Finish(ctx, set.status());
  if (absl::Status s = CheckNamespace(**set, request->namespace_()); !s.ok()) {
    return Finish(ctx, s);
  }
  *response->mutable_faults() = FaultSpecToProto(faults_->Get(request->namespace_()));
  return Finish(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* AdminService::Pause(grpc::CallbackServerContext* ctx,
                                              const v1::PauseRequest* request,
                                              v1::PauseResponse* /*response*/) {
  absl::StatusOr<std::shared_ptr<const NamespaceSet>> set = Begin(ctx);
  if (!set.ok()) return Finish(ctx, set.status());
  absl::StatusOr<absl::Duration> duration = FromMicros(request->duration_us(), "duration_us");
  if (!duration.ok()) return Finish(ctx, duration.status());
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  // On a worker: the pause may wait for another one to end first.
  pool_->Submit([reactor, duration = *duration] {
    spdlog::warn("fault injection: pausing the process for {}", absl::FormatDuration(duration));
    absl::Status status = PauseProcess(duration);
    if (status.ok()) spdlog::warn("fault injection: pause over");
    reactor->Finish(ToGrpcStatus(status));
  });
  return reactor;
}

}  // namespace stategate::server
