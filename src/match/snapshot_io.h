// A built Snapshot saved to a binary file and read back, so a server or the
// CLI starts from the file in about a second instead of re-reading and
// re-parsing every stored study (minutes at 100k studies).
//
//   TRIALMATCH_RETURN_IF_ERROR(WriteSnapshot(*snapshot, key, path));
//   ...
//   absl::StatusOr<std::shared_ptr<const Snapshot>> loaded =
//       ReadSnapshot(path, key, {.rules = rule_set});
//   if (!loaded.ok()) { /* build from the store instead */ }
//
// The file holds every member of the Snapshot (docs/match.md, "Snapshot
// file", has the layout): a header (magic, format version, byte-order mark,
// the SnapshotKey it was built for), the body (length-prefixed strings,
// length-prefixed arrays, structs field by field, hash maps as sorted
// key/list pairs: a given snapshot always gives the same bytes), and a
// trailer with the body length and a CRC-32 (zlib) of everything before it.
// SnapshotOptions::rules is not stored: the reader is given it.
//
// The SnapshotKey says what the snapshot was built from; the caller (server/
// snapshot_manager.h) makes it from the store's generation, the compiler and
// rules versions. A file whose key differs from the expected one is stale.
// kSnapshotFormatVersion covers the layout and what SnapshotBuilder derives:
// bump it whenever either changes (snapshot_io.cc fails to compile when a
// member is added to Snapshot or to its records without updating the codec).
//
// Reading trusts nothing: every length is checked against the file size
// before anything is allocated, every index against the array it points
// into, trees for cycles, posting lists for order, enums and flags for range,
// and the CRC over the whole file. A truncated, corrupt, hostile, stale or
// older-format file gives an error, never a crash or a snapshot that would
// misbehave.
//
// Thread safety: the functions are thread-safe (no shared state). Writes are
// atomic (temporary file in the same directory, fsync, rename, fsync of the
// directory): readers see the old file or the new one, never a mix, even
// with several processes writing the same path.
#ifndef TRIALMATCH_MATCH_SNAPSHOT_IO_H_
#define TRIALMATCH_MATCH_SNAPSHOT_IO_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "criteria/rule_set.h"
#include "match/snapshot.h"

namespace trialmatch::match {

// Version 1: the first layout; 2, 3: the structured gate in StudyKey;
// 4: relevance posting lists hold by_bound ranks instead of study indexes;
// 5: fact counts include conditions (kFactConditionList,
// kFactRequiredCondition); 6: any-of groups count as always UNKNOWN or on a
// fact when all their alternatives do; 7: the age gate in days at the
// evaluator's own thresholds (StudyKey::min_age_days).
inline constexpr uint32_t kSnapshotFormatVersion = 7;

// What a snapshot was built from. Two snapshots with equal keys (and the same
// format version) are interchangeable.
struct SnapshotKey {
  // Identity of the store file (random, made with the store), its change
  // counter and the random token of its last change (store::
  // StoreGeneration): any write that can change the snapshot moves them.
  std::string store_id;
  int64_t store_generation = 0;
  int64_t store_token = 0;
  // criteria::kCompilerVersion and RuleSet::version() (a hash of the rule
  // files) the studies were compiled with.
  std::string compiler_version;
  std::string rules_version;

  bool operator==(const SnapshotKey&) const = default;
  // "store 3f2a.. generation 1234, compiler 1.0.0, rules 2+0123456789abcdef"
  std::string ToString() const;
};

struct SnapshotReadOptions {
  // Becomes the snapshot's SnapshotOptions::rules (not stored in the file).
  std::shared_ptr<const criteria::RuleSet> rules;
  // false skips the CRC check (fuzzing reaches the structural checks with
  // it; never in production).
  bool verify_checksum = true;
};

// Writes `snapshot` with `key` to `path` atomically (see the file comment).
// Errors: kInvalidArgument for an empty path; kPermissionDenied /
// kNotFound / kResourceExhausted / kInternal when the temporary file cannot
// be created, written, synced or renamed (the temporary file is removed; an
// existing file at `path` is left as it was).
absl::Status WriteSnapshot(const Snapshot& snapshot, const SnapshotKey& key,
                           const std::string& path);

// The key stored in the file's header (reads the header only).
// Errors: kNotFound when the file does not exist; kPermissionDenied;
// kFailedPrecondition for another format version or byte order; kDataLoss
// when it is not a snapshot file or the header is damaged.
absl::StatusOr<SnapshotKey> ReadSnapshotKey(const std::string& path);

// Reads the snapshot at `path`, which must have been written for `expected`.
// Errors: as ReadSnapshotKey, plus kFailedPrecondition when the file's key
// differs from `expected` (stale: nothing past the header is read) and
// kDataLoss when the file is truncated, fails its CRC or holds anything
// inconsistent (the message says what).
absl::StatusOr<std::shared_ptr<const Snapshot>> ReadSnapshot(
    const std::string& path, const SnapshotKey& expected,
    const SnapshotReadOptions& options = {});

// The same from bytes in memory; `expected` may be null (any key accepted).
// For tests and the fuzzer.
absl::StatusOr<std::shared_ptr<const Snapshot>> ReadSnapshotFromBytes(
    std::string_view bytes, const SnapshotKey* expected,
    const SnapshotReadOptions& options = {});

}  // namespace trialmatch::match

#endif  // TRIALMATCH_MATCH_SNAPSHOT_IO_H_
