// Runs a program (e.g. the built `trialmatch` binary) and collects its exit
// code, stdout and stderr separately; NonEmptyLines splits an output. For
// tests of command-line behaviour.
// stdin is /dev/null. Not thread-safe with respect to the environment
// (variables are set in the child only).
#ifndef TRIALMATCH_TESTING_SUBPROCESS_H_
#define TRIALMATCH_TESTING_SUBPROCESS_H_

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "testing/temp_dir.h"
#include "testing/test_paths.h"

namespace trialmatch::testing {

struct ProcessResult {
  // Exit code; 128 + signal when killed; nullopt when it overran the timeout
  // (it was then killed).
  std::optional<int> exit_code;
  std::string out;
  std::string err;
};

// Runs argv[0] with `argv`; `env` entries are set (an empty value unsets).
inline ProcessResult RunProcess(
    const std::vector<std::string>& argv,
    const std::map<std::string, std::string>& env = {},
    std::chrono::seconds timeout = std::chrono::seconds(300)) {
  TempDir dir;
  const std::string out_path = dir.File("stdout").string();
  const std::string err_path = dir.File("stderr").string();
  std::vector<std::string> copy = argv;
  std::vector<char*> args;
  for (std::string& a : copy) args.push_back(a.data());
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int in = ::open("/dev/null", O_RDONLY);
    const int out =
        ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err =
        ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0) ::_exit(126);
    ::dup2(in, STDIN_FILENO);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(err, STDERR_FILENO);
    for (const auto& [name, value] : env) {
      if (value.empty()) {
        ::unsetenv(name.c_str());
      } else {
        ::setenv(name.c_str(), value.c_str(), 1);
      }
    }
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ProcessResult r;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (pid > 0) {
    int status = 0;
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      r.exit_code =
          WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  r.out = ReadFile(out_path);
  r.err = ReadFile(err_path);
  return r;
}

// The non-empty lines of a program's output, without their '\n'.
inline std::vector<std::string> NonEmptyLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// The built `trialmatch` binary.
inline std::string TrialmatchBinary() {
  return (BinaryDir() / "trialmatch").string();
}

}  // namespace trialmatch::testing

#endif  // TRIALMATCH_TESTING_SUBPROCESS_H_
