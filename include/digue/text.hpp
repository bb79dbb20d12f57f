// Small text helpers shared by the tools and filters: ASCII case folding and comparison, JSON
// string escaping, whole-file reads, and turning a message file (mbox "From " line, LF line
// ends) into the bytes DATA would have given us.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace digue::text {

// ASCII lower-case (domains, header names, keywords); other bytes unchanged.
inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
inline std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}
// ASCII case-insensitive equality (header names, domains, addresses); other bytes must match.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

// The parts with sep between them ("a b c"): lists of names in evidence and log text.
inline std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

// Length of the well-formed UTF-8 sequence starting at s[i] (1 for ASCII), or 0 when the
// bytes there are not one (overlong forms, surrogates and code points above U+10FFFF count as
// ill-formed). i < s.size().
size_t utf8_char_length(std::string_view s, size_t i);
bool valid_utf8(std::string_view s);
// Appends in to out with each byte of an ill-formed sequence replaced by U+FFFD, so the result
// is always valid UTF-8.
void utf8_repair(std::string_view in, std::string& out);

// What json_escape does with bytes from 0x7f up. Keep: well-formed UTF-8 passes through (text
// stays readable), each byte of an ill-formed sequence becomes U+FFFD, so the JSON is always
// valid UTF-8. Escape: each byte as \u00XX, lossless for octets that need not be UTF-8 (DNS
// and SMTP data), at the price of showing UTF-8 as its bytes.
enum class NonAscii : unsigned char { Keep, Escape };

// Without the surrounding quotes.
std::string json_escape(std::string_view s, NonAscii non_ascii = NonAscii::Keep);
std::optional<std::string> read_file(const std::string& path);
// Drops a leading mbox "From " envelope line and turns bare LF line ends into CRLF.
std::string as_received(std::string_view file);

}  // namespace digue::text
