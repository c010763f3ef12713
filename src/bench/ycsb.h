// The YCSB core workloads A–F (Cooper et al., "Benchmarking Cloud Serving Systems with
// YCSB", SoCC 2010, and YCSB's CoreWorkload and workloads/workload[a-f]): which operation
// comes next, and which record it touches. Keys, fields and values are YCSB's: record i is
// "user" followed by the decimal FNV-1a 64 hash of i (inserts not ordered), fields are
// "field0".."fieldN-1".
//
//   a: read 0.5, update 0.5, zipfian          d: read 0.95, insert 0.05, latest
//   b: read 0.95, update 0.05, zipfian        e: scan 0.95, insert 0.05, zipfian,
//   c: read 1.0, zipfian                         scan length uniform in [1, 100]
//   f: read 0.5, read-modify-write 0.5, zipfian
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace stategate::bench::ycsb {

enum class OpKind { kRead, kUpdate, kInsert, kScan, kReadModifyWrite };
// "read", "update", "insert", "scan", "read-modify-write".
std::string_view OpKindName(OpKind kind);

enum class Distribution { kUniform, kZipfian, kLatest };

struct Workload {
  std::string name;  // "a".."f"
  // Proportions of each operation; they sum to 1.
  double read = 0;
  double update = 0;
  double insert = 0;
  double scan = 0;
  double read_modify_write = 0;
  Distribution request_distribution = Distribution::kZipfian;
  // Scan lengths are uniform in [1, max_scan_length].
  int64_t max_scan_length = 100;
};

// The standard workload "a".."f" (case-insensitive); INVALID_ARGUMENT naming them otherwise.
[[nodiscard]] absl::StatusOr<Workload> StandardWorkload(std::string_view name);

// Every operation kind the workload can produce (a proportion above zero), in OpKind order.
std::vector<OpKind> OperationKinds(const Workload& workload);

// YCSB's key of record `index`: "user" + decimal FNV-1a 64 of index, as YCSB's
// Utils.fnvhash64 computes it: the 8 bytes of index, least significant first, then Java's
// Math.abs of the hash read as a signed 64-bit integer (which leaves INT64_MIN negative).
std::string RecordKey(int64_t index);
// "field" + index.
std::string FieldName(int index);

// Zipfian over [0, items) with constant theta (YCSB: 0.99), by Gray et al.'s "Quickly
// generating billion-record synthetic databases": item 0 is the most popular, then 1, ...
// Item 0 has probability 1 / zeta(items, theta) exactly; later items follow Gray's
// approximation, as in YCSB.
//
// The constructor sums zeta(items, theta) term by term: O(items) time (about 0.1 s for 10
// million items), nothing afterwards. `items` >= 1 and 0 < theta < 1.
//
// Immutable after construction: concurrent Next calls, each with its own generator, are safe.
class ZipfianGenerator {
 public:
  ZipfianGenerator(int64_t items, double theta = 0.99);
  int64_t Next(std::mt19937_64& rng) const;
  int64_t items() const { return items_; }

 private:
  int64_t items_;
  double theta_;
  double alpha_;
  double zetan_;
  double eta_;
  double zeta2theta_;
};

// One operation of a run, as the generator chose it.
struct Operation {
  OpKind kind = OpKind::kRead;
  // The record read, updated, scanned from or (kInsert) created.
  int64_t record = 0;
  // kUpdate and kReadModifyWrite: the field written (YCSB writes one field per update).
  int field = 0;
  // kScan: records to read.
  int64_t scan_length = 0;
};

// The operations of one run phase. Thread-safe: many threads draw from one generator, each
// with its own std::mt19937_64.
//
// Records [0, initial_records) exist after the load phase; inserts create initial_records,
// initial_records + 1, ... in order. As YCSB does, an operation other than an insert only
// chooses records whose insert has been acknowledged (AcknowledgeInsert), so it never asks
// for one still being written:
// - zipfian: scrambled zipfian (the zipfian rank hashed with FNV-1a 64 over the key
//   space, so popular records are spread out) over initial_records + expected_inserts,
//   drawn again while it falls beyond the acknowledged records. As in YCSB, the rank comes
//   from a zipfian over 10^10 items whose zeta is a constant, so no zeta is computed for
//   the key space;
// - latest: the newest acknowledged record minus a zipfian draw over the acknowledged
//   records, so the newest are the most popular. The constructor computes zeta over
//   initial_records (O(initial_records), see ZipfianGenerator); it is extended by one
//   term per record acknowledged later;
// - uniform: uniform over the acknowledged records.
// With no record acknowledged yet (initial_records 0 and no insert acknowledged), every
// operation other than an insert chooses record 0, which then does not exist.
class OperationGenerator {
 public:
  // `expected_inserts` sizes the zipfian key space as YCSB does (2 x operations x insert
  // proportion, see ExpectedInserts); `fields` (>= 1) is the number of fields per record.
  OperationGenerator(const Workload& workload, int64_t initial_records, int fields,
                     int64_t expected_inserts);

  Operation Next(std::mt19937_64& rng);
  // Insert of `record` done (successfully or not): reads may choose it from now on, once
  // every insert before it is acknowledged too. Every insert Next returned must be
  // acknowledged exactly once: the acknowledgements after a missing one are kept (memory
  // grows with them) until it comes.
  void AcknowledgeInsert(int64_t record);
  // Records whose inserts are acknowledged, contiguously from 0.
  int64_t acknowledged_records() const;

 private:
  // What the drawing threads share. Behind a pointer so that the generator stays movable
  // (a mutex and atomics are not).
  struct Shared {
    // The record the next insert creates.
    std::atomic<int64_t> next_insert{0};
    // Records acknowledged contiguously from 0. Written under ack_mu; read without it.
    std::atomic<int64_t> acknowledged{0};

    absl::Mutex ack_mu;
    // ack_window[i]: whether record `acknowledged + i` is acknowledged. YCSB keeps a fixed
    // window of 2^20 and fails when it overflows; this one grows with the acknowledgements
    // that wait for an earlier one, which in a run is bounded by the inserts in flight.
    std::deque<bool> ack_window ABSL_GUARDED_BY(ack_mu);

    // kLatest: the zipfian over the acknowledged records. Its zeta grows with them.
    absl::Mutex latest_mu;
    int64_t latest_items ABSL_GUARDED_BY(latest_mu) = 0;
    double latest_zetan ABSL_GUARDED_BY(latest_mu) = 0;
    double latest_eta ABSL_GUARDED_BY(latest_mu) = 0;
  };

  OpKind NextKind(std::mt19937_64& rng) const;
  // The record of an operation other than an insert.
  int64_t NextRecord(std::mt19937_64& rng);
  int64_t NextScrambledZipfian(std::mt19937_64& rng) const;
  int64_t NextLatest(std::mt19937_64& rng);

  Distribution distribution_;
  int64_t max_scan_length_;
  int fields_;
  // Zipfian: initial_records + expected_inserts.
  int64_t key_space_;
  // The operation kinds with a proportion above zero and their share of the total, in
  // OpKind order (YCSB's DiscreteGenerator).
  std::vector<std::pair<OpKind, double>> kinds_;
  std::unique_ptr<Shared> shared_;
};

// YCSB's sizing of the zipfian key space for a run of `operations` operations:
// operations x insert proportion x 2.0, truncated toward zero (YCSB casts to a Java int,
// which also caps it at 2^31 - 1; this does not).
int64_t ExpectedInserts(const Workload& workload, int64_t operations);

}  // namespace stategate::bench::ycsb
