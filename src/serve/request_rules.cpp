// Request rules: percent decoding of request paths, and the refusals of a
// request head before routing (see serve.hpp).
#include <algorithm>
#include <string>

#include "mnist/serve.hpp"

namespace mnist {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string> percent_decode(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\0') {
      return std::nullopt;  // a raw NUL would cut the path short in C APIs
    }
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) {
      return std::nullopt;
    }
    const int hi = hex_value(text[i + 1]);
    const int lo = hex_value(text[i + 2]);
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
      return std::nullopt;
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

int request_refusal(const RequestHead& head) {
  if (head.header_count > kMaxRequestHeaders) {
    return 431;
  }
  const bool bodiless = head.method == "GET" || head.method == "HEAD" || head.method == "OPTIONS";
  if (!head.transfer_encodings.empty()) {
    return head.content_lengths.empty() && !bodiless ? 0 : 400;
  }
  if (head.content_lengths.empty()) {
    return 0;
  }
  const std::string& first = head.content_lengths.front();
  const bool decimal =
      !first.empty() && first.size() <= 19 &&
      std::all_of(first.begin(), first.end(), [](char c) { return c >= '0' && c <= '9'; });
  const bool agree = std::all_of(head.content_lengths.begin(), head.content_lengths.end(),
                                 [&](const std::string& v) { return v == first; });
  if (!decimal || !agree) {
    return 400;
  }
  const unsigned long long length = std::stoull(first);
  if (bodiless) {
    return length == 0 ? 0 : 400;
  }
  return length > kMaxRequestBodyBytes ? 413 : 0;
}

}  // namespace mnist
