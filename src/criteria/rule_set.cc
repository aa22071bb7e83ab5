#include "criteria/rule_set.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "trialmatch/rules/v1/rule_set.pb.h"

namespace trialmatch::criteria {

namespace pb = ::trialmatch::rules::v1;
using ::google::protobuf::FieldDescriptor;
using ::google::protobuf::TextFormat;

std::string SourceLocation::ToString() const {
  if (line <= 0) return file;
  return absl::StrCat(file, ":", line);
}

namespace {

constexpr std::string_view kRoleNames[kNumCaptureRoles] = {
    "value", "cmp", "unit", "low", "low_cmp", "low_unit",
    "high", "high_cmp", "uln", "list", "value_b"};

// Maps a group name ("value", "value_2") to its role.
std::optional<CaptureRole> RoleOf(std::string_view name) {
  size_t cut = name.size();
  while (cut > 0 && absl::ascii_isdigit(static_cast<unsigned char>(name[cut - 1]))) {
    --cut;
  }
  if (cut < name.size() && cut > 0 && name[cut - 1] == '_') {
    name = name.substr(0, cut - 1);
  }
  for (int i = 0; i < kNumCaptureRoles; ++i) {
    if (name == kRoleNames[i]) return static_cast<CaptureRole>(i);
  }
  return std::nullopt;
}

uint64_t Fnv1a64(uint64_t h, std::string_view bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::optional<Kind> KindFromProto(pb::Kind k) {
  switch (k) {
    case pb::KIND_AGE: return Kind::kAge;
    case pb::KIND_SEX: return Kind::kSex;
    case pb::KIND_HEALTHY_VOLUNTEERS: return Kind::kHealthyVolunteers;
    case pb::KIND_CONDITION: return Kind::kCondition;
    case pb::KIND_LAB: return Kind::kLab;
    case pb::KIND_PERFORMANCE_STATUS: return Kind::kPerformanceStatus;
    case pb::KIND_PREGNANCY: return Kind::kPregnancy;
    case pb::KIND_BREASTFEEDING: return Kind::kBreastfeeding;
    case pb::KIND_CONTRACEPTION: return Kind::kContraception;
    case pb::KIND_OTHER: return Kind::kOther;
    default: return std::nullopt;
  }
}

std::optional<Comparison> OpFromProto(pb::Op op) {
  switch (op) {
    case pb::OP_GE: return Comparison::kGe;
    case pb::OP_GT: return Comparison::kGt;
    case pb::OP_LE: return Comparison::kLe;
    case pb::OP_LT: return Comparison::kLt;
    default: return std::nullopt;
  }
}

std::optional<PhraseRole> PhraseRoleFromProto(pb::PhraseRole r) {
  switch (r) {
    case pb::ROLE_SECTION_INCLUSION: return PhraseRole::kSectionInclusion;
    case pb::ROLE_SECTION_EXCLUSION: return PhraseRole::kSectionExclusion;
    case pb::ROLE_SECTION_NEUTRAL: return PhraseRole::kSectionNeutral;
    case pb::ROLE_COHORT: return PhraseRole::kCohort;
    case pb::ROLE_ANY_OF: return PhraseRole::kAnyOf;
    case pb::ROLE_K_OF_N: return PhraseRole::kKOfN;
    case pb::ROLE_ALL_OF: return PhraseRole::kAllOf;
    case pb::ROLE_EXCLUSION_MARKER: return PhraseRole::kExclusionMarker;
    case pb::ROLE_PERMISSION: return PhraseRole::kPermission;
    case pb::ROLE_NEGATION: return PhraseRole::kNegation;
    case pb::ROLE_PSEUDO_NEGATION: return PhraseRole::kPseudoNegation;
    case pb::ROLE_EXCEPTION: return PhraseRole::kException;
    case pb::ROLE_CONDITIONAL: return PhraseRole::kConditional;
    case pb::ROLE_FILLER: return PhraseRole::kFiller;
    case pb::ROLE_CONDITION_VETO: return PhraseRole::kConditionVeto;
    case pb::ROLE_CLAUSE_BREAK: return PhraseRole::kClauseBreak;
    case pb::ROLE_POST_NEGATION: return PhraseRole::kPostNegation;
    case pb::ROLE_EXAMPLES: return PhraseRole::kExamples;
    case pb::ROLE_TIME_WINDOW: return PhraseRole::kTimeWindow;
    case pb::ROLE_ADMINISTRATIVE: return PhraseRole::kAdministrative;
    default: return std::nullopt;
  }
}

Section SectionFromProto(pb::Section s) {
  return s == pb::SECTION_EXCLUSION ? Section::kExclusion : Section::kInclusion;
}

RuleSection RuleSectionFromProto(pb::Section s) {
  switch (s) {
    case pb::SECTION_INCLUSION: return RuleSection::kInclusion;
    case pb::SECTION_EXCLUSION: return RuleSection::kExclusion;
    default: return RuleSection::kAny;
  }
}

std::optional<model::Sex> SexFromProto(pb::Sex s) {
  switch (s) {
    case pb::SEX_FEMALE: return model::Sex::kFemale;
    case pb::SEX_MALE: return model::Sex::kMale;
    default: return std::nullopt;
  }
}

ExpectDef ExpectFromProto(const pb::Expect& e) {
  ExpectDef d;
  d.kind = KindFromProto(e.kind());
  d.quantity = e.quantity();
  if (e.has_low()) d.low = e.low();
  if (e.has_high()) d.high = e.high();
  if (e.has_low_inclusive()) d.low_inclusive = e.low_inclusive();
  if (e.has_high_inclusive()) d.high_inclusive = e.high_inclusive();
  d.unit = e.unit();
  if (e.has_relative_to_uln()) d.relative_to_uln = e.relative_to_uln();
  if (e.polarity() == pb::POLARITY_INCLUSION) d.polarity = Polarity::kInclusion;
  if (e.polarity() == pb::POLARITY_EXCLUSION) d.polarity = Polarity::kExclusion;
  if (e.has_informational()) d.informational = e.informational();
  d.sex = SexFromProto(e.sex());
  d.condition = e.condition();
  d.no_low = e.no_low();
  d.no_high = e.no_high();
  return d;
}

// Collects TextFormat syntax errors with their positions.
class CollectingErrorCollector : public ::google::protobuf::io::ErrorCollector {
 public:
  explicit CollectingErrorCollector(std::string file) : file_(std::move(file)) {}
  void AddError(int line, int column, const std::string& message) override {
    if (errors_.size() < 10) {
      errors_.push_back(absl::StrCat(file_, ":", line + 1, ":", column + 1,
                                     ": ", message));
    }
  }
  void AddWarning(int line, int column, const std::string& message) override {}
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::string file_;
  std::vector<std::string> errors_;
};

// Where each element of a parsed file sits.
struct ParsedFile {
  std::string name;
  pb::RuleFile proto;
  TextFormat::ParseInfoTree tree;

  SourceLocation At(const char* field, int index) const {
    const FieldDescriptor* fd =
        pb::RuleFile::descriptor()->FindFieldByName(field);
    const auto loc = tree.GetLocation(fd, index);
    return SourceLocation{name, loc.line >= 0 ? loc.line + 1 : 0};
  }
  // Location of element `sub_index` of repeated field `sub_field` inside
  // element `index` of top-level field `field`.
  SourceLocation AtNested(const char* field, int index, const char* sub_field,
                          int sub_index) const {
    const FieldDescriptor* fd =
        pb::RuleFile::descriptor()->FindFieldByName(field);
    const TextFormat::ParseInfoTree* sub = tree.GetTreeForNested(fd, index);
    if (sub == nullptr || fd->message_type() == nullptr) return At(field, index);
    const FieldDescriptor* sfd = fd->message_type()->FindFieldByName(sub_field);
    if (sfd == nullptr) return At(field, index);
    const auto loc = sub->GetLocation(sfd, sub_index);
    return SourceLocation{name, loc.line >= 0 ? loc.line + 1 : 0};
  }
};

absl::Status Invalid(const SourceLocation& loc, std::string_view what,
                     std::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat(loc.ToString(), ": ", common::ToAbsl(what), ": ",
                   common::ToAbsl(message)));
}

// The rest of a rule after its leading name (MatchRule::after_name), or
// null when it would not give the rule's submatches: it must compile with
// the rule's options and have exactly the rule's capture groups (a name
// without groups keeps the numbering). Not counted in pattern_count().
std::unique_ptr<RE2> CompileAfterName(const std::string& rest, const RE2& rule) {
  // The rule must be the name concatenated with `rest`: no repetition
  // operator right after the name, no alternation at the top level of rest.
  if (rest.empty() || std::strchr("*+?{", rest[0]) != nullptr) return nullptr;
  int depth = 0;
  for (size_t i = 0; i < rest.size(); ++i) {
    const char c = rest[i];
    if (c == '\\') {
      if (i + 1 < rest.size() && rest[i + 1] == 'Q') return nullptr;  // \Q...\E
      ++i;
    } else if (c == '[') {  // a class: up to its closing bracket
      size_t j = i + 1;
      if (j < rest.size() && rest[j] == '^') ++j;
      if (j < rest.size() && rest[j] == ']') ++j;
      for (; j < rest.size() && rest[j] != ']'; ++j) {
        if (rest[j] == '\\') {
          ++j;
        } else if (rest[j] == '[' && j + 1 < rest.size() && rest[j + 1] == ':') {
          const size_t close = rest.find(":]", j + 2);
          if (close == std::string::npos) return nullptr;
          j = close + 1;
        }
      }
      i = j;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      if (--depth < 0) return nullptr;
    } else if (c == '|' && depth == 0) {
      return nullptr;
    }
  }
  auto re = std::make_unique<RE2>(rest, rule.options());
  if (!re->ok() || re->NumberOfCapturingGroups() != rule.NumberOfCapturingGroups() ||
      re->NamedCapturingGroups() != rule.NamedCapturingGroups() ||
      re->ProgramSize() >= rule.ProgramSize()) {
    return nullptr;
  }
  return re;
}

}  // namespace

// Values of the template-only macros {{NAME}} and {{UNIT}}.
struct ExpandContext {
  const std::string* name = nullptr;  // measurement name (templates)
  const std::string* unit = nullptr;  // measurement units (templates)
};

// Builds a RuleSet from parsed files. Internal to this file (a friend of
// RuleSet so it can fill the private members).
class RuleSetBuilder {
 public:
  explicit RuleSetBuilder(const RuleSetOptions& options) : options_(options) {}

  absl::StatusOr<std::shared_ptr<const RuleSet>> Build(
      const std::vector<RuleSource>& sources);

 private:
  absl::Status Parse(const std::vector<RuleSource>& sources);
  absl::Status CollectMacros();
  absl::Status BuildComparators();
  absl::Status BuildQuantities();
  absl::Status BuildRules();
  absl::Status BuildConcepts();
  absl::Status BuildPhrases();
  absl::Status BuildTriggerSet();
  absl::Status BuildNamelessBound();

  absl::StatusOr<std::string> Expand(std::string_view pattern,
                                     const ExpandContext& ctx,
                                     const SourceLocation& loc,
                                     std::string_view what, int depth = 0);
  absl::StatusOr<std::unique_ptr<RE2>> Compile(
      const std::string& pattern, bool case_sensitive,
      const SourceLocation& loc, std::string_view what,
      bool longest_match = false, int64_t max_mem = 0,
      int max_program = 0);
  absl::StatusOr<std::unique_ptr<RE2>> ExpandAndCompile(
      std::string_view pattern, bool case_sensitive,
      const SourceLocation& loc, std::string_view what,
      const ExpandContext& ctx = {});
  std::string UnitUnion(const std::vector<int>& quantity_indexes) const;
  absl::Status FillGroups(MatchRule* rule, std::string_view what);
  absl::Status AddMatchRule(MatchRule rule, const std::string& trigger,
                            bool trigger_case_sensitive,
                            std::unique_ptr<RE2> name_re);
  void AddExamples(ExampleDef::Target target, const std::string& owner,
                   const google::protobuf::RepeatedPtrField<pb::Example>& ex,
                   const ParsedFile& file, const char* field, int index);

  RuleSetOptions options_;
  std::vector<std::unique_ptr<ParsedFile>> files_;
  std::shared_ptr<RuleSet> set_;
  std::map<std::string, std::pair<std::string, SourceLocation>> macros_;
  std::string cmp_union_;
  std::vector<std::string> quantity_unit_union_;
  std::string any_unit_union_;
  std::map<std::string, std::pair<const pb::Template*, SourceLocation>>
      templates_;
  absl::flat_hash_set<std::string> ids_;
  std::vector<std::pair<std::string, bool>> triggers_;  // per family
  std::string dictionary_pattern_;
  std::array<std::string, kNumPhraseRoles> role_patterns_;
  std::vector<SourceLocation> trigger_locations_;
};

absl::Status RuleSetBuilder::Parse(const std::vector<RuleSource>& sources) {
  if (sources.empty()) return absl::NotFoundError("no rule files");
  std::vector<const RuleSource*> sorted;
  for (const RuleSource& s : sources) sorted.push_back(&s);
  std::sort(sorted.begin(), sorted.end(),
            [](const RuleSource* a, const RuleSource* b) {
              return a->name < b->name;
            });
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (const RuleSource* src : sorted) {
    if (src->content.size() > options_.max_file_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(src->name, ": file larger than ",
                       options_.max_file_bytes, " bytes"));
    }
    hash = Fnv1a64(hash, src->name);
    hash = Fnv1a64(hash, std::string_view("\0", 1));
    hash = Fnv1a64(hash, src->content);
    hash = Fnv1a64(hash, std::string_view("\0", 1));
    auto file = std::make_unique<ParsedFile>();
    file->name = src->name;
    CollectingErrorCollector errors(src->name);
    TextFormat::Parser parser;
    parser.RecordErrorsTo(&errors);
    parser.WriteLocationsTo(&file->tree);
    if (!parser.ParseFromString(src->content, &file->proto)) {
      return absl::InvalidArgumentError(
          errors.errors().empty()
              ? absl::StrCat(src->name, ": cannot parse")
              : absl::StrJoin(errors.errors(), "; "));
    }
    files_.push_back(std::move(file));
  }
  const SourceLocation* declared_at = nullptr;
  SourceLocation first;
  for (const auto& f : files_) {
    if (f->proto.version().empty()) continue;
    if (declared_at != nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          f->name, ": version declared again (first in ",
          declared_at->ToString(), ")"));
    }
    first = SourceLocation{f->name, 0};
    declared_at = &first;
    set_->declared_version_ = f->proto.version();
  }
  if (declared_at == nullptr) {
    return absl::InvalidArgumentError(
        "no rule file declares `version` (expected in manifest.textproto)");
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016" PRIx64, hash);
  set_->version_ = absl::StrCat(set_->declared_version_, "+", hex);
  return absl::OkStatus();
}

absl::Status RuleSetBuilder::CollectMacros() {
  for (const auto& f : files_) {
    for (int i = 0; i < f->proto.macro_size(); ++i) {
      const pb::Macro& m = f->proto.macro(i);
      const SourceLocation loc = f->At("macro", i);
      bool valid = !m.name().empty() && absl::ascii_isupper(m.name()[0]);
      for (char c : m.name()) {
        valid = valid && (absl::ascii_isupper(c) || absl::ascii_isdigit(c) ||
                          c == '_');
      }
      if (!valid) return Invalid(loc, "macro " + m.name(), "bad name");
      if (m.name() == "NAME" || m.name() == "UNIT" || m.name() == "CMP" ||
          m.name() == "ANY_UNIT") {
        return Invalid(loc, "macro " + m.name(), "reserved name");
      }
      if (!macros_.emplace(m.name(), std::make_pair(m.pattern(), loc)).second) {
        return Invalid(loc, "macro " + m.name(),
                       "declared twice (first at " +
                           macros_[m.name()].second.ToString() + ")");
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RuleSetBuilder::Expand(std::string_view pattern,
                                                   const ExpandContext& ctx,
                                                   const SourceLocation& loc,
                                                   std::string_view what,
                                                   int depth) {
  if (depth > options_.max_macro_depth) {
    return Invalid(loc, what, "macros nested too deeply (a cycle?)");
  }
  std::string out;
  size_t p = 0;
  while (p < pattern.size()) {
    const size_t open = pattern.find("{{", p);
    if (open == std::string_view::npos) {
      out.append(pattern.substr(p));
      break;
    }
    out.append(pattern.substr(p, open - p));
    const size_t close = pattern.find("}}", open + 2);
    if (close == std::string_view::npos) {
      return Invalid(loc, what, "unterminated {{ in pattern");
    }
    const std::string name(pattern.substr(open + 2, close - open - 2));
    p = close + 2;
    std::string body;
    bool expand_body = true;
    if (name == "NAME" || name == "UNIT") {
      const std::string* v = name == "NAME" ? ctx.name : ctx.unit;
      if (v == nullptr) {
        return Invalid(loc, what,
                       "{{" + name + "}} is only available in templates");
      }
      body = *v;
      expand_body = false;  // already expanded
    } else if (name == "CMP") {
      body = cmp_union_;
      expand_body = false;
    } else if (name == "ANY_UNIT") {
      body = any_unit_union_;
      expand_body = false;
    } else if (absl::StartsWith(name, "UNIT:")) {
      const int q = set_->FindQuantity(name.substr(5));
      if (q < 0) return Invalid(loc, what, "unknown quantity in {{" + name + "}}");
      body = quantity_unit_union_[q];
      expand_body = false;
    } else {
      auto it = macros_.find(name);
      if (it == macros_.end()) {
        return Invalid(loc, what, "unknown macro {{" + name + "}}");
      }
      body = it->second.first;
    }
    if (expand_body) {
      TRIALMATCH_ASSIGN_OR_RETURN(body, Expand(body, ctx, loc, what, depth + 1));
    }
    absl::StrAppend(&out, "(?:", body, ")");
    if (out.size() > options_.max_expanded_pattern_bytes) {
      return Invalid(loc, what, "pattern too long after macro expansion");
    }
  }
  if (out.size() > options_.max_expanded_pattern_bytes) {
    return Invalid(loc, what, "pattern too long after macro expansion");
  }
  return out;
}

absl::StatusOr<std::unique_ptr<RE2>> RuleSetBuilder::Compile(
    const std::string& pattern, bool case_sensitive, const SourceLocation& loc,
    std::string_view what, bool longest_match, int64_t max_mem,
    int max_program) {
  RE2::Options opt;
  opt.set_encoding(RE2::Options::EncodingUTF8);
  opt.set_log_errors(false);
  opt.set_case_sensitive(case_sensitive);
  opt.set_longest_match(longest_match);
  opt.set_max_mem(max_mem > 0 ? max_mem : options_.max_mem_per_pattern);
  auto re = std::make_unique<RE2>(pattern, opt);
  if (!re->ok()) {
    return Invalid(loc, what,
                   absl::StrCat("bad pattern: ", re->error(), " (at '",
                                re->error_arg(), "')"));
  }
  const int limit = max_program > 0 ? max_program : options_.max_program_size;
  if (re->ProgramSize() > limit || re->ReverseProgramSize() > limit) {
    return Invalid(loc, what,
                   absl::StrCat("pattern too large: program size ",
                                re->ProgramSize(), " > ", limit,
                                " (nested or long repetitions?)"));
  }
  ++set_->pattern_count_;
  return re;
}

absl::StatusOr<std::unique_ptr<RE2>> RuleSetBuilder::ExpandAndCompile(
    std::string_view pattern, bool case_sensitive, const SourceLocation& loc,
    std::string_view what, const ExpandContext& ctx) {
  if (pattern.empty()) return Invalid(loc, what, "empty pattern");
  TRIALMATCH_ASSIGN_OR_RETURN(std::string expanded,
                              Expand(pattern, ctx, loc, what));
  return Compile(expanded, case_sensitive, loc, what);
}

absl::Status RuleSetBuilder::BuildComparators() {
  std::vector<std::string> parts;
  for (const auto& f : files_) {
    for (int i = 0; i < f->proto.comparator_size(); ++i) {
      const pb::Comparator& c = f->proto.comparator(i);
      const SourceLocation loc = f->At("comparator", i);
      const auto op = OpFromProto(c.op());
      if (!op) return Invalid(loc, "comparator", "op is required");
      TRIALMATCH_ASSIGN_OR_RETURN(std::string expanded,
                                  Expand(c.pattern(), {}, loc, "comparator"));
      if (expanded.empty()) return Invalid(loc, "comparator", "empty pattern");
      TRIALMATCH_ASSIGN_OR_RETURN(
          auto re, Compile("(?:" + expanded + ")", false, loc, "comparator"));
      set_->comparators_.emplace_back(*op, std::move(re));
      parts.push_back("(?:" + expanded + ")");
      for (const std::string& text : c.example()) {
        ExampleDef ex;
        ex.target = ExampleDef::Target::kComparator;
        ex.owner_id = absl::StrCat("comparator.", pb::Op_Name(c.op()));
        ex.location = loc;
        ex.text = text;
        set_->examples_.push_back(std::move(ex));
      }
    }
  }
  if (parts.empty()) {
    return absl::InvalidArgumentError("no comparators declared");
  }
  cmp_union_ = absl::StrJoin(parts, "|");
  return absl::OkStatus();
}

absl::Status RuleSetBuilder::BuildQuantities() {
  std::vector<std::string> all_units;
  for (const auto& f : files_) {
    for (int i = 0; i < f->proto.quantity_size(); ++i) {
      const pb::Quantity& q = f->proto.quantity(i);
      const SourceLocation loc = f->At("quantity", i);
      const std::string what = "quantity " + q.name();
      if (q.name().empty()) return Invalid(loc, "quantity", "name is required");
      if (set_->quantity_index_.contains(q.name())) {
        return Invalid(loc, what, "declared twice");
      }
      QuantityDef d;
      d.name = q.name();
      const auto kind = KindFromProto(q.kind());
      if (!kind || (*kind != Kind::kLab && *kind != Kind::kAge &&
                    *kind != Kind::kPerformanceStatus)) {
        return Invalid(loc, what,
                       "kind must be KIND_LAB, KIND_AGE or "
                       "KIND_PERFORMANCE_STATUS");
      }
      d.kind = *kind;
      d.unit = q.unit();
      d.min = q.min();
      d.max = q.max();
      d.uln_max = q.uln_max();
      if (d.unit.empty()) return Invalid(loc, what, "unit is required");
      if (!(d.min < d.max)) return Invalid(loc, what, "needs min < max");
      if (q.units_size() == 0) return Invalid(loc, what, "no units");
      std::vector<std::pair<size_t, std::string>> unit_patterns;
      for (int u = 0; u < q.units_size(); ++u) {
        const pb::Unit& pu = q.units(u);
        const std::string uwhat = what + " unit " + pu.name();
        if (pu.factor() == 0) return Invalid(loc, uwhat, "factor must be set");
        if (pu.assume_max() < pu.assume_min()) {
          return Invalid(loc, uwhat, "assume_max < assume_min");
        }
        TRIALMATCH_ASSIGN_OR_RETURN(std::string expanded,
                                    Expand(pu.pattern(), {}, loc, uwhat));
        if (expanded.empty()) return Invalid(loc, uwhat, "empty pattern");
        TRIALMATCH_ASSIGN_OR_RETURN(
            auto re, Compile("(?:" + expanded + ")", false, loc, uwhat));
        UnitDef ud;
        ud.name = pu.name();
        ud.re = std::move(re);
        ud.factor = pu.factor();
        ud.offset = pu.offset();
        ud.assume_min = pu.assume_min();
        ud.assume_max = pu.assume_max();
        for (const UnitDef& other : d.units) {
          const bool both = ud.assume_max > 0 && other.assume_max > 0;
          if (both && ud.assume_min <= other.assume_max &&
              other.assume_min <= ud.assume_max) {
            return Invalid(loc, uwhat,
                           "assume window overlaps unit " + other.name);
          }
        }
        d.units.push_back(std::move(ud));
        unit_patterns.emplace_back(expanded.size(), "(?:" + expanded + ")");
      }
      // Longer unit patterns first: leftmost-first alternation then prefers
      // "mL/min/1.73m2" over its prefix "mL/min".
      std::stable_sort(unit_patterns.begin(), unit_patterns.end(),
                       [](const auto& a, const auto& b) {
                         return a.first > b.first;
                       });
      std::vector<std::string> ordered;
      for (auto& [len, p] : unit_patterns) {
        ordered.push_back(p);
        all_units.push_back(p);
      }
      set_->quantity_index_[d.name] =
          static_cast<int>(set_->quantities_.size());
      set_->quantities_.push_back(std::move(d));
      quantity_unit_union_.push_back(absl::StrJoin(ordered, "|"));
    }
  }
  std::stable_sort(all_units.begin(), all_units.end(),
                   [](const std::string& a, const std::string& b) {
                     return a.size() > b.size();
                   });
  all_units.erase(std::unique(all_units.begin(), all_units.end()),
                  all_units.end());
  any_unit_union_ = all_units.empty() ? "[^\\x00-\\x{10FFFF}]"
                                      : absl::StrJoin(all_units, "|");
  if (!all_units.empty()) {
    TRIALMATCH_ASSIGN_OR_RETURN(
        set_->any_unit_,
        Compile("\\s*(?:%|" + any_unit_union_ + ")(?:\\b|$|[^a-z0-9])", false,
                SourceLocation{"units", 0}, "all units", false, 0,
                options_.max_dictionary_program_size));
  }
  return absl::OkStatus();
}

std::string RuleSetBuilder::UnitUnion(
    const std::vector<int>& quantity_indexes) const {
  std::vector<std::string> parts;
  for (int q : quantity_indexes) parts.push_back(quantity_unit_union_[q]);
  return absl::StrJoin(parts, "|");
}

absl::Status RuleSetBuilder::FillGroups(MatchRule* rule, std::string_view what) {
  for (const auto& [index, name] : rule->re->CapturingGroupNames()) {
    const auto role = RoleOf(name);
    if (!role) {
      return Invalid(rule->location, what,
                     "unknown capture group name '" + name + "'");
    }
    rule->groups[static_cast<int>(*role)].push_back(index);
  }
  auto has = [&](CaptureRole r) {
    return !rule->groups[static_cast<int>(r)].empty();
  };
  const bool numeric = rule->kind == Kind::kAge || rule->kind == Kind::kLab ||
                       rule->kind == Kind::kPerformanceStatus;
  const bool values = has(CaptureRole::kValue) || has(CaptureRole::kLow) ||
                      has(CaptureRole::kHigh) || has(CaptureRole::kList) ||
                      has(CaptureRole::kUln);
  if (numeric && !values) {
    return Invalid(rule->location, what,
                   "numeric rule needs a value, low, high, list or uln group");
  }
  if (!numeric && values) {
    return Invalid(rule->location, what,
                   "only numeric kinds may capture values");
  }
  if ((has(CaptureRole::kValue) || (has(CaptureRole::kUln) &&
                                    !has(CaptureRole::kLow) &&
                                    !has(CaptureRole::kHigh) &&
                                    !has(CaptureRole::kList))) &&
      !has(CaptureRole::kCmp) && !rule->default_op) {
    return Invalid(rule->location, what,
                   "a value without a cmp group needs default_op");
  }
  if (has(CaptureRole::kValueB) && rule->quantities.size() < 2) {
    return Invalid(rule->location, what,
                   "value_b needs a second quantity");
  }
  return absl::OkStatus();
}

absl::Status RuleSetBuilder::AddMatchRule(MatchRule rule,
                                          const std::string& trigger,
                                          bool trigger_case_sensitive,
                                          std::unique_ptr<RE2> name_re) {
  (void)name_re;
  rule.family = static_cast<int>(set_->families_.size());
  RuleFamily fam;
  fam.id = rule.id;
  fam.rules.push_back(static_cast<int>(set_->rules_.size()));
  triggers_.emplace_back(trigger, trigger_case_sensitive);
  trigger_locations_.push_back(rule.location);
  set_->families_.push_back(std::move(fam));
  set_->rules_.push_back(std::move(rule));
  return absl::OkStatus();
}

void RuleSetBuilder::AddExamples(
    ExampleDef::Target target, const std::string& owner,
    const google::protobuf::RepeatedPtrField<pb::Example>& examples,
    const ParsedFile& file, const char* field, int index) {
  for (int j = 0; j < examples.size(); ++j) {
    const pb::Example& e = examples.Get(j);
    ExampleDef ex;
    ex.target = target;
    ex.owner_id = owner;
    ex.location = file.AtNested(field, index, "example", j);
    ex.text = e.text();
    ex.section = SectionFromProto(e.section());
    ex.no_match = e.no_match();
    for (const pb::Expect& x : e.expect()) {
      ex.expects.push_back(ExpectFromProto(x));
    }
    set_->examples_.push_back(std::move(ex));
  }
}

absl::Status RuleSetBuilder::BuildRules() {
  // Templates first (they may be declared in any file).
  for (const auto& f : files_) {
    for (int i = 0; i < f->proto.template__size(); ++i) {
      const pb::Template& t = f->proto.template_(i);
      const SourceLocation loc = f->At("template", i);
      if (t.name().empty()) return Invalid(loc, "template", "name is required");
      if (!templates_.emplace(t.name(), std::make_pair(&t, loc)).second) {
        return Invalid(loc, "template " + t.name(), "declared twice");
      }
    }
  }
  auto check_id = [&](const std::string& id, const SourceLocation& loc,
                      std::string_view what) -> absl::Status {
    if (id.empty()) return Invalid(loc, what, "id is required");
    for (char c : id) {
      if (!(absl::ascii_isalnum(c) || c == '.' || c == '_')) {
        return Invalid(loc, id, "ids use [A-Za-z0-9._] only");
      }
    }
    if (!ids_.insert(id).second) return Invalid(loc, id, "duplicate id");
    return absl::OkStatus();
  };
  auto compile_vetoes = [&](const google::protobuf::RepeatedPtrField<std::string>& vetoes,
                            bool cs, const SourceLocation& loc,
                            const std::string& id,
                            MatchRule* rule) -> absl::Status {
    for (const std::string& v : vetoes) {
      TRIALMATCH_ASSIGN_OR_RETURN(auto re,
                                  ExpandAndCompile(v, cs, loc, id + " veto"));
      rule->vetoes.push_back(std::move(re));
    }
    return absl::OkStatus();
  };

  for (const auto& f : files_) {
    // Measurements: one rule per form, one family per measurement.
    for (int i = 0; i < f->proto.measurement_size(); ++i) {
      const pb::Measurement& m = f->proto.measurement(i);
      const SourceLocation loc = f->At("measurement", i);
      TRIALMATCH_RETURN_IF_ERROR(check_id(m.id(), loc, "measurement"));
      if (m.quantity_size() == 0) {
        return Invalid(loc, m.id(), "needs at least one quantity");
      }
      if (m.form_size() == 0) return Invalid(loc, m.id(), "needs a form");
      std::vector<int> qs;
      for (const std::string& qn : m.quantity()) {
        const int q = set_->FindQuantity(qn);
        if (q < 0) return Invalid(loc, m.id(), "unknown quantity " + qn);
        if (!qs.empty() &&
            set_->quantities_[q].kind != set_->quantities_[qs[0]].kind) {
          return Invalid(loc, m.id(), "quantities of different kinds");
        }
        qs.push_back(q);
      }
      TRIALMATCH_ASSIGN_OR_RETURN(std::string name,
                                  Expand(m.name(), {}, loc, m.id() + " name"));
      if (name.empty()) return Invalid(loc, m.id(), "name is required");
      const std::string units = UnitUnion(qs);
      TRIALMATCH_ASSIGN_OR_RETURN(
          auto name_re, Compile(name, m.case_sensitive(), loc, m.id() + " name"));
      const int family = static_cast<int>(set_->families_.size());
      RuleFamily fam;
      fam.id = m.id();
      fam.name_re = std::move(name_re);
      for (const std::string& form : m.form()) {
        auto it = templates_.find(form);
        if (it == templates_.end()) {
          return Invalid(loc, m.id(), "unknown form " + form);
        }
        const pb::Template& t = *it->second.first;
        MatchRule r;
        r.id = absl::StrCat(m.id(), ".", absl::AsciiStrToLower(form));
        TRIALMATCH_RETURN_IF_ERROR(check_id(r.id, loc, "measurement form"));
        r.location = loc;
        r.kind = set_->quantities_[qs[0]].kind;
        r.quantities = qs;
        r.default_op = OpFromProto(t.default_op());
        r.priority = m.priority();
        r.family = family;
        r.from_measurement = true;
        r.anchored_at_name = absl::StartsWith(t.pattern(), "{{NAME}}");
        const std::string wrapped_name = "(?:" + name + ")";
        const std::string wrapped_units = "(?:" + units + ")";
        ExpandContext ctx{&wrapped_name, &wrapped_units};
        TRIALMATCH_ASSIGN_OR_RETURN(
            std::string expanded,
            Expand(t.pattern(), ctx, it->second.second,
                   r.id + " (template " + form + ")"));
        TRIALMATCH_ASSIGN_OR_RETURN(
            r.re, Compile(expanded, m.case_sensitive(), loc, r.id));
        TRIALMATCH_RETURN_IF_ERROR(FillGroups(&r, r.id));
        if (r.anchored_at_name && fam.name_re->NumberOfCapturingGroups() == 0) {
          TRIALMATCH_ASSIGN_OR_RETURN(
              std::string rest,
              Expand(std::string_view(t.pattern()).substr(std::strlen("{{NAME}}")),
                     ctx, it->second.second, r.id + " (template " + form + ")"));
          r.after_name = CompileAfterName(rest, *r.re);
        }
        TRIALMATCH_RETURN_IF_ERROR(
            compile_vetoes(m.veto(), m.case_sensitive(), loc, r.id, &r));
        fam.rules.push_back(static_cast<int>(set_->rules_.size()));
        set_->rules_.push_back(std::move(r));
      }
      std::string trigger = name;
      if (!m.trigger().empty()) {
        TRIALMATCH_ASSIGN_OR_RETURN(
            trigger, Expand(m.trigger(), {}, loc, m.id() + " trigger"));
      }
      triggers_.emplace_back(trigger, m.case_sensitive());
      trigger_locations_.push_back(loc);
      set_->families_.push_back(std::move(fam));
      AddExamples(ExampleDef::Target::kMeasurement, m.id(), m.example(), *f,
                  "measurement", i);
    }
    // Stand-alone rules: one family each.
    for (int i = 0; i < f->proto.rule_size(); ++i) {
      const pb::Rule& pr = f->proto.rule(i);
      const SourceLocation loc = f->At("rule", i);
      TRIALMATCH_RETURN_IF_ERROR(check_id(pr.id(), loc, "rule"));
      MatchRule r;
      r.id = pr.id();
      r.location = loc;
      const auto kind = KindFromProto(pr.kind());
      if (!kind || *kind == Kind::kOther || *kind == Kind::kHealthyVolunteers ||
          *kind == Kind::kCondition) {
        return Invalid(loc, r.id,
                       "kind must be one of AGE, SEX, LAB, "
                       "PERFORMANCE_STATUS, PREGNANCY, BREASTFEEDING, "
                       "CONTRACEPTION (conditions live in `condition`)");
      }
      r.kind = *kind;
      const bool numeric = r.kind == Kind::kAge || r.kind == Kind::kLab ||
                           r.kind == Kind::kPerformanceStatus;
      if (numeric) {
        const int q = set_->FindQuantity(pr.quantity());
        if (q < 0) return Invalid(loc, r.id, "unknown quantity '" + pr.quantity() + "'");
        if (set_->quantities_[q].kind != r.kind) {
          return Invalid(loc, r.id, "quantity kind differs from rule kind");
        }
        r.quantities.push_back(q);
      } else if (!pr.quantity().empty()) {
        return Invalid(loc, r.id, "quantity only applies to numeric kinds");
      }
      if (r.kind == Kind::kSex) {
        const auto sex = SexFromProto(pr.sex());
        if (!sex) return Invalid(loc, r.id, "KIND_SEX needs sex");
        r.sex = *sex;
      }
      r.default_op = OpFromProto(pr.default_op());
      r.negated = pr.negated();
      r.informational = pr.informational() || pr.cue_only() ||
                        r.kind == Kind::kContraception;
      r.cue_only = pr.cue_only();
      r.section = RuleSectionFromProto(pr.section());
      r.covers_criterion = pr.covers_criterion();
      r.subject_position = pr.subject_position();
      r.priority = pr.priority();
      r.note = pr.note();
      TRIALMATCH_ASSIGN_OR_RETURN(
          r.re, ExpandAndCompile(pr.pattern(), pr.case_sensitive(), loc, r.id));
      TRIALMATCH_RETURN_IF_ERROR(FillGroups(&r, r.id));
      TRIALMATCH_RETURN_IF_ERROR(
          compile_vetoes(pr.veto(), pr.case_sensitive(), loc, r.id, &r));
      std::string trigger = pr.trigger().empty() ? pr.pattern() : pr.trigger();
      TRIALMATCH_ASSIGN_OR_RETURN(trigger,
                                  Expand(trigger, {}, loc, r.id + " trigger"));
      TRIALMATCH_RETURN_IF_ERROR(
          AddMatchRule(std::move(r), trigger, pr.case_sensitive(), nullptr));
      AddExamples(ExampleDef::Target::kRule, pr.id(), pr.example(), *f, "rule",
                  i);
    }
  }
  return absl::OkStatus();
}

absl::Status RuleSetBuilder::BuildConcepts() {
  struct Pending {
    std::string parent;
    SourceLocation loc;
  };
  std::vector<Pending> pending;
  std::vector<std::string> unions;
  for (const auto& f : files_) {
    for (int i = 0; i < f->proto.condition_size(); ++i) {
      const pb::Concept& c = f->proto.condition(i);
      const SourceLocation loc = f->At("condition", i);
      if (c.id().empty() || !absl::StartsWith(c.id(), "condition.")) {
        return Invalid(loc, c.id(), "condition ids start with 'condition.'");
      }
      if (!ids_.insert(c.id()).second) return Invalid(loc, c.id(), "duplicate id");
      if (c.name().empty()) return Invalid(loc, c.id(), "name is required");
      if (c.synonym_size() == 0) return Invalid(loc, c.id(), "no synonyms");
      for (const std::string& mesh : c.mesh_id()) {
        bool ok = mesh.size() >= 7 && (mesh[0] == 'D' || mesh[0] == 'C');
        for (size_t k = 1; ok && k < mesh.size(); ++k) {
          ok = absl::ascii_isdigit(static_cast<unsigned char>(mesh[k]));
        }
        if (!ok) return Invalid(loc, c.id(), "bad MeSH id '" + mesh + "'");
      }
      std::vector<std::string> syns;
      for (const std::string& s : c.synonym()) {
        TRIALMATCH_ASSIGN_OR_RETURN(std::string e,
                                    Expand(s, {}, loc, c.id() + " synonym"));
        if (e.empty()) return Invalid(loc, c.id(), "empty synonym");
        // Each synonym alone must compile (precise error location).
        TRIALMATCH_ASSIGN_OR_RETURN(auto re,
                                    Compile(e, false, loc, c.id() + " synonym"));
        if (re->Match("", 0, 0, RE2::UNANCHORED, nullptr, 0)) {
          return Invalid(loc, c.id(), "synonym '" + s + "' matches empty text");
        }
        syns.push_back("(?:" + e + ")");
      }
      ConceptDef d;
      d.id = c.id();
      d.name = c.name();
      d.mesh_ids.assign(c.mesh_id().begin(), c.mesh_id().end());
      d.location = loc;
      set_->concept_index_[d.id] = static_cast<int>(set_->concepts_.size());
      set_->concepts_.push_back(std::move(d));
      pending.push_back({c.parent(), loc});
      unions.push_back(absl::StrJoin(syns, "|"));
      AddExamples(ExampleDef::Target::kConcept, c.id(), c.example(), *f,
                  "condition", i);
    }
  }
  for (size_t i = 0; i < pending.size(); ++i) {
    if (pending[i].parent.empty()) continue;
    const int p = set_->FindConcept(pending[i].parent);
    if (p < 0) {
      return Invalid(pending[i].loc, set_->concepts_[i].id,
                     "unknown parent " + pending[i].parent);
    }
    set_->concepts_[i].parent = p;
  }
  for (size_t i = 0; i < set_->concepts_.size(); ++i) {
    ConceptDef& c = set_->concepts_[i];
    int p = c.parent;
    size_t steps = 0;
    while (p >= 0) {
      if (++steps > set_->concepts_.size() || p == static_cast<int>(i)) {
        return Invalid(c.location, c.id, "parent chain has a cycle");
      }
      for (const std::string& m : set_->concepts_[p].mesh_ids) {
        if (std::find(c.ancestor_mesh_ids.begin(), c.ancestor_mesh_ids.end(),
                      m) == c.ancestor_mesh_ids.end() &&
            std::find(c.mesh_ids.begin(), c.mesh_ids.end(), m) ==
                c.mesh_ids.end()) {
          c.ancestor_mesh_ids.push_back(m);
        }
      }
      p = set_->concepts_[p].parent;
    }
  }
  if (set_->concepts_.empty()) return absl::OkStatus();

  RE2::Options opt;
  opt.set_encoding(RE2::Options::EncodingUTF8);
  opt.set_log_errors(false);
  opt.set_case_sensitive(false);
  opt.set_max_mem(options_.dictionary_max_mem);
  auto set = std::make_unique<RE2::Set>(opt, RE2::ANCHOR_BOTH);
  for (size_t i = 0; i < unions.size(); ++i) {
    std::string error;
    if (set->Add(unions[i], &error) < 0) {
      return Invalid(set_->concepts_[i].location, set_->concepts_[i].id,
                     "bad synonym pattern: " + error);
    }
  }
  if (!set->Compile()) {
    return absl::InvalidArgumentError(
        "condition synonyms: the concept set exceeds its memory budget");
  }
  set_->concept_set_ = std::move(set);
  std::vector<std::string> wrapped;
  for (const std::string& u : unions) wrapped.push_back("(?:" + u + ")");
  dictionary_pattern_ = "\\b(?:" + absl::StrJoin(wrapped, "|") + ")\\b";
  TRIALMATCH_ASSIGN_OR_RETURN(
      set_->dictionary_,
      Compile(dictionary_pattern_, false,
              SourceLocation{"condition synonyms", 0}, "dictionary",
              /*longest_match=*/true, options_.dictionary_max_mem,
              options_.max_dictionary_program_size));
  return absl::OkStatus();
}

absl::Status RuleSetBuilder::BuildPhrases() {
  std::array<std::vector<std::string>, kNumPhraseRoles> parts;
  for (const auto& f : files_) {
    for (int i = 0; i < f->proto.phrase_size(); ++i) {
      const pb::Phrase& ph = f->proto.phrase(i);
      const SourceLocation loc = f->At("phrase", i);
      if (ph.id().empty()) return Invalid(loc, "phrase", "id is required");
      if (!ids_.insert(ph.id()).second) return Invalid(loc, ph.id(), "duplicate id");
      if (ph.role() == pb::ROLE_STOPWORD || ph.role() == pb::ROLE_QUALIFIER) {
        if (!ph.pattern().empty() || ph.word_size() == 0) {
          return Invalid(loc, ph.id(), "word lists use `word`, not `pattern`");
        }
        auto& words = ph.role() == pb::ROLE_STOPWORD ? set_->stopwords_
                                                     : set_->qualifiers_;
        for (const std::string& w : ph.word()) {
          words.Insert(absl::AsciiStrToLower(w));
        }
        continue;
      }
      const auto role = PhraseRoleFromProto(ph.role());
      if (!role) return Invalid(loc, ph.id(), "role is required");
      if (ph.word_size() > 0) return Invalid(loc, ph.id(), "`word` only for word lists");
      TRIALMATCH_ASSIGN_OR_RETURN(std::string expanded,
                                  Expand(ph.pattern(), {}, loc, ph.id()));
      if (expanded.empty()) return Invalid(loc, ph.id(), "empty pattern");
      PhraseDef d;
      d.id = ph.id();
      d.role = *role;
      d.location = loc;
      TRIALMATCH_ASSIGN_OR_RETURN(d.re, Compile(expanded, false, loc, ph.id()));
      if (d.re->Match("", 0, 0, RE2::UNANCHORED, nullptr, 0)) {
        return Invalid(loc, ph.id(), "pattern matches empty text");
      }
      parts[static_cast<int>(*role)].push_back("(?:" + expanded + ")");
      for (const std::string& m : ph.match()) {
        ExampleDef ex;
        ex.target = ExampleDef::Target::kPhrase;
        ex.owner_id = ph.id();
        ex.location = loc;
        ex.text = m;
        set_->examples_.push_back(std::move(ex));
      }
      for (const std::string& m : ph.no_match()) {
        ExampleDef ex;
        ex.target = ExampleDef::Target::kPhrase;
        ex.owner_id = ph.id();
        ex.location = loc;
        ex.text = m;
        ex.no_match = true;
        set_->examples_.push_back(std::move(ex));
      }
      set_->phrases_.push_back(std::move(d));
    }
  }
  for (int r = 0; r < kNumPhraseRoles; ++r) {
    if (parts[r].empty()) continue;
    role_patterns_[r] = absl::StrJoin(parts[r], "|");
    TRIALMATCH_ASSIGN_OR_RETURN(
        set_->phrase_union_[r],
        Compile(absl::StrJoin(parts[r], "|"), false,
                SourceLocation{"phrases", 0},
                absl::StrCat("phrase role ", r), false, 0,
                options_.max_dictionary_program_size));
  }
  return absl::OkStatus();
}

absl::Status RuleSetBuilder::BuildTriggerSet() {
  RE2::Options opt;
  opt.set_encoding(RE2::Options::EncodingUTF8);
  opt.set_log_errors(false);
  opt.set_case_sensitive(false);
  opt.set_max_mem(options_.set_max_mem);
  auto set = std::make_unique<RE2::Set>(opt, RE2::UNANCHORED);
  for (size_t i = 0; i < triggers_.size(); ++i) {
    std::string pattern = triggers_[i].first;
    if (triggers_[i].second) pattern = "(?-i:" + pattern + ")";
    // Check size like any rule pattern before adding it.
    TRIALMATCH_ASSIGN_OR_RETURN(
        auto probe, Compile(pattern, false, trigger_locations_[i],
                            set_->families_[i].id + " trigger"));
    --set_->pattern_count_;
    std::string error;
    if (set->Add(pattern, &error) != static_cast<int>(i)) {
      return Invalid(trigger_locations_[i], set_->families_[i].id,
                     "bad trigger: " + error);
    }
  }
  // The same pass tells whether a condition synonym or an administrative
  // keyword occurs.
  {
    std::string error;
    if (!dictionary_pattern_.empty()) {
      set_->dictionary_slot_ = set->Add(dictionary_pattern_, &error);
      if (set_->dictionary_slot_ < 0) {
        return absl::InvalidArgumentError("condition synonyms: " + error);
      }
    }
    auto admin = macros_.find("ADMINISTRATIVE_TRIGGER");
    if (admin != macros_.end()) {
      TRIALMATCH_ASSIGN_OR_RETURN(
          std::string pattern,
          Expand("{{ADMINISTRATIVE_TRIGGER}}", {}, admin->second.second,
                 "macro ADMINISTRATIVE_TRIGGER"));
      set_->administrative_slot_ = set->Add(pattern, &error);
      if (set_->administrative_slot_ < 0) {
        return Invalid(admin->second.second, "macro ADMINISTRATIVE_TRIGGER",
                       error);
      }
    }
  }
  if (!set->Compile()) {
    return absl::InvalidArgumentError(
        "rule triggers: the RE2::Set exceeds its memory budget");
  }
  // The text-level phrase roles in one combined pattern: one capture group
  // per role, in priority order.
  static constexpr PhraseRole kOrder[] = {
      PhraseRole::kExamples,       PhraseRole::kAdministrative,
      PhraseRole::kPseudoNegation, PhraseRole::kExclusionMarker,
      PhraseRole::kPermission,     PhraseRole::kTimeWindow,
      PhraseRole::kFiller,         PhraseRole::kException,
      PhraseRole::kConditional,    PhraseRole::kConditionVeto,
      PhraseRole::kNegation,       PhraseRole::kPostNegation,
      PhraseRole::kClauseBreak};
  std::vector<std::string> alternatives;
  int group = 1;
  for (PhraseRole role : kOrder) {
    const RE2* re = set_->phrase_union_[static_cast<int>(role)].get();
    if (re == nullptr) continue;
    alternatives.push_back("(" + role_patterns_[static_cast<int>(role)] + ")");
    set_->text_phrase_roles_.emplace_back(group, role);
    group += 1 + re->NumberOfCapturingGroups();
  }
  set_->text_phrase_groups_ = group;
  {
    // Classifies a found span: one anchored pass over all roles.
    auto roles = std::make_unique<RE2::Set>(opt, RE2::ANCHOR_BOTH);
    for (const auto& [g, role] : set_->text_phrase_roles_) {
      std::string error;
      if (roles->Add(role_patterns_[static_cast<int>(role)], &error) < 0) {
        return absl::InvalidArgumentError("phrase roles: " + error);
      }
    }
    if (!roles->Compile()) {
      return absl::InvalidArgumentError(
          "phrase roles: the RE2::Set exceeds its memory budget");
    }
    set_->text_phrase_roles_set_ = std::move(roles);
  }
  std::vector<std::string> headings;
  for (PhraseRole role : {PhraseRole::kSectionInclusion,
                          PhraseRole::kSectionExclusion,
                          PhraseRole::kSectionNeutral}) {
    if (!role_patterns_[static_cast<int>(role)].empty()) {
      headings.push_back("(?:" + role_patterns_[static_cast<int>(role)] + ")");
    }
  }
  if (!headings.empty()) {
    TRIALMATCH_ASSIGN_OR_RETURN(
        set_->section_headings_,
        Compile(absl::StrJoin(headings, "|"), false,
                SourceLocation{"phrases", 0}, "section headings", false, 0,
                options_.max_dictionary_program_size));
  }
  if (!alternatives.empty()) {
    TRIALMATCH_ASSIGN_OR_RETURN(
        set_->text_phrases_,
        Compile(absl::StrJoin(alternatives, "|"), false,
                SourceLocation{"phrases", 0}, "combined phrases", false, 0,
                options_.max_dictionary_program_size));
  }
  set_->trigger_set_ = std::move(set);
  return absl::OkStatus();
}

absl::Status RuleSetBuilder::BuildNamelessBound() {
  auto it = macros_.find("NAMELESS_BOUND");
  if (it == macros_.end()) return absl::OkStatus();
  auto rule = std::make_unique<MatchRule>();
  rule->id = "lab.nameless_bound";
  rule->location = it->second.second;
  rule->kind = Kind::kLab;
  rule->from_measurement = true;
  TRIALMATCH_ASSIGN_OR_RETURN(
      rule->re, ExpandAndCompile("{{NAMELESS_BOUND}}", false, rule->location,
                                 "macro NAMELESS_BOUND"));
  TRIALMATCH_RETURN_IF_ERROR(FillGroups(rule.get(), "macro NAMELESS_BOUND"));
  set_->nameless_bound_ = std::move(rule);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const RuleSet>> RuleSetBuilder::Build(
    const std::vector<RuleSource>& sources) {
  set_ = std::shared_ptr<RuleSet>(new RuleSet());
  TRIALMATCH_RETURN_IF_ERROR(Parse(sources));
  TRIALMATCH_RETURN_IF_ERROR(CollectMacros());
  TRIALMATCH_RETURN_IF_ERROR(BuildComparators());
  TRIALMATCH_RETURN_IF_ERROR(BuildQuantities());
  TRIALMATCH_RETURN_IF_ERROR(BuildRules());
  TRIALMATCH_RETURN_IF_ERROR(BuildConcepts());
  TRIALMATCH_RETURN_IF_ERROR(BuildPhrases());
  TRIALMATCH_RETURN_IF_ERROR(BuildTriggerSet());
  TRIALMATCH_RETURN_IF_ERROR(BuildNamelessBound());
  return std::shared_ptr<const RuleSet>(std::move(set_));
}

RuleSet::RuleSet() = default;
RuleSet::~RuleSet() = default;

absl::StatusOr<std::shared_ptr<const RuleSet>> RuleSet::LoadSources(
    const std::vector<RuleSource>& sources, const RuleSetOptions& options) {
  if (sources.empty()) {
    return absl::InvalidArgumentError("no rule sources given");
  }
  RuleSetBuilder builder(options);
  auto result = builder.Build(sources);
  if (!result.ok() && result.status().code() == absl::StatusCode::kNotFound) {
    return absl::InvalidArgumentError(result.status().message());
  }
  return result;
}

absl::StatusOr<std::shared_ptr<const RuleSet>> RuleSet::LoadDirectory(
    const std::filesystem::path& dir, const RuleSetOptions& options) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::NotFoundError(
        absl::StrCat("rules directory not found: ", dir.string()));
  }
  std::vector<std::filesystem::path> paths;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.is_regular_file() && entry.path().extension() == ".textproto") {
      paths.push_back(entry.path());
    }
  }
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot list ", dir.string(), ": ", ec.message()));
  }
  if (paths.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no *.textproto rule files in ", dir.string()));
  }
  std::sort(paths.begin(), paths.end());
  std::vector<RuleSource> sources;
  for (const auto& path : paths) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      return absl::UnavailableError(absl::StrCat("cannot read ", path.string()));
    }
    const auto size = std::filesystem::file_size(path, ec);
    if (!ec && size > options.max_file_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(path.string(), ": file larger than ",
                       options.max_file_bytes, " bytes"));
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    sources.push_back(
        RuleSource{(dir.filename() / path.filename()).string(), ss.str()});
  }
  return LoadSources(sources, options);
}

int RuleSet::FindQuantity(std::string_view name) const {
  auto it = quantity_index_.find(common::ToAbsl(name));
  return it == quantity_index_.end() ? -1 : it->second;
}

int RuleSet::FindConcept(std::string_view id) const {
  auto it = concept_index_.find(common::ToAbsl(id));
  return it == concept_index_.end() ? -1 : it->second;
}

void RuleSet::Scan(std::string_view text, ScanResult* out) const {
  out->families.clear();
  out->degraded = false;
  // Without a dictionary entry in the set, mentions are always looked for.
  out->mentions = dictionary_slot_ < 0 && dictionary_ != nullptr;
  out->administrative = administrative_slot_ < 0;
  RE2::Set::ErrorInfo info;
  if (!trigger_set_->Match(text, &out->families, &info)) {
    out->families.clear();
    if (info.kind != RE2::Set::kNoError) {
      out->degraded = true;  // cannot tell: try everything
      for (size_t i = 0; i < families_.size(); ++i) {
        out->families.push_back(static_cast<int>(i));
      }
      out->mentions = dictionary_slot_ >= 0;
      out->administrative = true;
    }
    return;
  }
  const auto nfam = static_cast<int>(families_.size());
  size_t kept = 0;
  for (int h : out->families) {
    if (h < nfam) {
      out->families[kept++] = h;
    } else if (h == dictionary_slot_) {
      out->mentions = true;
    } else if (h == administrative_slot_) {
      out->administrative = true;
    }
  }
  out->families.resize(kept);
  std::sort(out->families.begin(), out->families.end());
}

void RuleSet::FindTextPhrases(std::string_view text, PhraseMatches* out) const {
  if (text_phrases_ == nullptr) return;
  // Boundaries come from the combined pattern (DFA only); the role is the
  // first role, in priority order, whose own pattern matches the whole span
  // (a short anchored DFA run) — cheaper than capture groups over the big
  // combined program.
  re2::StringPiece m;
  std::vector<int> hits;
  size_t pos = 0;
  while (pos <= text.size() &&
         text_phrases_->Match(text, pos, text.size(), RE2::UNANCHORED, &m, 1)) {
    const auto begin = static_cast<int32_t>(m.data() - text.data());
    const auto end = static_cast<int32_t>(begin + m.size());
    pos = static_cast<size_t>(end > begin ? end : begin + 1);
    if (end == begin) continue;
    // The first role (in priority order) whose pattern spans the match.
    hits.clear();
    RE2::Set::ErrorInfo info;
    if (text_phrase_roles_set_->Match(m, &hits, &info) && !hits.empty()) {
      const int first = *std::min_element(hits.begin(), hits.end());
      const PhraseRole role = text_phrase_roles_[first].second;
      (*out)[static_cast<int>(role)].emplace_back(begin, end);
      continue;
    }
    for (const auto& [g, role] : text_phrase_roles_) {  // cannot tell: slow path
      const RE2& re = *phrase_union_[static_cast<int>(role)];
      if (re.Match(text, static_cast<size_t>(begin), static_cast<size_t>(end),
                   RE2::ANCHOR_BOTH, nullptr, 0)) {
        (*out)[static_cast<int>(role)].emplace_back(begin, end);
        break;
      }
    }
  }
}

std::optional<Comparison> RuleSet::ClassifyComparator(
    std::string_view text) const {
  for (const auto& [op, re] : comparators_) {
    if (RE2::FullMatch(text, *re)) return op;
  }
  return std::nullopt;
}

void RuleSet::FindMentions(std::string_view text,
                           std::vector<Mention>* out) const {
  if (dictionary_ == nullptr) return;
  re2::StringPiece match;
  size_t pos = 0;
  std::vector<int> hits;
  while (pos < text.size() &&
         dictionary_->Match(text, pos, text.size(), RE2::UNANCHORED, &match,
                            1)) {
    const auto begin = static_cast<int32_t>(match.data() - text.data());
    const auto end = static_cast<int32_t>(begin + match.size());
    if (end == begin) {
      pos = static_cast<size_t>(begin) + 1;
      continue;
    }
    hits.clear();
    if (concept_set_->Match(match, &hits) && !hits.empty()) {
      out->push_back(Mention{begin, end, *std::min_element(hits.begin(), hits.end())});
    }
    pos = static_cast<size_t>(end);
  }
}

void RuleSet::FindPhrases(
    PhraseRole role, std::string_view text,
    std::vector<std::pair<int32_t, int32_t>>* out) const {
  const RE2* re = phrase_union_[static_cast<int>(role)].get();
  if (re == nullptr) return;
  re2::StringPiece match;
  size_t pos = 0;
  while (pos <= text.size() &&
         re->Match(text, pos, text.size(), RE2::UNANCHORED, &match, 1)) {
    const auto begin = static_cast<int32_t>(match.data() - text.data());
    const auto end = static_cast<int32_t>(begin + match.size());
    if (end > begin) out->emplace_back(begin, end);
    pos = static_cast<size_t>(end > begin ? end : begin + 1);
  }
}

bool RuleSet::MatchesPhrase(PhraseRole role, std::string_view text,
                            bool anchor_start, int32_t* match_end) const {
  const RE2* re = phrase_union_[static_cast<int>(role)].get();
  if (re == nullptr) return false;
  re2::StringPiece match;
  if (!re->Match(text, 0, text.size(),
                 anchor_start ? RE2::ANCHOR_START : RE2::UNANCHORED, &match,
                 1)) {
    return false;
  }
  if (match_end != nullptr) {
    *match_end = static_cast<int32_t>(match.data() - text.data() + match.size());
  }
  return true;
}

bool RuleSet::UnitAt(std::string_view text, size_t pos) const {
  return any_unit_ != nullptr && pos <= text.size() &&
         any_unit_->Match(text, pos, text.size(), RE2::ANCHOR_START, nullptr, 0);
}

bool RuleSet::MaybeSectionHeading(std::string_view line) const {
  return section_headings_ != nullptr &&
         section_headings_->Match(line, 0, line.size(), RE2::ANCHOR_START,
                                  nullptr, 0);
}

bool RuleSet::HasPhrases(PhraseRole role) const {
  return phrase_union_[static_cast<int>(role)] != nullptr;
}

void WordList::Insert(std::string word) {
  if (Contains(word)) return;
  if (word.size() >= kMaxSize) {
    overflow_.insert(std::move(word));
    return;
  }
  const auto first = word.empty() ? 0 : static_cast<unsigned char>(word[0]);
  buckets_[word.size()][first & 63].push_back(std::move(word));
}

RuleSetHolder::RuleSetHolder(std::shared_ptr<const RuleSet> initial)
    : current_(std::move(initial)) {}

std::shared_ptr<const RuleSet> RuleSetHolder::Get() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

absl::Status RuleSetHolder::ReloadFromDirectory(
    const std::filesystem::path& dir, const RuleSetOptions& options) {
  auto loaded = RuleSet::LoadDirectory(dir, options);
  if (!loaded.ok()) return loaded.status();
  Set(*std::move(loaded));
  return absl::OkStatus();
}

void RuleSetHolder::Set(std::shared_ptr<const RuleSet> rules) {
  if (rules == nullptr) return;
  absl::MutexLock lock(&mu_);
  current_ = std::move(rules);
}

}  // namespace trialmatch::criteria
