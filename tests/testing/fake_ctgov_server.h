// FakeCtgovServer: the fake ClinicalTrials.gov API v2
// (tests/fake_ctgov/fake_ctgov.py, manual in docs/fake_ctgov.md) run in a
// child process for a test, serving the recorded studies on 127.0.0.1.
//
//   TM_REQUIRE_SHARED_DATA();
//   ASSERT_OK_AND_ASSIGN(auto fake, FakeCtgovServer::Start());
//   options.base_url = fake->base_url();   // "http://127.0.0.1:<port>/api/v2"
//   ASSERT_OK(fake->AddFault(R"({"path":"/api/v2/studies","kind":"429",
//                                "count":2,"retry_after":1})"));
//   ... run the client ...
//   ASSERT_OK_AND_ASSIGN(int requests, fake->RequestCount("/api/v2/studies"));
//
// Ownership: the object owns the child process. The destructor sends SIGTERM,
// waits up to 5 s, then SIGKILLs and reaps it. The child also gets SIGTERM
// when the thread that called Start() exits (PR_SET_PDEATHSIG: start it from
// the test's main thread or a thread that outlives it), and exits by itself
// after FakeCtgovOptions::max_lifetime_seconds, so a crashed test never leaves
// it running.
//
// Thread-safety: after Start(), the const request helpers may be called from
// any thread (each opens its own connection). Start and destruction must not
// race with them.
//
// The control helpers return absl::Status: UNAVAILABLE when the fake cannot
// be reached, FAILED_PRECONDITION when it answers with a non-2xx status (the
// message carries its answer).
#ifndef TRIALMATCH_TESTING_FAKE_CTGOV_SERVER_H_
#define TRIALMATCH_TESTING_FAKE_CTGOV_SERVER_H_

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace trialmatch::testing {

struct FakeCtgovOptions {
  std::string python = TRIALMATCH_PYTHON;
  std::filesystem::path script = std::filesystem::path(TRIALMATCH_SOURCE_DIR) /
                                 "tests" / "fake_ctgov" / "fake_ctgov.py";
  // The recorded ctgov_v2 folder (studies/, endpoints/, openapi/).
  std::filesystem::path data_dir =
      std::filesystem::path(TRIALMATCH_SHARED_DATA_DIR) / "ctgov_v2";
  std::chrono::milliseconds startup_timeout{60000};
  int max_lifetime_seconds = 900;
  std::vector<std::string> aliases;  // "OLD=NEW": GET /studies/OLD -> 301
  std::vector<std::string> faults;   // --fault specs, e.g. "kind=503,count=1"
  std::string data_timestamp;        // /version dataTimestamp when not empty
  bool verbose = false;              // log every request to stderr
};

// One HTTP answer of the fake (headers unparsed but for Header()).
struct FakeCtgovReply {
  int status = 0;
  std::string headers;  // the raw header block, without the status line
  std::string body;

  // The value of header `name` (case-insensitive), "" when absent.
  std::string Header(std::string_view name) const {
    size_t pos = 0;
    while (pos < headers.size()) {
      size_t end = headers.find("\r\n", pos);
      if (end == std::string::npos) end = headers.size();
      std::string_view line(headers.data() + pos, end - pos);
      size_t colon = line.find(':');
      if (colon == name.size() &&
          std::equal(name.begin(), name.end(), line.begin(),
                     [](char a, char b) {
                       return std::tolower(static_cast<unsigned char>(a)) ==
                              std::tolower(static_cast<unsigned char>(b));
                     })) {
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        return std::string(value);
      }
      pos = end + 2;
    }
    return "";
  }
};

class FakeCtgovServer {
 public:
  // Spawns the fake and waits for its `LISTENING <port>` line.
  // NOT_FOUND when the script or the data folder is missing;
  // FAILED_PRECONDITION when the fake exits before listening (its stderr,
  // inherited, says why); DEADLINE_EXCEEDED after options.startup_timeout;
  // INTERNAL when the process cannot be created.
  static absl::StatusOr<std::unique_ptr<FakeCtgovServer>> Start(
      FakeCtgovOptions options) {
    if (!std::filesystem::exists(options.script)) {
      return absl::NotFoundError("fake_ctgov script missing: " +
                                 options.script.string());
    }
    if (!std::filesystem::is_directory(options.data_dir / "studies")) {
      return absl::NotFoundError("recorded data missing: " +
                                 (options.data_dir / "studies").string());
    }
    std::vector<std::string> args = {
        options.python,
        "-B",  // no __pycache__ in the source tree
        options.script.string(),
        "--data-dir",
        options.data_dir.string(),
        "--port",
        "0",
        "--max-lifetime",
        std::to_string(options.max_lifetime_seconds)};
    for (const std::string& alias : options.aliases) {
      args.push_back("--alias");
      args.push_back(alias);
    }
    for (const std::string& fault : options.faults) {
      args.push_back("--fault");
      args.push_back(fault);
    }
    if (!options.data_timestamp.empty()) {
      args.push_back("--data-timestamp");
      args.push_back(options.data_timestamp);
    }
    if (options.verbose) args.push_back("--verbose");
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);

    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
      return absl::InternalError(std::string("pipe2: ") + std::strerror(errno));
    }
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
      ::close(out[0]);
      ::close(out[1]);
      return absl::InternalError(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {  // child: only async-signal-safe calls until exec.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(127);
      ::dup2(out[1], STDOUT_FILENO);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    std::unique_ptr<FakeCtgovServer> server(new FakeCtgovServer(pid, out[0]));
    absl::StatusOr<int> port =
        server->ReadListeningLine(options.startup_timeout);
    if (!port.ok()) return port.status();  // the destructor reaps the child
    server->port_ = *port;
    return server;
  }
  static absl::StatusOr<std::unique_ptr<FakeCtgovServer>> Start() {
    return Start(FakeCtgovOptions());
  }

  FakeCtgovServer(const FakeCtgovServer&) = delete;
  FakeCtgovServer& operator=(const FakeCtgovServer&) = delete;
  ~FakeCtgovServer() { Stop(); }

  // SIGTERM, up to 5 s grace, then SIGKILL; reaps the child. Idempotent.
  void Stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      const auto deadline =
          std::chrono::steady_clock::now() + std::chrono::seconds(5);
      bool reaped = false;
      while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_ || (r < 0 && errno == ECHILD)) {
          reaped = true;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (!reaped) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
      }
      pid_ = -1;
    }
    if (stdout_fd_ >= 0) {
      ::close(stdout_fd_);
      stdout_fd_ = -1;
    }
  }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // What a ctgov client is configured with.
  std::string base_url() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/api/v2";
  }
  std::string root_url() const {
    return "http://127.0.0.1:" + std::to_string(port_);
  }

  // One HTTP/1.1 request (Connection: close) to `target` ("/api/v2/version").
  // UNAVAILABLE when the connection fails or is reset (faults do that).
  absl::StatusOr<FakeCtgovReply> Request(std::string_view method,
                                         std::string_view target,
                                         std::string_view body = "") const {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) return Errno("socket");
    timeval timeout{30, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr),
                  sizeof addr) != 0) {
      return Errno("connect");
    }
    std::string request =
        std::string(method) + " " + std::string(target) +
        " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
        "\r\nConnection: close\r\nContent-Type: "
        "application/json\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
    for (size_t sent = 0; sent < request.size();) {
      ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent,
                         MSG_NOSIGNAL);
      if (n <= 0) return Errno("send");
      sent += static_cast<size_t>(n);
    }
    std::string raw;
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
      if (n == 0) break;
      if (n < 0) {
        if (errno == EINTR) continue;
        return Errno("recv");
      }
      raw.append(buf, static_cast<size_t>(n));
    }
    size_t line_end = raw.find("\r\n");
    size_t head_end = raw.find("\r\n\r\n");
    if (line_end == std::string::npos || head_end == std::string::npos ||
        raw.compare(0, 5, "HTTP/") != 0) {
      return absl::UnavailableError("fake_ctgov sent no HTTP response");
    }
    FakeCtgovReply reply;
    size_t space = raw.find(' ');
    if (space == std::string::npos || space > line_end) {
      return absl::UnavailableError("fake_ctgov sent a bad status line");
    }
    std::from_chars(raw.data() + space + 1, raw.data() + line_end,
                    reply.status);
    reply.headers = raw.substr(line_end + 2, head_end + 2 - (line_end + 2));
    reply.body = raw.substr(head_end + 4);
    return reply;
  }
  absl::StatusOr<FakeCtgovReply> Get(std::string_view target) const {
    return Request("GET", target);
  }

  // POST /__control/<op> with a JSON body; returns the JSON answer.
  absl::StatusOr<std::string> Control(std::string_view op,
                                      std::string_view json_body = "{}") const {
    absl::StatusOr<FakeCtgovReply> reply =
        Request("POST", "/__control/" + std::string(op), json_body);
    if (!reply.ok()) return reply.status();
    if (reply->status < 200 || reply->status >= 300) {
      return absl::FailedPreconditionError(
          "fake_ctgov control " + std::string(op) + " answered " +
          std::to_string(reply->status) + ": " + reply->body);
    }
    return reply->body;
  }

  // A fault rule as JSON, e.g. {"kind":"503","count":2,"path":"/api/v2"}.
  absl::Status AddFault(std::string_view json_rule) const {
    return Control("faults", json_rule).status();
  }
  absl::Status ClearFaults() const { return Control("faults/clear").status(); }
  // Studies, aliases, faults, data timestamp and stats back to the start.
  absl::Status Reset() const { return Control("reset").status(); }
  absl::Status SetDataTimestamp(std::string_view timestamp) const {
    return Control("data-timestamp",
                   "{\"dataTimestamp\":" + Quote(timestamp) + "}")
        .status();
  }
  // Adds or replaces a study (the whole API study JSON object).
  absl::Status PutStudy(std::string_view study_json) const {
    return Control("studies/put", "{\"study\":" + std::string(study_json) + "}")
        .status();
  }
  // {"nctId":..., "set":{"dotted.path":value}, "delete":[...], "touch":date}
  absl::Status PatchStudy(std::string_view patch_json) const {
    return Control("studies/patch", patch_json).status();
  }
  // Sets overallStatus and bumps lastUpdatePostDate to `date` (YYYY-MM-DD).
  absl::Status UpdateStudyStatus(std::string_view nct_id,
                                 std::string_view overall_status,
                                 std::string_view date) const {
    return PatchStudy("{\"nctId\":" + Quote(nct_id) +
                      ",\"touch\":" + Quote(date) +
                      ",\"set\":{\"protocolSection.statusModule."
                      "overallStatus\":" +
                      Quote(overall_status) + "}}");
  }
  absl::Status DeleteStudy(std::string_view nct_id) const {
    return Control("studies/delete", "{\"nctId\":" + Quote(nct_id) + "}")
        .status();
  }
  // GET /studies/<from> answers 301 to <to>.
  absl::Status SetAlias(std::string_view from, std::string_view to) const {
    return Control("aliases",
                   "{\"from\":" + Quote(from) + ",\"to\":" + Quote(to) + "}")
        .status();
  }

  // Requests the fake received for `path` (exactly, or as a prefix), counted
  // since the start or the last Reset().
  absl::StatusOr<int> RequestCount(std::string_view path,
                                   bool prefix = false) const {
    absl::StatusOr<FakeCtgovReply> reply =
        Get("/__control/stats/count?path=" + std::string(path) +
            (prefix ? "&prefix=1" : ""));
    if (!reply.ok()) return reply.status();
    int count = -1;
    auto [ptr, ec] = std::from_chars(
        reply->body.data(), reply->body.data() + reply->body.size(), count);
    if (reply->status != 200 || ec != std::errc()) {
      return absl::FailedPreconditionError("bad stats answer: " + reply->body);
    }
    return count;
  }
  // The whole request log as JSON (see docs/fake_ctgov.md).
  absl::StatusOr<std::string> StatsJson() const {
    absl::StatusOr<FakeCtgovReply> reply = Get("/__control/stats");
    if (!reply.ok()) return reply.status();
    return reply->body;
  }

 private:
  class Fd {
   public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
      if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

   private:
    int fd_;
  };

  FakeCtgovServer(pid_t pid, int stdout_fd)
      : pid_(pid), stdout_fd_(stdout_fd) {}

  static absl::Status Errno(const char* what) {
    return absl::UnavailableError(std::string("fake_ctgov ") + what + ": " +
                                  std::strerror(errno));
  }

  static std::string Quote(std::string_view text) {
    std::string out = "\"";
    for (char c : text) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    return out + "\"";
  }

  absl::StatusOr<int> ReadListeningLine(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string line;
    for (;;) {
      size_t newline = line.find('\n');
      if (newline != std::string::npos) {
        std::string_view text(line.data(), newline);
        constexpr std::string_view kPrefix = "LISTENING ";
        int port = 0;
        if (text.substr(0, kPrefix.size()) == kPrefix) {
          auto [ptr, ec] = std::from_chars(text.data() + kPrefix.size(),
                                           text.data() + text.size(), port);
          if (ec == std::errc() && port > 0) return port;
        }
        return absl::FailedPreconditionError(
            "fake_ctgov printed an unexpected line: " + std::string(text));
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        return absl::DeadlineExceededError(
            "fake_ctgov did not print LISTENING in time");
      }
      pollfd pfd{stdout_fd_, POLLIN, 0};
      int ready = ::poll(
          &pfd, 1, static_cast<int>(std::min<int64_t>(left.count(), 100)));
      if (ready < 0 && errno != EINTR) return Errno("poll");
      if (ready > 0) {
        char buf[256];
        ssize_t n = ::read(stdout_fd_, buf, sizeof buf);
        if (n > 0) {
          line.append(buf, static_cast<size_t>(n));
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        // EOF: the child closed stdout, i.e. it exited.
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return absl::FailedPreconditionError(
            "fake_ctgov exited before listening (" +
            (WIFEXITED(status)
                 ? "exit status " + std::to_string(WEXITSTATUS(status))
                 : "signal " + std::to_string(WTERMSIG(status))) +
            "; see its stderr)");
      }
      if (ready > 0) {  // EOF but not yet reaped: wait a little.
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int port_ = 0;
};

}  // namespace trialmatch::testing

#endif  // TRIALMATCH_TESTING_FAKE_CTGOV_SERVER_H_
