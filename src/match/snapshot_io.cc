#include "match/snapshot_io.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/huge_pages.h"
#include "common/strings.h"

namespace trialmatch::match {

namespace internal {

// Friend of Snapshot: reaches its members for the codec below.
struct SnapshotCodec {
  template <typename V>
  static void Fields(V& v, Snapshot& s);
  static absl::Status Validate(const Snapshot& s);
  static absl::Status RebuildLookups(Snapshot& s);
  static Snapshot* New() { return new Snapshot(); }
  static void SetRules(Snapshot& s,
                       std::shared_ptr<const criteria::RuleSet> rules) {
    s.options_.rules = std::move(rules);
  }
};

}  // namespace internal

namespace {

using internal::CompactPredicate;
using internal::CompactStudy;
using internal::Concept;
using internal::FactCount;
using internal::kNoId;
using internal::Node;
using internal::OpenSite;
using internal::SiteCap;
using internal::SnapshotCodec;
using internal::StudyKey;

// ---------------------------------------------------------------------------
// Layout guards. The codec below lists every member of Snapshot and of the
// records it holds; when one of them changes, these fail to compile: update
// the Fields() functions (and Validate), then bump kSnapshotFormatVersion.

// Counts the members of an aggregate: T{a, b, ...} with as many arguments as
// it accepts (each converts to anything, so nested aggregates count once).
struct AnyField {
  template <typename T>
  operator T() const;  // NOLINT: declared only, for unevaluated contexts
};
template <typename T, typename... A>
consteval size_t FieldCount() {
  if constexpr (requires { T{A{}..., AnyField{}}; }) {
    return FieldCount<T, A..., AnyField>();
  } else {
    return sizeof...(A);
  }
}

static_assert(FieldCount<StudyInfo>() == 15,
              "StudyInfo changed: update the codec");
static_assert(FieldCount<PredicateInfo>() == 10,
              "PredicateInfo changed: update the codec");
static_assert(FieldCount<SiteRecord>() == 8,
              "SiteRecord changed: update the codec");
static_assert(FieldCount<CompactPredicate>() == 20,
              "CompactPredicate changed: update the codec");
static_assert(FieldCount<Node>() == 6, "Node changed: update the codec");
static_assert(FieldCount<Concept>() == 5, "Concept changed: update the codec");
static_assert(FieldCount<OpenSite>() == 3,
              "OpenSite changed: update the codec");
static_assert(FieldCount<CompactStudy>() == 15,
              "CompactStudy changed: update the codec");
static_assert(FieldCount<FactCount>() == 2,
              "FactCount changed: update the codec");
static_assert(FieldCount<SiteCap>() == 5, "SiteCap changed: update the codec");
static_assert(FieldCount<StudyKey>() == 14,
              "StudyKey changed: update the codec");
static_assert(FieldCount<SnapshotStats>() == 10,
              "SnapshotStats changed: update the codec");
static_assert(FieldCount<criteria::Span>() == 2,
              "Span changed: update the codec");
static_assert(FieldCount<UnitVector>() == 3,
              "UnitVector changed: update the codec");
#if defined(__x86_64__) && defined(__GLIBCXX__)
// Snapshot is not an aggregate: its size stands in for its member list (any
// added member grows it).
static_assert(sizeof(Snapshot) == 1384, "Snapshot changed: update the codec");
static_assert(sizeof(CompactPredicate) == 48 && sizeof(PredicateInfo) == 44 &&
                  sizeof(SiteRecord) == 32 && sizeof(CompactStudy) == 64 &&
                  sizeof(Node) == 24 && sizeof(Concept) == 20 &&
                  sizeof(OpenSite) == 20 && sizeof(FactCount) == 4,
              "a snapshot record changed: update the codec");
#endif

// ---------------------------------------------------------------------------
// The field lists, one per record type, used by every visitor (writer,
// reader, minimum-size counter). A visitor V provides:
//   v(x)          a number, bool or enum;
//   v.Str(s)      a std::string;
//   v.Vec(x)      a std::vector of numbers (one block);
//   v.Records(x)  a std::vector of records (count, then Fields of each);
//   v.Map(m)      a flat_hash_map<uint32_t, std::vector<uint32_t>>;
//   V::kReading   true when the visitor fills the record in.
// The writer visits through a const_cast and never modifies.

template <typename V>
void Fields(V& v, std::string& s) {
  v.Str(s);
}
template <typename V>
void Fields(V& v, std::vector<uint32_t>& x) {
  v.Vec(x);
}

template <typename V>
void Fields(V& v, SiteRecord& r) {
  v(r.facility);
  v(r.city);
  v(r.state);
  v(r.country);
  v(r.status);
  v(r.latitude);
  v(r.longitude);
  v(r.open);
}

template <typename V>
void Fields(V& v, PredicateInfo& p) {
  v(p.rule_id);
  v(p.field);
  v(p.note);
  v(p.quantity);
  v(p.unit);
  v(p.text_begin);
  v(p.text_size);
  v(p.span.begin);
  v(p.span.end);
  v(p.criterion);
  v(p.source);
}

template <typename V>
void Fields(V& v, StudyInfo& i) {
  v.Str(i.nct_id);
  v.Str(i.title);
  v(i.overall_status);
  v.Vec(i.conditions);
  v.Vec(i.condition_meshes);
  v.Vec(i.ancestors);
  v.Records(i.sites);
  v(i.listed_sites);
  v.Str(i.text);
  v.Records(i.predicates);
  v(i.criteria_count);
  v.Vec(i.conflicts);
  v.Vec(i.notes);
  v(i.compiler_version);
  v(i.rules_version);
}

template <typename V>
void Fields(V& v, UnitVector& u) {
  v(u.x);
  v(u.y);
  v(u.z);
}

template <typename V>
void Fields(V& v, CompactStudy& c) {
  v(c.root);
  v(c.preds_begin);
  v(c.preds_count);
  v(c.rel_begin);
  v(c.rel_count);
  v(c.sites_begin);
  v(c.sites_count);
  Fields(v, c.sites_center);
  v(c.sites_radius);
  v(c.status);
  v(c.has_criteria_text);
  v(c.units);
  v(c.always_unknown);
  v(c.facts_begin);
  v(c.facts_count);
}

template <typename V>
void Fields(V& v, StudyKey& k) {
  v(k.status);
  v(k.units);
  v(k.always_unknown);
  // Bit-fields: through locals.
  bool has_criteria_text = k.has_criteria_text;
  bool exact = k.exact;
  uint8_t sites = k.sites;
  bool requires_female = k.requires_female;
  bool requires_male = k.requires_male;
  bool rejects_healthy_volunteers = k.rejects_healthy_volunteers;
  v(has_criteria_text);
  v(exact);
  v(sites);
  v(requires_female);
  v(requires_male);
  v(rejects_healthy_volunteers);
  if constexpr (V::kReading) {
    v.Check(sites <= internal::kSitesAnywhere, "study key: site code");
    k.has_criteria_text = has_criteria_text;
    k.exact = exact;
    k.sites = sites & 3;
    k.requires_female = requires_female;
    k.requires_male = requires_male;
    k.rejects_healthy_volunteers = rejects_healthy_volunteers;
  }
  v(k.min_age_days);
  v(k.max_age);
  v(k.facts_count);
  v(k.facts_begin);
  v(k.cap.center_x);
  v(k.cap.center_y);
  v(k.cap.center_z);
  v(k.cap.cos_radius);
  v(k.cap.sin_radius);
}

template <typename V>
void Fields(V& v, FactCount& f) {
  v(f.fact);
  v(f.count);
}

template <typename V>
void Fields(V& v, CompactPredicate& p) {
  v(p.low);
  v(p.high);
  v(p.concepts_begin);
  v(p.concepts_count);
  v(p.source);
  v(p.kind_code);
  v(p.polarity_code);
  v(p.sex_code);
  v(p.quantity);
  v(p.age_unit);
  v(p.informational);
  v(p.has_low);
  v(p.low_inclusive);
  v(p.has_high);
  v(p.high_inclusive);
  v(p.relative_to_uln);
  v(p.unit_ok);
  v(p.study_conditions);
  v(p.history_wording);
  v(p.accepts_healthy_volunteers);
}

template <typename V>
void Fields(V& v, Node& n) {
  v(n.any_of);
  v(n.criterion);
  v(n.preds_begin);
  v(n.preds_count);
  v(n.children_begin);
  v(n.children_count);
}

template <typename V>
void Fields(V& v, Concept& c) {
  v(c.name);
  v(c.mesh_begin);
  v(c.mesh_count);
  v(c.anc_begin);
  v(c.anc_count);
}

template <typename V>
void Fields(V& v, OpenSite& o) {
  Fields(v, o.v);
  v(o.latitude_rad);
  v(o.site);
}

template <typename V>
void Fields(V& v, SnapshotStats& st) {
  v(st.studies);
  v(st.predicates);
  v(st.criteria);
  v(st.concepts);
  v(st.mesh_keys);
  v(st.terms);
  v(st.located_sites);
  v(st.open_sites);
  v(st.ancestry_entries);
  v(st.strings);
}

template <typename V>
void Fields(V& v, SnapshotKey& k) {
  v.Str(k.store_id);
  v(k.store_generation);
  v(k.store_token);
  v.Str(k.compiler_version);
  v.Str(k.rules_version);
}

}  // namespace

// Every member but options_ (given to the reader), mesh_key_ / term_key_
// (the inverses of mesh_ids_ / terms_, rebuilt), keys_by_bound_ (keys_ in
// by_bound_ order), unlinked_certain_ / unlinked_order_ / age_fact_,
// site_cells_ / cell_ranks_ / cell_of_rank_ (the site index) and bits_by_mesh_
// / bits_by_ancestor_ / bits_by_term_ (posting bitmaps), rebuilt by
// Snapshot::DeriveIndexes.
template <typename V>
void internal::SnapshotCodec::Fields(V& v, Snapshot& s) {
  v.Records(s.strings_);
  v.Records(s.quantities_);
  v.Records(s.statuses_);
  v.Records(s.mesh_ids_);
  v.Records(s.terms_);
  v.Records(s.info_);
  v.Records(s.compact_);
  v.Records(s.keys_);
  v.Records(s.fact_counts_);
  v.Vec(s.by_bound_);
  v.Records(s.preds_);
  v.Records(s.nodes_);
  v.Vec(s.node_preds_);
  v.Vec(s.node_children_);
  v.Records(s.concepts_);
  v.Vec(s.concept_refs_);
  v.Vec(s.concept_texts_);
  v.Vec(s.concept_from_criteria_);
  v.Vec(s.key_pool_);
  v.Records(s.open_sites_);
  v.Map(s.term_mesh_);
  v.Map(s.ancestry_);
  v.Map(s.by_mesh_);
  v.Map(s.by_ancestor_);
  v.Map(s.by_term_);
  v.Records(s.by_status_);
  match::Fields(v, s.stats_);
}

namespace {

constexpr char kMagic[8] = {'T', 'M', 'S', 'N', 'A', 'P', '\r', '\n'};
constexpr char kTrailerMagic[8] = {'T', 'M', 'S', 'N', 'E', 'N', 'D', '\n'};
constexpr uint32_t kByteOrderMark = 0x01020304;
constexpr uint32_t kSwappedByteOrderMark = 0x04030201;
// Trailer: magic, u64 length of what precedes it, u32 CRC-32 of that.
constexpr size_t kTrailerSize = 8 + 8 + 4;
constexpr size_t kBufferSize = size_t{1} << 20;

absl::Status ErrnoError(int err, std::string_view what,
                        const std::string& path) {
  std::string message =
      absl::StrCat(common::ToAbsl(what), " ", path, ": ", std::strerror(err));
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

uint32_t Crc(uint32_t crc, const void* data, size_t n) {
  if (n == 0) return crc;  // zlib: a null buffer means "initial value"
  return static_cast<uint32_t>(
      crc32_z(crc, static_cast<const Bytef*>(data), n));
}

// ---------------------------------------------------------------------------
// Writing.

// Buffered file output with a running CRC; remembers the first error.
class FileSink {
 public:
  FileSink(int fd, std::string path) : fd_(fd), path_(std::move(path)) {
    buffer_.reserve(kBufferSize);
  }

  void Bytes(const void* data, size_t n) {
    if (!status_.ok() || n == 0) return;
    crc_ = Crc(crc_, data, n);
    written_ += n;
    if (buffer_.size() + n > kBufferSize) Flush();
    if (n >= kBufferSize) {
      WriteAll(data, n);
    } else {
      buffer_.append(static_cast<const char*>(data), n);
    }
  }
  void Flush() {
    if (!buffer_.empty()) WriteAll(buffer_.data(), buffer_.size());
    buffer_.clear();
  }

  uint32_t crc() const { return crc_; }
  uint64_t written() const { return written_; }
  const absl::Status& status() const { return status_; }

 private:
  void WriteAll(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0 && status_.ok()) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        status_ = ErrnoError(errno, "cannot write", path_);
        return;
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
  }

  const int fd_;
  const std::string path_;
  std::string buffer_;
  uint32_t crc_ = 0;
  uint64_t written_ = 0;
  absl::Status status_;
};

class Writer {
 public:
  static constexpr bool kReading = false;
  explicit Writer(FileSink* out) : out_(out) {}

  template <typename T>
  void operator()(const T& x) {
    if constexpr (std::is_same_v<T, bool>) {
      const uint8_t b = x ? 1 : 0;
      out_->Bytes(&b, 1);
    } else if constexpr (std::is_enum_v<T>) {
      const auto u = static_cast<std::underlying_type_t<T>>(x);
      out_->Bytes(&u, sizeof u);
    } else {
      static_assert(std::is_arithmetic_v<T>);
      out_->Bytes(&x, sizeof x);
    }
  }
  void Str(const std::string& s) {
    const auto n = static_cast<uint32_t>(s.size());
    (*this)(n);
    out_->Bytes(s.data(), s.size());
  }
  template <typename T>
  void Vec(const std::vector<T>& x) {
    static_assert(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>);
    (*this)(static_cast<uint64_t>(x.size()));
    out_->Bytes(x.data(), x.size() * sizeof(T));
  }
  template <typename T>
  void Records(const std::vector<T>& x) {
    (*this)(static_cast<uint64_t>(x.size()));
    for (const T& r : x) Fields(*this, const_cast<T&>(r));
  }
  void Map(const absl::flat_hash_map<uint32_t, std::vector<uint32_t>>& m) {
    std::vector<uint32_t> keys;
    keys.reserve(m.size());
    for (const auto& [key, list] : m) keys.push_back(key);
    std::sort(keys.begin(), keys.end());
    (*this)(static_cast<uint64_t>(keys.size()));
    for (uint32_t key : keys) {
      (*this)(key);
      Vec(m.at(key));
    }
  }
  void Check(bool, const char*) {}

 private:
  FileSink* out_;
};

// ---------------------------------------------------------------------------
// Reading.

// The bytes before the trailer, from memory or from a file, with a running
// CRC. Reads go through a cursor over the current chunk: the whole input in
// memory, or a window of the file mapped read-only (kWindowSize at a time,
// pre-faulted, unmapped when done: no kernel copy of the 700 MB of a 100k
// snapshot, and at most one window of file pages in the resident set). The
// per-field fast path is a bounds check and a copy.
class Source {
 public:
  // Memory: the CRC of all `limit` bytes is taken at once.
  Source(const char* data, uint64_t limit) : limit_(limit), file_pos_(limit) {
    cur_ = data;
    end_ = data + limit;
    crc_ = Crc(0, data, static_cast<size_t>(limit));
  }
  // File: `limit` bytes from offset 0 of `fd`.
  Source(int fd, uint64_t limit) : fd_(fd), limit_(limit) {}
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;
  ~Source() { Unmap(); }

  // What is left before the trailer.
  uint64_t remaining() const { return limit_ - consumed(); }
  uint64_t consumed() const {
    return file_pos_ - static_cast<uint64_t>(end_ - cur_);
  }
  uint32_t crc() const { return crc_; }
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  bool io_error() const { return io_error_; }

  void Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
  }

  // Copies n bytes out; false (and an error) past the end. `out` may be
  // null when n is 0 (an empty vector's data()): memcpy must not see it.
  bool Bytes(void* out, size_t n) {
    if (n <= static_cast<size_t>(end_ - cur_)) [[likely]] {
      if (!ok()) return false;
      if (n != 0) std::memcpy(out, cur_, n);
      cur_ += n;
      return true;
    }
    return SlowBytes(static_cast<char*>(out), n);
  }

 private:
  static constexpr size_t kWindowSize = size_t{32} << 20;  // page multiple

  bool SlowBytes(char* dst, size_t n) {
    if (!ok()) return false;
    if (n > remaining()) {
      Fail("truncated (the file ends inside a record)");
      return false;
    }
    while (true) {
      const size_t have = std::min(n, static_cast<size_t>(end_ - cur_));
      if (have != 0) std::memcpy(dst, cur_, have);
      cur_ += have;
      dst += have;
      n -= have;
      if (n == 0) return true;
      if (!NextWindow()) return false;
    }
  }
  // Maps the next window (file_pos_ is a multiple of kWindowSize).
  bool NextWindow() {
    Unmap();
    const size_t n = static_cast<size_t>(
        std::min<uint64_t>(kWindowSize, limit_ - file_pos_));
    if (n == 0 || fd_ < 0) {
      Fail("truncated (the file ends inside a record)");
      return false;
    }
    void* m = ::mmap(nullptr, n, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd_,
                     static_cast<off_t>(file_pos_));
    if (m == MAP_FAILED) {
      io_error_ = true;
      Fail(absl::StrCat("cannot map the file: ", std::strerror(errno)));
      return false;
    }
    map_ = m;
    map_size_ = n;
    cur_ = static_cast<const char*>(m);
    end_ = cur_ + n;
    file_pos_ += n;
    crc_ = Crc(crc_, cur_, n);
    return true;
  }
  void Unmap() {
    if (map_ != nullptr) ::munmap(map_, map_size_);
    map_ = nullptr;
  }

  int fd_ = -1;
  const uint64_t limit_;
  uint64_t file_pos_ = 0;  // input bytes made available so far
  void* map_ = nullptr;
  size_t map_size_ = 0;
  const char* cur_ = nullptr;
  const char* end_ = nullptr;
  uint32_t crc_ = 0;
  std::string error_;
  bool io_error_ = false;
};

// Minimal encoded size of a record (bounds a count before allocating).
struct MinSize {
  static constexpr bool kReading = false;
  uint64_t size = 0;
  template <typename T>
  void operator()(const T&) {
    if constexpr (std::is_same_v<T, bool>) {
      size += 1;
    } else if constexpr (std::is_enum_v<T>) {
      size += sizeof(std::underlying_type_t<T>);
    } else {
      size += sizeof(T);
    }
  }
  void Str(const std::string&) { size += 4; }
  template <typename T>
  void Vec(const std::vector<T>&) {
    size += 8;
  }
  template <typename T>
  void Records(const std::vector<T>&) {
    size += 8;
  }
  template <typename M>
  void Map(const M&) {
    size += 8;
  }
  void Check(bool, const char*) {}
};

template <typename T>
uint64_t MinSizeOf() {
  static const uint64_t size = [] {
    MinSize m;
    T x{};
    Fields(m, x);
    return std::max<uint64_t>(m.size, 1);
  }();
  return size;
}

class Reader {
 public:
  static constexpr bool kReading = true;
  explicit Reader(Source* in) : in_(in) {}

  template <typename T>
  void operator()(T& x) {
    if constexpr (std::is_same_v<T, bool>) {
      uint8_t b = 0;
      if (in_->Bytes(&b, 1)) {
        Check(b <= 1, "a flag is neither 0 nor 1");
        x = b != 0;
      }
    } else if constexpr (std::is_enum_v<T>) {
      std::underlying_type_t<T> u{};
      if (in_->Bytes(&u, sizeof u)) x = static_cast<T>(u);
    } else {
      static_assert(std::is_arithmetic_v<T>);
      in_->Bytes(&x, sizeof x);
    }
  }
  void Str(std::string& s) {
    uint32_t n = 0;
    (*this)(n);
    if (!in_->ok()) return;
    if (n > in_->remaining()) {
      in_->Fail("a string is longer than the rest of the file");
      return;
    }
    s.resize(n);
    in_->Bytes(s.data(), n);
  }
  template <typename T>
  void Vec(std::vector<T>& x) {
    uint64_t n = 0;
    if (!Count(&n, sizeof(T))) return;
    common::ReserveOnHugePages(&x, static_cast<size_t>(n));
    x.resize(static_cast<size_t>(n));
    in_->Bytes(x.data(), x.size() * sizeof(T));
  }
  template <typename T>
  void Records(std::vector<T>& x) {
    uint64_t n = 0;
    if (!Count(&n, MinSizeOf<T>())) return;
    common::ReserveOnHugePages(&x, static_cast<size_t>(n));
    x.resize(static_cast<size_t>(n));
    for (T& r : x) {
      Fields(*this, r);
      if (!in_->ok()) return;
    }
  }
  void Map(absl::flat_hash_map<uint32_t, std::vector<uint32_t>>& m) {
    uint64_t n = 0;
    if (!Count(&n, 4 + 8)) return;
    m.reserve(static_cast<size_t>(n));
    for (uint64_t i = 0; i < n && in_->ok(); ++i) {
      uint32_t key = 0;
      (*this)(key);
      std::vector<uint32_t> list;
      Vec(list);
      if (!in_->ok()) return;
      if (!m.emplace(key, std::move(list)).second) {
        in_->Fail("a map lists a key twice");
      }
    }
  }
  void Check(bool condition, const char* what) {
    if (!condition) in_->Fail(what);
  }

 private:
  // A count of elements of at least `min_size` bytes each, bounded by what
  // is left of the file.
  bool Count(uint64_t* n, uint64_t min_size) {
    (*this)(*n);
    if (!in_->ok()) return false;
    if (*n > in_->remaining() / min_size) {
      in_->Fail("an array is longer than the rest of the file");
      return false;
    }
    return true;
  }

  Source* in_;
};

// ---------------------------------------------------------------------------
// Header.

// Reads magic, byte-order mark, format version and key.
absl::StatusOr<SnapshotKey> ReadHeader(Source& in) {
  char magic[sizeof kMagic];
  uint32_t bom = 0;
  uint32_t version = 0;
  if (!in.Bytes(magic, sizeof magic) ||
      std::memcmp(magic, kMagic, sizeof kMagic) != 0) {
    return absl::DataLossError("not a trialmatch snapshot file (bad magic)");
  }
  in.Bytes(&bom, sizeof bom);
  in.Bytes(&version, sizeof version);
  if (!in.ok()) return absl::DataLossError("snapshot file header truncated");
  if (bom == kSwappedByteOrderMark) {
    return absl::FailedPreconditionError(
        "snapshot file written on a machine of the other byte order");
  }
  if (bom != kByteOrderMark) {
    return absl::DataLossError("snapshot file header damaged (byte order)");
  }
  if (version != kSnapshotFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("snapshot file format version ", version,
                     "; this build reads version ", kSnapshotFormatVersion));
  }
  SnapshotKey key;
  Reader r(&in);
  Fields(r, key);
  if (!in.ok()) {
    return absl::DataLossError(
        absl::StrCat("snapshot file header damaged: ", in.error()));
  }
  return key;
}

absl::StatusOr<std::unique_ptr<Snapshot>> ReadBody(Source& in) {
  std::unique_ptr<Snapshot> snap(SnapshotCodec::New());
  Reader r(&in);
  SnapshotCodec::Fields(r, *snap);
  if (!in.ok()) {
    if (in.io_error()) {
      return absl::InternalError(absl::StrCat("snapshot file: ", in.error()));
    }
    return absl::DataLossError(absl::StrCat("snapshot file: ", in.error()));
  }
  if (in.remaining() != 0) {
    return absl::DataLossError(
        "snapshot file: bytes left over after the snapshot");
  }
  return snap;  // validated by the caller once the CRC matches
}

// Parses the trailer bytes and checks them against what was read.
absl::Status CheckTrailer(const char* trailer, const Source& in,
                          bool verify_checksum) {
  uint64_t length = 0;
  uint32_t crc = 0;
  std::memcpy(&length, trailer + 8, sizeof length);
  std::memcpy(&crc, trailer + 16, sizeof crc);
  if (std::memcmp(trailer, kTrailerMagic, sizeof kTrailerMagic) != 0 ||
      length != in.consumed()) {
    return absl::DataLossError("snapshot file truncated (no valid trailer)");
  }
  if (verify_checksum && crc != in.crc()) {
    return absl::DataLossError("snapshot file corrupt (CRC mismatch)");
  }
  return absl::OkStatus();
}

// Validation failures, with the first inconsistency found.
class Problems {
 public:
  bool Check(bool condition, std::string_view what, uint64_t where = 0) {
    if (!condition && message_.empty()) {
      message_ = absl::StrCat(common::ToAbsl(what), " (", where, ")");
    }
    return condition;
  }
  bool ok() const { return message_.empty(); }
  absl::Status status() const {
    return ok() ? absl::OkStatus()
                : absl::DataLossError(
                      absl::StrCat("snapshot file inconsistent: ", message_));
  }

 private:
  std::string message_;
};

bool InRange(uint64_t begin, uint64_t count, uint64_t size) {
  return begin <= size && count <= size - begin;
}

bool StrictlyIncreasing(const uint32_t* p, size_t n) {
  for (size_t i = 1; i < n; ++i) {
    if (p[i - 1] >= p[i]) return false;
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------
// Validation: everything the matcher, the evaluator and explanations index
// without checking.

absl::Status internal::SnapshotCodec::Validate(const Snapshot& s) {
  Problems p;
  const uint64_t n = s.info_.size();
  const uint64_t nstr = s.strings_.size();
  const uint64_t nmesh = s.mesh_ids_.size();
  const uint64_t nterm = s.terms_.size();
  const uint64_t npred = s.preds_.size();
  const uint64_t nnode = s.nodes_.size();
  const uint64_t nref = s.concept_refs_.size();
  auto str_ok = [&](uint32_t id) { return id == kNoString || id < nstr; };
  auto all = [](const std::vector<uint32_t>& v, auto pred) {
    return std::all_of(v.begin(), v.end(), pred);
  };
  auto lt = [](uint64_t bound) {
    return [bound](uint32_t x) { return x < bound; };
  };

  p.Check(n < kNoId, "too many studies", n);
  p.Check(
      s.compact_.size() == n && s.keys_.size() == n && s.by_bound_.size() == n,
      "per-study arrays differ in size", n);
  p.Check(s.quantities_.size() <= internal::kUnknownQuantity,
          "too many quantities", s.quantities_.size());
  p.Check(s.statuses_.size() <= 0x10000, "too many statuses",
          s.statuses_.size());
  p.Check(s.by_status_.size() == s.statuses_.size(),
          "status lists differ from statuses", s.by_status_.size());
  p.Check(s.concept_texts_.size() == nref &&
              s.concept_from_criteria_.size() == nref,
          "concept reference arrays differ in size", nref);
  if (!p.ok()) return p.status();

  // Per study.
  std::vector<uint32_t> indegree;
  std::vector<uint32_t> stack;
  for (uint64_t i = 0; i < n && p.ok(); ++i) {
    const StudyInfo& info = s.info_[i];
    const CompactStudy& c = s.compact_[i];
    p.Check(i == 0 || s.info_[i - 1].nct_id < info.nct_id,
            "studies not sorted by NCT id", i);
    p.Check(str_ok(info.overall_status) && all(info.conditions, str_ok) &&
                all(info.conflicts, str_ok) && all(info.notes, str_ok) &&
                str_ok(info.compiler_version) && str_ok(info.rules_version),
            "study string id out of range", i);
    p.Check(
        all(info.condition_meshes, lt(nmesh)) && all(info.ancestors, lt(nmesh)),
        "study MeSH key out of range", i);
    p.Check(info.listed_sites >= info.sites.size(), "study site count", i);
    for (const SiteRecord& r : info.sites) {
      p.Check(str_ok(r.facility) && str_ok(r.city) && str_ok(r.state) &&
                  str_ok(r.country) && str_ok(r.status),
              "site string id out of range", i);
    }
    const uint64_t cc = info.criteria_count;
    for (const PredicateInfo& pi : info.predicates) {
      p.Check(str_ok(pi.rule_id) && str_ok(pi.field) && str_ok(pi.note) &&
                  str_ok(pi.quantity) && str_ok(pi.unit),
              "predicate string id out of range", i);
      p.Check(InRange(pi.text_begin, pi.text_size, info.text.size()),
              "evidence text out of range", i);
      p.Check(pi.criterion >= -1 && (pi.criterion < 0 ||
                                     static_cast<uint64_t>(pi.criterion) < cc),
              "predicate criterion out of range", i);
      p.Check(static_cast<int>(pi.source) >= 0 &&
                  static_cast<int>(pi.source) <=
                      static_cast<int>(criteria::EvidenceSource::kCriteriaText),
              "evidence source", i);
    }
    // Evaluation form.
    p.Check(c.preds_count == info.predicates.size() &&
                InRange(c.preds_begin, c.preds_count, npred),
            "study predicates out of range", i);
    p.Check(InRange(c.rel_begin, c.rel_count, nref),
            "study relevance concepts out of range", i);
    p.Check(InRange(c.sites_begin, c.sites_count, s.open_sites_.size()),
            "study open sites out of range", i);
    p.Check(c.status < s.statuses_.size(), "study status out of range", i);
    p.Check(InRange(c.facts_begin, c.facts_count, s.fact_counts_.size()),
            "study facts out of range", i);
    p.Check(InRange(c.root, cc + 1, nnode), "study nodes out of range", i);
    if (!p.ok()) break;
    for (uint32_t k = 0; k < c.preds_count; ++k) {
      p.Check(s.preds_[c.preds_begin + k].source < c.preds_count,
              "predicate source out of range", i);
    }
    for (uint32_t k = 0; k < c.sites_count; ++k) {
      p.Check(s.open_sites_[c.sites_begin + k].site < info.sites.size(),
              "open site out of range", i);
    }
    const internal::StudyKey& key = s.keys_[i];
    p.Check(
        key.status < s.statuses_.size() &&
            InRange(key.facts_begin, key.facts_count, s.fact_counts_.size()),
        "study key out of range", i);
    // The criteria tree: nodes root..root+cc, every node reached once from
    // the root (no cycle, no sharing), predicates and children inside.
    const uint64_t first = c.root;
    const uint64_t last = first + cc;  // inclusive
    indegree.assign(cc + 1, 0);
    for (uint64_t ni = first; ni <= last && p.ok(); ++ni) {
      const Node& node = s.nodes_[ni];
      p.Check(node.criterion ==
                  (ni == first ? -1 : static_cast<int64_t>(ni - first - 1)),
              "node criterion", i);
      p.Check(
          InRange(node.preds_begin, node.preds_count, s.node_preds_.size()) &&
              InRange(node.children_begin, node.children_count,
                      s.node_children_.size()),
          "node lists out of range", i);
      if (!p.ok()) break;
      for (uint32_t k = 0; k < node.preds_count; ++k) {
        const uint32_t pr = s.node_preds_[node.preds_begin + k];
        p.Check(pr >= c.preds_begin && pr - c.preds_begin < c.preds_count,
                "node predicate outside its study", i);
      }
      for (uint32_t k = 0; k < node.children_count; ++k) {
        const uint32_t ch = s.node_children_[node.children_begin + k];
        if (p.Check(ch > first && ch <= last, "node child outside its study",
                    i)) {
          p.Check(++indegree[ch - first] == 1, "node with two parents", i);
        }
      }
    }
    if (!p.ok()) break;
    uint64_t reached = 0;
    stack.assign(1, static_cast<uint32_t>(first));
    while (!stack.empty()) {
      const Node& node = s.nodes_[stack.back()];
      stack.pop_back();
      ++reached;
      for (uint32_t k = 0; k < node.children_count; ++k) {
        stack.push_back(s.node_children_[node.children_begin + k]);
      }
    }
    p.Check(reached == cc + 1, "criteria tree not reached from its root", i);
  }
  if (!p.ok()) return p.status();

  for (uint64_t k = 0; k < npred && p.ok(); ++k) {
    const CompactPredicate& cp = s.preds_[k];
    p.Check(InRange(cp.concepts_begin, cp.concepts_count, nref) &&
                (cp.quantity == internal::kUnknownQuantity ||
                 cp.quantity < s.quantities_.size()) &&
                cp.kind_code <= static_cast<uint8_t>(criteria::Kind::kOther) &&
                cp.polarity_code <=
                    static_cast<uint8_t>(criteria::Polarity::kExclusion) &&
                cp.sex_code <= static_cast<uint8_t>(model::Sex::kMale) &&
                static_cast<uint8_t>(cp.age_unit) <=
                    static_cast<uint8_t>(internal::AgeUnitCode::kDays),
            "predicate out of range", k);
  }
  for (uint64_t k = 0; k < s.concepts_.size() && p.ok(); ++k) {
    const Concept& c = s.concepts_[k];
    p.Check((c.name == kNoId || c.name < nterm) &&
                InRange(c.mesh_begin, c.mesh_count, s.key_pool_.size()) &&
                InRange(c.anc_begin, c.anc_count, s.key_pool_.size()),
            "concept out of range", k);
    if (p.ok()) {
      p.Check(
          StrictlyIncreasing(s.key_pool_.data() + c.mesh_begin, c.mesh_count) &&
              StrictlyIncreasing(s.key_pool_.data() + c.anc_begin, c.anc_count),
          "concept keys not sorted", k);
    }
  }
  p.Check(all(s.concept_refs_, lt(s.concepts_.size())),
          "concept reference out of range");
  p.Check(all(s.concept_texts_, str_ok), "concept text out of range");
  p.Check(std::all_of(s.concept_from_criteria_.begin(),
                      s.concept_from_criteria_.end(),
                      [](uint8_t b) { return b <= 1; }),
          "concept flag");
  p.Check(all(s.key_pool_, lt(nmesh)), "MeSH key out of range");
  for (const internal::FactCount& f : s.fact_counts_) {
    p.Check(f.fact < 64, "fact out of range", f.fact);
  }
  for (const OpenSite& o : s.open_sites_) {
    p.Check(std::isfinite(o.v.x) && std::isfinite(o.v.y) &&
                std::isfinite(o.v.z) && std::isfinite(o.latitude_rad),
            "open site position");
  }
  {
    std::vector<bool> seen(n, false);
    for (uint32_t x : s.by_bound_) {
      if (!p.Check(x < n && !seen[x], "by_bound is not a permutation", x)) {
        break;
      }
      seen[x] = true;
    }
  }
  auto check_map = [&](const auto& map, uint64_t key_bound,
                       uint64_t value_bound, bool sorted, const char* what) {
    for (const auto& [key, list] : map) {
      p.Check(key < key_bound && all(list, lt(value_bound)) &&
                  (!sorted || StrictlyIncreasing(list.data(), list.size())),
              what, key);
      if (!p.ok()) return;
    }
  };
  check_map(s.term_mesh_, nterm, nmesh, false, "term -> MeSH map");
  check_map(s.ancestry_, nmesh, nmesh, true, "ancestry map");
  check_map(s.by_mesh_, nmesh, n, true, "MeSH posting list");
  check_map(s.by_ancestor_, nmesh, n, true, "ancestor posting list");
  check_map(s.by_term_, nterm, n, true, "term posting list");
  for (const std::vector<uint32_t>& list : s.by_status_) {
    p.Check(all(list, lt(n)) && StrictlyIncreasing(list.data(), list.size()),
            "status posting list");
  }
  p.Check(s.stats_.studies == n, "stats disagree with the studies", n);
  return p.status();
}

absl::Status internal::SnapshotCodec::RebuildLookups(Snapshot& s) {
  // keys_by_bound_ (by_bound_ validated).
  s.DeriveIndexes();
  s.mesh_key_.reserve(s.mesh_ids_.size());
  for (size_t i = 0; i < s.mesh_ids_.size(); ++i) {
    if (!s.mesh_key_.emplace(s.mesh_ids_[i], static_cast<uint32_t>(i)).second) {
      return absl::DataLossError(
          "snapshot file inconsistent: a MeSH id is listed twice");
    }
  }
  s.term_key_.reserve(s.terms_.size());
  for (size_t i = 0; i < s.terms_.size(); ++i) {
    if (!s.term_key_.emplace(s.terms_[i], static_cast<uint32_t>(i)).second) {
      return absl::DataLossError(
          "snapshot file inconsistent: a term is listed twice");
    }
  }
  return absl::OkStatus();
}

std::string SnapshotKey::ToString() const {
  return absl::StrCat("store ", store_id, " generation ", store_generation,
                      ", compiler ", compiler_version, ", rules ",
                      rules_version);
}

namespace {

// Header check, body, trailer, validation; shared by the file and memory
// readers. `trailer` points at kTrailerSize bytes (read by the caller).
absl::StatusOr<std::shared_ptr<const Snapshot>> ReadAll(
    Source& in, const std::function<absl::Status(char*)>& read_trailer,
    const SnapshotKey* expected, const SnapshotReadOptions& options) {
  absl::StatusOr<SnapshotKey> key = ReadHeader(in);
  if (!key.ok()) return key.status();
  if (expected != nullptr && *key != *expected) {
    return absl::FailedPreconditionError(
        absl::StrCat("snapshot file is stale: built for ", key->ToString(),
                     "; now ", expected->ToString()));
  }
  absl::StatusOr<std::unique_ptr<Snapshot>> body = ReadBody(in);
  if (!body.ok()) return body.status();
  char trailer[kTrailerSize];
  if (absl::Status s = read_trailer(trailer); !s.ok()) return s;
  if (absl::Status s = CheckTrailer(trailer, in, options.verify_checksum);
      !s.ok()) {
    return s;
  }
  Snapshot& snap = **body;
  if (absl::Status s = SnapshotCodec::Validate(snap); !s.ok()) return s;
  if (absl::Status s = SnapshotCodec::RebuildLookups(snap); !s.ok()) return s;
  SnapshotCodec::SetRules(snap, options.rules);
  return std::shared_ptr<const Snapshot>(std::move(*body));
}

}  // namespace

absl::Status WriteSnapshot(const Snapshot& snapshot, const SnapshotKey& key,
                           const std::string& path) {
  if (path.empty()) {
    return absl::InvalidArgumentError("WriteSnapshot: empty path");
  }
  std::string tmp = path + ".tmp-XXXXXX";
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, "cannot create a file beside", path);
  auto fail = [&](absl::Status s) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  };
  (void)::fchmod(fd, 0644);
  FileSink sink(fd, tmp);
  Writer w(&sink);
  sink.Bytes(kMagic, sizeof kMagic);
  w(kByteOrderMark);
  w(kSnapshotFormatVersion);
  SnapshotKey k = key;
  Fields(w, k);
  SnapshotCodec::Fields(w, const_cast<Snapshot&>(snapshot));
  const uint64_t length = sink.written();
  const uint32_t crc = sink.crc();
  char trailer[kTrailerSize];
  std::memcpy(trailer, kTrailerMagic, sizeof kTrailerMagic);
  std::memcpy(trailer + 8, &length, sizeof length);
  std::memcpy(trailer + 16, &crc, sizeof crc);
  sink.Bytes(trailer, sizeof trailer);
  sink.Flush();
  if (!sink.status().ok()) return fail(sink.status());
  if (::fsync(fd) != 0) return fail(ErrnoError(errno, "cannot sync", tmp));
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoError(err, "cannot close", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoError(err, "cannot rename the new snapshot file to", path);
  }
  // The rename itself survives a power loss once the directory is synced.
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos
                              ? "."
                              : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return absl::OkStatus();
}

namespace {

// An open snapshot file with its size.
class OpenFile {
 public:
  static absl::StatusOr<OpenFile> Open(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError(errno, "cannot open snapshot file", path);
    OpenFile f(fd);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      return ErrnoError(errno, "cannot stat snapshot file", path);
    }
    if (!S_ISREG(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("snapshot file ", path, " is not a regular file"));
    }
    f.size_ = static_cast<uint64_t>(st.st_size);
    if (f.size_ < sizeof kMagic + 8 + kTrailerSize) {
      return absl::DataLossError(
          absl::StrCat("snapshot file ", path, " is truncated"));
    }
#ifdef POSIX_FADV_SEQUENTIAL
    (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    return f;
  }
  OpenFile(OpenFile&& o) noexcept
      : fd_(std::exchange(o.fd_, -1)), size_(o.size_) {}
  OpenFile& operator=(OpenFile&&) = delete;
  ~OpenFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }
  uint64_t size() const { return size_; }

 private:
  explicit OpenFile(int fd) : fd_(fd) {}
  int fd_;
  uint64_t size_ = 0;
};

}  // namespace

absl::StatusOr<SnapshotKey> ReadSnapshotKey(const std::string& path) {
  absl::StatusOr<OpenFile> f = OpenFile::Open(path);
  if (!f.ok()) return f.status();
  Source in(f->fd(), f->size() - kTrailerSize);
  return ReadHeader(in);
}

absl::StatusOr<std::shared_ptr<const Snapshot>> ReadSnapshot(
    const std::string& path, const SnapshotKey& expected,
    const SnapshotReadOptions& options) {
  absl::StatusOr<OpenFile> f = OpenFile::Open(path);
  if (!f.ok()) return f.status();
  const uint64_t limit = f->size() - kTrailerSize;
  Source in(f->fd(), limit);
  const int fd = f->fd();
  return ReadAll(
      in,
      [&](char* trailer) -> absl::Status {
        size_t got = 0;
        while (got < kTrailerSize) {
          const ssize_t r = ::pread(fd, trailer + got, kTrailerSize - got,
                                    static_cast<off_t>(limit + got));
          if (r < 0 && errno == EINTR) continue;
          if (r <= 0) {
            return absl::DataLossError("snapshot file trailer unreadable");
          }
          got += static_cast<size_t>(r);
        }
        return absl::OkStatus();
      },
      &expected, options);
}

absl::StatusOr<std::shared_ptr<const Snapshot>> ReadSnapshotFromBytes(
    std::string_view bytes, const SnapshotKey* expected,
    const SnapshotReadOptions& options) {
  if (bytes.size() < sizeof kMagic + 8 + kTrailerSize) {
    return absl::DataLossError("snapshot file is truncated");
  }
  const uint64_t limit = bytes.size() - kTrailerSize;
  Source in(bytes.data(), limit);
  return ReadAll(
      in,
      [&](char* trailer) {
        std::memcpy(trailer, bytes.data() + limit, kTrailerSize);
        return absl::OkStatus();
      },
      expected, options);
}

}  // namespace trialmatch::match
