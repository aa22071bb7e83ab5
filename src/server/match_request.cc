#include "server/match_request.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "patient/fhir_reader.h"
#include "patient/json_reader.h"
#include "patient/proto_reader.h"
#include "server/criteria_convert.h"
#include "server/grpc_status.h"
#include "server/study_backend.h"

namespace trialmatch::server {
namespace {

absl::Status Invalid(std::string_view field, std::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(
      "options.", common::ToAbsl(field), ": ", common::ToAbsl(problem)));
}

// The reader's error with the input form in front of its path.
absl::Status InPatient(std::string_view form, const absl::Status& status) {
  return absl::Status(
      status.code(),
      absl::StrCat("patient.", common::ToAbsl(form), ": ", status.message()));
}

void TimeToProto(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t seconds = absl::ToUnixSeconds(t);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>((t - absl::FromUnixSeconds(seconds)) /
                                      absl::Nanoseconds(1)));
}

void EvidenceToProto(const match::EvidenceRef& e, v1::Evidence* out) {
  out->set_source(EvidenceSourceToProto(e.source));
  out->set_field(e.field.data(), e.field.size());
  if (e.source == criteria::EvidenceSource::kCriteriaText) {
    out->mutable_span()->set_begin(e.span.begin);
    out->mutable_span()->set_end(e.span.end);
  }
  out->set_text(e.text.data(), e.text.size());
}

void ExplanationToProto(const match::Explanation& e, v1::Explanation* out) {
  if (e.predicate >= 0) out->set_predicate(e.predicate);
  if (e.criterion >= 0) out->set_criterion(e.criterion);
  out->set_kind(KindToProto(e.kind));
  out->set_polarity(PolarityToProto(e.polarity));
  out->set_status(TestStatusToProto(e.status));
  out->set_outcome(OutcomeToProto(e.outcome));
  if (e.any_of_group >= 0) out->set_any_of_group(e.any_of_group);
  out->set_reason(e.reason.data(), e.reason.size());
  out->set_rule_id(e.rule_id.data(), e.rule_id.size());
  if (!e.evidence.field.empty() || !e.evidence.text.empty()) {
    EvidenceToProto(e.evidence, out->mutable_evidence());
  }
  out->set_note(e.note.data(), e.note.size());
}

void StatsToProto(const match::MatchStats& s, v1::MatchStats* out) {
  out->set_studies(static_cast<int64_t>(s.studies));
  out->set_candidates(static_cast<int64_t>(s.candidates));
  out->set_outside_distance(static_cast<int64_t>(s.outside_distance));
  out->set_pruned(static_cast<int64_t>(s.pruned));
  out->set_site_searches(static_cast<int64_t>(s.site_searches));
  out->set_evaluated(static_cast<int64_t>(s.evaluated));
  out->set_eligible(static_cast<int64_t>(s.eligible));
  out->set_possible(static_cast<int64_t>(s.possible));
  out->set_ineligible(static_cast<int64_t>(s.ineligible));
  out->set_matched(static_cast<int64_t>(s.matched));
  out->set_used_index(s.used_index);
}

}  // namespace

absl::StatusOr<RequestOptions> OptionsFromProto(
    const v1::MatchOptions& options) {
  RequestOptions out;
  match::MatchOptions& m = out.match;
  if (options.top_k() < 0 || options.top_k() > match::kMaxTopK) {
    return Invalid("top_k", absl::StrCat("must be from 1 to ", match::kMaxTopK,
                                         " (0 = 50)"));
  }
  if (options.top_k() > 0) m.top_k = options.top_k();
  if (options.offset() < 0 || options.offset() > match::kMaxTopK - m.top_k) {
    return Invalid("offset",
                   absl::StrCat("must be >= 0 with offset + top_k at most ",
                                match::kMaxTopK));
  }
  out.offset = options.offset();
  m.top_k += out.offset;

  if (options.verdicts_size() > 0) {
    m.verdicts.clear();
    for (int i = 0; i < options.verdicts_size(); ++i) {
      match::Verdict v;
      switch (options.verdicts(i)) {
        case v1::VERDICT_ELIGIBLE:
          v = match::Verdict::kEligible;
          break;
        case v1::VERDICT_POSSIBLE:
          v = match::Verdict::kPossible;
          break;
        case v1::VERDICT_INELIGIBLE:
          v = match::Verdict::kIneligible;
          break;
        default:
          return Invalid(absl::StrCat("verdicts[", i, "]"),
                         "must be VERDICT_ELIGIBLE, VERDICT_POSSIBLE or "
                         "VERDICT_INELIGIBLE");
      }
      if (std::find(m.verdicts.begin(), m.verdicts.end(), v) ==
          m.verdicts.end()) {
        m.verdicts.push_back(v);
      }
    }
  }

  if (options.any_overall_status()) {
    if (options.overall_statuses_size() > 0) {
      return Invalid("overall_statuses",
                     "must be empty with any_overall_status");
    }
    m.statuses.clear();
  } else if (options.overall_statuses_size() > 0) {
    const std::vector<std::string>& known = StudyStatusValues();
    m.statuses.clear();
    for (int i = 0; i < options.overall_statuses_size(); ++i) {
      std::string status = absl::AsciiStrToUpper(
          absl::StripAsciiWhitespace(options.overall_statuses(i)));
      if (std::find(known.begin(), known.end(), status) == known.end()) {
        return Invalid(absl::StrCat("overall_statuses[", i, "]"),
                       absl::StrCat("not a study status; one of ",
                                    absl::StrJoin(known, ", ")));
      }
      if (std::find(m.statuses.begin(), m.statuses.end(), status) ==
          m.statuses.end()) {
        m.statuses.push_back(std::move(status));
      }
    }
  }

  if (options.has_max_distance_km()) {
    const double d = options.max_distance_km();
    if (!std::isfinite(d) || d < 0) {
      return Invalid("max_distance_km", "must be a finite number >= 0");
    }
    m.max_distance_km = d;
  }
  m.include_unlocated = !options.exclude_unlocated();
  m.include_explanations = options.include_explanations();
  m.require_condition_match = !options.include_unrelated();

  out.reader.fhir_conditions_complete = options.fhir_conditions_complete();
  if (!options.reference_date().empty()) {
    absl::StatusOr<absl::CivilDay> day =
        patient::ParseCivilDay(options.reference_date());
    if (!day.ok()) {
      return Invalid("reference_date", "must be a date YYYY-MM-DD");
    }
    out.reader.reference_date = *day;
  }
  return out;
}

absl::StatusOr<patient::Profile> ProfileFromInput(
    const v1::PatientInput& input, const patient::ReaderOptions& options) {
  absl::StatusOr<patient::Profile> profile;
  switch (input.kind_case()) {
    case v1::PatientInput::kProfile:
      profile = patient::FromProto(input.profile(), options);
      if (!profile.ok()) return InPatient("profile", profile.status());
      return profile;
    case v1::PatientInput::kProfileJson:
      profile = patient::FromJson(input.profile_json(), options);
      if (!profile.ok()) return InPatient("profile_json", profile.status());
      return profile;
    case v1::PatientInput::kFhirBundleJson:
      profile = patient::FromFhirBundle(input.fhir_bundle_json(), options);
      if (!profile.ok()) return InPatient("fhir_bundle_json", profile.status());
      return profile;
    case v1::PatientInput::KIND_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(
      "patient: one of profile, profile_json, fhir_bundle_json is required");
}

absl::Status MatchProfileInto(const LoadedSnapshot& snapshot,
                              const match::Matcher& matcher,
                              const patient::Profile& profile,
                              const match::MatchOptions& options, int offset,
                              v1::MatchPatientResponse* out) {
  out->Clear();
  TRIALMATCH_ASSIGN_OR_RETURN(
      match::MatchResponse matched,
      matcher.Match(*snapshot.snapshot, profile, options));
  out->set_patient_id(profile.id);
  const size_t first = std::min(matched.results.size(),
                                static_cast<size_t>(std::max(0, offset)));
  out->mutable_results()->Reserve(
      static_cast<int>(matched.results.size() - first));
  for (size_t i = first; i < matched.results.size(); ++i) {
    MatchResultToProto(matched.results[i], static_cast<int>(i) + 1,
                       out->add_results());
  }
  for (const std::string& note : profile.notes) out->add_notes(note);
  for (const std::string& note : matched.notes) out->add_notes(note);
  StatsToProto(matched.stats, out->mutable_stats());
  SnapshotInfoToProto(snapshot, out->mutable_snapshot());
  return absl::OkStatus();
}

absl::StatusOr<v1::MatchPatientResponse> MatchProfile(
    const LoadedSnapshot& snapshot, const match::Matcher& matcher,
    const patient::Profile& profile, const match::MatchOptions& options,
    int offset) {
  v1::MatchPatientResponse out;
  TRIALMATCH_RETURN_IF_ERROR(
      MatchProfileInto(snapshot, matcher, profile, options, offset, &out));
  return out;
}

absl::Status MatchRequestInto(const LoadedSnapshot& snapshot,
                              const match::Matcher& matcher,
                              const v1::PatientInput& patient,
                              const v1::MatchOptions& options,
                              std::function<absl::Status()> interrupt,
                              v1::MatchPatientResponse* out) {
  TRIALMATCH_ASSIGN_OR_RETURN(RequestOptions o, OptionsFromProto(options));
  TRIALMATCH_ASSIGN_OR_RETURN(patient::Profile profile,
                              ProfileFromInput(patient, o.reader));
  o.match.interrupt = std::move(interrupt);
  return MatchProfileInto(snapshot, matcher, profile, o.match, o.offset, out);
}

absl::StatusOr<v1::MatchPatientResponse> MatchRequest(
    const LoadedSnapshot& snapshot, const match::Matcher& matcher,
    const v1::PatientInput& patient, const v1::MatchOptions& options,
    std::function<absl::Status()> interrupt) {
  v1::MatchPatientResponse out;
  TRIALMATCH_RETURN_IF_ERROR(MatchRequestInto(
      snapshot, matcher, patient, options, std::move(interrupt), &out));
  return out;
}

v1::Verdict VerdictToProto(match::Verdict verdict) {
  switch (verdict) {
    case match::Verdict::kEligible:
      return v1::VERDICT_ELIGIBLE;
    case match::Verdict::kPossible:
      return v1::VERDICT_POSSIBLE;
    case match::Verdict::kIneligible:
      return v1::VERDICT_INELIGIBLE;
  }
  return v1::VERDICT_UNSPECIFIED;
}

v1::CriterionStatus TestStatusToProto(match::TestStatus status) {
  switch (status) {
    case match::TestStatus::kMet:
      return v1::CRITERION_STATUS_MET;
    case match::TestStatus::kNotMet:
      return v1::CRITERION_STATUS_NOT_MET;
    case match::TestStatus::kUnknown:
      return v1::CRITERION_STATUS_UNKNOWN;
  }
  return v1::CRITERION_STATUS_UNSPECIFIED;
}

v1::Outcome OutcomeToProto(match::Outcome outcome) {
  switch (outcome) {
    case match::Outcome::kSatisfied:
      return v1::OUTCOME_SATISFIED;
    case match::Outcome::kViolated:
      return v1::OUTCOME_VIOLATED;
    case match::Outcome::kUnknown:
      return v1::OUTCOME_UNKNOWN;
    case match::Outcome::kInformational:
      return v1::OUTCOME_INFORMATIONAL;
  }
  return v1::OUTCOME_UNSPECIFIED;
}

v1::MatchStrength MatchStrengthToProto(match::MatchStrength strength) {
  switch (strength) {
    case match::MatchStrength::kNone:
      return v1::MATCH_STRENGTH_UNSPECIFIED;
    case match::MatchStrength::kAncestor:
      return v1::MATCH_STRENGTH_ANCESTOR;
    case match::MatchStrength::kBroader:
      return v1::MATCH_STRENGTH_BROADER;
    case match::MatchStrength::kExact:
      return v1::MATCH_STRENGTH_EXACT;
  }
  return v1::MATCH_STRENGTH_UNSPECIFIED;
}

void SnapshotInfoToProto(const LoadedSnapshot& snapshot,
                         v1::SnapshotInfo* out) {
  out->set_study_count(snapshot.snapshot == nullptr
                           ? 0
                           : static_cast<int64_t>(snapshot.snapshot->size()));
  TimeToProto(snapshot.built_at, out->mutable_built_at());
  out->set_generation(snapshot.generation);
  out->set_compiler_version(snapshot.compiler_version);
  out->set_rules_version(snapshot.rules_version);
}

void MatchResultToProto(const match::MatchResult& r, int rank,
                        v1::MatchResult* out) {
  out->set_rank(rank);
  out->set_nct_id(r.nct_id.data(), r.nct_id.size());
  out->set_title(r.title.data(), r.title.size());
  out->set_overall_status(r.overall_status.data(), r.overall_status.size());
  out->set_verdict(VerdictToProto(r.verdict));
  out->set_score(r.score);
  v1::OutcomeCounts* counts = out->mutable_counts();
  counts->set_satisfied(r.counts.satisfied);
  counts->set_violated(r.counts.violated);
  counts->set_unknown(r.counts.unknown);
  counts->set_informational(r.counts.informational);
  for (const match::ConditionMatch& c : r.matched_conditions) {
    v1::ConditionMatch* pc = out->add_matched_conditions();
    pc->set_study_condition(c.study_condition.data(), c.study_condition.size());
    pc->set_patient_condition(c.patient_condition.data(),
                              c.patient_condition.size());
    pc->set_patient_condition_index(c.patient_condition_index);
    pc->set_strength(MatchStrengthToProto(c.strength));
    pc->set_mesh_id(c.mesh_id.data(), c.mesh_id.size());
    pc->set_from_criteria(c.from_criteria);
  }
  if (r.nearest_site.has_value()) {
    const match::Site& s = r.nearest_site->site;
    v1::NearestSite* ps = out->mutable_nearest_site();
    ps->set_facility(s.facility.data(), s.facility.size());
    ps->set_city(s.city.data(), s.city.size());
    ps->set_state(s.state.data(), s.state.size());
    ps->set_country(s.country.data(), s.country.size());
    ps->set_status(s.status.data(), s.status.size());
    ps->set_latitude(s.latitude);
    ps->set_longitude(s.longitude);
    ps->set_distance_km(r.nearest_site->distance_km);
  }
  out->mutable_explanations()->Reserve(static_cast<int>(r.explanations.size()));
  for (const match::Explanation& e : r.explanations) {
    ExplanationToProto(e, out->add_explanations());
  }
  for (match::Outcome o : r.criterion_outcomes) {
    out->add_criterion_outcomes(OutcomeToProto(o));
  }
  for (std::string_view c : r.conflicts) out->add_conflicts(c.data(), c.size());
}

void MatchErrorToProto(const absl::Status& status, v1::MatchError* out) {
  // The same message rules as a call's status (internal details hidden).
  const grpc::Status g = ToGrpcStatus(status);
  out->set_code(static_cast<int32_t>(g.error_code()));
  out->set_code_name(
      absl::StatusCodeToString(static_cast<absl::StatusCode>(g.error_code())));
  out->set_message(g.error_message());
}

}  // namespace trialmatch::server
