// The storage-engine conformance suite: value-parameterized GoogleTest cases that check
// every StorageEngine against the contract in src/storage/engine.h (LWW per item by
// Version, folded ops, point and range tombstones, expiry, paging, scans, tables). Every
// engine runs it unchanged; an engine's test instantiates it with a factory:
//
//   INSTANTIATE_TEST_SUITE_P(RocksDb, StorageEngineConformance,
//                            ::testing::Values(EngineFactory{"rocksdb", ...}),
//                            EngineFactoryName);
//
// Each test makes one engine with a FakeClock and works in tables whose names are unique
// to the test, which it drops at the end, so engines backed by a shared server (Redis) can
// run it too. Link the suite's OBJECT library so the TEST_P registrations are kept.
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "src/common/clock.h"
#include "src/storage/engine.h"

namespace stategate::storage {

struct EngineFactory {
  // Names the instantiation in test names: letters, digits and '_' only.
  std::string name;
  // Makes a fresh engine that reads "now" from `clock` and keeps tombstones for
  // `tombstone_grace`. Called once per test; the engine is destroyed before `teardown`.
  // Returns nullptr (after reporting why, e.g. with ADD_FAILURE) if it cannot.
  std::function<std::unique_ptr<StorageEngine>(Clock* clock, absl::Duration tombstone_grace)> make;
  // Optional: runs after each test, once the engine is destroyed (e.g. to remove a
  // directory or flush a server).
  std::function<void()> teardown;
};

// Lets gtest print a parameter without dumping the bytes of its std::functions.
void PrintTo(const EngineFactory& factory, std::ostream* os);

// A name generator for INSTANTIATE_TEST_SUITE_P: the factory's name.
std::string EngineFactoryName(const ::testing::TestParamInfo<EngineFactory>& info);

// The fixture. Declared here so engine tests can instantiate it; the cases and helpers
// live in conformance_test_suite.cc.
class StorageEngineConformance : public ::testing::TestWithParam<EngineFactory> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // A table name unique to this test (and this run), created and dropped by the fixture
  // when it was made through here.
  std::string NewTable(const std::string& hint);

  // A version `offset_us` after the clock's start, so tombstones stay within grace.
  Version V(int64_t offset_us, const std::string& nonce = "") const;

  absl::Status Apply(const std::string& record, const Version& version, std::vector<WriteOp> ops);
  absl::Status Put(const std::string& record, const std::string& key, const std::string& value,
                   const Version& version, int64_t expires_at_us = 0);

  // Every live item of `record` in `span`, in one unlimited read (which must not set
  // resume_after).
  std::vector<StoredItem> ReadSpan(const std::string& record, const KeySpan& span = {});
  // The (key, value) pairs of ReadSpan(record).
  std::vector<std::pair<std::string, std::string>> ReadAll(const std::string& record);
  // Reads `span` page by page under `limits`, checking each page's contract, until no
  // resume_after is returned. `pages` (if set) receives the number of reads made.
  std::vector<StoredItem> ReadPaged(const std::string& record, KeySpan span,
                                    const ReadLimits& limits, int* pages = nullptr);

  struct ScannedItem {
    std::string record_id;
    std::string key;
    std::string value;
    friend bool operator==(const ScannedItem&, const ScannedItem&) = default;
    friend void PrintTo(const ScannedItem& item, std::ostream* os) {
      *os << "{\"" << absl::CHexEscape(item.record_id) << "\", \"" << absl::CHexEscape(item.key)
          << "\", " << item.value.size() << " bytes}";
    }
  };
  // Scans the whole table page by page under `limits`, checking each page's contract.
  std::vector<ScannedItem> ScanPaged(const ReadLimits& limits, int* pages = nullptr,
                                     int* mid_record_resumes = nullptr);

  FakeClock clock_;
  int64_t base_us_ = 0;
  std::unique_ptr<StorageEngine> engine_;
  std::string table_;  // created in SetUp
  std::vector<std::string> tables_;
};

}  // namespace stategate::storage
