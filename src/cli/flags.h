// Per-subcommand command-line flags for the `trialmatch` tool.
//
// Each subcommand owns a FlagSet: it registers typed flags bound to fields of
// its option struct, then parses its own arguments. So `trialmatch serve
// --help` lists only serve's flags (absl/flags is process-global, which suits
// one-command binaries, not a multi-command tool).
//
//   FlagSet flags("trialmatch serve", "Runs the gRPC service.");
//   flags.String("store", &opts.store_path, "SQLite store path");
//   flags.Int("port", &opts.port, "TCP port");
//   absl::StatusOr<std::vector<std::string>> rest = flags.Parse(args);
//
// Accepted forms: --name=value, --name value, --bool_flag, --nobool_flag,
// --bool_flag=true|false, "--" ends flags. Dashes and underscores in names
// are interchangeable. Unknown flags and malformed values -> kInvalidArgument
// naming the flag. `--help`/`-h` -> kCancelled after printing Usage() (callers
// exit 0). Registered pointers must outlive the FlagSet. Not thread-safe.
#ifndef TRIALMATCH_CLI_FLAGS_H_
#define TRIALMATCH_CLI_FLAGS_H_

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace trialmatch::cli {

class FlagSet {
 public:
  FlagSet(std::string command, std::string summary);

  void String(std::string name, std::string* target, std::string help);
  void Int(std::string name, int64_t* target, std::string help);
  void Int(std::string name, int* target, std::string help);
  void Double(std::string name, double* target, std::string help);
  void Bool(std::string name, bool* target, std::string help);
  // Durations as absl::ParseDuration accepts: "90s", "1h30m", "250ms".
  void Duration(std::string name, absl::Duration* target, std::string help);
  // Repeatable: each occurrence appends; comma-separated values are split.
  void StringList(std::string name, std::vector<std::string>* target,
                  std::string help);

  // Parses `args` (without the program and subcommand names). Returns the
  // positional arguments in order.
  absl::StatusOr<std::vector<std::string>> Parse(
      const std::vector<std::string>& args);

  // "usage: <command> [flags] <positional>" plus every flag with its default.
  std::string Usage() const;
  void set_positional_help(std::string help) {
    positional_help_ = std::move(help);
  }
  // Where --help prints (default std::cout).
  void set_help_output(std::ostream* out) { help_out_ = out; }

 private:
  struct Flag {
    std::string name;
    std::string help;
    std::string default_text;
    bool is_bool = false;
    std::function<absl::Status(std::string_view)> set;
  };
  const Flag* Find(std::string_view name) const;

  std::string command_;
  std::string summary_;
  std::string positional_help_;
  std::vector<Flag> flags_;
  std::ostream* help_out_;
};

}  // namespace trialmatch::cli

#endif  // TRIALMATCH_CLI_FLAGS_H_
