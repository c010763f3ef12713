#include "src/bench/ycsb.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstddef>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace stategate::bench::ycsb {
namespace {

constexpr double kZipfianConstant = 0.99;

// YCSB's ScrambledZipfianGenerator draws its ranks from a zipfian over 10^10 items whose
// zeta is this precomputed constant, whatever the key space, and only then reduces the
// rank's hash to the key space: no zeta over the key space is ever summed.
constexpr int64_t kScrambledItems = 10'000'000'000;
constexpr double kScrambledZetan = 26.46902820178302;

// How often a zipfian draw beyond the acknowledged records is redrawn before giving up.
// YCSB redraws without bound, which takes about key space / acknowledged draws: harmless
// after a load phase, but with almost nothing acknowledged yet (initial_records 0) every
// read would make millions of draws.
constexpr int kMaxRedraws = 1000;

constexpr uint64_t kFnvOffsetBasis = 0xCBF29CE484222325;
constexpr uint64_t kFnvPrime = 1099511628211;

// YCSB's Utils.fnvhash64: FNV-1a 64 over the 8 bytes of `value`, least significant first,
// then Java's Math.abs. Math.abs(Long.MIN_VALUE) is Long.MIN_VALUE, so that one hash stays
// negative here too (and negating it would be undefined behaviour in C++).
int64_t FnvHash64(int64_t value) {
  // Java shifts the signed value arithmetically, this the unsigned one logically: the
  // eight octets taken are the same.
  uint64_t bits = static_cast<uint64_t>(value);
  uint64_t hash = kFnvOffsetBasis;
  for (int i = 0; i < 8; ++i) {
    hash ^= bits & 0xff;
    bits >>= 8;
    hash *= kFnvPrime;
  }
  const auto signed_hash = static_cast<int64_t>(hash);
  if (signed_hash == std::numeric_limits<int64_t>::min()) return signed_hash;
  return signed_hash < 0 ? -signed_hash : signed_hash;
}

// Uniform in [0, 1) from 53 random bits, like Java's nextDouble. (std::generate_canonical
// may return 1.0 in libstdc++, LWG 2524, which would put a draw past the last item.)
double UnitDouble(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// `sum` plus 1 / (i + 1)^theta for i in [from, to): zeta(to, theta) when `sum` is
// zeta(from, theta).
double ZetaTerms(int64_t from, int64_t to, double theta, double sum) {
  for (int64_t i = from; i < to; ++i) sum += 1.0 / std::pow(static_cast<double>(i + 1), theta);
  return sum;
}

// Gray et al.'s constants that depend on theta alone.
struct Theta {
  explicit Theta(double theta)
      : theta(theta), alpha(1.0 / (1.0 - theta)), zeta2(ZetaTerms(0, 2, theta, 0)) {}
  double theta;
  double alpha;
  double zeta2;  // zeta(2, theta) = 1 + 0.5^theta
};

const Theta& YcsbTheta() {
  static const Theta theta(kZipfianConstant);
  return theta;
}

double Eta(int64_t items, const Theta& t, double zetan) {
  // With one or two items every draw is settled before eta is used (see GrayDraw), and
  // for two the formula would divide zero by zero.
  if (items <= 2) return 0;
  return (1 - std::pow(2.0 / static_cast<double>(items), 1 - t.theta)) / (1 - t.zeta2 / zetan);
}

// Gray et al.'s draw of a rank in [0, items) for the uniform `u` in [0, 1).
int64_t GrayDraw(double u, int64_t items, double alpha, double zeta2, double zetan, double eta) {
  const double uz = u * zetan;
  if (uz < 1.0) return 0;
  if (uz < zeta2) return 1;  // 1 + 0.5^theta
  const auto rank =
      static_cast<int64_t>(static_cast<double>(items) * std::pow(eta * u - eta + 1, alpha));
  // A u just below 1 can round the power up to 1, one past the last item.
  return std::clamp<int64_t>(rank, 0, items - 1);
}

// The scrambled record of a rank in a key space of `records`. YCSB computes
// fnvhash64(rank) % records, which is negative for the one hash Math.abs leaves negative;
// the unsigned remainder is the same for every other hash and stays in range for that one.
int64_t Scramble(int64_t rank, int64_t records) {
  return static_cast<int64_t>(static_cast<uint64_t>(FnvHash64(rank)) %
                              static_cast<uint64_t>(records));
}

}  // namespace

std::string_view OpKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kRead:
      return "read";
    case OpKind::kUpdate:
      return "update";
    case OpKind::kInsert:
      return "insert";
    case OpKind::kScan:
      return "scan";
    case OpKind::kReadModifyWrite:
      return "read-modify-write";
  }
  return "unknown";
}

absl::StatusOr<Workload> StandardWorkload(std::string_view name) {
  Workload w;
  // absl::string_view is not std::string_view in this Abseil build: convert by hand.
  w.name = absl::AsciiStrToLower(std::string(name));
  w.request_distribution = Distribution::kZipfian;
  if (w.name == "a") {
    w.read = 0.5;
    w.update = 0.5;
  } else if (w.name == "b") {
    w.read = 0.95;
    w.update = 0.05;
  } else if (w.name == "c") {
    w.read = 1.0;
  } else if (w.name == "d") {
    w.read = 0.95;
    w.insert = 0.05;
    w.request_distribution = Distribution::kLatest;
  } else if (w.name == "e") {
    w.scan = 0.95;
    w.insert = 0.05;
    w.max_scan_length = 100;
  } else if (w.name == "f") {
    w.read = 0.5;
    w.read_modify_write = 0.5;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown YCSB workload \"", std::string(name),
                     "\": the standard workloads are a, b, c, d, e and f"));
  }
  return w;
}

std::vector<OpKind> OperationKinds(const Workload& workload) {
  const std::pair<OpKind, double> all[] = {
      {OpKind::kRead, workload.read},
      {OpKind::kUpdate, workload.update},
      {OpKind::kInsert, workload.insert},
      {OpKind::kScan, workload.scan},
      {OpKind::kReadModifyWrite, workload.read_modify_write},
  };
  std::vector<OpKind> kinds;
  for (const auto& [kind, proportion] : all) {
    if (proportion > 0) kinds.push_back(kind);
  }
  return kinds;
}

std::string RecordKey(int64_t index) { return absl::StrCat("user", FnvHash64(index)); }

std::string FieldName(int index) { return absl::StrCat("field", index); }

ZipfianGenerator::ZipfianGenerator(int64_t items, double theta)
    : items_(std::max<int64_t>(items, 1)),
      theta_(theta),
      alpha_(Theta(theta).alpha),
      zetan_(ZetaTerms(0, items_, theta, 0)),
      eta_(Eta(items_, Theta(theta), zetan_)),
      zeta2theta_(Theta(theta).zeta2) {
  assert(items >= 1 && theta > 0 && theta < 1);
}

int64_t ZipfianGenerator::Next(std::mt19937_64& rng) const {
  return GrayDraw(UnitDouble(rng), items_, alpha_, zeta2theta_, zetan_, eta_);
}

OperationGenerator::OperationGenerator(const Workload& workload, int64_t initial_records,
                                       int fields, int64_t expected_inserts)
    : distribution_(workload.request_distribution),
      max_scan_length_(std::max<int64_t>(workload.max_scan_length, 1)),
      fields_(std::max(fields, 1)),
      key_space_(std::max<int64_t>(
          std::max<int64_t>(initial_records, 0) + std::max<int64_t>(expected_inserts, 0), 1)),
      shared_(std::make_unique<Shared>()) {
  assert(initial_records >= 0 && fields >= 1 && expected_inserts >= 0 &&
         workload.max_scan_length >= 1);
  initial_records = std::max<int64_t>(initial_records, 0);

  double total = 0;
  for (OpKind kind : OperationKinds(workload)) {
    double proportion = 0;
    switch (kind) {
      case OpKind::kRead:
        proportion = workload.read;
        break;
      case OpKind::kUpdate:
        proportion = workload.update;
        break;
      case OpKind::kInsert:
        proportion = workload.insert;
        break;
      case OpKind::kScan:
        proportion = workload.scan;
        break;
      case OpKind::kReadModifyWrite:
        proportion = workload.read_modify_write;
        break;
    }
    kinds_.emplace_back(kind, proportion);
    total += proportion;
  }
  assert(!kinds_.empty() && "a workload needs an operation with a proportion above zero");
  for (auto& [kind, share] : kinds_) share /= total;

  shared_->next_insert.store(initial_records);
  shared_->acknowledged.store(initial_records);
  if (distribution_ == Distribution::kLatest) {
    absl::MutexLock lock(&shared_->latest_mu);
    shared_->latest_items = initial_records;
    shared_->latest_zetan = ZetaTerms(0, initial_records, kZipfianConstant, 0);
    shared_->latest_eta = Eta(initial_records, YcsbTheta(), shared_->latest_zetan);
  }
}

Operation OperationGenerator::Next(std::mt19937_64& rng) {
  Operation op;
  op.kind = NextKind(rng);
  if (op.kind == OpKind::kInsert) {
    op.record = shared_->next_insert.fetch_add(1, std::memory_order_relaxed);
    return op;
  }
  op.record = NextRecord(rng);
  if (op.kind == OpKind::kUpdate || op.kind == OpKind::kReadModifyWrite) {
    op.field = std::uniform_int_distribution<int>(0, fields_ - 1)(rng);
  } else if (op.kind == OpKind::kScan) {
    op.scan_length = std::uniform_int_distribution<int64_t>(1, max_scan_length_)(rng);
  }
  return op;
}

OpKind OperationGenerator::NextKind(std::mt19937_64& rng) const {
  if (kinds_.empty()) return OpKind::kRead;
  double u = UnitDouble(rng);
  for (const auto& [kind, share] : kinds_) {
    if (u < share) return kind;
    u -= share;
  }
  // The shares can sum to a hair under 1 after rounding; YCSB would fail here.
  return kinds_.back().first;
}

int64_t OperationGenerator::NextRecord(std::mt19937_64& rng) {
  switch (distribution_) {
    case Distribution::kZipfian:
      return NextScrambledZipfian(rng);
    case Distribution::kLatest:
      return NextLatest(rng);
    case Distribution::kUniform:
      break;
  }
  const int64_t acknowledged = shared_->acknowledged.load(std::memory_order_acquire);
  if (acknowledged == 0) return 0;
  return std::uniform_int_distribution<int64_t>(0, acknowledged - 1)(rng);
}

int64_t OperationGenerator::NextScrambledZipfian(std::mt19937_64& rng) const {
  const Theta& t = YcsbTheta();
  static const double eta = Eta(kScrambledItems, t, kScrambledZetan);
  auto rank = [&rng, &t] {
    return GrayDraw(UnitDouble(rng), kScrambledItems, t.alpha, t.zeta2, kScrambledZetan, eta);
  };
  int64_t acknowledged = 0;
  for (int draw = 0; draw < kMaxRedraws; ++draw) {
    // Reloaded on every draw, as YCSB's nextKeynum does: records acknowledged meanwhile
    // are fair game.
    acknowledged = shared_->acknowledged.load(std::memory_order_acquire);
    if (acknowledged == 0) return 0;
    const int64_t record = Scramble(rank(), key_space_);
    if (record < acknowledged) return record;
  }
  // Almost nothing acknowledged yet: scrambled zipfian over the acknowledged records alone.
  return Scramble(rank(), acknowledged);
}

int64_t OperationGenerator::NextLatest(std::mt19937_64& rng) {
  int64_t items;
  double zetan;
  double eta;
  {
    absl::MutexLock lock(&shared_->latest_mu);
    // Read under the lock: the count only grows, so it is never below the count the zeta
    // was last extended to.
    items = shared_->acknowledged.load(std::memory_order_acquire);
    if (items > shared_->latest_items) {
      // YCSB extends zeta the same way, but recomputes eta from the item count it was
      // constructed with; eta here is the one Gray's algorithm defines for `items`.
      shared_->latest_zetan =
          ZetaTerms(shared_->latest_items, items, kZipfianConstant, shared_->latest_zetan);
      shared_->latest_eta = Eta(items, YcsbTheta(), shared_->latest_zetan);
      shared_->latest_items = items;
    }
    zetan = shared_->latest_zetan;
    eta = shared_->latest_eta;
  }
  if (items == 0) return 0;
  // YCSB's SkewedLatestGenerator draws over `newest` items and returns newest - draw, which
  // never chooses record 0; drawing over all `items` records keeps every one reachable.
  const Theta& t = YcsbTheta();
  return items - 1 - GrayDraw(UnitDouble(rng), items, t.alpha, t.zeta2, zetan, eta);
}

void OperationGenerator::AcknowledgeInsert(int64_t record) {
  absl::MutexLock lock(&shared_->ack_mu);
  const int64_t frontier = shared_->acknowledged.load(std::memory_order_relaxed);
  const bool issued =
      record >= frontier && record < shared_->next_insert.load(std::memory_order_relaxed);
  assert(issued && "AcknowledgeInsert of a record Next did not insert, or acknowledged twice");
  if (!issued) return;
  std::deque<bool>& window = shared_->ack_window;
  const auto slot = static_cast<size_t>(record - frontier);
  if (window.size() <= slot) window.resize(slot + 1, false);
  assert(!window[slot] && "AcknowledgeInsert twice for one record");
  window[slot] = true;
  int64_t advanced = 0;
  while (!window.empty() && window.front()) {
    window.pop_front();
    ++advanced;
  }
  if (advanced > 0) {
    shared_->acknowledged.store(frontier + advanced, std::memory_order_release);
  }
}

int64_t OperationGenerator::acknowledged_records() const {
  return shared_->acknowledged.load(std::memory_order_acquire);
}

int64_t ExpectedInserts(const Workload& workload, int64_t operations) {
  if (operations <= 0 || workload.insert <= 0) return 0;
  return static_cast<int64_t>(static_cast<double>(operations) * workload.insert * 2.0);
}

}  // namespace stategate::bench::ycsb
