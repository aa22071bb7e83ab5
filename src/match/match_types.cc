#include "match/match_types.h"

namespace trialmatch::match {

std::string_view TestStatusName(TestStatus s) {
  switch (s) {
    case TestStatus::kMet:
      return "MET";
    case TestStatus::kNotMet:
      return "NOT_MET";
    case TestStatus::kUnknown:
      break;
  }
  return "UNKNOWN";
}

std::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kSatisfied:
      return "SATISFIED";
    case Outcome::kViolated:
      return "VIOLATED";
    case Outcome::kInformational:
      return "INFORMATIONAL";
    case Outcome::kUnknown:
      break;
  }
  return "UNKNOWN";
}

std::string_view VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kEligible:
      return "ELIGIBLE";
    case Verdict::kIneligible:
      return "INELIGIBLE";
    case Verdict::kPossible:
      break;
  }
  return "POSSIBLE";
}

std::string_view MatchStrengthName(MatchStrength m) {
  switch (m) {
    case MatchStrength::kExact:
      return "EXACT";
    case MatchStrength::kBroader:
      return "BROADER";
    case MatchStrength::kAncestor:
      return "ANCESTOR";
    case MatchStrength::kNone:
      break;
  }
  return "NONE";
}

}  // namespace trialmatch::match
