// CurlTransport against a misbehaving local server (http_fault_server.py,
// 127.0.0.1 only, OS-chosen ports). Each case is bounded to a few seconds.
#include "ctgov/curl_transport.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ctgov/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "testing/fake_clock.h"
#include "testing/status_matchers.h"
#include "testing/temp_dir.h"
#include "testing/test_paths.h"
#include "trialmatch/version.h"

extern char** environ;

namespace trialmatch::ctgov {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::trialmatch::testing::IsOk;
using ::trialmatch::testing::StatusIs;

// The server process: started once for the suite, stopped by closing its
// stdin (it exits on EOF) and, to be sure, SIGTERM to its pid.
class FaultServer {
 public:
  bool Start(const std::vector<std::string>& extra_args) {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) return false;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addclose(&actions, in[1]);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    const std::string script = (::trialmatch::testing::SourceDir() / "tests" /
                                "ctgov" / "http_fault_server.py")
                                   .string();
    std::vector<std::string> args = {TRIALMATCH_PYTHON, "-B", script};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc =
        posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    if (rc != 0) {
      pid_ = -1;
      return false;
    }
    // Read "http N", optional "https N", "ready" (10 s at most).
    std::string buffer;
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (buffer.find("ready\n") == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{stdout_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char chunk[256];
      const ssize_t n = read(stdout_, chunk, sizeof chunk);
      if (n <= 0) return false;
      buffer.append(chunk, static_cast<std::size_t>(n));
    }
    std::size_t pos = 0;
    while (pos < buffer.size()) {
      const std::size_t end = buffer.find('\n', pos);
      const std::string line = buffer.substr(pos, end - pos);
      pos = end + 1;
      if (line.rfind("http ", 0) == 0) http_port_ = std::stoi(line.substr(5));
      if (line.rfind("https ", 0) == 0) https_port_ = std::stoi(line.substr(6));
    }
    return http_port_ > 0;
  }

  void Stop() {
    if (stdin_ >= 0) close(stdin_);
    if (stdout_ >= 0) close(stdout_);
    stdin_ = stdout_ = -1;
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }

  int http_port() const { return http_port_; }
  int https_port() const { return https_port_; }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  int stdout_ = -1;
  int http_port_ = 0;
  int https_port_ = 0;
};

class CurlTransportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    temp_ = new ::trialmatch::testing::TempDir();
    cert_ = (temp_->path() / "cert.pem").string();
    const std::string key = (temp_->path() / "key.pem").string();
    const std::string cmd = absl::StrCat(
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1"
        " -addext subjectAltName=IP:127.0.0.1 -keyout ",
        key, " -out ", cert_, " >/dev/null 2>&1");
    have_cert_ = std::system(cmd.c_str()) == 0;
    server_ = new FaultServer();
    started_ =
        have_cert_ ? server_->Start({"--tls", cert_, key}) : server_->Start({});
  }
  static void TearDownTestSuite() {
    server_->Stop();
    delete server_;
    delete temp_;
  }
  void SetUp() override {
    ASSERT_TRUE(started_) << "could not start " << TRIALMATCH_PYTHON
                          << " tests/ctgov/http_fault_server.py";
    auto t = CurlTransport::Create();
    ASSERT_OK(t);
    transport_ = *t;
  }

  static std::string Url(const std::string& path) {
    return absl::StrCat("http://127.0.0.1:", server_->http_port(), path);
  }
  static HttpRequest Request(const std::string& path) {
    HttpRequest r;
    r.url = Url(path);
    r.connect_timeout = absl::Seconds(2);
    r.timeout = absl::Seconds(10);
    return r;
  }
  static double Seconds(std::chrono::steady_clock::time_point since) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                         since)
        .count();
  }

  static inline ::trialmatch::testing::TempDir* temp_ = nullptr;
  static inline FaultServer* server_ = nullptr;
  static inline std::string cert_;
  static inline bool have_cert_ = false;
  static inline bool started_ = false;
  std::shared_ptr<CurlTransport> transport_;
};

TEST_F(CurlTransportTest, GetsABodyAndSendsUserAgentAcceptEncodingAndHeaders) {
  HttpRequest r = Request("/headers");
  r.headers.Add("Accept", "application/json");
  ASSERT_OK_AND_ASSIGN(HttpResponse resp, transport_->Get(r));
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.headers.Get("content-type").value_or(""), "application/json");
  const nlohmann::json echoed = nlohmann::json::parse(resp.body);
  EXPECT_EQ(echoed["user-agent"],
            std::string("trialmatch/") + TRIALMATCH_VERSION);
  EXPECT_EQ(echoed["accept"], "application/json");
  EXPECT_THAT(echoed["accept-encoding"].get<std::string>(), HasSubstr("gzip"));
}

TEST_F(CurlTransportTest, DecodesGzip) {
  ASSERT_OK_AND_ASSIGN(HttpResponse resp, transport_->Get(Request("/gzip")));
  EXPECT_EQ(resp.status, 200);
  const nlohmann::json body = nlohmann::json::parse(resp.body, nullptr, false);
  ASSERT_FALSE(body.is_discarded()) << resp.body.substr(0, 40);
  EXPECT_EQ(body["compressed"], true);
}

TEST_F(CurlTransportTest, HttpErrorStatusesAreResponsesNotErrors) {
  ASSERT_OK_AND_ASSIGN(HttpResponse not_found,
                       transport_->Get(Request("/status/404")));
  EXPECT_EQ(not_found.status, 404);
  EXPECT_EQ(not_found.body, "status 404");
  ASSERT_OK_AND_ASSIGN(HttpResponse busy,
                       transport_->Get(Request("/status/503")));
  EXPECT_EQ(busy.status, 503);
  EXPECT_EQ(busy.headers.Get("RETRY-AFTER").value_or(""), "7");
}

TEST_F(CurlTransportTest, RedirectsAreNotFollowed) {
  ASSERT_OK_AND_ASSIGN(HttpResponse resp,
                       transport_->Get(Request("/redirect")));
  EXPECT_EQ(resp.status, 301);
  EXPECT_EQ(resp.headers.Get("location").value_or(""), "/ok");
}

TEST_F(CurlTransportTest, TotalTimeoutIsDeadlineExceeded) {
  HttpRequest r = Request("/slow");
  r.timeout = absl::Milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(transport_->Get(r),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_LT(Seconds(start), 3.0);
}

TEST_F(CurlTransportTest, StalledTransferIsDeadlineExceeded) {
  HttpRequest r = Request("/stall");
  r.low_speed_bytes_per_second = 100;
  r.low_speed_time = absl::Seconds(1);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(transport_->Get(r),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_LT(Seconds(start), 4.5);
}

TEST_F(CurlTransportTest, TruncatedBodiesAreUnavailable) {
  EXPECT_THAT(transport_->Get(Request("/truncated")),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(transport_->Get(Request("/chunked-truncated")),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(CurlTransportTest, ResetIsUnavailableAndTheQueryIsNotInTheMessage) {
  const absl::StatusOr<HttpResponse> r =
      transport_->Get(Request("/reset?query.cond=private-term"));
  EXPECT_THAT(
      r, StatusIs(absl::StatusCode::kUnavailable,
                  HasSubstr(absl::StrCat("GET 127.0.0.1:", server_->http_port(),
                                         "/reset"))));
  EXPECT_THAT(std::string(r.status().message()),
              Not(HasSubstr("private-term")));
}

TEST_F(CurlTransportTest, ConnectionRefusedIsUnavailable) {
  // A port that was just free: bind, read the number, close.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  HttpRequest r;
  r.url = absl::StrCat("http://127.0.0.1:", ntohs(addr.sin_port), "/");
  EXPECT_THAT(transport_->Get(r), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(CurlTransportTest, BodySizeGuard) {
  HttpRequest exact = Request("/big?bytes=100000");
  exact.max_body_bytes = 100000;
  ASSERT_OK_AND_ASSIGN(HttpResponse ok, transport_->Get(exact));
  EXPECT_EQ(ok.body.size(), 100000u);
  HttpRequest over = Request("/big?bytes=100001");
  over.max_body_bytes = 100000;
  EXPECT_THAT(transport_->Get(over),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("exceeds 100000 bytes")));
}

TEST_F(CurlTransportTest, BodySizeGuardCountsDecodedBytes) {
  // ~60 compressed bytes on the wire, ~5 KB once decoded.
  HttpRequest r = Request("/gzip");
  r.max_body_bytes = 2000;
  EXPECT_THAT(transport_->Get(r), StatusIs(absl::StatusCode::kResourceExhausted,
                                           HasSubstr("exceeds 2000 bytes")));
}

TEST_F(CurlTransportTest, OnlyHttpAndHttpsUrls) {
  for (const char* url : {"file:///etc/hostname", "ftp://127.0.0.1/x",
                          "gopher://127.0.0.1/", "http://[::1"}) {
    HttpRequest r;
    r.url = url;
    EXPECT_THAT(transport_->Get(r),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << url;
  }
}

TEST_F(CurlTransportTest, TlsIsVerified) {
  ASSERT_TRUE(have_cert_) << "openssl could not make a test certificate";
  ASSERT_GT(server_->https_port(), 0);
  HttpRequest r;
  r.url = absl::StrCat("https://127.0.0.1:", server_->https_port(), "/ok");
  r.timeout = absl::Seconds(10);
  // Self-signed: rejected against the system CAs.
  EXPECT_THAT(transport_->Get(r),
              StatusIs(absl::StatusCode::kFailedPrecondition));

  // Trusted when its CA is configured...
  ASSERT_OK_AND_ASSIGN(auto trusting,
                       CurlTransport::Create({.ca_file = cert_}));
  ASSERT_OK_AND_ASSIGN(HttpResponse resp, trusting->Get(r));
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.body, R"({"ok":true})");
  // ...but only for the name in the certificate.
  r.url = absl::StrCat("https://localhost:", server_->https_port(), "/ok");
  EXPECT_THAT(trusting->Get(r),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(CurlTransportTest, ConcurrentGetsShareTheTransport) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        auto r = transport_->Get(Request("/ok"));
        if (r.ok() && r->status == 200 && r->body == R"({"ok":true})") ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 60);
}

TEST_F(CurlTransportTest, ClientOverCurlRetriesA503WithItsRetryAfter) {
  // The server answers any path under /status/503/ with 503 + Retry-After: 7.
  ::trialmatch::testing::FakeClock clock;
  CtgovOptions o;
  o.base_url = Url("/status/503");
  o.requests_per_second = 0;
  o.retry.max_attempts = 2;
  o.random_seed = 1;
  ASSERT_OK_AND_ASSIGN(CtgovClient client,
                       CtgovClient::Create(o, transport_, clock));
  EXPECT_THAT(client.GetVersion(),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("HTTP 503 Service Unavailable: status 503")));
  EXPECT_THAT(clock.sleeps(), ElementsAre(absl::Seconds(7)));
}

TEST(CurlErrorToStatusTest, Table) {
  const struct {
    CURLcode curl;
    absl::StatusCode code;
  } table[] = {
      {CURLE_OPERATION_TIMEDOUT, absl::StatusCode::kDeadlineExceeded},
      {CURLE_COULDNT_CONNECT, absl::StatusCode::kUnavailable},
      {CURLE_COULDNT_RESOLVE_HOST, absl::StatusCode::kUnavailable},
      {CURLE_PARTIAL_FILE, absl::StatusCode::kUnavailable},
      {CURLE_RECV_ERROR, absl::StatusCode::kUnavailable},
      {CURLE_SEND_ERROR, absl::StatusCode::kUnavailable},
      {CURLE_GOT_NOTHING, absl::StatusCode::kUnavailable},
      {CURLE_SSL_CONNECT_ERROR, absl::StatusCode::kUnavailable},
      {CURLE_HTTP2_STREAM, absl::StatusCode::kUnavailable},
      {CURLE_BAD_CONTENT_ENCODING, absl::StatusCode::kUnavailable},
      {CURLE_URL_MALFORMAT, absl::StatusCode::kInvalidArgument},
      {CURLE_UNSUPPORTED_PROTOCOL, absl::StatusCode::kInvalidArgument},
      {CURLE_PEER_FAILED_VERIFICATION, absl::StatusCode::kFailedPrecondition},
      {CURLE_SSL_CACERT_BADFILE, absl::StatusCode::kFailedPrecondition},
      {CURLE_OUT_OF_MEMORY, absl::StatusCode::kResourceExhausted},
      {CURLE_ABORTED_BY_CALLBACK, absl::StatusCode::kCancelled},
      {CURLE_WRITE_ERROR, absl::StatusCode::kInternal},
      {CURLE_FAILED_INIT, absl::StatusCode::kInternal},
  };
  for (const auto& row : table) {
    SCOPED_TRACE(row.curl);
    const absl::Status s = CurlErrorToStatus(row.curl, "detail here");
    EXPECT_EQ(s.code(), row.code);
    EXPECT_THAT(std::string(s.message()), HasSubstr("(detail here)"));
  }
  EXPECT_EQ(DefaultUserAgent(),
            std::string("trialmatch/") + TRIALMATCH_VERSION);
}

}  // namespace
}  // namespace trialmatch::ctgov
