// The HTTP seam of the ClinicalTrials.gov client: plain request/response
// values, the abstract HttpTransport that performs a GET, and AsStatus(), the
// one place where an HTTP status code becomes an absl::Status.
//
// "HTTP errors are data until mapped" (google-cloud-cpp rest_client.h): a
// transport returns an HttpResponse for every response it received in full,
// whatever its status code (200, 301, 404, 503 ...). It returns an error
// status only when no complete response arrived:
//   kUnavailable       connection refused/reset, DNS failure, TLS handshake
//                      failure, truncated body (partial transfer)
//   kDeadlineExceeded  connect timeout, total timeout, stalled transfer
//                      (below the low-speed limit for too long)
//   kResourceExhausted the body exceeded HttpRequest::max_body_bytes
//   kInvalidArgument   a URL the transport cannot use
//   kFailedPrecondition TLS certificate verification failed
// The retry layer (ctgov/retry.h) treats kUnavailable and kDeadlineExceeded
// as transient and everything else as final.
//
// Thread safety: HttpRequest/HttpResponse/HttpHeaders are values
// (thread-compatible). HttpTransport implementations MUST be safe for
// concurrent Get() calls from several threads (CurlTransport and the test
// fake are).
#ifndef TRIALMATCH_CTGOV_HTTP_TRANSPORT_H_
#define TRIALMATCH_CTGOV_HTTP_TRANSPORT_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace trialmatch::ctgov {

// Response (or request) header fields in arrival order; lookups ignore case.
class HttpHeaders {
 public:
  HttpHeaders() = default;
  HttpHeaders(std::initializer_list<std::pair<std::string, std::string>> init)
      : fields_(init) {}

  void Add(std::string name, std::string value) {
    fields_.emplace_back(std::move(name), std::move(value));
  }
  // The first field named `name` (ASCII case-insensitive), or nullopt.
  std::optional<std::string_view> Get(std::string_view name) const;
  bool Has(std::string_view name) const { return Get(name).has_value(); }

  const std::vector<std::pair<std::string, std::string>>& fields() const {
    return fields_;
  }
  bool empty() const { return fields_.empty(); }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

struct HttpRequest {
  std::string url = {};  // absolute http(s) URL, query already encoded
  HttpHeaders headers =
      {};  // extra request headers (User-Agent is the transport's)
  // Time allowed to establish the connection (TCP + TLS).
  absl::Duration connect_timeout = absl::Seconds(10);
  // Time allowed for the whole exchange; ZeroDuration() = no total limit.
  absl::Duration timeout = absl::Minutes(5);
  // Stall detection: the transfer fails with kDeadlineExceeded when it moves
  // fewer than `low_speed_bytes_per_second` bytes per second for
  // `low_speed_time` (whole seconds, >= 1). 0 bytes disables it.
  long low_speed_bytes_per_second = 1024;
  absl::Duration low_speed_time = absl::Seconds(30);
  // Largest (decoded) body accepted; larger -> kResourceExhausted.
  std::size_t max_body_bytes = std::size_t{512} << 20;
};

struct HttpResponse {
  int status = 0;  // HTTP status code, e.g. 200
  HttpHeaders headers =
      {};                 // of the final response (redirects are not followed)
  std::string body = {};  // decoded (gzip/deflate removed)
};

// Performs HTTP GETs. See the file comment for the error contract.
class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  virtual absl::StatusOr<HttpResponse> Get(const HttpRequest& request) = 0;
};

// Maps an HTTP status code to an absl::Status (a pure table; no retry policy):
//   2xx                      OK
//   3xx                      kUnknown ("unexpected redirect")
//   400, 413, 414, 422       kInvalidArgument
//   401                      kUnauthenticated
//   403                      kPermissionDenied
//   404, 410                 kNotFound
//   408, 429                 kUnavailable
//   409                      kAborted
//   412                      kFailedPrecondition
//   other 4xx                kFailedPrecondition
//   500, 502, 503, 504       kUnavailable
//   501                      kUnimplemented
//   other 5xx                kInternal
//   anything else (< 200 or >= 600)  kUnknown
// The message is "HTTP <code> <reason>" followed, for non-OK codes, by a short
// safe excerpt of the body (see BodyExcerpt).
absl::Status AsStatus(const HttpResponse& response);

// HTTP codes worth retrying: 408, 429, 500, 502, 503, 504.
bool IsTransientHttpStatus(int status);

// The standard reason phrase ("Not Found"), or "" for unknown codes.
std::string_view HttpReasonPhrase(int status);

// A short excerpt of an error body that is safe to put in a status message or
// a log line: at most `max_chars` characters, whitespace runs collapsed,
// non-printable bytes dropped; a JSON body with a string "message" or "error"
// member yields that member; an HTML page yields "(HTML page)" only.
std::string BodyExcerpt(std::string_view body, std::size_t max_chars = 200);

// True when a response that should be JSON or CSV is an HTML page: its
// Content-Type is text/html, or its body starts (after whitespace) with
// "<!DOCTYPE" or "<html" (ASCII case-insensitive).
bool LooksLikeHtml(const HttpResponse& response);

}  // namespace trialmatch::ctgov

#endif  // TRIALMATCH_CTGOV_HTTP_TRANSPORT_H_
