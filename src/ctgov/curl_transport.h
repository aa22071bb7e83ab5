// CurlTransport: the production HttpTransport, over libcurl's easy API.
//
// Behaviour (not configurable where safety is concerned):
//   * TLS peer and host verification always on (CURLOPT_SSL_VERIFYPEER=1,
//     CURLOPT_SSL_VERIFYHOST=2); only the CA bundle can be chosen.
//   * Redirects are NOT followed: a 301 is returned as a response (the client
//     handles alias NCT ids itself, against its own base URL).
//   * Only http and https URLs; compressed bodies accepted and decoded
//     (Accept-Encoding: every encoding libcurl was built with).
//   * User-Agent "trialmatch/<TRIALMATCH_VERSION>" unless overridden.
//   * Per request: connect timeout, total timeout, stall detection (low-speed
//     limit/time) and a maximum decoded body size (see HttpRequest).
//   * Idle easy handles are pooled (up to max_idle_handles) so connections,
//     TLS sessions and DNS results are reused between requests.
// Errors follow ctgov/http_transport.h; see CurlErrorToStatus for the table.
// Messages carry libcurl's description (host and port at most), never the
// URL's query string.
//
// Thread safety: Get() may be called concurrently from any number of
// threads; each call uses its own easy handle. curl_global_init runs once per
// process, on the first Create().
#ifndef TRIALMATCH_CTGOV_CURL_TRANSPORT_H_
#define TRIALMATCH_CTGOV_CURL_TRANSPORT_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "ctgov/http_transport.h"

namespace trialmatch::ctgov {

struct CurlTransportOptions {
  // Empty = DefaultUserAgent().
  std::string user_agent = {};
  // CA bundle file (PEM) to verify servers with; empty = the system's.
  std::string ca_file = {};
  // Easy handles kept for reuse when idle.
  int max_idle_handles = 4;
};

// "trialmatch/<version>".
std::string DefaultUserAgent();

class CurlTransport final : public HttpTransport {
 public:
  // Initialises libcurl (once). Returns kInternal if libcurl cannot be
  // initialised or lacks https support.
  static absl::StatusOr<std::shared_ptr<CurlTransport>> Create(
      CurlTransportOptions options = {});

  ~CurlTransport() override;

  absl::StatusOr<HttpResponse> Get(const HttpRequest& request) override;

 private:
  struct Handle;  // owns a CURL* (unique_ptr with curl_easy_cleanup)
  explicit CurlTransport(CurlTransportOptions options);
  std::unique_ptr<Handle> Borrow();
  void Return(std::unique_ptr<Handle> handle);

  const CurlTransportOptions options_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<Handle>> idle_ ABSL_GUARDED_BY(mu_);
};

// Maps a CURLcode (passed as int so this header does not include curl.h) to
// a status; `detail` is libcurl's error buffer text:
//   OPERATION_TIMEDOUT (connect/total/stall)                kDeadlineExceeded
//   COULDNT_RESOLVE_*, COULDNT_CONNECT, PARTIAL_FILE,
//   RECV_ERROR, SEND_ERROR, GOT_NOTHING, SSL_CONNECT_ERROR,
//   HTTP2, HTTP2_STREAM, HTTP3, WEIRD_SERVER_REPLY,
//   BAD_CONTENT_ENCODING, AGAIN, PROXY                      kUnavailable
//   URL_MALFORMAT, UNSUPPORTED_PROTOCOL                     kInvalidArgument
//   PEER_FAILED_VERIFICATION, SSL_CACERT_BADFILE,
//   SSL_CERTPROBLEM, SSL_PINNEDPUBKEYNOTMATCH               kFailedPrecondition
//   OUT_OF_MEMORY, FILESIZE_EXCEEDED                        kResourceExhausted
//   ABORTED_BY_CALLBACK                                     kCancelled
//   anything else                                           kInternal
absl::Status CurlErrorToStatus(int curl_code, std::string_view detail);

}  // namespace trialmatch::ctgov

#endif  // TRIALMATCH_CTGOV_CURL_TRANSPORT_H_
