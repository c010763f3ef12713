#include "src/common/grpc_status.h"

#include "gtest/gtest.h"

// The client converts statuses with src/common/grpc_status.h; this pins the mapping down.
namespace stategate {
namespace {

TEST(GrpcStatusTest, EveryCodeMapsOneToOne) {
  for (int code = 0; code <= 16; ++code) {
    const grpc::Status g(static_cast<grpc::StatusCode>(code), code == 0 ? "" : "msg");
    const absl::Status a = FromGrpcStatus(g);
    EXPECT_EQ(static_cast<int>(a.code()), code);
    if (code != 0) {
      EXPECT_EQ(a.message(), "msg");
    }
    const grpc::Status back = ToGrpcStatus(a);
    EXPECT_EQ(back.error_code(), g.error_code());
    EXPECT_EQ(back.error_message(), g.error_message());
  }
}

TEST(GrpcStatusTest, NamesAreGrpcNames) {
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::NOT_FOUND, "x")).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(absl::StatusCodeToString(
                FromGrpcStatus(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "x")).code()),
            "RESOURCE_EXHAUSTED");
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::DATA_LOSS, "x")).code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace stategate
