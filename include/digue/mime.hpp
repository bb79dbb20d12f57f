// MIME / RFC 5322 parser: turns the raw bytes of one message into the facts filters share.
// Contract: no I/O; never throws on malformed input (the parse is best-effort, defects are
// listed); bounded by Limits (depth, part count, decoded size), each hit recorded.
// Untrusted input: every byte of `raw` comes from the internet; this code is fuzzed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace digue::mime {

struct Header {
  std::string name;       // as written
  std::string raw_value;  // unfolded (CRLF+WSP -> WSP), not decoded
  std::string value;      // unfolded, RFC 2047 decoded, converted to UTF-8
};

struct Part {
  int parent = -1;                 // index in Parsed::parts, -1 for the root
  int depth = 0;
  std::vector<int> children;       // indexes in Parsed::parts
  std::vector<Header> headers;
  std::string content_type;        // lower-case "type/subtype"; default text/plain
  std::string charset;             // lower-case, from Content-Type
  std::string boundary;            // multipart only
  std::string transfer_encoding;   // lower-case
  std::string disposition;         // lower-case "inline" / "attachment" / ""
  std::string filename;            // UTF-8, from Content-Disposition or Content-Type name
  bool multipart = false;          // a container (multipart/*)
  bool message = false;            // message/rfc822 (its child is the embedded message root)
  size_t body_offset = 0;          // raw body bytes in the original input (see `source`)
  size_t body_length = 0;
  // -1: body_offset counts in the original input; otherwise the index of the enclosing
  // message/rfc822 part whose `decoded` holds these bytes (a base64/QP-encoded message).
  int source = -1;
  std::string decoded;             // leaves: body after transfer decoding (bytes);
                                   // encoded message/rfc822: the decoded embedded message
  std::string text;                // text/* leaves: UTF-8 (HTML turned into visible text)
  std::string preamble, epilogue;  // multipart only
};

struct Url {
  std::string url;                // as found (normalised scheme and host)
  std::string host;               // lower-case, IDNA left as is
  std::string registered_domain;  // eTLD+1 via the Public Suffix List; the IP for IP URLs
  bool is_ip = false;
};

struct Attachment {
  int part = -1;
  std::string filename;
  std::string declared_type;
  std::string sniffed_type;       // from magic bytes ("application/x-dosexec", "image/png"...)
  size_t size = 0;
  std::string sha256;             // hex
  bool image = false;
};

struct Limits {
  int max_depth = 30;
  size_t max_parts = 1000;
  size_t max_decoded_bytes = 64u << 20;  // whole message, all parts
  size_t max_text_bytes = 4u << 20;      // text facts kept for filters
  size_t max_urls = 500;
};

struct Parsed {
  std::vector<Part> parts;         // parts[0] is the root (the top-level message)
  std::string subject;             // decoded UTF-8
  std::string text;                // every text leaf's text, in order, "\n"-joined
  std::string html;                // every text/html leaf, decoded to UTF-8, "\n"-joined
  std::vector<Url> urls;           // deduplicated, from headers, text and HTML
  std::vector<Attachment> attachments;
  size_t leaf_count = 0;           // leaf bodies, message/rfc822 bodies counted, containers not
  bool depth_limited = false, parts_limited = false, size_limited = false;
  bool text_limited = false;       // Parsed::text / html / Part::text cut at max_text_bytes
  bool urls_limited = false;       // more than max_urls distinct URLs, or over 16 * max_urls
                                   // URL candidates in one text (some left unexamined)
  std::vector<std::string> defects;  // "missing final boundary", "bad base64", ...

  const std::vector<Header>& headers() const { return parts.front().headers; }
  // First top-level header with this name (case-insensitive), or nullptr.
  const Header* header(std::string_view name) const;
};

Parsed parse(std::string_view raw, const Limits& limits = {});

// Building blocks, also used by other components (Bayes tokenizer, filters, tests).
// RFC 2047 encoded words (B and Q) decoded; the rest of the value converted to UTF-8
// (8-bit bytes that are not UTF-8 are read as Windows-1252).
std::string decode_header_value(std::string_view raw);
// Bytes in `charset` (any name iconv knows, plus common aliases) to valid UTF-8; unknown
// charsets and invalid sequences never fail (U+FFFD or Windows-1252 fallback).
std::string to_utf8(std::string_view bytes, std::string_view charset);
// Visible text of an HTML document (script/style/hidden elements dropped, entities decoded);
// href/src targets appended to *links when links is not null.
std::string html_to_text(std::string_view html, std::vector<std::string>* links = nullptr);
// eTLD+1 of a lower-case host name per the Public Suffix List, ICANN and private sections
// ("foo.blogspot.com" stays whole), via libpsl: the newest of the system list
// (/usr/share/publicsuffix) and libpsl's builtin copy, loaded once (thread-safe). Labels in
// punycode or UTF-8; under a TLD the list does not know, the last two labels. "" for a host
// that is itself a public suffix and for a name with a leading or trailing dot; an IP
// address is returned as is. Without any list: the last two labels.
std::string registered_domain(std::string_view host);

}  // namespace digue::mime
