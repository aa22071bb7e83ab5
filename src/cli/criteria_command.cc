// `trialmatch criteria`: the compiled eligibility criteria of studies.
//
//   trialmatch criteria NCT04280705 [NCT...]   from the store (the stored
//                                              entry when fresh, else
//                                              compiled now; the store is
//                                              not written)
//   trialmatch criteria --file study.json      a study record (an object, an
//                                              array of them, or a /studies
//                                              page); repeatable; - = stdin
//   trialmatch criteria --text criteria.txt    a bare eligibility text
//   trialmatch criteria --stats                coverage over the store
//   trialmatch criteria --recompile [--force]  bring the stored entries up
//                                              to date (what sync/import do)
//
// Output: each criterion as written with the evidence of its predicates
// marked (ANSI bold on a terminal, [[...]] otherwise; --color), the
// predicates in plain words with their rule ids, then the structured fields,
// conflicts and notes. --json prints criteria::ToJson of each study, one per
// line (JSON Lines); with --stats, the coverage as one JSON object.
// Exit codes: 0 ok, 1 a study failed (not stored, unreadable) or the store
// or rules failed, 2 usage.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/cli.h"
#include "cli/command_flags.h"
#include "cli/criteria_step.h"
#include "cli/flags.h"
#include "cli/rules_location.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "criteria/compiler.h"
#include "criteria/json.h"
#include "criteria/render.h"
#include "criteria/stats.h"
#include "model/study.h"
#include "nlohmann/json.hpp"
#include "store/study_store.h"
#include "sync/criteria_refresh.h"

namespace trialmatch::cli {
namespace {

constexpr char kCmd[] = "trialmatch criteria";

struct CriteriaFlags {
  std::string store_path = store::DefaultStorePath();
  std::string rules;
  std::vector<std::string> files;
  std::vector<std::string> texts;
  bool json = false;
  bool stats = false;
  bool recompile = false;
  bool force = false;
  int threads = 0;
  std::string color = "auto";
  bool rule_ids = true;
  std::string section = "inclusion";
  std::string log_level = "warning";
};

std::string StaleReasonText(store::StaleReason reason) {
  switch (reason) {
    case store::StaleReason::kMissing:
      return "no stored entry";
    case store::StaleReason::kVersionChanged:
      return "stored entry made by another compiler or rules version";
    case store::StaleReason::kContentChanged:
      return "stored entry made from an older record";
  }
  return "stale";
}

absl::StatusOr<std::string> ReadInput(const std::string& path) {
  if (path == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad())
    return absl::UnavailableError(absl::StrCat("cannot read ", path));
  return ss.str();
}

// The study objects in a file: one object, an array of objects, or a
// /studies page ({"studies": [...]}).
absl::StatusOr<std::vector<model::Study>> StudiesInFile(
    const std::string& path) {
  TRIALMATCH_ASSIGN_OR_RETURN(std::string text, ReadInput(path));
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not JSON"));
  }
  const nlohmann::json* list = nullptr;
  if (doc.is_array()) {
    list = &doc;
  } else if (doc.is_object() && doc.contains("studies") &&
             doc["studies"].is_array()) {
    list = &doc["studies"];
  }
  std::vector<model::Study> out;
  if (list == nullptr) {
    absl::StatusOr<model::Study> s = model::StudyFromJson(doc);
    if (!s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": not a study record: ", s.status().message()));
    }
    out.push_back(*std::move(s));
    return out;
  }
  for (std::size_t i = 0; i < list->size(); ++i) {
    absl::StatusOr<model::Study> s = model::StudyFromJson((*list)[i]);
    if (!s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": item ", i,
                       " is not a study record: ", s.status().message()));
    }
    out.push_back(*std::move(s));
  }
  return out;
}

class Printer {
 public:
  Printer(const CriteriaFlags& f, bool ansi)
      : json_(f.json),
        options_{.ansi = ansi,
                 .show_structured = true,
                 .show_rule_ids = f.rule_ids} {}

  void Print(const criteria::CompiledStudy& cs, std::string_view text,
             std::string_view provenance) {
    if (json_) {
      std::cout << criteria::ToJson(cs) << "\n";
      return;
    }
    if (printed_++ > 0) std::cout << "\n";
    const std::string title =
        cs.nct_id.empty() ? std::string("(eligibility text)") : cs.nct_id;
    std::cout << (options_.ansi ? "\033[1m" : "") << title
              << (options_.ansi ? "\033[0m" : "") << "  compiler "
              << cs.compiler_version << ", rules " << cs.rules_version << " ("
              << provenance << ")\n"
              << criteria::Render(cs, text, options_);
  }

 private:
  const bool json_;
  const criteria::RenderOptions options_;
  int printed_ = 0;
};

int Stats(store::StudyStore& st, const criteria::Compiler& compiler,
          const CriteriaFlags& f) {
  criteria::CoverageStats stats;
  int64_t stored = 0;
  int64_t compiled_now = 0;
  int64_t unreadable = 0;
  store::StudyFilter filter;
  filter.include_compiled = true;
  absl::Status s = st.ForEachStudy(filter, [&](const store::StudyView& v) {
    if (v.has_compiled && v.compiler_version == criteria::kCompilerVersion &&
        v.rules_version == compiler.rules().version() &&
        v.compiled_content_hash == v.content_hash) {
      absl::StatusOr<criteria::CompiledStudy> cs =
          criteria::FromJson(v.compiled_blob);
      if (cs.ok()) {
        stats.Add(*cs);
        ++stored;
        return absl::OkStatus();
      }
    }
    absl::StatusOr<model::Study> study = model::ParseStudy(v.raw_json);
    if (!study.ok()) {
      ++unreadable;
      return absl::OkStatus();
    }
    stats.Add(compiler.Compile(*study));
    ++compiled_now;
    return absl::OkStatus();
  });
  if (!s.ok()) {
    std::cerr << kCmd << ": " << s.message() << "\n";
    return kExitFailure;
  }
  if (f.json) {
    nlohmann::json out = stats.ToJsonValue();
    out["from_stored_entries"] = stored;
    out["compiled_now"] = compiled_now;
    out["unreadable_records"] = unreadable;
    out["compiler_version"] = std::string(criteria::kCompilerVersion);
    out["rules_version"] = compiler.rules().version();
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << "coverage of the ACTIVE studies in " << st.path()
              << " (compiler " << criteria::kCompilerVersion << ", rules "
              << compiler.rules().version() << "): " << stored
              << " from stored entries, " << compiled_now
              << " compiled now (missing or stale entries; `trialmatch "
                 "criteria --recompile` stores them)";
    if (unreadable > 0) std::cout << ", " << unreadable << " unreadable";
    std::cout << "\n\n" << stats.Render();
  }
  return unreadable > 0 ? kExitFailure : kExitOk;
}

}  // namespace

int CriteriaCommand(const std::vector<std::string>& args) {
  CriteriaFlags f;
  FlagSet flags(kCmd,
                "Prints the compiled eligibility criteria of studies: each "
                "criterion with the evidence of its predicates marked, the "
                "predicates in plain words with their rule ids, conflicts "
                "with the structured fields, and what needs review.");
  flags.set_positional_help("[NCT...]");
  flags.String("store", &f.store_path, "SQLite study store path");
  flags.String("rules", &f.rules,
               "eligibility rules directory (default: $TRIALMATCH_RULES_DIR, "
               "the source tree's rules/, /usr/share/trialmatch/rules)");
  flags.StringList("file", &f.files,
                   "compile the study record(s) in this JSON file (an object, "
                   "an array, or a /studies page; - = stdin); repeatable");
  flags.StringList("text", &f.texts,
                   "compile a bare eligibility text from this file (- = "
                   "stdin); repeatable");
  flags.String("section", &f.section,
               "with --text: section of text before any heading (inclusion, "
               "exclusion or none)");
  flags.Bool("json", &f.json,
             "print JSON (criteria::ToJson, one study per line; with --stats "
             "the coverage)");
  flags.Bool("stats", &f.stats,
             "coverage of the store's ACTIVE studies: predicates per kind, "
             "criteria read / partly read / left for review, conflicts");
  flags.Bool("recompile", &f.recompile,
             "compile and store the criteria of studies whose stored entry is "
             "missing or stale");
  flags.Bool("force", &f.force, "with --recompile: every study, fresh or not");
  flags.Int("threads", &f.threads,
            "with --recompile: compile threads (0 = one per CPU)");
  flags.String("color", &f.color,
               "mark evidence with ANSI: auto, always, never");
  flags.Bool("rule_ids", &f.rule_ids, "show the rule id of each predicate");
  flags.String("log_level", &f.log_level, "debug, info, warning or error");
  std::vector<std::string> ids;
  if (std::optional<int> exit = ParseFlagsOrExit(flags, args, &ids)) {
    return *exit;
  }
  if (!ApplyLogLevelFlag(kCmd, f.log_level)) return kExitUsage;
  if (ids.empty() && f.files.empty() && f.texts.empty() && !f.stats &&
      !f.recompile) {
    std::cerr << kCmd
              << ": give NCT ids, --file, --text, --stats or --recompile\n"
              << flags.Usage();
    return kExitUsage;
  }
  if (f.color != "auto" && f.color != "always" && f.color != "never") {
    std::cerr << kCmd << ": --color must be auto, always or never\n";
    return kExitUsage;
  }
  criteria::TextOptions text_options;
  if (f.section == "inclusion") {
    text_options.default_section = criteria::Section::kInclusion;
  } else if (f.section == "exclusion") {
    text_options.default_section = criteria::Section::kExclusion;
  } else if (f.section == "none") {
    text_options.default_section = criteria::Section::kUnspecified;
  } else {
    std::cerr << kCmd << ": --section must be inclusion, exclusion or none\n";
    return kExitUsage;
  }
  if (f.threads < 0) {
    std::cerr << kCmd << ": --threads must be >= 0\n";
    return kExitUsage;
  }
  for (const std::string& id : ids) {
    if (!model::IsValidNctId(id)) {
      std::cerr << kCmd << ": '" << id
                << "' is not an NCT id (NCT followed by 8 digits)\n";
      return kExitUsage;
    }
  }

  absl::StatusOr<std::shared_ptr<const criteria::RuleSet>> rules =
      FindAndLoadRules(f.rules);
  if (!rules.ok()) {
    std::cerr << kCmd << ": " << rules.status().message() << "\n";
    return kExitFailure;
  }
  const criteria::Compiler compiler(*rules);
  const bool ansi = f.color == "always" ||
                    (f.color == "auto" && ::isatty(STDOUT_FILENO) == 1 &&
                     std::getenv("NO_COLOR") == nullptr);
  Printer printer(f, ansi);
  int exit = kExitOk;

  for (const std::string& path : f.files) {
    absl::StatusOr<std::vector<model::Study>> studies = StudiesInFile(path);
    if (!studies.ok()) {
      std::cerr << kCmd << ": " << studies.status().message() << "\n";
      exit = kExitFailure;
      continue;
    }
    for (const model::Study& study : *studies) {
      printer.Print(compiler.Compile(study), study.eligibility.criteria,
                    absl::StrCat("compiled from ", path));
    }
  }
  for (const std::string& path : f.texts) {
    absl::StatusOr<std::string> text = ReadInput(path);
    if (!text.ok()) {
      std::cerr << kCmd << ": " << text.status().message() << "\n";
      exit = kExitFailure;
      continue;
    }
    printer.Print(compiler.CompileText(*text, text_options), *text,
                  absl::StrCat("compiled from ", path));
  }

  if (ids.empty() && !f.stats && !f.recompile) return exit;
  store::StoreOptions store_options;
  store_options.create_if_missing = false;
  absl::StatusOr<std::unique_ptr<store::StudyStore>> st =
      store::StudyStore::Open(f.store_path, store_options);
  if (!st.ok()) {
    std::cerr << kCmd << ": cannot open the store " << f.store_path << ": "
              << st.status().message() << "\n";
    return kExitFailure;
  }
  if (f.recompile) {
    if (int code = RefreshWithProgress(kCmd, **st, *rules, f.threads, f.force,
                                       /*cancelled=*/nullptr);
        code != kExitOk) {
      exit = code;
    }
  }
  for (const std::string& id : ids) {
    absl::StatusOr<sync::LoadedCriteria> loaded =
        sync::LoadOrCompile(**st, compiler, id);
    if (!loaded.ok()) {
      std::cerr << kCmd << ": " << id << ": "
                << (loaded.status().code() == absl::StatusCode::kNotFound
                        ? absl::StrCat("not in the store ", f.store_path)
                        : std::string(loaded.status().message()))
                << "\n";
      exit = kExitFailure;
      continue;
    }
    printer.Print(loaded->compiled, loaded->eligibility_criteria,
                  loaded->from_store
                      ? std::string("stored entry")
                      : absl::StrCat("compiled now: ",
                                     StaleReasonText(loaded->stale_reason)));
  }
  if (f.stats) {
    if (int code = Stats(**st, compiler, f); code != kExitOk) exit = code;
  }
  return exit;
}

}  // namespace trialmatch::cli
