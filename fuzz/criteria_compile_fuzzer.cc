// libFuzzer target: any bytes as eligibilityCriteria. The compiler must not
// crash, hang or trip a sanitizer, and its output must stay well formed
// (spans inside the text, evidence equal to the span's text, every criterion
// with a predicate, consistent tree, JSON that reads back). Modeled on
// re2/fuzzing/re2_fuzzer.cc: explicit resource limits, one shared set of
// rules.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "criteria/compiler.h"
#include "criteria/json.h"
#include "criteria/rule_set.h"

namespace {

using trialmatch::criteria::CompiledStudy;
using trialmatch::criteria::Compiler;
using trialmatch::criteria::CompilerOptions;
using trialmatch::criteria::RuleSet;

const Compiler& TheCompiler() {
  static const Compiler* const kCompiler = [] {
    auto rules = RuleSet::LoadDirectory(TRIALMATCH_RULES_DIR);
    if (!rules.ok()) std::abort();  // the project's rules must load
    CompilerOptions options;
    options.max_text_bytes = 256 << 10;
    return new Compiler(*std::move(rules), options);
  }();
  return *kCompiler;
}

void Check(bool ok) {
  if (!ok) std::abort();
}

void Verify(std::string_view text, const CompiledStudy& cs) {
  const auto nc = static_cast<int>(cs.criteria.size());
  const auto np = static_cast<int>(cs.predicates.size());
  for (int i = 0; i < nc; ++i) {
    const auto& c = cs.criteria[i];
    Check(!c.predicates.empty());
    Check(c.span.begin >= 0 && c.span.begin <= c.span.end &&
          static_cast<size_t>(c.span.end) <= text.size());
    Check(c.parent >= -1 && c.parent < nc && c.parent != i);
    for (int k : c.children) Check(k > i && k < nc && cs.criteria[k].parent == i);
    for (int k : c.predicates) Check(k >= 0 && k < np && cs.predicates[k].criterion == i);
  }
  for (const auto& p : cs.predicates) {
    const auto& s = p.evidence.span;
    Check(s.begin >= 0 && s.begin <= s.end && static_cast<size_t>(s.end) <= text.size());
    Check(text.substr(s.begin, s.end - s.begin) == p.evidence.text);
  }
  auto back = trialmatch::criteria::FromJson(trialmatch::criteria::ToJson(cs));
  Check(back.ok() && back->predicates.size() == cs.predicates.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (64 << 10)) return 0;  // keep iterations fast; length is not the point
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  trialmatch::criteria::TextOptions options;
  // First byte picks the section assumed before any heading.
  options.default_section = size > 0 && (data[0] & 1)
                                ? trialmatch::criteria::Section::kExclusion
                                : trialmatch::criteria::Section::kInclusion;
  Verify(text, TheCompiler().CompileText(text, options));
  return 0;
}
