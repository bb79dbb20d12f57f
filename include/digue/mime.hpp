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
  size_t body_offset = 0;          // raw body bytes in the original input
  size_t body_length = 0;
  std::string decoded;             // leaves: body after transfer decoding (bytes)
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
  std::vector<std::string> defects;  // "missing final boundary", "bad base64", ...

  const std::vector<Header>& headers() const { return parts.front().headers; }
  // First top-level header with this name (case-insensitive), or nullptr.
  const Header* header(std::string_view name) const;
};

Parsed parse(std::string_view raw, const Limits& limits = {});

}  // namespace digue::mime
