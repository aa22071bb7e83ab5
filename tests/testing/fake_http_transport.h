// A scripted ctgov::HttpTransport for tests: replies (responses or transport
// errors) are queued per URL fragment, every request is recorded, nothing
// touches the network. Pair it with FakeClock so retries never sleep.
//
//   auto fake = std::make_shared<FakeHttpTransport>();
//   fake->Enqueue("/studies?", FakeHttpTransport::Reply(503));       // once
//   fake->Enqueue("/studies?", absl::UnavailableError("reset"));     // once
//   fake->Enqueue("/studies?", FakeHttpTransport::Json(page_body));  // once
//   fake->Always("/version",
//   FakeHttpTransport::Json(R"({"apiVersion":"2.0.3"})"));
//   fake->Handle("/studies/", [](const HttpRequest& r) { ... });      //
//   dynamic fake->ServeStudyFiles(StudiesDir());  // GET /studies/{id} from
//   recorded files
//
// Matching: the oldest queued reply whose fragment occurs in the request URL
// wins; otherwise the first matching Always/Handle rule; otherwise the call
// returns kInternal "no reply scripted for <url>" (not retried by the client,
// so a missing script fails the test at once).
//
// Thread-safe: Get() and the scripting calls may run concurrently.
#ifndef TRIALMATCH_TESTING_FAKE_HTTP_TRANSPORT_H_
#define TRIALMATCH_TESTING_FAKE_HTTP_TRANSPORT_H_

#include <cstddef>
#include <deque>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "ctgov/http_transport.h"
#include "testing/test_paths.h"

namespace trialmatch::testing {

class FakeHttpTransport final : public ctgov::HttpTransport {
 public:
  using Handler = std::function<absl::StatusOr<ctgov::HttpResponse>(
      const ctgov::HttpRequest&)>;

  // ---- Reply builders ----
  static ctgov::HttpResponse Reply(int status, std::string body = "",
                                   ctgov::HttpHeaders headers = {}) {
    ctgov::HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    r.headers = std::move(headers);
    return r;
  }
  static ctgov::HttpResponse Json(std::string body, int status = 200) {
    return Reply(status, std::move(body),
                 {{"Content-Type", "application/json"}});
  }
  static ctgov::HttpResponse Text(int status, std::string body) {
    return Reply(status, std::move(body), {{"Content-Type", "text/plain"}});
  }
  static ctgov::HttpResponse Html(int status = 200) {
    return Reply(status,
                 "<!DOCTYPE html><html><body>Service maintenance</body></html>",
                 {{"Content-Type", "text/html; charset=utf-8"}});
  }
  // A file (e.g. a recorded response under SharedDataDir()) as a JSON reply.
  static ctgov::HttpResponse JsonFile(const std::filesystem::path& path) {
    return Json(ReadFile(path));
  }

  // ---- Scripting ----
  FakeHttpTransport& Enqueue(std::string url_part,
                             absl::StatusOr<ctgov::HttpResponse> reply) {
    absl::MutexLock lock(&mu_);
    queued_.push_back({std::move(url_part), std::move(reply)});
    return *this;
  }
  FakeHttpTransport& Always(std::string url_part,
                            absl::StatusOr<ctgov::HttpResponse> reply) {
    return Handle(std::move(url_part),
                  [reply = std::move(reply)](const ctgov::HttpRequest&) {
                    return reply;
                  });
  }
  FakeHttpTransport& Handle(std::string url_part, Handler handler) {
    absl::MutexLock lock(&mu_);
    rules_.push_back({std::move(url_part), std::move(handler)});
    return *this;
  }

  // Serves GET .../studies/<id>[?...] from `dir`/<id>.json, and 404
  // "Study not found" when there is no such file (e.g. StudiesDir()).
  FakeHttpTransport& ServeStudyFiles(std::filesystem::path dir) {
    return Handle("/studies/NCT",
                  [dir = std::move(dir)](const ctgov::HttpRequest& request)
                      -> absl::StatusOr<ctgov::HttpResponse> {
                    const std::string& url = request.url;
                    const std::size_t at = url.find("/studies/NCT") + 9;
                    const std::string id =
                        url.substr(at, url.find('?', at) - at);
                    const std::filesystem::path file = dir / (id + ".json");
                    if (id.find('/') != std::string::npos ||
                        !std::filesystem::exists(file)) {
                      return Text(404, "Study not found");
                    }
                    return JsonFile(file);
                  });
  }

  // ---- Inspection ----
  std::vector<ctgov::HttpRequest> requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  std::vector<std::string> urls() const {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> out;
    for (const auto& r : requests_) out.push_back(r.url);
    return out;
  }
  std::size_t request_count() const {
    absl::MutexLock lock(&mu_);
    return requests_.size();
  }
  // Queued replies not consumed yet (a test may assert it is 0).
  std::size_t pending() const {
    absl::MutexLock lock(&mu_);
    return queued_.size();
  }

  absl::StatusOr<ctgov::HttpResponse> Get(
      const ctgov::HttpRequest& request) override {
    Handler handler;
    {
      absl::MutexLock lock(&mu_);
      requests_.push_back(request);
      for (auto it = queued_.begin(); it != queued_.end(); ++it) {
        if (request.url.find(it->url_part) != std::string::npos) {
          absl::StatusOr<ctgov::HttpResponse> reply = std::move(it->reply);
          queued_.erase(it);
          return reply;
        }
      }
      for (const Rule& rule : rules_) {
        if (request.url.find(rule.url_part) != std::string::npos) {
          handler = rule.handler;
          break;
        }
      }
    }
    if (handler) return handler(request);
    return absl::InternalError(
        absl::StrCat("FakeHttpTransport: no reply scripted for ", request.url));
  }

 private:
  struct Queued {
    std::string url_part;
    absl::StatusOr<ctgov::HttpResponse> reply;
  };
  struct Rule {
    std::string url_part;
    Handler handler;
  };
  mutable absl::Mutex mu_;
  std::deque<Queued> queued_;
  std::vector<Rule> rules_;
  std::vector<ctgov::HttpRequest> requests_;
};

}  // namespace trialmatch::testing

#endif  // TRIALMATCH_TESTING_FAKE_HTTP_TRANSPORT_H_
