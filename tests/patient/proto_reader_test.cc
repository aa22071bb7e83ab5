#include "patient/proto_reader.h"

#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "patient/json_reader.h"
#include "patient_test_util.h"
#include "testing/status_matchers.h"
#include "testing/test_paths.h"

namespace trialmatch::patient {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using ::trialmatch::testing::StatusIs;
using v1::PatientProfile;

ReaderOptions Options() { return TestOptions(); }

PatientProfile ParseText(const std::string& text) {
  PatientProfile proto;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &proto));
  return proto;
}

TEST(FromProtoTest, SameProfileAsTheJsonShape) {
  const std::string textproto = PatientFile("plain_profile.textproto");
  ASSERT_FALSE(textproto.empty());
  absl::StatusOr<Profile> from_proto = FromProto(ParseText(textproto), Options());
  ASSERT_TRUE(from_proto.ok()) << from_proto.status();
  absl::StatusOr<Profile> from_json =
      FromJson(PatientFile("plain_profile.json"), Options());
  ASSERT_TRUE(from_json.ok()) << from_json.status();
  EXPECT_EQ(Dump(*from_proto), Dump(*from_json));
  EXPECT_EQ(from_proto->measurements.size(), 9u);
}

TEST(FromProtoTest, AbsentOptionalsStayUnknown) {
  absl::StatusOr<Profile> p = FromProto(PatientProfile(), Options());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->age_years.has_value());
  EXPECT_FALSE(p->ecog.has_value());
  EXPECT_FALSE(p->karnofsky.has_value());
  EXPECT_EQ(p->sex, Sex::kUnknown);
  EXPECT_EQ(p->pregnant, Tristate::kUnknown);
  EXPECT_EQ(p->breastfeeding, Tristate::kUnknown);
  EXPECT_EQ(p->healthy_volunteer, Tristate::kUnknown);
  EXPECT_FALSE(p->location.has_value());

  // Present-but-zero/false values are facts, not unknowns.
  PatientProfile proto;
  proto.set_age_years(0);
  proto.set_ecog(0);
  proto.set_pregnant(false);
  proto.mutable_location();  // lat 0, lon 0 is a place
  p = FromProto(proto, Options());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->age_years, 0.0);
  EXPECT_EQ(p->ecog, 0);
  EXPECT_EQ(p->pregnant, Tristate::kNo);
  ASSERT_TRUE(p->location.has_value());
  EXPECT_FALSE(p->location->max_distance_km.has_value());
}

TEST(FromProtoTest, ErrorsNameTheFieldWithoutValues) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  struct Case {
    const char* name;
    PatientProfile proto;
    const char* prefix;
    const char* forbidden;
  };
  std::vector<Case> cases;
  {
    PatientProfile p;
    p.set_sex(static_cast<PatientProfile::Sex>(7));
    cases.push_back({"unknown sex enum", p, "sex: unknown enum value", "7"});
  }
  {
    PatientProfile p;
    p.set_age_years(nan);
    cases.push_back({"NaN age", p, "age_years:", "nan"});
  }
  {
    PatientProfile p;
    p.set_birth_date("19-04-1977");
    cases.push_back({"bad birth date", p, "birth_date: must be a YYYY-MM-DD",
                     "1977"});
  }
  {
    PatientProfile p;
    auto* o = p.add_observations();
    o->set_loinc("718-7");
    o->set_value(12);
    o = p.add_observations();
    o->set_loinc("777-3");
    o->set_value(-145.5);
    o->set_unit("10*9/L");
    cases.push_back({"negative platelets", p,
                     "observations[1].value: must not be negative", "145.5"});
  }
  {
    PatientProfile p;
    p.add_observations()->set_value(3);
    cases.push_back({"observation without code or name", p,
                     "observations[0]: needs a loinc code or a name", "3"});
  }
  {
    PatientProfile p;
    auto* c = p.add_conditions();
    c->set_text("gout");
    c->set_clinical_status(static_cast<PatientProfile::ClinicalStatus>(9));
    cases.push_back({"unknown clinical status", p,
                     "conditions[0].clinical_status: unknown enum value", "gout"});
  }
  {
    PatientProfile p;
    auto* c = p.add_conditions();
    c->add_codes()->set_system(static_cast<PatientProfile::CodeSystem>(42));
    cases.push_back({"unknown code system", p,
                     "conditions[0].codes[0].system: unknown enum value", "42"});
  }
  {
    PatientProfile p;
    p.add_medications()->add_codes()->set_system(PatientProfile::CODE_SYSTEM_RXNORM);
    cases.push_back({"code without code", p,
                     "medications[0].codes[0].code: is required", "rxnorm"});
  }
  {
    PatientProfile p;
    p.mutable_location()->set_latitude(-90.5);
    cases.push_back({"latitude", p, "location.latitude:", "90.5"});
  }
  {
    PatientProfile p;
    p.set_karnofsky(55);
    cases.push_back({"karnofsky", p, "karnofsky:", "55"});
  }
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<Profile> p = FromProto(c.proto, Options());
    ASSERT_THAT(p, StatusIs(absl::StatusCode::kInvalidArgument,
                            StartsWith(c.prefix)));
    EXPECT_THAT(std::string(p.status().message()), Not(HasSubstr(c.forbidden)));
  }
}

TEST(FromProtoTest, OversizedListsAreRejectedBeforeCopying) {
  PatientProfile p;
  for (int i = 0; i < 10'001; ++i) {
    auto* o = p.add_observations();
    o->set_name("alt");
    o->set_value(20);
  }
  EXPECT_THAT(FromProto(p, Options()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("observations: 10001 entries exceed")));
}

TEST(FromProtoTest, OtherSystemsByUri) {
  PatientProfile p;
  auto* c = p.add_conditions()->add_codes();
  c->set_system(PatientProfile::CODE_SYSTEM_OTHER);
  c->set_system_uri("http://snomed.info/sct");
  c->set_code("44054006");
  auto* other = p.add_conditions()->add_codes();
  other->set_system_uri("http://hl7.org/fhir/sid/icd-10");
  other->set_code("E11");
  absl::StatusOr<Profile> r = FromProto(p, Options());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->conditions[0].codes[0].system, CodeSystem::kSnomedCt);
  EXPECT_EQ(r->conditions[0].mesh.at(0).id, "D000003924");
  EXPECT_EQ(r->conditions[1].codes[0].system, CodeSystem::kOther);
  EXPECT_EQ(r->conditions[1].codes[0].system_uri, "http://hl7.org/fhir/sid/icd-10");
  EXPECT_TRUE(r->conditions[1].mesh.empty());
}

}  // namespace
}  // namespace trialmatch::patient
