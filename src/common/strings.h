// Bridges between std::string_view and absl::string_view.
//
// Debian 12's Abseil is built with ABSL_OPTION_USE_STD_STRING_VIEW=0, so
// absl::string_view is a distinct type: absl::StrCat, absl::StrSplit,
// absl::StripAsciiWhitespace, absl::SimpleAtoi ... do not accept a
// std::string_view. trialmatch's own interfaces take std::string_view; wrap
// at the Abseil call site: absl::StrCat("id ", common::ToAbsl(id)).
// Both functions are free (no copy) and the result aliases the input.
#ifndef TRIALMATCH_COMMON_STRINGS_H_
#define TRIALMATCH_COMMON_STRINGS_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace trialmatch::common {

inline absl::string_view ToAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}
inline std::string_view ToStd(absl::string_view s) {
  return std::string_view(s.data(), s.size());
}

}  // namespace trialmatch::common

#endif  // TRIALMATCH_COMMON_STRINGS_H_
