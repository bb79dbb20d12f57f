// Internal helpers of the MIME parser (src/mime*.cpp). Not part of the team contract: the
// public surface is include/digue/mime.hpp. Every function here takes untrusted bytes, never
// throws on malformed input and does no I/O (except the one-time Public Suffix List load).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "digue/mime.hpp"
#include "digue/text.hpp"

namespace digue::mime::detail {

inline bool is_wsp(char c) { return c == ' ' || c == '\t'; }
inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool istarts_with(std::string_view s, std::string_view prefix);
std::string_view trim(std::string_view s);
// Value of a hexadecimal digit, or -1.
inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
// %XX escapes decoded; a '%' not followed by two hex digits is kept.
std::string percent_decode(std::string_view s);

// Charset conversion and RFC 2047, appending to out (see mime::to_utf8 and
// mime::decode_header_value).
// Appends one code point as UTF-8 (no validation: callers pass valid scalar values).
void append_utf8(std::string& out, uint32_t cp);
void to_utf8_append(std::string_view bytes, std::string_view charset, std::string& out);
void decode_words_append(std::string_view raw, std::string& out);

// Transfer decodings, lenient: garbage is skipped and reported through *bad.
// Appends to out (no more than max_out bytes in total); returns false when truncated.
bool decode_base64(std::string_view in, std::string& out, size_t max_out, bool* bad);
bool decode_qp(std::string_view in, std::string& out, size_t max_out);

// One structured header (Content-Type, Content-Disposition): the lower-cased value before the
// first ';' and the parameters, RFC 2231 continuations and charsets resolved to UTF-8, and
// RFC 2047 words in quoted values decoded (non-standard but common for filenames).
struct Param {
  std::string name;   // lower-case
  std::string value;  // UTF-8
};
struct Field {
  std::string value;  // lower-case, trimmed, comments removed
  std::vector<Param> params;
  const std::string* param(std::string_view name) const;
};
Field parse_field(std::string_view raw);

// HTML visible text and link targets (href/src), for mime::html_to_text.
void html_extract(std::string_view html, std::string& text, std::vector<std::string>* links);

// URL extraction: appends URLs found in free text (http/https/ftp schemes and bare "www."),
// while found holds fewer than max_found; returns false when candidates were left out.
bool find_urls(std::string_view text, std::vector<std::string_view>& found, size_t max_found);
// Parses one URL candidate (absolute, or starting with "www." or "//"); false if no host.
bool make_url(std::string_view candidate, Url& out);

// Content sniffing from magic bytes; "" when nothing is recognised.
std::string_view sniff(std::string_view data);
std::string sha256_hex(std::string_view data);

}  // namespace digue::mime::detail
