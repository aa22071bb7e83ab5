#include "store/study_rows.h"

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/strings.h"

namespace trialmatch::store::internal {

std::string JoinLines(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out.push_back('\n');
    for (const char c : item) out.push_back(c == '\n' || c == '\r' ? ' ' : c);
  }
  return out;
}

std::vector<std::string> SplitLines(std::string_view text) {
  if (text.empty()) return {};
  return absl::StrSplit(common::ToAbsl(text), '\n');
}

StudyColumns DeriveColumns(const model::Study& study) {
  StudyColumns c;
  c.phases = JoinLines(study.phases);
  c.conditions = JoinLines(study.conditions);
  std::vector<std::string> mesh;
  mesh.reserve(study.condition_meshes.size() +
               study.condition_ancestors.size());
  for (const model::MeshTerm& t : study.condition_meshes)
    mesh.push_back(t.term);
  for (const model::MeshTerm& t : study.condition_ancestors) {
    mesh.push_back(t.term);
  }
  c.condition_mesh = JoinLines(mesh);
  c.interventions = JoinLines(study.interventions);
  c.keywords = JoinLines(study.keywords);
  return c;
}

int64_t StudyRowId(std::string_view nct_id) {
  int64_t id = 0;
  for (const char c : nct_id.substr(3)) id = id * 10 + (c - '0');
  return id;
}

std::string NctIdFromRowId(int64_t id) {
  return absl::StrFormat("NCT%08d", id);
}

}  // namespace trialmatch::store::internal
