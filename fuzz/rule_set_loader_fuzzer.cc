// libFuzzer target: any bytes as a rules file next to a minimal valid base.
// Loading must fail cleanly (kInvalidArgument with a message) or succeed
// with patterns inside the configured limits; a loaded set must compile a
// small text without crashing. Hostile patterns (huge repetitions, macro
// bombs, empty matches) are the point, so the limits are tight.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "criteria/compiler.h"
#include "criteria/rule_set.h"

namespace {

constexpr char kBase[] = R"pb(
version: "fuzz"
comparator { op: OP_GE pattern: '>=|at\\s+least' }
comparator { op: OP_LE pattern: '<=|at\\s+most' }
quantity {
  name: "age" kind: KIND_AGE unit: "years" min: 0 max: 130
  units { name: "years" pattern: 'years?' factor: 1 assume_min: 0 assume_max: 130 }
}
macro { name: "NUM" pattern: '\\d+(?:\\.\\d+)?' }
)pb";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (16 << 10)) return 0;
  std::vector<trialmatch::criteria::RuleSource> sources = {
      {"base.textproto", kBase},
      {"fuzz.textproto", std::string(reinterpret_cast<const char*>(data), size)}};
  trialmatch::criteria::RuleSetOptions options;
  options.max_mem_per_pattern = 1 << 20;
  options.max_program_size = 5000;
  options.set_max_mem = 4 << 20;
  options.dictionary_max_mem = 4 << 20;
  options.max_dictionary_program_size = 20000;
  options.max_expanded_pattern_bytes = 8 << 10;
  auto rules = trialmatch::criteria::RuleSet::LoadSources(sources, options);
  if (!rules.ok()) {
    if (rules.status().code() != absl::StatusCode::kInvalidArgument ||
        rules.status().message().empty()) {
      std::abort();
    }
    return 0;
  }
  for (const auto& r : (*rules)->rules()) {
    if (r.re->ProgramSize() > options.max_program_size) std::abort();
  }
  const trialmatch::criteria::Compiler compiler(*rules);
  compiler.CompileText("Inclusion Criteria:\n\n* Age >= 18 years\n* Pregnant\n\n"
                       "Exclusion Criteria:\n\n* No history of stroke");
  return 0;
}
