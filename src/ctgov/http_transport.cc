#include "ctgov/http_transport.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "nlohmann/json.hpp"

namespace trialmatch::ctgov {

using common::ToAbsl;

std::optional<std::string_view> HttpHeaders::Get(std::string_view name) const {
  for (const auto& [key, value] : fields_) {
    if (absl::EqualsIgnoreCase(ToAbsl(key), ToAbsl(name))) return value;
  }
  return std::nullopt;
}

bool IsTransientHttpStatus(int status) {
  switch (status) {
    case 408:
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
      return true;
    default:
      return false;
  }
}

std::string_view HttpReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

namespace {

bool StartsWithIgnoreCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         absl::EqualsIgnoreCase(ToAbsl(text.substr(0, prefix.size())),
                                ToAbsl(prefix));
}

std::string_view TrimLeft(std::string_view s) {
  std::size_t i = 0;
  // Also skip a UTF-8 BOM.
  if (s.substr(0, 3) == "\xEF\xBB\xBF") i = 3;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

bool BodyIsHtml(std::string_view body) {
  const std::string_view b = TrimLeft(body);
  return StartsWithIgnoreCase(b, "<!DOCTYPE") ||
         StartsWithIgnoreCase(b, "<html");
}

}  // namespace

bool LooksLikeHtml(const HttpResponse& response) {
  if (auto type = response.headers.Get("Content-Type");
      type.has_value() && StartsWithIgnoreCase(TrimLeft(*type), "text/html")) {
    return true;
  }
  return BodyIsHtml(response.body);
}

std::string BodyExcerpt(std::string_view body, std::size_t max_chars) {
  if (BodyIsHtml(body)) return "(HTML page)";
  std::string_view text = body;
  std::string from_json;
  const std::string_view trimmed = TrimLeft(body);
  if (!trimmed.empty() && trimmed.front() == '{' && body.size() < (1 << 20)) {
    const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object()) {
      for (const char* key : {"message", "error", "detail"}) {
        auto it = j.find(key);
        if (it != j.end() && it->is_string()) {
          from_json = it->get<std::string>();
          text = from_json;
          break;
        }
      }
    }
  }
  std::string out;
  bool space = false;
  bool truncated = false;
  for (char c : text) {
    const auto b = static_cast<unsigned char>(c);
    if (std::isspace(b)) {
      space = !out.empty();
      continue;
    }
    // Printable ASCII and UTF-8 bytes; control characters are dropped.
    if (b < 0x20 || b == 0x7f) continue;
    if (out.size() + (space ? 1 : 0) >= max_chars) {
      truncated = true;
      break;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  if (truncated) {
    // Do not cut a UTF-8 sequence in half.
    std::size_t lead = out.size();
    while (lead > 0 && lead + 4 > out.size() &&
           (static_cast<unsigned char>(out[lead - 1]) & 0xC0) == 0x80) {
      --lead;
    }
    if (lead > 0) {
      const auto b = static_cast<unsigned char>(out[lead - 1]);
      const std::size_t want = b >= 0xF0   ? 4
                               : b >= 0xE0 ? 3
                               : b >= 0xC0 ? 2
                                           : 1;
      if (out.size() - (lead - 1) < want) out.resize(lead - 1);
    }
    out += "...";
  }
  return out;
}

absl::Status AsStatus(const HttpResponse& response) {
  const int code = response.status;
  if (code >= 200 && code < 300) return absl::OkStatus();
  const std::string_view reason = HttpReasonPhrase(code);
  std::string message = absl::StrCat("HTTP ", code);
  if (!reason.empty()) absl::StrAppend(&message, " ", ToAbsl(reason));
  if (code >= 300 && code < 400) {
    absl::StrAppend(&message, " (unexpected redirect)");
  } else {
    const std::string excerpt = BodyExcerpt(response.body);
    if (!excerpt.empty()) absl::StrAppend(&message, ": ", excerpt);
  }
  absl::StatusCode status_code = absl::StatusCode::kUnknown;
  if (code >= 300 && code < 400) {
    status_code = absl::StatusCode::kUnknown;
  } else if (code == 400 || code == 413 || code == 414 || code == 422) {
    status_code = absl::StatusCode::kInvalidArgument;
  } else if (code == 401) {
    status_code = absl::StatusCode::kUnauthenticated;
  } else if (code == 403) {
    status_code = absl::StatusCode::kPermissionDenied;
  } else if (code == 404 || code == 410) {
    status_code = absl::StatusCode::kNotFound;
  } else if (code == 408 || code == 429) {
    status_code = absl::StatusCode::kUnavailable;
  } else if (code == 409) {
    status_code = absl::StatusCode::kAborted;
  } else if (code >= 400 && code < 500) {
    status_code = absl::StatusCode::kFailedPrecondition;
  } else if (code == 501) {
    status_code = absl::StatusCode::kUnimplemented;
  } else if (IsTransientHttpStatus(code)) {
    status_code = absl::StatusCode::kUnavailable;
  } else if (code >= 500 && code < 600) {
    status_code = absl::StatusCode::kInternal;
  }
  return absl::Status(status_code, message);
}

}  // namespace trialmatch::ctgov
