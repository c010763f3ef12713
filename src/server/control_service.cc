#include "src/server/control_service.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "src/common/grpc_status.h"
#include "src/common/quote.h"

namespace stategate::server {

grpc::ServerUnaryReactor* ControlService::Handshake(grpc::CallbackServerContext* ctx,
                                                    const v1::HandshakeRequest* request,
                                                    v1::HandshakeResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  std::shared_ptr<const NamespaceSet> set = namespaces_->Current();
  ctx->AddTrailingMetadata(kConfigVersionKey, std::to_string(set->version));
  if (request->namespaces().empty()) {
    *response = set->handshake;
  } else {
    response->set_config_version(set->version);
    response->set_max_clock_skew_us(set->handshake.max_clock_skew_us());
    for (const std::string& name : request->namespaces()) {
      auto it = std::find_if(set->handshake.namespaces().begin(), set->handshake.namespaces().end(),
                             [&](const v1::NamespaceInfo& info) { return info.name() == name; });
      if (it == set->handshake.namespaces().end()) {
        reactor->Finish(ToGrpcStatus(absl::NotFoundError(
            absl::StrCat("namespace ", QuoteInput(name), " is not served here"))));
        return reactor;
      }
      *response->add_namespaces() = *it;
    }
  }
  response->set_server_time_us(clock_->NowMicros());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace stategate::server
