// Internal to store/: how a model::Study maps onto the columns of the
// `studies` table (shared by StudyStore and the schema migrations).
//
// List-valued fields are stored as newline-joined text (the FTS5 tokenizer
// treats '\n' as a separator; a '\n' inside an item becomes a space), which
// keeps rows small and lets the search index read them directly.
// Pure functions, thread-safe.
#ifndef TRIALMATCH_STORE_STUDY_ROWS_H_
#define TRIALMATCH_STORE_STUDY_ROWS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "model/study.h"

namespace trialmatch::store::internal {

// Derived text columns of a study.
struct StudyColumns {
  std::string phases;          // designModule.phases
  std::string conditions;      // conditionsModule.conditions
  std::string condition_mesh;  // MeSH terms, then MeSH ancestors
  std::string interventions;   // intervention names
  std::string keywords;        // conditionsModule.keywords
};

StudyColumns DeriveColumns(const model::Study& study);

std::string JoinLines(const std::vector<std::string>& items);
std::vector<std::string> SplitLines(std::string_view text);

// The rowid of a study: the number in its NCT id ("NCT00000102" -> 102), so
// rowid order is NCT id order. Precondition: model::IsValidNctId(nct_id).
int64_t StudyRowId(std::string_view nct_id);
// Inverse: 102 -> "NCT00000102".
std::string NctIdFromRowId(int64_t id);

}  // namespace trialmatch::store::internal

#endif  // TRIALMATCH_STORE_STUDY_ROWS_H_
