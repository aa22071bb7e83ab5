#include "bench/corpus_gen.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace trialmatch::bench {
namespace {

using nlohmann::json;

constexpr uint64_t kStudyStream = 0x5354554459ull;   // "STUDY"
constexpr uint64_t kPatientStream = 0x504154ull;     // "PAT"
constexpr double kPi = 3.14159265358979323846;

uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// A value drawn from `weights` (need not sum to 1).
template <typename T, size_t N>
const T& Pick(Rng& r, const std::pair<T, double> (&table)[N]) {
  double total = 0;
  for (const auto& [v, w] : table) total += w;
  double x = r.Uniform() * total;
  for (const auto& [v, w] : table) {
    if (x < w) return v;
    x -= w;
  }
  return table[N - 1].first;
}

const json* Path(const json& j, std::initializer_list<const char*> keys) {
  const json* p = &j;
  for (const char* k : keys) {
    if (!p->is_object()) return nullptr;
    auto it = p->find(k);
    if (it == p->end()) return nullptr;
    p = &*it;
  }
  return p;
}

std::string Str(const json* j) {
  return j != nullptr && j->is_string() ? j->get<std::string>() : "";
}

double Round(double v, int decimals) {
  const double f = std::pow(10.0, decimals);
  return std::round(v * f) / f;
}

// A point moved by up to `km` in a random direction.
std::pair<double, double> Jitter(Rng& r, double lat, double lon, double km) {
  const double d = km * std::sqrt(r.Uniform()) / 6371.0;  // radians
  const double bearing = r.Uniform(0, 2 * kPi);
  const double la = lat * kPi / 180;
  const double lo = lon * kPi / 180;
  const double la2 = std::asin(std::sin(la) * std::cos(d) +
                               std::cos(la) * std::sin(d) * std::cos(bearing));
  const double lo2 =
      lo + std::atan2(std::sin(bearing) * std::sin(d) * std::cos(la),
                      std::cos(d) - std::sin(la) * std::sin(la2));
  double lon_deg = lo2 * 180 / kPi;
  if (lon_deg > 180) lon_deg -= 360;
  if (lon_deg < -180) lon_deg += 360;
  return {Round(la2 * 180 / kPi, 5), Round(lon_deg, 5)};
}

struct Mesh {
  std::string id;
  std::string term;
};

struct CodeRow {
  std::string system;  // "icd10cm" | "snomed"
  std::string code;
  bool prefix = false;
  std::string term;  // the MeSH term it maps to (display)
};

}  // namespace

// --- Rng ---------------------------------------------------------------------

Rng::Rng(uint64_t seed, uint64_t stream, uint64_t index)
    : state_(Mix(Mix(seed ^ Mix(stream)) + index)) {}

uint64_t Rng::Next() {
  state_ += 0x9e3779b97f4a7c15ull;
  return Mix(state_);
}

double Rng::Uniform() {
  return static_cast<double>(Next() >> 11) * 0x1.0p-53;
}

double Rng::Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }

uint64_t Rng::Below(uint64_t n) { return n == 0 ? 0 : Next() % n; }

double Rng::Normal(double mean, double sd) {
  // Box-Muller; 1 - U avoids log(0).
  const double u1 = 1.0 - Uniform();
  const double u2 = Uniform();
  return mean +
         sd * std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * kPi * u2);
}

// --- Seeds -------------------------------------------------------------------

struct CorpusGenerator::Seeds {
  std::vector<json> records;          // slimmed when options.slim
  std::vector<uint32_t> with_meshes;  // records with condition MeSH terms
  std::vector<uint32_t> with_sites;   // records with a located site
  std::vector<uint32_t> with_conditions;
  std::vector<CodeRow> codes;
};

absl::StatusOr<std::unique_ptr<CorpusGenerator>> CorpusGenerator::Create(
    CorpusOptions options) {
  std::error_code ec;
  if (!std::filesystem::is_directory(options.studies_dir, ec)) {
    return absl::NotFoundError(absl::StrCat(
        "studies directory not found: ", options.studies_dir.string()));
  }
  std::vector<std::filesystem::path> files;
  for (const auto& e :
       std::filesystem::directory_iterator(options.studies_dir, ec)) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  if (files.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "no *.json record in ", options.studies_dir.string()));
  }
  std::sort(files.begin(), files.end());
  auto seeds = std::make_unique<Seeds>();
  for (const std::filesystem::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    json j = json::parse(buf.str(), nullptr, false);
    if (j.is_discarded() || !j.is_object() ||
        Path(j, {"protocolSection", "identificationModule", "nctId"}) ==
            nullptr) {
      return absl::DataLossError(
          absl::StrCat("not a study record: ", f.filename().string()));
    }
    if (options.slim) {
      for (const char* k : {"resultsSection", "documentSection",
                            "annotationSection"}) {
        j.erase(k);
      }
      json& ps = j["protocolSection"];
      ps.erase("outcomesModule");
      ps.erase("referencesModule");
      if (auto it = ps.find("descriptionModule"); it != ps.end()) {
        it->erase("detailedDescription");
      }
      j["hasResults"] = false;
    }
    const auto index = static_cast<uint32_t>(seeds->records.size());
    const json* meshes =
        Path(j, {"derivedSection", "conditionBrowseModule", "meshes"});
    if (meshes != nullptr && meshes->is_array() && !meshes->empty()) {
      seeds->with_meshes.push_back(index);
    }
    const json* conds =
        Path(j, {"protocolSection", "conditionsModule", "conditions"});
    if (conds != nullptr && conds->is_array() && !conds->empty()) {
      seeds->with_conditions.push_back(index);
    }
    const json* locs =
        Path(j, {"protocolSection", "contactsLocationsModule", "locations"});
    if (locs != nullptr && locs->is_array()) {
      for (const json& l : *locs) {
        if (l.contains("geoPoint")) {
          seeds->with_sites.push_back(index);
          break;
        }
      }
    }
    seeds->records.push_back(std::move(j));
  }
  if (seeds->with_meshes.empty() || seeds->with_sites.empty() ||
      seeds->with_conditions.empty()) {
    return absl::NotFoundError(
        "records lack conditions, MeSH terms or located sites");
  }
  if (!options.condition_codes.empty()) {
    std::ifstream in(options.condition_codes);
    if (!in) {
      return absl::NotFoundError(absl::StrCat(
          "condition codes not found: ", options.condition_codes.string()));
    }
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::vector<std::string> f = absl::StrSplit(line, '\t');
      if (f.size() < 5) continue;
      seeds->codes.push_back({f[0], f[1], f[2] == "prefix", f[4]});
    }
  }
  return std::unique_ptr<CorpusGenerator>(
      new CorpusGenerator(std::move(options), std::move(seeds)));
}

CorpusGenerator::CorpusGenerator(CorpusOptions options,
                                 std::unique_ptr<Seeds> s)
    : options_(std::move(options)), seeds_(std::move(s)) {}
CorpusGenerator::~CorpusGenerator() = default;

size_t CorpusGenerator::seed_records() const { return seeds_->records.size(); }

std::string CorpusGenerator::NctId(uint64_t i) {
  return absl::StrFormat("NCT8%07d", static_cast<int>(i % 10'000'000));
}

// --- Studies -----------------------------------------------------------------

namespace {

void AppendUnique(json* dst, const json& src, const char* key) {
  if (!src.is_array()) return;
  if (!dst->is_array()) *dst = json::array();
  for (const json& x : src) {
    bool seen = false;
    for (const json& y : *dst) {
      if ((key == nullptr && x == y) ||
          (key != nullptr && x.is_object() && y.is_object() &&
           x.value(key, "") == y.value(key, ""))) {
        seen = true;
        break;
      }
    }
    if (!seen) dst->push_back(x);
  }
}

}  // namespace

json CorpusGenerator::Study(uint64_t i) const {
  Rng r(options_.seed, kStudyStream, i);
  const std::vector<json>& recs = seeds_->records;
  const json& base = recs[r.Below(recs.size())];
  json out = base;
  json& ps = out["protocolSection"];

  // Topic: conditions, MeSH terms, titles, keywords (a coherent unit).
  const json& topic = r.Chance(0.5) ? base : recs[r.Below(recs.size())];
  if (&topic != &base) {
    const json& tps = topic["protocolSection"];
    if (tps.contains("conditionsModule")) {
      ps["conditionsModule"] = tps["conditionsModule"];
    } else {
      ps.erase("conditionsModule");
    }
    json& id = ps["identificationModule"];
    const json& tid = tps["identificationModule"];
    for (const char* k : {"briefTitle", "officialTitle", "acronym"}) {
      if (tid.contains(k)) {
        id[k] = tid[k];
      } else {
        id.erase(k);
      }
    }
    const json* browse = Path(topic, {"derivedSection", "conditionBrowseModule"});
    if (browse != nullptr) {
      out["derivedSection"]["conditionBrowseModule"] = *browse;
    } else if (out.contains("derivedSection")) {
      out["derivedSection"].erase("conditionBrowseModule");
    }
  }
  if (r.Chance(0.1)) {
    // A second topic: a multi-condition study.
    const json& more = recs[r.Below(recs.size())];
    const json* conds =
        Path(more, {"protocolSection", "conditionsModule", "conditions"});
    if (conds != nullptr) {
      AppendUnique(&ps["conditionsModule"]["conditions"], *conds, nullptr);
    }
    const json* browse = Path(more, {"derivedSection", "conditionBrowseModule"});
    if (browse != nullptr) {
      json& dst = out["derivedSection"]["conditionBrowseModule"];
      for (const char* k : {"meshes", "ancestors"}) {
        if (browse->contains(k)) AppendUnique(&dst[k], (*browse)[k], "id");
      }
    }
  }
  ps["identificationModule"]["nctId"] = NctId(i);
  if (auto org = ps["identificationModule"].find("orgStudyIdInfo");
      org != ps["identificationModule"].end() && org->is_object()) {
    (*org)["id"] = absl::StrCat("SYN-", i);
  }

  // Ages and sex: sometimes another record's (a real combination).
  json empty_elig = json::object();
  auto elig_it = ps.find("eligibilityModule");
  json& elig = elig_it != ps.end() && elig_it->is_object() ? *elig_it
                                                           : empty_elig;
  if (r.Chance(0.3)) {
    const json* other = Path(recs[r.Below(recs.size())],
                             {"protocolSection", "eligibilityModule"});
    if (other != nullptr) {
      for (const char* k : {"minimumAge", "maximumAge", "stdAges"}) {
        if (other->contains(k)) {
          elig[k] = (*other)[k];
        } else {
          elig.erase(k);
        }
      }
    }
  }
  if (r.Chance(0.15)) {
    const json* other = Path(recs[r.Below(recs.size())],
                             {"protocolSection", "eligibilityModule"});
    if (other != nullptr && other->contains("sex")) elig["sex"] = (*other)["sex"];
  }

  // Status: a registry-like mix of what a matching service keeps.
  static constexpr std::pair<std::string_view, double> kStatuses[] = {
      {"RECRUITING", 0.62},
      {"NOT_YET_RECRUITING", 0.18},
      {"ACTIVE_NOT_RECRUITING", 0.06},
      {"COMPLETED", 0.06},
      {"ENROLLING_BY_INVITATION", 0.03},
      {"UNKNOWN", 0.03},
      {"TERMINATED", 0.01},
      {"WITHDRAWN", 0.005},
      {"SUSPENDED", 0.005},
  };
  const std::string status(Pick(r, kStatuses));
  ps["statusModule"]["overallStatus"] = status;

  // Sites: a real record's list (its size distribution), jittered.
  const json& sites_src =
      r.Chance(0.5) ? base : recs[seeds_->with_sites[r.Below(
                                  seeds_->with_sites.size())]];
  const json* locs =
      Path(sites_src, {"protocolSection", "contactsLocationsModule",
                       "locations"});
  if (locs == nullptr || !locs->is_array()) {
    if (auto clm = ps.find("contactsLocationsModule");
        clm != ps.end() && clm->is_object()) {
      clm->erase("locations");
    }
  } else {
    json sites = *locs;
    static constexpr std::pair<std::string_view, double> kSiteStatuses[] = {
        {"RECRUITING", 0.64},         {"NOT_YET_RECRUITING", 0.17},
        {"ACTIVE_NOT_RECRUITING", 0.09}, {"WITHDRAWN", 0.05},
        {"SUSPENDED", 0.02},          {"COMPLETED", 0.02},
        {"", 0.01},
    };
    for (json& site : sites) {
      if (!site.is_object()) continue;
      if (auto g = site.find("geoPoint"); g != site.end() && g->is_object()) {
        const auto [lat, lon] =
            Jitter(r, g->value("lat", 0.0), g->value("lon", 0.0), 25);
        (*g)["lat"] = lat;
        (*g)["lon"] = lon;
      }
      const std::string_view st =
          status == "RECRUITING" ? Pick(r, kSiteStatuses) : "";
      if (st.empty()) {
        site.erase("status");
      } else {
        site["status"] = std::string(st);
      }
    }
    json& clm = ps["contactsLocationsModule"];
    if (!clm.is_object()) clm = json::object();
    clm["locations"] = std::move(sites);
  }
  return out;
}

// --- Patients ----------------------------------------------------------------

namespace {

struct Lab {
  const char* loinc;
  const char* name;
  double mean;
  double sd;
  double abnormal_mean;  // drawn instead with probability 0.1
  double abnormal_sd;
  double lo;  // clamp
  double hi;
  const char* unit;
  // An alternative unit and the factor canonical -> alternative (0 = none).
  const char* alt_unit;
  double alt_factor;
  int decimals;
};

constexpr Lab kLabs[] = {
    {"718-7", "Hemoglobin", 13.3, 1.6, 8.2, 1.2, 4, 20, "g/dL", "g/L", 10, 1},
    {"777-3", "Platelets", 255, 65, 70, 30, 5, 900, "10*9/L", "/uL", 1000, 0},
    {"751-8", "Neutrophils", 4.1, 1.4, 0.9, 0.4, 0.05, 25, "10*9/L", "/uL",
     1000, 2},
    {"6690-2", "Leukocytes", 7.0, 1.9, 2.2, 0.8, 0.3, 60, "10*9/L", "10*3/uL",
     1, 1},
    {"2160-0", "Creatinine", 0.95, 0.22, 2.4, 0.8, 0.3, 12, "mg/dL", "umol/L",
     88.42, 2},
    {"62238-1", "eGFR", 82, 18, 38, 12, 4, 140, "mL/min/1.73m2", "", 0, 0},
    {"1975-2", "Bilirubin total", 0.7, 0.3, 2.6, 0.9, 0.1, 20, "mg/dL",
     "umol/L", 17.1, 2},
    {"1920-8", "AST", 26, 9, 140, 60, 5, 2000, "U/L", "", 0, 0},
    {"1742-6", "ALT", 27, 11, 160, 70, 4, 2500, "U/L", "", 0, 0},
    {"6301-6", "INR", 1.05, 0.1, 2.4, 0.6, 0.7, 8, "{INR}", "", 0, 2},
    {"10230-1", "LVEF", 60, 6, 35, 8, 10, 80, "%", "", 0, 0},
    {"39156-5", "BMI", 27.5, 5, 41, 5, 14, 70, "kg/m2", "", 0, 1},
    {"8480-6", "Systolic blood pressure", 128, 15, 168, 14, 80, 240, "mm[Hg]",
     "", 0, 0},
};

const Lab kHba1c = {"4548-4", "HbA1c", 5.5, 0.4, 8.6, 1.5, 4, 16, "%",
                    "mmol/mol", 0, 1};

// Common comorbidities (MeSH descriptor, term as text).
constexpr std::pair<std::string_view, std::string_view> kComorbidities[] = {
    {"D006973", "Hypertension"},
    {"D003924", "Diabetes Mellitus, Type 2"},
    {"D006949", "Hyperlipidemias"},
    {"D001249", "Asthma"},
    {"D003863", "Depression"},
    {"D009765", "Obesity"},
    {"D029424", "Pulmonary Disease, Chronic Obstructive"},
    {"D001281", "Atrial Fibrillation"},
    {"D007676", "Kidney Failure, Chronic"},
    {"D010003", "Osteoarthritis"},
};

// Free text no record names (patients also list such things).
constexpr std::string_view kUnlinkedTexts[] = {
    "seasonal allergic rhinitis", "ingrown toenail",   "tinnitus",
    "plantar fasciitis",          "chronic sinusitis", "myopia",
};

void AddObservation(Rng& r, const Lab& lab, bool abnormal, json* obs) {
  double v = abnormal ? r.Normal(lab.abnormal_mean, lab.abnormal_sd)
                      : r.Normal(lab.mean, lab.sd);
  v = std::clamp(v, lab.lo, lab.hi);
  json o;
  o["loinc"] = lab.loinc;
  o["name"] = lab.name;
  std::string unit = lab.unit;
  if (lab.alt_factor > 0 && r.Chance(0.25)) {
    v *= lab.alt_factor;
    unit = lab.alt_unit;
    o["value"] = Round(v, lab.alt_factor >= 100 ? 0 : lab.decimals);
  } else {
    o["value"] = Round(v, lab.decimals);
  }
  o["unit"] = unit;
  o["date"] = absl::StrFormat("2025-%02d-%02d", 1 + r.Below(6), 1 + r.Below(28));
  obs->push_back(std::move(o));
}

}  // namespace

json CorpusGenerator::Patient(uint64_t j) const {
  Rng r(options_.seed, kPatientStream, j);
  const Seeds& s = *seeds_;
  json p;
  p["id"] = absl::StrCat("synthetic-", j);
  p["reference_date"] = "2025-06-15";
  json conditions = json::array();
  std::string topic_sex;  // the drawn record's eligible sex

  auto clinical_status = [&](json* c) {
    const double x = r.Uniform();
    if (x < 0.6) {
      (*c)["clinical_status"] = "active";
    } else if (x < 0.64) {
      (*c)["clinical_status"] = "resolved";
    }
  };
  const double kind = r.Uniform();
  bool diabetic = false;
  if (kind < 0.40) {
    // MeSH-coded, as a coded record would carry it.
    const json& rec = s.records[s.with_meshes[r.Below(s.with_meshes.size())]];
    const json& meshes = rec["derivedSection"]["conditionBrowseModule"]["meshes"];
    const json& m = meshes[r.Below(meshes.size())];
    json c;
    if (r.Chance(0.5)) c["text"] = m.value("term", "");
    c["codes"] = json::array({{{"system", "mesh"},
                               {"code", m.value("id", "")},
                               {"display", m.value("term", "")}}});
    clinical_status(&c);
    conditions.push_back(std::move(c));
    topic_sex = Str(Path(rec, {"protocolSection", "eligibilityModule", "sex"}));
    diabetic = m.value("term", "").find("Diabetes") != std::string::npos;
  } else if (kind < 0.62) {
    // Free text, as studies write conditions.
    const json& rec =
        s.records[s.with_conditions[r.Below(s.with_conditions.size())]];
    const json& conds = rec["protocolSection"]["conditionsModule"]["conditions"];
    json c;
    c["text"] = conds[r.Below(conds.size())];
    clinical_status(&c);
    diabetic = c["text"].get<std::string>().find("iabet") != std::string::npos;
    conditions.push_back(std::move(c));
    topic_sex = Str(Path(rec, {"protocolSection", "eligibilityModule", "sex"}));
  } else if (kind < 0.77 && !s.codes.empty()) {
    // ICD-10-CM / SNOMED CT, crosswalked by the patient module.
    const CodeRow& row = s.codes[r.Below(s.codes.size())];
    std::string code = row.code;
    if (row.prefix && row.code.size() == 3 && r.Chance(0.7)) {
      absl::StrAppend(&code, ".", r.Below(10));
    }
    json c;
    c["codes"] = json::array(
        {{{"system", row.system}, {"code", code}, {"display", row.term}}});
    if (r.Chance(0.3)) c["text"] = row.term;
    clinical_status(&c);
    diabetic = row.term.find("Diabetes") != std::string::npos;
    conditions.push_back(std::move(c));
  } else if (kind < 0.92) {
    // No conditions: healthy volunteers, or nothing given.
    if (r.Chance(0.5)) p["healthy_volunteer"] = true;
  } else {
    json c;
    c["text"] = std::string(
        kUnlinkedTexts[r.Below(std::size(kUnlinkedTexts))]);
    conditions.push_back(std::move(c));
  }
  if (!conditions.empty() && r.Chance(0.3)) {
    const auto& [id, term] = kComorbidities[r.Below(std::size(kComorbidities))];
    json c;
    if (r.Chance(0.6)) {
      c["codes"] = json::array({{{"system", "mesh"},
                                 {"code", std::string(id)},
                                 {"display", std::string(term)}}});
    } else {
      c["text"] = std::string(term);
    }
    c["clinical_status"] = r.Chance(0.85) ? "active" : "resolved";
    diabetic = diabetic || id == "D003924";
    conditions.push_back(std::move(c));
  }
  if (!conditions.empty()) {
    p["conditions"] = std::move(conditions);
    if (r.Chance(0.2)) p["conditions_complete"] = true;
    if (r.Chance(0.3)) p["healthy_volunteer"] = false;
  }

  // Age and sex (sometimes missing).
  double age = 0;
  const double a = r.Uniform();
  if (a >= 0.07) {
    if (a < 0.15) {
      age = r.Uniform(0.3, 18);
    } else {
      age = std::clamp(r.Normal(57, 15), 18.0, 96.0);
    }
    p["age_years"] = Round(age, 2);
  }
  std::string sex;
  if (topic_sex == "FEMALE" && r.Chance(0.95)) {
    sex = "female";
  } else if (topic_sex == "MALE" && r.Chance(0.95)) {
    sex = "male";
  } else {
    const double x = r.Uniform();
    sex = x < 0.5 ? "female" : (x < 0.96 ? "male" : "");
  }
  if (!sex.empty()) p["sex"] = sex;
  if (sex == "female" && a >= 0.15 && age < 50) {
    const double x = r.Uniform();
    if (x < 0.03) {
      p["pregnant"] = true;
    } else if (x < 0.6) {
      p["pregnant"] = false;
    }
    if (r.Chance(0.3)) p["breastfeeding"] = false;
  }

  // Labs: none, a few, or a full panel.
  const double panel = r.Uniform();
  const double p_lab = panel < 0.3 ? 0 : (panel < 0.7 ? 0.3 : 0.85);
  json obs = json::array();
  for (const Lab& lab : kLabs) {
    if (r.Chance(p_lab)) AddObservation(r, lab, r.Chance(0.1), &obs);
  }
  if (r.Chance(diabetic ? 0.9 : p_lab * 0.5)) {
    AddObservation(r, kHba1c, diabetic, &obs);
  }
  if (!obs.empty()) p["observations"] = std::move(obs);

  // Performance status.
  const double ps = r.Uniform();
  if (ps < 0.55) {
    static constexpr std::pair<int, double> kEcog[] = {
        {0, 0.38}, {1, 0.4}, {2, 0.15}, {3, 0.05}, {4, 0.02}};
    p["ecog"] = Pick(r, kEcog);
  } else if (ps < 0.65) {
    p["karnofsky"] = 40 + 10 * static_cast<int>(r.Below(7));
  }

  // Location: near a real site; sometimes a travel limit.
  if (r.Chance(0.75)) {
    const json& rec = s.records[s.with_sites[r.Below(s.with_sites.size())]];
    const json& locs = rec["protocolSection"]["contactsLocationsModule"]["locations"];
    std::vector<const json*> located;
    for (const json& l : locs) {
      if (l.contains("geoPoint")) located.push_back(&l);
    }
    const json& g = (*located[r.Below(located.size())])["geoPoint"];
    const auto [lat, lon] =
        Jitter(r, g.value("lat", 0.0), g.value("lon", 0.0), 60);
    json loc = {{"latitude", lat}, {"longitude", lon}};
    if (r.Chance(0.35)) {
      static constexpr std::pair<int, double> kLimits[] = {
          {25, 1}, {50, 2}, {100, 3}, {200, 2}, {500, 1}, {1000, 1}};
      loc["max_distance_km"] = Pick(r, kLimits);
    }
    p["location"] = std::move(loc);
  }
  return p;
}

}  // namespace trialmatch::bench
