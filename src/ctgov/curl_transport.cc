#include "ctgov/curl_transport.h"

#include <curl/curl.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "trialmatch/version.h"

namespace trialmatch::ctgov {

using common::ToAbsl;

namespace {

// google-cloud-cpp curl_wrappers.h: C handles owned by unique_ptr.
struct CurlEasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
using CurlPtr = std::unique_ptr<CURL, CurlEasyDeleter>;

struct CurlSlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlHeaders = std::unique_ptr<curl_slist, CurlSlistDeleter>;

absl::Status GlobalInit() {
  static const absl::Status* const status = [] {
    const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
      return new absl::Status(absl::InternalError(
          absl::StrCat("curl_global_init failed: ", curl_easy_strerror(rc))));
    }
    const curl_version_info_data* info = curl_version_info(CURLVERSION_NOW);
    bool https = false;
    for (const char* const* p = info->protocols; p != nullptr && *p != nullptr;
         ++p) {
      if (std::string_view(*p) == "https") https = true;
    }
    if (!https) {
      return new absl::Status(
          absl::InternalError("libcurl was built without https support"));
    }
    return new absl::Status();
  }();
  return *status;
}

// Collects one response: body with a size guard, headers of the last
// response block (a proxy CONNECT or 100-continue adds earlier blocks).
struct Transfer {
  HttpResponse response;
  std::size_t max_body = 0;
  bool too_large = false;
};

extern "C" size_t TrialmatchCurlWriteBody(char* ptr, size_t size, size_t n,
                                          void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  if (t->response.body.size() + bytes > t->max_body) {
    t->too_large = true;
    return 0;  // makes libcurl fail with CURLE_WRITE_ERROR
  }
  t->response.body.append(ptr, bytes);
  return bytes;
}

extern "C" size_t TrialmatchCurlWriteHeader(char* buffer, size_t size, size_t n,
                                            void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  std::string_view line(buffer, bytes);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
    line.remove_suffix(1);
  }
  if (line.substr(0, 5) == "HTTP/") {
    t->response.headers = HttpHeaders();  // a new response block begins
    return bytes;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return bytes;
  t->response.headers.Add(
      std::string(line.substr(0, colon)),
      std::string(absl::StripAsciiWhitespace(ToAbsl(line.substr(colon + 1)))));
  return bytes;
}

// "https://host:port/path?query" -> "host:port/path" for messages.
std::string UrlForMessage(std::string_view url) {
  std::string_view u = url;
  if (auto scheme = u.find("://"); scheme != std::string_view::npos) {
    u.remove_prefix(scheme + 3);
  }
  if (auto q = u.find_first_of("?#"); q != std::string_view::npos) {
    u = u.substr(0, q);
  }
  return std::string(u);
}

long ToMillis(absl::Duration d) {
  if (d <= absl::ZeroDuration()) return 0;
  return static_cast<long>(std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}

}  // namespace

std::string DefaultUserAgent() {
  return absl::StrCat("trialmatch/", TRIALMATCH_VERSION);
}

absl::Status CurlErrorToStatus(int curl_code, std::string_view detail) {
  const auto rc = static_cast<CURLcode>(curl_code);
  std::string message =
      absl::StrCat("transport error: ", curl_easy_strerror(rc));
  if (!detail.empty()) absl::StrAppend(&message, " (", ToAbsl(detail), ")");
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(message);
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_AGAIN:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_PROXY:
      return absl::UnavailableError(message);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return absl::InvalidArgumentError(message);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return absl::FailedPreconditionError(message);
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FILESIZE_EXCEEDED:
      return absl::ResourceExhaustedError(message);
    case CURLE_ABORTED_BY_CALLBACK:
      return absl::CancelledError(message);
    default:
      return absl::InternalError(message);
  }
}

struct CurlTransport::Handle {
  CurlPtr curl;
};

CurlTransport::CurlTransport(CurlTransportOptions options)
    : options_(std::move(options)) {}

CurlTransport::~CurlTransport() = default;

absl::StatusOr<std::shared_ptr<CurlTransport>> CurlTransport::Create(
    CurlTransportOptions options) {
  if (absl::Status s = GlobalInit(); !s.ok()) return s;
  if (options.user_agent.empty()) options.user_agent = DefaultUserAgent();
  return std::shared_ptr<CurlTransport>(new CurlTransport(std::move(options)));
}

std::unique_ptr<CurlTransport::Handle> CurlTransport::Borrow() {
  {
    absl::MutexLock lock(&mu_);
    if (!idle_.empty()) {
      std::unique_ptr<Handle> h = std::move(idle_.back());
      idle_.pop_back();
      return h;
    }
  }
  auto h = std::make_unique<Handle>();
  h->curl.reset(curl_easy_init());
  if (h->curl == nullptr) return nullptr;
  return h;
}

void CurlTransport::Return(std::unique_ptr<Handle> handle) {
  // curl_easy_reset keeps live connections, the TLS session and DNS caches.
  curl_easy_reset(handle->curl.get());
  absl::MutexLock lock(&mu_);
  if (static_cast<int>(idle_.size()) < options_.max_idle_handles) {
    idle_.push_back(std::move(handle));
  }
}

absl::StatusOr<HttpResponse> CurlTransport::Get(const HttpRequest& request) {
  std::unique_ptr<Handle> handle = Borrow();
  if (handle == nullptr) {
    return absl::ResourceExhaustedError("curl_easy_init failed");
  }
  CURL* curl = handle->curl.get();

  Transfer transfer;
  transfer.max_body = request.max_body_bytes;
  char error_buffer[CURL_ERROR_SIZE] = {0};

  CurlHeaders headers;
  for (const auto& [name, value] : request.headers.fields()) {
    const std::string line = absl::StrCat(name, ": ", value);
    curl_slist* appended = curl_slist_append(headers.get(), line.c_str());
    if (appended == nullptr) {
      return absl::ResourceExhaustedError("curl_slist_append failed");
    }
    (void)headers.release();
    headers.reset(appended);
  }

  long low_speed_time = 0;
  if (request.low_speed_bytes_per_second > 0) {
    low_speed_time = static_cast<long>(std::max<double>(
        1, std::ceil(absl::ToDoubleSeconds(request.low_speed_time))));
  }

  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500  // 7.85.0
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options_.ca_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(curl, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   ToMillis(request.connect_timeout));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, ToMillis(request.timeout));
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT,
                   request.low_speed_bytes_per_second > 0
                       ? request.low_speed_bytes_per_second
                       : 0L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, low_speed_time);
  // Refuses at once a body whose Content-Length is already too large (the
  // write callback guards decoded and unannounced sizes).
  curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE,
                   static_cast<curl_off_t>(request.max_body_bytes));
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &TrialmatchCurlWriteBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &TrialmatchCurlWriteHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);

  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  // The handle must not keep pointers to this frame's buffers.
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  Return(std::move(handle));

  if (rc != CURLE_OK) {
    if (transfer.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "GET ", UrlForMessage(request.url), ": response body exceeds ",
          request.max_body_bytes, " bytes"));
    }
    absl::Status s = CurlErrorToStatus(rc, error_buffer);
    return absl::Status(
        s.code(),
        absl::StrCat("GET ", UrlForMessage(request.url), ": ", s.message()));
  }
  transfer.response.status = static_cast<int>(status);
  return std::move(transfer.response);
}

}  // namespace trialmatch::ctgov
