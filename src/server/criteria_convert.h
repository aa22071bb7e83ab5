// Conversion of compiled eligibility criteria (criteria::CompiledStudy, the
// compiler's plain C++ structs) to the typed trialmatch.v1 messages of
// proto/trialmatch/v1/criteria.proto. Proto types stay at this edge: the
// criteria module knows nothing of them.
//
// Mapping: enums one to one (criteria::Section::kUnspecified, "before any
// heading", is CRITERIA_SECTION_NONE; the proto's _UNSPECIFIED values are
// never produced); index -1 (no parent, no criterion) is an absent optional
// field; absent numeric bounds stay absent; everything else is copied.
//
// Pure functions; thread-safe.
#ifndef TRIALMATCH_SERVER_CRITERIA_CONVERT_H_
#define TRIALMATCH_SERVER_CRITERIA_CONVERT_H_

#include "criteria/compiled_study.h"
#include "trialmatch/v1/criteria.pb.h"

namespace trialmatch::server {

v1::PredicateKind KindToProto(criteria::Kind kind);
v1::Polarity PolarityToProto(criteria::Polarity polarity);
v1::CriteriaSection SectionToProto(criteria::Section section);
v1::EvidenceSource EvidenceSourceToProto(criteria::EvidenceSource source);

// Fills `out` (cleared first).
void CompiledStudyToProto(const criteria::CompiledStudy& study,
                          v1::CompiledStudy* out);

}  // namespace trialmatch::server

#endif  // TRIALMATCH_SERVER_CRITERIA_CONVERT_H_
