#include "store/store_types.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace trialmatch::store {

std::string_view LifecycleName(Lifecycle lifecycle) {
  switch (lifecycle) {
    case Lifecycle::kActive:
      return "ACTIVE";
    case Lifecycle::kLeftScope:
      return "LEFT_SCOPE";
    case Lifecycle::kVanished:
      return "VANISHED";
  }
  return "ACTIVE";
}

absl::StatusOr<Lifecycle> ParseLifecycle(std::string_view name) {
  for (const Lifecycle l :
       {Lifecycle::kActive, Lifecycle::kLeftScope, Lifecycle::kVanished}) {
    if (name == LifecycleName(l)) return l;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown lifecycle '", common::ToAbsl(name.substr(0, 32)), "'"));
}

absl::StatusOr<StudyRecord> MakeStudyRecord(std::string raw_json) {
  absl::StatusOr<model::Study> study = model::ParseStudy(raw_json);
  if (!study.ok()) return study.status();
  return StudyRecord{std::move(raw_json), *std::move(study)};
}

}  // namespace trialmatch::store
