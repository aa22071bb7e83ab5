#include "cli/flags.h"

#include <algorithm>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/strings.h"

namespace trialmatch::cli {
namespace {

std::string Canonical(std::string_view name) {
  std::string out(name);
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

absl::Status BadValue(std::string_view name, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      "--", common::ToAbsl(name), ": ", common::ToAbsl(what)));
}

}  // namespace

FlagSet::FlagSet(std::string command, std::string summary)
    : command_(std::move(command)),
      summary_(std::move(summary)),
      help_out_(&std::cout) {}

void FlagSet::String(std::string name, std::string* target, std::string help) {
  flags_.push_back({Canonical(name), std::move(help),
                    target->empty() ? "\"\"" : *target, false,
                    [target](std::string_view v) {
                      *target = std::string(v);
                      return absl::OkStatus();
                    }});
}

void FlagSet::Int(std::string name, int64_t* target, std::string help) {
  std::string n = Canonical(name);
  flags_.push_back({n, std::move(help), absl::StrCat(*target), false,
                    [target, n](std::string_view v) {
                      int64_t x;
                      if (!absl::SimpleAtoi(common::ToAbsl(v), &x)) {
                        return BadValue(n, "expected an integer");
                      }
                      *target = x;
                      return absl::OkStatus();
                    }});
}

void FlagSet::Int(std::string name, int* target, std::string help) {
  std::string n = Canonical(name);
  flags_.push_back({n, std::move(help), absl::StrCat(*target), false,
                    [target, n](std::string_view v) {
                      int x;
                      if (!absl::SimpleAtoi(common::ToAbsl(v), &x)) {
                        return BadValue(n, "expected an integer");
                      }
                      *target = x;
                      return absl::OkStatus();
                    }});
}

void FlagSet::Double(std::string name, double* target, std::string help) {
  std::string n = Canonical(name);
  flags_.push_back({n, std::move(help), absl::StrCat(*target), false,
                    [target, n](std::string_view v) {
                      double x;
                      if (!absl::SimpleAtod(common::ToAbsl(v), &x)) {
                        return BadValue(n, "expected a number");
                      }
                      *target = x;
                      return absl::OkStatus();
                    }});
}

void FlagSet::Bool(std::string name, bool* target, std::string help) {
  std::string n = Canonical(name);
  flags_.push_back({n, std::move(help), *target ? "true" : "false", true,
                    [target, n](std::string_view v) {
                      if (v == "true" || v == "1" || v == "yes") {
                        *target = true;
                      } else if (v == "false" || v == "0" || v == "no") {
                        *target = false;
                      } else {
                        return BadValue(n, "expected true or false");
                      }
                      return absl::OkStatus();
                    }});
}

void FlagSet::Duration(std::string name, absl::Duration* target,
                       std::string help) {
  std::string n = Canonical(name);
  flags_.push_back({n, std::move(help), absl::FormatDuration(*target), false,
                    [target, n](std::string_view v) {
                      absl::Duration d;
                      if (!absl::ParseDuration(std::string(v), &d) ||
                          d < absl::ZeroDuration()) {
                        return BadValue(n,
                                        "expected a duration like 90s or 1h");
                      }
                      *target = d;
                      return absl::OkStatus();
                    }});
}

void FlagSet::StringList(std::string name, std::vector<std::string>* target,
                         std::string help) {
  std::string n = Canonical(name);
  // The first occurrence replaces the default; later ones append.
  auto replaced = std::make_shared<bool>(false);
  std::string def;
  for (const std::string& s : *target) {
    absl::StrAppend(&def, def.empty() ? "" : ",", s);
  }
  flags_.push_back({n, std::move(help), def.empty() ? "\"\"" : def, false,
                    [target, replaced](std::string_view v) {
                      if (!*replaced) {
                        target->clear();
                        *replaced = true;
                      }
                      for (absl::string_view part : absl::StrSplit(
                               common::ToAbsl(v), ',', absl::SkipEmpty())) {
                        target->emplace_back(part);
                      }
                      return absl::OkStatus();
                    }});
}

const FlagSet::Flag* FlagSet::Find(std::string_view name) const {
  const std::string n = Canonical(name);
  for (const Flag& f : flags_) {
    if (f.name == n) return &f;
  }
  return nullptr;
}

absl::StatusOr<std::vector<std::string>> FlagSet::Parse(
    const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      positional.insert(positional.end(), args.begin() + i + 1, args.end());
      break;
    }
    if (arg == "--help" || arg == "-h" || arg == "-help") {
      *help_out_ << Usage();
      return absl::CancelledError("help requested");
    }
    if (arg.size() < 2 || arg[0] != '-' || arg == "-") {
      positional.push_back(arg);
      continue;
    }
    std::string_view body(arg);
    body.remove_prefix(body[1] == '-' ? 2 : 1);
    std::string_view name = body;
    std::optional<std::string_view> value;
    if (size_t eq = body.find('='); eq != std::string_view::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
    }
    const Flag* flag = Find(name);
    if (flag == nullptr && !value && name.substr(0, 2) == "no") {
      const Flag* negated = Find(name.substr(2));
      if (negated != nullptr && negated->is_bool) {
        if (absl::Status s = negated->set("false"); !s.ok()) return s;
        continue;
      }
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", common::ToAbsl(name), " for ",
                       command_, " (see --help)"));
    }
    if (!value) {
      if (flag->is_bool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return BadValue(flag->name, "missing value");
      }
    }
    if (absl::Status s = flag->set(*value); !s.ok()) return s;
  }
  return positional;
}

std::string FlagSet::Usage() const {
  std::ostringstream out;
  out << "usage: " << command_ << " [flags]";
  if (!positional_help_.empty()) out << " " << positional_help_;
  out << "\n\n" << summary_ << "\n\nflags:\n";
  for (const Flag& f : flags_) {
    out << "  --" << f.name << "  " << f.help << " (default: " << f.default_text
        << ")\n";
  }
  return out.str();
}

}  // namespace trialmatch::cli
