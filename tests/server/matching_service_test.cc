// MatchingService through a real GrpcServer on loopback (health, message
// limits and reflection as `serve` sets them up), on a snapshot loaded from a
// temp store of recorded studies: answers on the real studies (ranking,
// per-criterion statuses, missing data never excludes, the three input
// forms, equal to the in-process MatchRequest), invalid input codes and
// messages without patient values, oversized requests, UNAVAILABLE before the
// first snapshot, MatchPatients streams (per-item errors, order, a small
// window, a snapshot swap mid-stream, the stream limit), inline matching.
#include "server/matching_service.h"

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "protojson/printer.h"
#include "server/grpc_server.h"
#include "server/match_fixture.h"
#include "server/match_request.h"
#include "server/snapshot_manager.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "testing/test_paths.h"

namespace trialmatch::server {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using ::trialmatch::testing::ReadFile;
using ::trialmatch::testing::TempDir;
using ::trialmatch::testing::TestDataDir;
using namespace ::trialmatch::server::testing;  // NOLINT: fixture names

const std::vector<v1::Verdict>& AllVerdicts() {
  static const std::vector<v1::Verdict> all = {
      v1::VERDICT_ELIGIBLE, v1::VERDICT_POSSIBLE, v1::VERDICT_INELIGIBLE};
  return all;
}

v1::MatchPatientRequest JsonRequest(const std::string& json) {
  v1::MatchPatientRequest r;
  r.mutable_patient()->set_profile_json(json);
  return r;
}

const v1::MatchResult* FindResult(const v1::MatchPatientResponse& r,
                                  const std::string& nct_id) {
  for (const v1::MatchResult& m : r.results()) {
    if (m.nct_id() == nct_id) return &m;
  }
  return nullptr;
}

std::vector<const v1::Explanation*> OfKind(const v1::MatchResult& r,
                                           v1::PredicateKind kind) {
  std::vector<const v1::Explanation*> out;
  for (const v1::Explanation& e : r.explanations()) {
    if (e.kind() == kind) out.push_back(&e);
  }
  return out;
}

class MatchingServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TM_REQUIRE_SHARED_DATA();
    ASSERT_NE(ProjectRules(), nullptr);
    store_ = SeededStore(dir_.File("s.db").string(), RecruitingIds());
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::ZeroDuration());
    if (service_ != nullptr) service_->Shutdown();
  }

  // The service and a loopback server, as `serve` builds them; the snapshot
  // is not loaded yet.
  void Start(MatchingServiceOptions options = {.threads = 2}) {
    service_ =
        std::make_unique<MatchingService>(&holder_, match::Matcher(), options);
    GrpcServer::Options o;
    o.listen_address = "127.0.0.1:0";
    o.health_service_names = {v1::MatchingService::service_full_name()};
    o.required_conditions = {"snapshot"};
    ASSERT_OK_AND_ASSIGN(server_, GrpcServer::Start(o, {service_.get()}));
    channel_ = grpc::CreateChannel(server_->address(),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::MatchingService::NewStub(channel_);
  }

  // Loads the store's snapshot and installs it (generation 1, 2, ...).
  void LoadSnapshot() {
    ASSERT_OK_AND_ASSIGN(
        LoadedSnapshot loaded,
        server::LoadSnapshot(*store_, ProjectRules(), {.threads = 1}));
    holder_.Install(std::move(loaded));
    if (server_ != nullptr) server_->readiness().MarkReady("snapshot");
  }

  void StartLoaded(MatchingServiceOptions options = {.threads = 2}) {
    Start(options);
    LoadSnapshot();
  }

  grpc::Status Match(const v1::MatchPatientRequest& request,
                     v1::MatchPatientResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(60));
    return stub_->MatchPatient(&context, request, response);
  }

  // Matches `json` with every verdict and explanations; asserts OK.
  v1::MatchPatientResponse MatchAll(const std::string& json) {
    v1::MatchPatientRequest request = JsonRequest(json);
    for (v1::Verdict v : AllVerdicts())
      request.mutable_options()->add_verdicts(v);
    request.mutable_options()->set_include_explanations(true);
    v1::MatchPatientResponse response;
    const grpc::Status s = Match(request, &response);
    EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    return response;
  }

  TempDir dir_;
  std::unique_ptr<store::StudyStore> store_;
  SnapshotHolder holder_;
  std::unique_ptr<MatchingService> service_;
  std::unique_ptr<GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::MatchingService::Stub> stub_;
};

// --- MatchPatient on the recorded studies ---------------------------------

TEST_F(MatchingServiceTest, RanksRelatedStudiesWithPerCriterionStatuses) {
  StartLoaded();
  v1::MatchPatientRequest request = JsonRequest(kBreastCancerWoman);
  request.mutable_options()->set_include_explanations(true);
  v1::MatchPatientResponse r;
  const grpc::Status s = Match(request, &r);
  ASSERT_TRUE(s.ok()) << s.error_message();

  EXPECT_EQ(r.patient_id(), "bc-1");
  EXPECT_EQ(r.snapshot().generation(), 1);
  EXPECT_EQ(r.snapshot().study_count(),
            static_cast<int64_t>(RecruitingIds().size()));
  EXPECT_EQ(r.snapshot().rules_version(), ProjectRules()->version());
  EXPECT_GT(r.snapshot().built_at().seconds(), 0);
  EXPECT_EQ(r.stats().studies(), static_cast<int64_t>(RecruitingIds().size()));
  // Both breast cancer studies, related through the condition; nothing
  // unrelated (diabetes, asthma) by default.
  ASSERT_NE(FindResult(r, kBreastFemale18to80), nullptr);
  ASSERT_NE(FindResult(r, kBreastFemale18plus), nullptr);
  EXPECT_EQ(FindResult(r, kDiabetes18to85), nullptr);
  EXPECT_EQ(FindResult(r, kMildAsthma20to65), nullptr);

  int rank = 0;
  const v1::MatchResult* previous = nullptr;
  for (const v1::MatchResult& m : r.results()) {
    EXPECT_EQ(m.rank(), ++rank);
    EXPECT_THAT(m.verdict(),
                ::testing::AnyOf(v1::VERDICT_ELIGIBLE, v1::VERDICT_POSSIBLE));
    EXPECT_GE(m.score(), 0);
    EXPECT_LE(m.score(), 1);
    EXPECT_FALSE(m.matched_conditions().empty()) << m.nct_id();
    if (previous != nullptr) {  // verdict, then score descending
      EXPECT_TRUE(previous->verdict() < m.verdict() ||
                  (previous->verdict() == m.verdict() &&
                   previous->score() >= m.score()))
          << previous->nct_id() << " before " << m.nct_id();
    }
    previous = &m;
    for (const v1::Explanation& e : m.explanations()) {
      EXPECT_NE(e.status(), v1::CRITERION_STATUS_UNSPECIFIED);
      EXPECT_NE(e.outcome(), v1::OUTCOME_UNSPECIFIED);
      EXPECT_FALSE(e.reason().empty());
    }
  }
  // The structured sex and age limits: met for a 52-year-old woman, with the
  // field they come from.
  const v1::MatchResult& study = *FindResult(r, kBreastFemale18to80);
  for (v1::PredicateKind kind :
       {v1::PREDICATE_KIND_SEX, v1::PREDICATE_KIND_AGE}) {
    std::vector<const v1::Explanation*> found = OfKind(study, kind);
    ASSERT_FALSE(found.empty()) << v1::PredicateKind_Name(kind);
    bool structured_met = false;
    for (const v1::Explanation* e : found) {
      if (e->evidence().source() == v1::EVIDENCE_SOURCE_STRUCTURED_FIELD) {
        EXPECT_EQ(e->status(), v1::CRITERION_STATUS_MET);
        EXPECT_EQ(e->outcome(), v1::OUTCOME_SATISFIED);
        EXPECT_THAT(e->evidence().field(), HasSubstr("eligibilityModule"));
        structured_met = true;
      }
    }
    EXPECT_TRUE(structured_met) << v1::PredicateKind_Name(kind);
  }
  // Every compiled criterion has an outcome.
  EXPECT_FALSE(study.criterion_outcomes().empty());
}

TEST_F(MatchingServiceTest, DefinitelyViolatedCriteriaMakeAStudyIneligible) {
  StartLoaded();
  // A man: the women-only studies are ineligible, and only shown when asked.
  v1::MatchPatientResponse all = MatchAll(kBreastCancerMan);
  for (const char* id : {kBreastFemale18to80, kBreastFemale18plus}) {
    const v1::MatchResult* m = FindResult(all, id);
    ASSERT_NE(m, nullptr) << id;
    EXPECT_EQ(m->verdict(), v1::VERDICT_INELIGIBLE);
    EXPECT_GE(m->counts().violated(), 1);
    bool sex_violated = false;
    for (const v1::Explanation* e : OfKind(*m, v1::PREDICATE_KIND_SEX)) {
      if (e->outcome() == v1::OUTCOME_VIOLATED) {
        EXPECT_EQ(e->status(), v1::CRITERION_STATUS_NOT_MET);
        sex_violated = true;
      }
    }
    EXPECT_TRUE(sex_violated) << id;
  }
  v1::MatchPatientResponse wanted;
  ASSERT_TRUE(Match(JsonRequest(kBreastCancerMan), &wanted).ok());
  EXPECT_EQ(FindResult(wanted, kBreastFemale18to80), nullptr);
  EXPECT_EQ(FindResult(wanted, kBreastFemale18plus), nullptr);

  // A 10-year-old: the adults-only diabetes study is ineligible by age, the
  // one from 2 years on is not.
  v1::MatchPatientResponse child = MatchAll(kDiabetesChild);
  const v1::MatchResult* adults = FindResult(child, kDiabetes18to85);
  ASSERT_NE(adults, nullptr);
  EXPECT_EQ(adults->verdict(), v1::VERDICT_INELIGIBLE);
  bool age_violated = false;
  for (const v1::Explanation* e : OfKind(*adults, v1::PREDICATE_KIND_AGE)) {
    if (e->outcome() == v1::OUTCOME_VIOLATED) {
      EXPECT_EQ(e->status(), v1::CRITERION_STATUS_NOT_MET);
      age_violated = true;
    }
  }
  EXPECT_TRUE(age_violated);
  const v1::MatchResult* from2 = FindResult(child, kType1Diabetes2plus);
  ASSERT_NE(from2, nullptr);
  for (const v1::Explanation* e : OfKind(*from2, v1::PREDICATE_KIND_AGE)) {
    if (e->evidence().source() == v1::EVIDENCE_SOURCE_STRUCTURED_FIELD) {
      EXPECT_EQ(e->status(), v1::CRITERION_STATUS_MET);
    }
  }
}

TEST_F(MatchingServiceTest, MissingDataIsUnknownNeverNotMet) {
  StartLoaded();
  // No age, no sex: the age and sex criteria of every study are UNKNOWN, and
  // none of them is what makes a study ineligible.
  v1::MatchPatientResponse r = MatchAll(kDiabetesNoDemographics);
  ASSERT_NE(FindResult(r, kDiabetes18to85), nullptr);
  int age_or_sex = 0;
  for (const v1::MatchResult& m : r.results()) {
    for (v1::PredicateKind kind :
         {v1::PREDICATE_KIND_AGE, v1::PREDICATE_KIND_SEX}) {
      for (const v1::Explanation* e : OfKind(m, kind)) {
        ++age_or_sex;
        EXPECT_EQ(e->status(), v1::CRITERION_STATUS_UNKNOWN)
            << m.nct_id() << " " << e->reason();
        EXPECT_NE(e->outcome(), v1::OUTCOME_VIOLATED) << m.nct_id();
      }
    }
  }
  EXPECT_GT(age_or_sex, 0);  // the studies do state age limits
  // Not ELIGIBLE either: something is unknown.
  EXPECT_NE(FindResult(r, kDiabetes18to85)->verdict(), v1::VERDICT_ELIGIBLE);
}

TEST_F(MatchingServiceTest, FhirBundleAndTypedProfileInputs) {
  StartLoaded();
  v1::MatchPatientRequest fhir;
  fhir.mutable_patient()->set_fhir_bundle_json(
      ReadFile(TestDataDir() / "patients" / "fhir_bundle_breast_cancer.json"));
  fhir.mutable_options()->set_reference_date("2025-06-15");
  v1::MatchPatientResponse r;
  grpc::Status s = Match(fhir, &r);
  ASSERT_TRUE(s.ok()) << s.error_message();
  // The FHIR reader keeps no id (patient/fhir_reader.h): nothing echoed.
  EXPECT_EQ(r.patient_id(), "");
  EXPECT_NE(FindResult(r, kBreastFemale18to80), nullptr);

  v1::MatchPatientRequest typed;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      ReadFile(TestDataDir() / "patients" / "plain_profile.textproto"),
      typed.mutable_patient()->mutable_profile()));
  v1::MatchPatientResponse t;
  s = Match(typed, &t);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(t.patient_id(), "demo-0001");
  // Lung cancer relates the lung cancer study; the profile's own travel
  // limit (150 km from New York) then applies.
  EXPECT_GE(t.stats().candidates(), 1);
}

TEST_F(MatchingServiceTest, SameAnswerAsTheInProcessMatch) {
  StartLoaded();
  v1::MatchPatientRequest request = JsonRequest(kDiabetesChild);
  request.mutable_options()->set_include_unrelated(true);
  request.mutable_options()->set_top_k(3);
  for (v1::Verdict v : AllVerdicts())
    request.mutable_options()->add_verdicts(v);
  v1::MatchPatientResponse remote;
  ASSERT_TRUE(Match(request, &remote).ok());
  ASSERT_OK_AND_ASSIGN(v1::MatchPatientResponse local,
                       MatchRequest(*holder_.Current(), match::Matcher(),
                                    request.patient(), request.options()));
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(remote, local))
      << remote.ShortDebugString() << "\n"
      << local.ShortDebugString();
  EXPECT_EQ(remote.results_size(), 3);  // top_k
}

TEST_F(MatchingServiceTest, PagesFollowTheRanking) {
  StartLoaded();
  // Every recorded study, every verdict: six ranked results.
  auto request = [](int top_k, int offset) {
    v1::MatchPatientRequest r = JsonRequest(kDiabetesChild);
    r.mutable_options()->set_include_unrelated(true);
    for (v1::Verdict v : AllVerdicts()) r.mutable_options()->add_verdicts(v);
    r.mutable_options()->set_top_k(top_k);
    r.mutable_options()->set_offset(offset);
    return r;
  };
  v1::MatchPatientResponse whole;
  ASSERT_TRUE(Match(request(6, 0), &whole).ok());
  ASSERT_EQ(whole.results_size(), 6);
  std::vector<std::string> paged;
  for (int offset = 0; offset < 8; offset += 4) {
    v1::MatchPatientResponse page;
    ASSERT_TRUE(Match(request(4, offset), &page).ok());
    for (int i = 0; i < page.results_size(); ++i) {
      EXPECT_EQ(page.results(i).rank(), offset + i + 1);
      paged.push_back(page.results(i).nct_id());
    }
  }
  std::vector<std::string> ranked;
  for (const v1::MatchResult& m : whole.results()) ranked.push_back(m.nct_id());
  EXPECT_EQ(paged, ranked);  // 4 + 2, same order
}

// --- Validation ------------------------------------------------------------

TEST_F(MatchingServiceTest, InvalidInputIsInvalidArgumentWithoutPatientValues) {
  StartLoaded();
  struct Case {
    std::string name;
    v1::MatchPatientRequest request;
    std::string expect;  // in the message
    std::string secret;  // never in the message
  };
  std::vector<Case> cases;
  cases.push_back({"no patient", {}, "patient: one of", ""});
  cases.push_back({"age out of range",
                   JsonRequest(R"({"id":"x","age_years":987})"), "age_years",
                   "987"});
  cases.push_back({"not JSON", JsonRequest(R"({"id":"Jane Secret",)"),
                   "patient.profile_json", "Jane Secret"});
  cases.push_back({"misspelt field",
                   JsonRequest(R"({"pregant": true, "sex": "female"})"),
                   "pregant", "female"});
  cases.push_back({"bad latitude",
                   JsonRequest(R"({"location":{"latitude":123.456,)"
                               R"("longitude":2}})"),
                   "location.latitude", "123.456"});
  v1::MatchPatientRequest fhir;
  fhir.mutable_patient()->set_fhir_bundle_json(R"({"resourceType":"Patient"})");
  cases.push_back({"not a bundle", fhir, "patient.fhir_bundle_json", ""});
  auto with_options = [](auto edit) {
    v1::MatchPatientRequest r = JsonRequest(kBreastCancerWoman);
    edit(r.mutable_options());
    return r;
  };
  cases.push_back({"top_k negative",
                   with_options([](v1::MatchOptions* o) { o->set_top_k(-1); }),
                   "options.top_k", ""});
  cases.push_back({"top_k too large", with_options([](v1::MatchOptions* o) {
                     o->set_top_k(10'001);
                   }),
                   "options.top_k", ""});
  cases.push_back({"unspecified verdict", with_options([](v1::MatchOptions* o) {
                     o->add_verdicts(v1::VERDICT_UNSPECIFIED);
                   }),
                   "options.verdicts[0]", ""});
  cases.push_back({"unknown status", with_options([](v1::MatchOptions* o) {
                     o->add_overall_statuses("RECRUITING");
                     o->add_overall_statuses("OPEN");
                   }),
                   "options.overall_statuses[1]", ""});
  cases.push_back({"statuses and any", with_options([](v1::MatchOptions* o) {
                     o->add_overall_statuses("RECRUITING");
                     o->set_any_overall_status(true);
                   }),
                   "options.overall_statuses", ""});
  cases.push_back({"negative distance", with_options([](v1::MatchOptions* o) {
                     o->set_max_distance_km(-5);
                   }),
                   "options.max_distance_km", ""});
  cases.push_back({"negative offset",
                   with_options([](v1::MatchOptions* o) { o->set_offset(-1); }),
                   "options.offset", ""});
  cases.push_back({"page beyond 10000", with_options([](v1::MatchOptions* o) {
                     o->set_offset(9'990);  // + the default 50
                   }),
                   "options.offset", ""});
  cases.push_back({"bad reference date", with_options([](v1::MatchOptions* o) {
                     o->set_reference_date("2025-13-45");
                   }),
                   "options.reference_date", ""});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    v1::MatchPatientResponse r;
    const grpc::Status s = Match(c.request, &r);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.expect));
    if (!c.secret.empty()) {
      EXPECT_THAT(s.error_message(), Not(HasSubstr(c.secret)));
    }
  }
}

TEST_F(MatchingServiceTest, OversizedRequestIsRejected) {
  StartLoaded();
  v1::MatchPatientRequest request =
      JsonRequest(std::string(5 << 20, ' ') + kBreastCancerWoman);
  v1::MatchPatientResponse r;
  const grpc::Status s = Match(request, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << s.error_message();
}

// --- Before the first snapshot --------------------------------------------

TEST_F(MatchingServiceTest, UnavailableAndNotServingUntilTheFirstSnapshot) {
  Start();
  // Health (NOT_SERVING for "" and the service; tests/e2e checks it over the
  // wire) follows the "snapshot" condition.
  EXPECT_FALSE(server_->readiness().serving());
  v1::MatchPatientResponse r;
  grpc::Status s = Match(JsonRequest(kBreastCancerWoman), &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("snapshot"));
  {
    grpc::ClientContext context;
    auto stream = stub_->MatchPatients(&context);
    v1::MatchPatientsRequest request;
    request.mutable_patient()->set_profile_json(kBreastCancerWoman);
    stream->Write(request);
    stream->WritesDone();
    v1::MatchPatientsResponse response;
    EXPECT_FALSE(stream->Read(&response));
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  LoadSnapshot();
  EXPECT_TRUE(server_->readiness().serving());
  s = Match(JsonRequest(kBreastCancerWoman), &r);
  EXPECT_TRUE(s.ok()) << s.error_message();
}

// --- MatchPatients -----------------------------------------------------------

// Writes `requests`, half-closes, reads every response.
grpc::Status RunStream(v1::MatchingService::Stub& stub,
                       const std::vector<v1::MatchPatientsRequest>& requests,
                       std::vector<v1::MatchPatientsResponse>* responses) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(120));
  auto stream = stub.MatchPatients(&context);
  std::thread writer([&] {
    for (const v1::MatchPatientsRequest& r : requests) {
      if (!stream->Write(r)) break;
    }
    stream->WritesDone();
  });
  v1::MatchPatientsResponse response;
  while (stream->Read(&response)) responses->push_back(response);
  writer.join();
  return stream->Finish();
}

v1::MatchPatientsRequest StreamRequest(const std::string& id,
                                       const std::string& json) {
  v1::MatchPatientsRequest r;
  r.set_correlation_id(id);
  if (!json.empty()) r.mutable_patient()->set_profile_json(json);
  return r;
}

TEST_F(MatchingServiceTest, StreamGoesOnPastBadItemsInRequestOrder) {
  StartLoaded();
  std::vector<v1::MatchPatientsRequest> requests = {
      StreamRequest("line 1", kBreastCancerWoman),
      StreamRequest("line 2", kDiabetesChild),
      StreamRequest("line 3", R"({"id":"bad","age_years":-3})"),
      StreamRequest("line 4", ""),  // no patient
      StreamRequest("line 5", kBreastCancerMan),
  };
  requests[4].mutable_options()->set_top_k(-2);  // bad options
  requests.push_back(StreamRequest("line 6", kDiabetesNoDemographics));
  std::vector<v1::MatchPatientsResponse> responses;
  const grpc::Status s = RunStream(*stub_, requests, &responses);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(responses.size(), requests.size());
  for (size_t i = 0; i < responses.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(responses[i].sequence(), static_cast<int64_t>(i));
    EXPECT_EQ(responses[i].correlation_id(), requests[i].correlation_id());
    const bool bad = i == 2 || i == 3 || i == 4;
    EXPECT_EQ(responses[i].has_error(), bad);
    if (bad) {
      EXPECT_EQ(responses[i].error().code(), 3);
      EXPECT_EQ(responses[i].error().code_name(), "INVALID_ARGUMENT");
      EXPECT_THAT(responses[i].error().message(), Not(HasSubstr("-3")));
    } else {
      EXPECT_TRUE(responses[i].has_match());
    }
  }
  EXPECT_EQ(responses[0].match().patient_id(), "bc-1");
  EXPECT_EQ(responses[1].match().patient_id(), "dm-2");
  EXPECT_EQ(responses[5].match().patient_id(), "dm-1");
  EXPECT_THAT(responses[2].error().message(), HasSubstr("age_years"));
  EXPECT_THAT(responses[4].error().message(), HasSubstr("options.top_k"));
}

TEST_F(MatchingServiceTest, SmallWindowStillAnswersEverythingInOrder) {
  MatchingServiceOptions options;
  options.threads = 2;
  options.stream_window = 2;
  StartLoaded(options);
  const std::vector<const char*> patients = {kBreastCancerWoman,
                                             kBreastCancerMan, kDiabetesChild,
                                             kDiabetesNoDemographics};
  std::vector<v1::MatchPatientsRequest> requests;
  for (int i = 0; i < 60; ++i) {
    requests.push_back(
        StreamRequest(absl::StrCat("p", i), patients[i % patients.size()]));
  }
  std::vector<v1::MatchPatientsResponse> responses;
  ASSERT_TRUE(RunStream(*stub_, requests, &responses).ok());
  ASSERT_EQ(responses.size(), requests.size());
  // Each answer is the one of its own patient.
  std::vector<v1::MatchPatientResponse> single(patients.size());
  for (size_t p = 0; p < patients.size(); ++p) {
    ASSERT_TRUE(Match(JsonRequest(patients[p]), &single[p]).ok());
  }
  for (size_t i = 0; i < responses.size(); ++i) {
    ASSERT_TRUE(responses[i].has_match()) << i;
    EXPECT_EQ(responses[i].correlation_id(), absl::StrCat("p", i));
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
        responses[i].match(), single[i % patients.size()]))
        << i;
  }
}

TEST_F(MatchingServiceTest, SnapshotSwapMidStreamAppliesToLaterPatients) {
  StartLoaded();
  grpc::ClientContext context;
  auto stream = stub_->MatchPatients(&context);
  v1::MatchPatientsResponse response;
  ASSERT_TRUE(stream->Write(StreamRequest("a", kBreastCancerWoman)));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.match().snapshot().generation(), 1);
  LoadSnapshot();  // generation 2
  ASSERT_TRUE(stream->Write(StreamRequest("b", kBreastCancerWoman)));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.match().snapshot().generation(), 2);
  stream->WritesDone();
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(MatchingServiceTest, TooManyStreamsIsResourceExhausted) {
  MatchingServiceOptions options;
  options.threads = 1;
  options.max_streams = 1;
  StartLoaded(options);
  grpc::ClientContext first_context;
  auto first = stub_->MatchPatients(&first_context);
  v1::MatchPatientsResponse response;
  ASSERT_TRUE(first->Write(StreamRequest("a", kBreastCancerWoman)));
  ASSERT_TRUE(first->Read(&response));  // the first stream is running

  grpc::ClientContext second_context;
  auto second = stub_->MatchPatients(&second_context);
  second->WritesDone();
  EXPECT_FALSE(second->Read(&response));
  EXPECT_EQ(second->Finish().error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);

  first->WritesDone();
  EXPECT_FALSE(first->Read(&response));
  EXPECT_TRUE(first->Finish().ok());
}

TEST_F(MatchingServiceTest, InlineMatchingGivesTheSameAnswers) {
  StartLoaded({.threads = 0});
  v1::MatchPatientResponse inline_answer;
  ASSERT_TRUE(Match(JsonRequest(kBreastCancerWoman), &inline_answer).ok());
  ASSERT_OK_AND_ASSIGN(
      v1::MatchPatientResponse local,
      MatchRequest(*holder_.Current(), match::Matcher(),
                   JsonRequest(kBreastCancerWoman).patient(), {}));
  EXPECT_TRUE(
      google::protobuf::util::MessageDifferencer::Equals(inline_answer, local));
  std::vector<v1::MatchPatientsResponse> responses;
  ASSERT_TRUE(RunStream(*stub_,
                        {StreamRequest("1", kBreastCancerWoman),
                         StreamRequest("2", "{")},
                        &responses)
                  .ok());
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_TRUE(responses[0].has_match());
  EXPECT_TRUE(responses[1].has_error());
}

TEST_F(MatchingServiceTest, ExpiredDeadlineIsDeadlineExceeded) {
  StartLoaded();
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() -
                       std::chrono::seconds(1));
  v1::MatchPatientResponse r;
  const grpc::Status s =
      stub_->MatchPatient(&context, JsonRequest(kBreastCancerWoman), &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
}

}  // namespace
}  // namespace trialmatch::server

namespace trialmatch::server {
namespace {

using namespace ::trialmatch::server::testing;  // NOLINT: fixture names

// `trialmatch match` prints answers with protojson (the CLI's JSON Lines):
// on real answers (400 recorded studies, their criteria text with its
// symbols and non-ASCII letters, every verdict, every explanation), it
// must print what protobuf prints, byte for byte.
TEST(AnswerJsonTest, RealAnswersPrintAsProtobufPrintsThem) {
  TM_REQUIRE_SHARED_DATA();
  ::trialmatch::testing::TempDir dir;
  std::unique_ptr<store::StudyStore> store = SeededStore(
      dir.File("s.db").string(), ::trialmatch::testing::RecordedIds(400));
  ASSERT_NE(store, nullptr);
  ASSERT_OK_AND_ASSIGN(LoadedSnapshot loaded,
                       LoadSnapshot(*store, ProjectRules(), {.threads = 2}));
  v1::MatchOptions options;
  options.set_top_k(400);
  options.set_include_explanations(true);
  options.set_include_unrelated(true);
  for (v1::Verdict v :
       {v1::VERDICT_ELIGIBLE, v1::VERDICT_POSSIBLE, v1::VERDICT_INELIGIBLE}) {
    options.add_verdicts(v);
  }
  size_t printed = 0;
  for (const char* profile : {kBreastCancerWoman, kBreastCancerMan,
                              kDiabetesNoDemographics, kDiabetesChild}) {
    v1::PatientInput input;
    input.set_profile_json(profile);
    ASSERT_OK_AND_ASSIGN(
        v1::MatchPatientResponse r,
        MatchRequest(loaded, match::Matcher(), input, options));
    ASSERT_GT(r.results_size(), 30);
    for (const bool proto_names : {true, false}) {
      google::protobuf::util::JsonPrintOptions theirs;
      theirs.preserve_proto_field_names = proto_names;
      std::string expected;
      ASSERT_TRUE(
          google::protobuf::util::MessageToJsonString(r, &expected, theirs)
              .ok());
      std::string ours;
      ASSERT_OK(protojson::AppendJson(
          r, {.preserve_proto_field_names = proto_names}, &ours));
      ASSERT_EQ(ours, expected) << "patient " << r.patient_id();
      printed += ours.size();
    }
  }
  EXPECT_GT(printed, 1000000u);  // megabytes of real explanations
}

}  // namespace
}  // namespace trialmatch::server
