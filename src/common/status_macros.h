// Stop-gap status macros until Debian's Abseil ships absl/status/status_macros.h
// (LTS 20260526). Semantics follow that header's comment:
//
//   TRIALMATCH_RETURN_IF_ERROR(expr);
//     Evaluates `expr` (an absl::Status or absl::StatusOr<T>) once; if it is
//     not OK, returns its status from the enclosing function.
//
//   TRIALMATCH_ASSIGN_OR_RETURN(lhs, expr);
//     Evaluates `expr` (an absl::StatusOr<T>) once; on error returns its
//     status, otherwise move-assigns the value to `lhs`. `lhs` may declare a
//     variable (`auto x`, `std::string s`); it is only evaluated on success.
//
// The project prefix avoids a clash with the Abseil macros when they arrive.
#ifndef TRIALMATCH_COMMON_STATUS_MACROS_H_
#define TRIALMATCH_COMMON_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace trialmatch::common_internal {
inline const absl::Status& AsStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& AsStatus(const absl::StatusOr<T>& s) {
  return s.status();
}
}  // namespace trialmatch::common_internal

#define TRIALMATCH_STATUS_CONCAT_INNER_(a, b) a##b
#define TRIALMATCH_STATUS_CONCAT_(a, b) TRIALMATCH_STATUS_CONCAT_INNER_(a, b)

#define TRIALMATCH_RETURN_IF_ERROR(expr)                                  \
  do {                                                                    \
    if (auto&& trialmatch_status_ = (expr); !trialmatch_status_.ok()) {   \
      return ::trialmatch::common_internal::AsStatus(trialmatch_status_); \
    }                                                                     \
  } while (false)

#define TRIALMATCH_ASSIGN_OR_RETURN(lhs, expr)                          \
  TRIALMATCH_ASSIGN_OR_RETURN_IMPL_(                                    \
      TRIALMATCH_STATUS_CONCAT_(trialmatch_statusor_, __LINE__), lhs, expr)

#define TRIALMATCH_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                      \
  if (!statusor.ok()) return std::move(statusor).status();     \
  lhs = std::move(statusor).value()

#endif  // TRIALMATCH_COMMON_STATUS_MACROS_H_
