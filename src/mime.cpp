// MIME structure: headers, multipart splitting, message/rfc822 recursion, leaves decoded into
// the facts filters share (text, HTML, URLs, attachments). See include/digue/mime.hpp.
// Structure follows what mime4j produces for broken input (bad or missing boundaries, no
// header/body separator, delimiter lines with trailing junk), which the tests check.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <deque>
#include <unordered_set>

#include "src/mime_internal.hpp"

namespace digue::mime {

const Header* Parsed::header(std::string_view name) const {
  if (parts.empty()) return nullptr;
  for (const auto& h : parts.front().headers)
    if (text::iequals(h.name, name)) return &h;
  return nullptr;
}

namespace {

using namespace detail;

constexpr int kHardMaxDepth = 100;       // recursion guard whatever the configured limit
constexpr size_t kMaxHeadersPerPart = 1000;
constexpr size_t kMaxDefects = 64;
constexpr size_t kCandidatesPerUrl = 16;  // URL candidates kept per text, times max_urls

struct Line {
  size_t begin, end, next;  // [begin, end) without the line break; next: the following line
};

Line line_at(std::string_view buf, size_t pos, size_t limit) {
  const void* nl = std::memchr(buf.data() + pos, '\n', limit - pos);
  Line l;
  l.begin = pos;
  if (!nl) {
    l.end = l.next = limit;
  } else {
    l.end = static_cast<size_t>(static_cast<const char*>(nl) - buf.data());
    l.next = l.end + 1;
  }
  if (l.end > pos && buf[l.end - 1] == '\r') --l.end;
  return l;
}

bool valid_header_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 32 || u >= 127) return false;
  }
  return true;
}

// Drops the CR of CRLF pairs in place: filters see "\n" line ends whatever the input had.
void strip_cr(std::string& s, size_t from) {
  size_t w = from;
  for (size_t r = from; r < s.size(); ++r) {
    if (s[r] == '\r' && r + 1 < s.size() && s[r + 1] == '\n') continue;
    s[w++] = s[r];
  }
  s.resize(w);
}

// Length of the longest prefix of s of at most max bytes that does not split a UTF-8 sequence.
size_t utf8_cut(std::string_view s, size_t max) {
  if (s.size() <= max) return s.size();
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80) --cut;
  return cut;
}

// Cuts s to at most max bytes without splitting a UTF-8 sequence; true if it cut.
bool cap_utf8(std::string& s, size_t max) {
  if (s.size() <= max) return false;
  s.resize(utf8_cut(s, max));
  return true;
}

// <meta charset="x"> or <meta http-equiv content="text/html; charset=x"> in the first KB.
std::string html_meta_charset(std::string_view html) {
  std::string head = text::lower(html.substr(0, 2048));
  size_t p = head.find("charset=");
  if (p == std::string::npos) return {};
  p += 8;
  while (p < head.size() && (head[p] == '"' || head[p] == '\'' || is_space(head[p]))) ++p;
  size_t e = p;
  while (e < head.size() && (std::isalnum(static_cast<unsigned char>(head[e])) ||
                             head[e] == '-' || head[e] == '_' || head[e] == '.' || head[e] == ':'))
    ++e;
  return head.substr(p, e - p);
}

class Parser {
 public:
  Parser(std::string_view raw, const Limits& limits, Parsed& out)
      : raw_(raw), limits_(limits), out_(out) {
    max_depth_ = std::clamp(limits.max_depth, 0, kHardMaxDepth);
  }

  void run() {
    out_.parts.reserve(8);
    out_.parts.emplace_back();
    parse_entity(0, raw_, -1, 0, raw_.size(), false, true);
    // Encoded embedded messages were parsed in place in buffers_; hand them to their parts.
    for (auto& [idx, buf] : buffers_) out_.parts[static_cast<size_t>(idx)].decoded = std::move(buf);
    if (const Header* s = out_.header("subject")) out_.subject = s->value;
    for (const auto& h : out_.parts.front().headers) {
      if (h.value.find("://") != std::string::npos || h.value.find("www.") != std::string::npos ||
          h.value.find("WWW.") != std::string::npos)
        add_urls_from_text(h.value);
    }
  }

 private:
  void defect(std::string what) {
    if (out_.defects.size() < kMaxDefects) out_.defects.push_back(std::move(what));
  }

  int new_part(int parent) {
    if (out_.parts.size() >= limits_.max_parts) {
      if (!out_.parts_limited) defect("part count limit");
      out_.parts_limited = true;
      return -1;
    }
    int idx = static_cast<int>(out_.parts.size());
    out_.parts.emplace_back();
    Part& p = out_.parts.back();
    p.parent = parent;
    p.depth = out_.parts[static_cast<size_t>(parent)].depth + 1;
    out_.parts[static_cast<size_t>(parent)].children.push_back(idx);
    return idx;
  }

  Part& part(int idx) { return out_.parts[static_cast<size_t>(idx)]; }

  // Headers from pos; returns where the body starts.
  size_t parse_headers(int idx, std::string_view buf, size_t pos, size_t end) {
    auto& hs = part(idx).headers;
    bool dropped = false;
    while (pos < end) {
      Line l = line_at(buf, pos, end);
      std::string_view s = buf.substr(l.begin, l.end - l.begin);
      if (s.empty()) return l.next;
      if (is_wsp(s[0])) {
        if (hs.empty()) {
          // A folded line with nothing to fold into: no header block at all.
          return pos;
        }
        if (!dropped) hs.back().raw_value.append(s);  // unfolding keeps the WSP
        pos = l.next;
        continue;
      }
      size_t colon = s.find(':');
      std::string_view name = colon == std::string_view::npos ? s : s.substr(0, colon);
      while (!name.empty() && is_wsp(name.back())) name.remove_suffix(1);  // "Subject :"
      if (colon == std::string_view::npos || !valid_header_name(name)) {
        if (!hs.empty()) defect("header block ended by a line that is not a header");
        return pos;
      }
      if (hs.size() >= kMaxHeadersPerPart) {
        if (!dropped) defect("too many headers");
        dropped = true;
      } else {
        Header h;
        h.name.assign(name);
        h.raw_value.assign(s.substr(colon + 1));
        hs.push_back(std::move(h));
      }
      pos = l.next;
    }
    return end;
  }

  void finish_headers(int idx) {
    for (auto& h : part(idx).headers) {
      std::string_view v = trim(h.raw_value);
      if (v.size() != h.raw_value.size()) h.raw_value = std::string(v);
      bool plain = h.raw_value.find("=?") == std::string::npos;
      for (char c : h.raw_value)
        if (static_cast<unsigned char>(c) >= 0x80) plain = false;
      if (plain) {
        h.value = h.raw_value;
      } else {
        decode_words_append(h.raw_value, h.value);
      }
    }
  }

  const Header* find_header(int idx, std::string_view name) {
    for (const auto& h : part(idx).headers)
      if (text::iequals(h.name, name)) return &h;
    return nullptr;
  }

  void parse_entity(int idx, std::string_view buf, int source, size_t begin, size_t end,
                    bool digest_child, bool message_root) {
    size_t pos = begin;
    // An mbox envelope line ("From sender date") is not a header.
    if (message_root && end - pos >= 5 && buf.compare(pos, 5, "From ") == 0)
      pos = line_at(buf, pos, end).next;
    pos = parse_headers(idx, buf, pos, end);
    finish_headers(idx);

    std::string default_type = digest_child ? "message/rfc822" : "text/plain";
    std::string boundary;
    {
      Part& p = part(idx);
      p.source = source;
      p.content_type = default_type;
      if (const Header* ct = find_header(idx, "content-type")) {
        Field f = parse_field(ct->raw_value);
        size_t slash = f.value.find('/');
        if (slash != std::string::npos && slash > 0 && slash + 1 < f.value.size()) {
          p.content_type = f.value;
        } else if (!f.value.empty()) {
          defect("bad content type");
        }
        if (const std::string* cs = f.param("charset")) p.charset = text::lower(trim(*cs));
        if (const std::string* b = f.param("boundary")) boundary = *b;
        if (const std::string* nm = f.param("name")) p.filename = *nm;
      }
      if (const Header* cte = find_header(idx, "content-transfer-encoding"))
        p.transfer_encoding = text::lower(trim(cte->raw_value));
      if (const Header* cd = find_header(idx, "content-disposition")) {
        Field f = parse_field(cd->raw_value);
        p.disposition = f.value;
        if (const std::string* fn = f.param("filename"); fn && !fn->empty()) p.filename = *fn;
      }
      p.body_offset = pos;
      p.body_length = end > pos ? end - pos : 0;
      if (p.content_type.starts_with("multipart/")) {
        if (boundary.empty()) {
          // No boundary: nothing can be split; read it as text (as mime4j does).
          defect("multipart without boundary");
          p.content_type = "text/plain";
        } else {
          p.multipart = true;
          p.boundary = boundary;
        }
      }
      p.message = p.content_type == "message/rfc822" || p.content_type == "message/global";
      if ((p.multipart || p.message) && p.depth >= max_depth_) {
        if (!out_.depth_limited) defect("nesting depth limit");
        out_.depth_limited = true;
        p.multipart = p.message = false;
      }
    }
    if (pos > end) pos = end;
    Part& p = part(idx);
    if (p.multipart) {
      parse_multipart(idx, buf, source, pos, end);
    } else if (p.message) {
      parse_message(idx, buf, source, pos, end);
    } else {
      leaf(idx, buf.substr(pos, end - pos));
    }
  }

  void parse_multipart(int idx, std::string_view buf, int source, size_t begin, size_t end) {
    const std::string delim = "--" + part(idx).boundary;
    const bool digest = part(idx).content_type == "multipart/digest";
    std::vector<std::pair<size_t, size_t>> ranges;
    size_t cur = std::string_view::npos;  // start of the current part's content
    size_t pos = begin;
    bool closed = false;
    size_t preamble_end = end, epilogue_begin = end;
    while (pos < end) {
      Line l = line_at(buf, pos, end);
      if (l.end - l.begin >= delim.size() && buf[l.begin] == '-' && buf[l.begin + 1] == '-' &&
          buf.compare(l.begin, delim.size(), delim) == 0) {
        std::string_view rest = buf.substr(l.begin + delim.size(), l.end - l.begin - delim.size());
        bool close = rest.starts_with("--");
        // Anything after the boundary must be padding; "--b-1" is another boundary ("--b").
        bool open = !close && (rest.empty() || is_wsp(rest[0]));
        if (close || open) {
          size_t lower = cur == std::string_view::npos ? begin : cur;
          size_t content_end = l.begin;
          // The line break before a delimiter belongs to the delimiter (RFC 2046 5.1.1).
          if (content_end > lower && buf[content_end - 1] == '\n') --content_end;
          if (content_end > lower && buf[content_end - 1] == '\r') --content_end;
          if (cur == std::string_view::npos) preamble_end = content_end;
          else ranges.emplace_back(cur, content_end);
          if (close) {
            closed = true;
            epilogue_begin = l.next;
            if (cur == std::string_view::npos) defect("close delimiter before any part");
            break;
          }
          cur = l.next;
        }
      }
      pos = l.next;
    }
    if (cur == std::string_view::npos) {
      defect("multipart without parts");
      preamble_end = closed ? preamble_end : end;
    } else if (!closed) {
      defect("missing final boundary");
      ranges.emplace_back(cur, end);
    }
    {
      Part& p = part(idx);
      p.preamble.assign(buf.substr(begin, std::min(preamble_end - begin, limits_.max_text_bytes)));
      if (closed && epilogue_begin < end)
        p.epilogue.assign(
            buf.substr(epilogue_begin, std::min(end - epilogue_begin, limits_.max_text_bytes)));
      // With no parts, the preamble is all the content a reader may see: keep it visible to
      // the content filters.
      if (ranges.empty() && !p.preamble.empty()) {
        std::string t;
        to_utf8_append(p.preamble, p.charset, t);
        strip_cr(t, 0);
        add_text(t);
      }
    }
    for (const auto& [b, e] : ranges) {
      int child = new_part(idx);
      if (child < 0) break;
      parse_entity(child, buf, source, b, std::max(b, e), digest, false);
    }
  }

  void parse_message(int idx, std::string_view buf, int source, size_t begin, size_t end) {
    std::string_view body = buf.substr(begin, end - begin);
    const std::string cte = part(idx).transfer_encoding;  // a copy: new_part reallocates parts
    int child = new_part(idx);
    if (child < 0) return;
    if (cte == "base64" || cte == "quoted-printable") {
      // An encoded message is decoded and parsed in its own buffer (stable address: deque).
      std::string& decoded = buffers_.emplace_back(idx, std::string()).second;
      decode_body(cte, body, decoded);
      parse_entity(child, decoded, idx, 0, decoded.size(), false, true);
    } else {
      parse_entity(child, buf, source, begin, end, false, true);
    }
  }

  // Transfer decoding within the message-wide decoded-size budget.
  void decode_body(const std::string& cte, std::string_view body, std::string& out) {
    size_t budget = limits_.max_decoded_bytes > decoded_total_
                        ? limits_.max_decoded_bytes - decoded_total_
                        : 0;
    bool complete = true;
    if (cte == "base64") {
      bool bad = false;
      complete = decode_base64(body, out, budget, &bad);
      if (bad) defect("bad base64");
    } else if (cte == "quoted-printable") {
      complete = decode_qp(body, out, budget);
    } else {
      if (!cte.empty() && cte != "7bit" && cte != "8bit" && cte != "binary" &&
          cte != "x-uuencode" && cte != "x-uue" && cte != "uuencode")
        defect("unknown transfer encoding");
      complete = body.size() <= budget;
      out.assign(body.substr(0, std::min(body.size(), budget)));
    }
    if (!complete) {
      if (!out_.size_limited) defect("decoded size limit");
      out_.size_limited = true;
    }
    decoded_total_ += out.size();
  }

  // Appends t to Parsed::text ("\n"-joined) within max_text_bytes.
  void add_text(std::string_view t) {
    if (t.empty()) return;
    size_t sep = out_.text.empty() ? 0 : 1;
    if (out_.text.size() + sep >= limits_.max_text_bytes) {
      out_.text_limited = true;
      return;
    }
    size_t room = limits_.max_text_bytes - out_.text.size() - sep;
    if (sep) out_.text.push_back('\n');
    size_t n = utf8_cut(t, room);
    if (n < t.size()) out_.text_limited = true;
    out_.text.append(t.substr(0, n));
  }

  void add_url(std::string_view candidate) {
    Url u;
    if (!make_url(candidate, u)) return;
    if (!seen_urls_.insert(u.url).second) return;
    if (out_.urls.size() >= limits_.max_urls) {
      out_.urls_limited = true;
      return;
    }
    out_.urls.push_back(std::move(u));
  }

  void add_urls_from_text(std::string_view text) {
    // Candidates repeat (deduplication comes after make_url): a text gets a few times
    // max_urls of them, and the URL list is flagged incomplete when more were there.
    found_.clear();
    if (!find_urls(text, found_, kCandidatesPerUrl * limits_.max_urls)) out_.urls_limited = true;
    for (auto c : found_) add_url(c);
  }

  void leaf(int idx, std::string_view body) {
    ++out_.leaf_count;
    {
      Part& p = part(idx);
      decode_body(p.transfer_encoding, body, p.decoded);
    }
    Part& p = part(idx);
    const bool is_text = p.content_type.starts_with("text/");
    const bool is_attachment = !is_text || p.disposition == "attachment";
    if (is_text) {
      const bool is_html = p.content_type == "text/html";
      std::string charset = p.charset;
      if (is_html && charset.empty()) charset = html_meta_charset(p.decoded);
      // Converting more than can be kept only costs memory: past 4 bytes per kept byte (UTF-32,
      // the least dense charset of ordinary text) the rest is cut before conversion.
      std::string_view bytes = p.decoded;
      if (bytes.size() / 4 > limits_.max_text_bytes) {
        bytes = bytes.substr(0, 4 * limits_.max_text_bytes);
        out_.text_limited = true;
      }
      std::string utf8;
      to_utf8_append(bytes, charset, utf8);
      strip_cr(utf8, 0);
      if (cap_utf8(utf8, limits_.max_text_bytes)) out_.text_limited = true;
      if (is_html) {
        links_.clear();
        html_extract(utf8, p.text, &links_);
        size_t sep = out_.html.empty() ? 0 : 1;
        if (out_.html.size() + sep < limits_.max_text_bytes) {
          size_t room = limits_.max_text_bytes - out_.html.size() - sep;
          if (sep) out_.html.push_back('\n');
          size_t n = utf8_cut(utf8, room);
          if (n < utf8.size()) out_.text_limited = true;
          out_.html.append(std::string_view(utf8).substr(0, n));
        } else {
          out_.text_limited = true;
        }
        for (const auto& l : links_) add_url(l);
      } else {
        p.text = std::move(utf8);
      }
      add_urls_from_text(part(idx).text);
      add_text(part(idx).text);
    }
    if (is_attachment) {
      Part& q = part(idx);
      Attachment a;
      a.part = idx;
      a.filename = q.filename;
      a.declared_type = q.content_type;
      a.sniffed_type = std::string(sniff(q.decoded));
      a.size = q.decoded.size();
      a.sha256 = sha256_hex(q.decoded);
      a.image = a.sniffed_type.starts_with("image/") ||
                (a.sniffed_type.empty() && q.content_type.starts_with("image/"));
      out_.attachments.push_back(std::move(a));
    }
  }

  std::string_view raw_;
  const Limits& limits_;
  Parsed& out_;
  int max_depth_ = 30;
  size_t decoded_total_ = 0;
  std::deque<std::pair<int, std::string>> buffers_;
  std::unordered_set<std::string> seen_urls_;
  std::vector<std::string_view> found_;
  std::vector<std::string> links_;
};

}  // namespace

Parsed parse(std::string_view raw, const Limits& limits) {
  Parsed out;
  Parser(raw, limits, out).run();
  return out;
}

}  // namespace digue::mime
