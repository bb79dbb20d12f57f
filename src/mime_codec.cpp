// Transfer decodings (base64, quoted-printable), charset conversion to UTF-8, RFC 2047
// encoded words and structured header fields with RFC 2231 parameters.
// All lenient: mail from the internet is routinely malformed, and a parse that gives up hides
// content from the filters. Nothing here throws on bad input.
#include <iconv.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>

#include "digue/text.hpp"
#include "src/mime_internal.hpp"

namespace digue::mime {
namespace detail {

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && text::iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

namespace {

constexpr std::array<int8_t, 256> make_b64_table() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(a[i])] = static_cast<int8_t>(i);
  // base64url letters too: some broken mailers use them, and nothing else means them here.
  t['-'] = 62;
  t['_'] = 63;
  return t;
}
constexpr auto kB64 = make_b64_table();

}  // namespace

bool decode_base64(std::string_view in, std::string& out, size_t max_out, bool* bad) {
  out.reserve(out.size() + in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : in) {
    int8_t v = kB64[static_cast<unsigned char>(ch)];
    if (v < 0) {
      // Padding is ignored rather than treated as the end: concatenated base64 blobs exist.
      if (bad && ch != '=' && !is_space(ch)) *bad = true;
      if (ch == '=') bits = 0;  // realign after padding
      continue;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (out.size() >= max_out) return false;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

bool decode_qp(std::string_view in, std::string& out, size_t max_out) {
  out.reserve(out.size() + in.size());
  size_t i = 0;
  const size_t n = in.size();
  while (i < n) {
    // One line at a time: trailing whitespace is transport padding (RFC 2045 6.7 rule 3).
    size_t eol = in.find('\n', i);
    size_t line_end = eol == std::string_view::npos ? n : eol;
    size_t content_end = line_end;
    if (content_end > i && in[content_end - 1] == '\r') --content_end;
    while (content_end > i && is_wsp(in[content_end - 1])) --content_end;
    bool soft = false;
    for (size_t j = i; j < content_end; ++j) {
      char c = in[j];
      if (c == '=') {
        if (j + 1 == content_end) {
          soft = true;
          break;
        }
        int hi = hex_value(in[j + 1]);
        int lo = j + 2 < content_end ? hex_value(in[j + 2]) : -1;
        if (hi >= 0 && lo >= 0) {
          if (out.size() >= max_out) return false;
          out.push_back(static_cast<char>(hi * 16 + lo));
          j += 2;
          continue;
        }
        // A bare '=' is kept literally, as most readers do.
      }
      if (out.size() >= max_out) return false;
      out.push_back(c);
    }
    if (eol == std::string_view::npos) break;
    if (!soft) {
      if (out.size() + 2 > max_out) return false;
      out.append("\r\n");  // canonical line break (RFC 2045)
    }
    i = eol + 1;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Charsets

namespace {

bool is_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}


// Windows-1252 0x80..0x9f; 0 where the code page has a hole (kept as the C1 control).
constexpr uint16_t kCp1252[32] = {
    0x20ac, 0,      0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017d, 0,      0,      0x2018, 0x2019, 0x201c, 0x201d, 0x2022,
    0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0,      0x017e, 0x0178};

void cp1252_to_utf8(std::string_view in, std::string& out) {
  out.reserve(out.size() + in.size() + in.size() / 4);
  for (char ch : in) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out.push_back(ch);
    } else if (c < 0xa0 && kCp1252[c - 0x80]) {
      append_utf8(out, kCp1252[c - 0x80]);
    } else {
      append_utf8(out, c);
    }
  }
}


// Undeclared or ASCII-declared 8-bit text: UTF-8 if it is valid, else Windows-1252 (by far
// the most common legacy charset in mail).
void guess_to_utf8(std::string_view in, std::string& out) {
  if (text::valid_utf8(in)) {
    out.append(in);
  } else {
    cp1252_to_utf8(in, out);
  }
}

// Charset names as they appear in mail, mapped to what glibc iconv knows best.
std::string normalise_charset(std::string_view cs) {
  std::string n = text::lower(trim(cs));
  // RFC 2231 language suffix in encoded words: "utf-8*en".
  if (auto star = n.find('*'); star != std::string::npos) n.resize(star);
  if (n.size() > 2 && n.front() == '"' && n.back() == '"') n = n.substr(1, n.size() - 2);
  if (n == "ks_c_5601-1987" || n == "ks_c_5601" || n == "ksc5601" || n == "euc-kr") return "cp949";
  if (n == "gb2312" || n == "gbk" || n == "x-gbk" || n == "cn-gb") return "gb18030";
  if (n == "x-sjis" || n == "shift-jis" || n == "sjis" || n == "x-shift_jis") return "cp932";
  if (n == "shift_jis") return "cp932";
  if (n == "big5") return "big5-hkscs";
  if (n == "unicode-1-1-utf-7" || n == "x-unicode-2-0-utf-7") return "utf-7";
  if (n == "iso-8859-8-i") return "iso-8859-8";
  if (n == "tis-620" || n == "windows-874") return "cp874";
  return n;
}

bool is_utf8_name(std::string_view n) { return n == "utf-8" || n == "utf8"; }
bool is_ascii_name(std::string_view n) {
  return n.empty() || n == "us-ascii" || n == "ascii" || n == "ansi_x3.4-1968" ||
         n == "default" || n == "unknown-8bit" || n == "x-unknown" || n == "unknown";
}
bool is_latin1_name(std::string_view n) {
  return n == "iso-8859-1" || n == "iso8859-1" || n == "latin1" || n == "iso_8859-1" ||
         n == "l1" || n == "iso-8859-1:1987";
}
bool is_cp1252_name(std::string_view n) {
  return n == "windows-1252" || n == "cp1252" || n == "x-cp1252";
}

bool is_hz_name(std::string_view n) { return n == "hz-gb-2312" || n == "hz"; }

// Charsets (normalised names) whose bytes 0x00..0x7f are always ASCII.
bool ascii_compatible(std::string_view n) {
  if (is_utf8_name(n) || is_ascii_name(n) || is_latin1_name(n) || is_cp1252_name(n)) return true;
  for (std::string_view p : {"iso-8859-", "iso8859-", "iso_8859-", "windows-125", "cp125", "koi8-"})
    if (n.starts_with(p)) return true;
  return n == "gb18030" || n == "cp949" || n == "cp874" || n == "euc-jp" || n == "big5-hkscs";
}

// RFC 1843: "~{" switches to GB2312 byte pairs with the high bits clear, "~}" back to ASCII,
// "~~" is '~' and "~" before a line break joins lines. Returns EUC-CN (GB2312, high bits set).
// Lenient: a line break also ends GB mode, anything unexpected is kept as it is.
std::string hz_to_euc_cn(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  bool gb = false;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    char d = i + 1 < in.size() ? in[i + 1] : '\0';
    if (c == '~' && d == '}' && gb) {
      gb = false;
      ++i;
    } else if (c == '~' && !gb && (d == '{' || d == '~' || d == '\n')) {
      if (d == '{') gb = true;
      if (d == '~') out.push_back('~');
      ++i;
    } else if (gb && c >= 0x21 && c <= 0x7e && d >= 0x21 && d <= 0x7e) {
      out.push_back(static_cast<char>(c | 0x80));
      out.push_back(static_cast<char>(d | 0x80));
      ++i;
    } else {
      if (c == '\n' || c == '\r') gb = false;
      out.push_back(c);
    }
  }
  return out;
}

// Charset names go to iconv_open only when they look like charset names: the value is
// attacker-controlled and glibc loads gconv modules by name.
bool plausible_charset(std::string_view n) {
  if (n.empty() || n.size() > 40) return false;
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
          c == '.' || c == ':'))
      return false;
  return true;
}

// iconv descriptors are costly to open and not thread-safe: each thread keeps a few.
struct IconvCache {
  struct Entry {
    std::string name;
    iconv_t cd;
  };
  std::vector<Entry> entries;
  ~IconvCache() {
    for (auto& e : entries)
      if (e.cd != reinterpret_cast<iconv_t>(-1)) iconv_close(e.cd);
  }
  iconv_t get(const std::string& name) {
    for (auto& e : entries)
      if (e.name == name) return e.cd;
    if (entries.size() >= 32) {
      if (entries.front().cd != reinterpret_cast<iconv_t>(-1)) iconv_close(entries.front().cd);
      entries.erase(entries.begin());
    }
    iconv_t cd = iconv_open("UTF-8", name.c_str());
    entries.push_back({name, cd});  // failures are cached too
    return cd;
  }
};

bool iconv_to_utf8(std::string_view in, const std::string& charset, std::string& out) {
  thread_local IconvCache cache;
  iconv_t cd = cache.get(charset);
  if (cd == reinterpret_cast<iconv_t>(-1)) return false;
  iconv(cd, nullptr, nullptr, nullptr, nullptr);  // reset shift state
  // Grown on E2BIG: most text takes 1–2 UTF-8 bytes per input byte, and a buffer of 4× the
  // input (the worst case) for every part cost 4× the part's size even for Latin-1.
  std::string converted;
  converted.resize(in.size() + in.size() / 2 + 16);
  char* src = const_cast<char*>(in.data());
  size_t src_left = in.size();
  char* dst = converted.data();
  size_t dst_left = converted.size();
  while (src_left > 0) {
    size_t r = iconv(cd, &src, &src_left, &dst, &dst_left);
    if (r != static_cast<size_t>(-1)) break;
    if (errno == E2BIG) {
      size_t used = static_cast<size_t>(dst - converted.data());
      converted.resize(converted.size() * 2);
      dst = converted.data() + used;
      dst_left = converted.size() - used;
    } else if (errno == EILSEQ || errno == EINVAL) {
      // Skip the bad byte, mark it, and go on: one bad byte must not hide the rest.
      if (dst_left < 3) {
        size_t used = static_cast<size_t>(dst - converted.data());
        converted.resize(converted.size() * 2);
        dst = converted.data() + used;
        dst_left = converted.size() - used;
      }
      std::memcpy(dst, "\xef\xbf\xbd", 3);
      dst += 3;
      dst_left -= 3;
      ++src;
      --src_left;
      iconv(cd, nullptr, nullptr, nullptr, nullptr);
    } else {
      break;
    }
  }
  converted.resize(static_cast<size_t>(dst - converted.data()));
  // iconv's UTF-8 output is valid, but a stateful decoder may emit odd bytes for garbage.
  text::utf8_repair(converted, out);
  return true;
}

}  // namespace

void to_utf8_append(std::string_view bytes, std::string_view charset, std::string& out) {
  std::string n = normalise_charset(charset);
  // ASCII text in an ASCII-compatible charset is itself. Only charsets known to be so take
  // this shortcut: 7-bit ones (UTF-7, ISO-2022-*, HZ) encode other text in ASCII bytes.
  if (is_ascii(bytes) && ascii_compatible(n)) {
    out.append(bytes);
    return;
  }
  if (is_hz_name(n)) {
    // RFC 1843 HZ: GB2312 in 7 bits; glibc iconv does not know it.
    std::string gb = hz_to_euc_cn(bytes);
    if (!iconv_to_utf8(gb, "gb18030", out)) guess_to_utf8(gb, out);
    return;
  }
  if (is_utf8_name(n)) {
    text::utf8_repair(bytes, out);
  } else if (is_ascii_name(n) || is_cp1252_name(n) || is_latin1_name(n) ||
             !plausible_charset(n) || !iconv_to_utf8(bytes, n, out)) {
    // Mail labelled Latin-1 is very often Windows-1252 (smart quotes), sometimes UTF-8; so is
    // 8-bit text labelled ASCII or with a charset iconv does not know.
    guess_to_utf8(bytes, out);
  }
}

// ---------------------------------------------------------------------------------------------
// RFC 2047

namespace {

// Decodes one encoded word's text; false when it is not a well-formed encoded word.
bool decode_word(std::string_view charset, char enc, std::string_view text, std::string& out) {
  std::string bytes;
  if (enc == 'b' || enc == 'B') {
    decode_base64(text, bytes, text.size(), nullptr);
  } else if (enc == 'q' || enc == 'Q') {
    bytes.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
      char c = text[i];
      if (c == '_') {
        bytes.push_back(' ');
      } else if (c == '=') {
        int hi = i + 1 < text.size() ? hex_value(text[i + 1]) : -1;
        int lo = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
        if (hi >= 0 && lo >= 0) {
          bytes.push_back(static_cast<char>(hi * 16 + lo));
          i += 2;
        } else {
          bytes.push_back(c);
        }
      } else {
        bytes.push_back(c);
      }
    }
  } else {
    return false;
  }
  to_utf8_append(bytes, charset, out);
  return true;
}

}  // namespace

void decode_words_append(std::string_view raw, std::string& out) {
  // An encoded word is at most this long (RFC 2047 says 75; mailers exceed it), and no more
  // than kMaxWords are decoded in one value: the rest is kept as it is.
  constexpr size_t kMaxWordLen = 4096;
  constexpr size_t kMaxWords = 1024;
  out.reserve(out.size() + raw.size());
  size_t i = 0;
  size_t words = 0;
  bool last_was_word = false;
  // The next "?=" at or after close_from. Word starts only move forward, so one search serves
  // every "=?" until it is passed: a value full of "=?" without "?=" stays linear.
  size_t close_from = 0;
  size_t close = raw.find("?=");
  while (i < raw.size()) {
    size_t start = words < kMaxWords ? raw.find("=?", i) : std::string_view::npos;
    if (start == std::string_view::npos) {
      std::string_view rest = raw.substr(i);
      guess_to_utf8(rest, out);
      break;
    }
    // Parse =?charset?X?text?= (the '?' searches are linear overall: no "=?" lies between
    // a start and its first '?').
    size_t q1 = raw.find('?', start + 2);
    size_t q2 = q1 == std::string_view::npos ? q1 : raw.find('?', q1 + 1);
    size_t end = std::string_view::npos;
    if (q2 != std::string_view::npos && q2 == q1 + 2 && q1 > start + 2 &&
        q2 - start < kMaxWordLen) {
      if (close != std::string_view::npos && close < q2 + 1 && close_from < q2 + 1) {
        close_from = q2 + 1;
        close = raw.find("?=", close_from);
      }
      end = close;
    }
    bool ok = end != std::string_view::npos && end - start <= kMaxWordLen;
    if (ok) {
      std::string_view between = raw.substr(i, start - i);
      bool only_ws = true;
      for (char c : between)
        if (!is_space(c)) only_ws = false;
      // Whitespace between two adjacent encoded words is not displayed (RFC 2047 6.2).
      if (!(last_was_word && only_ws)) guess_to_utf8(between, out);
      std::string_view charset = raw.substr(start + 2, q1 - start - 2);
      std::string_view text = raw.substr(q2 + 1, end - q2 - 1);
      if (decode_word(charset, raw[q1 + 1], text, out)) {
        ++words;
        last_was_word = true;
        i = end + 2;
        continue;
      }
    }
    // Not an encoded word: copy through the "=?" and go on.
    guess_to_utf8(raw.substr(i, start + 2 - i), out);
    last_was_word = false;
    i = start + 2;
  }
}

// ---------------------------------------------------------------------------------------------
// Structured fields and RFC 2231

const std::string* Field::param(std::string_view name) const {
  for (const auto& p : params)
    if (p.name == name) return &p.value;
  return nullptr;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      int hi = i + 1 < s.size() ? hex_value(s[i + 1]) : -1;
      int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

namespace {

struct RawParam {
  std::string name;  // base name, lower-case
  int section = -1;  // RFC 2231 continuation number, -1 when none
  bool extended = false;
  std::string value;
};

}  // namespace

Field parse_field(std::string_view raw) {
  Field f;
  size_t i = 0;
  const size_t n = raw.size();
  // Main value up to the first ';', comments dropped.
  std::string value;
  int comment = 0;
  for (; i < n && (raw[i] != ';' || comment); ++i) {
    char c = raw[i];
    if (c == '(') ++comment;
    else if (c == ')' && comment) --comment;
    else if (!comment && !is_space(c) && c != '"') value.push_back(text::lower(c));
  }
  f.value = std::move(value);

  std::vector<RawParam> raws;
  while (i < n && raws.size() < 64) {
    ++i;  // skip ';'
    while (i < n && (is_space(raw[i]) || raw[i] == ';')) ++i;
    size_t name_begin = i;
    while (i < n && raw[i] != '=' && raw[i] != ';') ++i;
    std::string_view name = trim(raw.substr(name_begin, i - name_begin));
    if (i >= n || raw[i] == ';') continue;  // a parameter without a value
    ++i;                                    // '='
    while (i < n && is_space(raw[i])) ++i;
    std::string val;
    if (i < n && raw[i] == '"') {
      ++i;
      while (i < n && raw[i] != '"') {
        if (raw[i] == '\\' && i + 1 < n) ++i;
        val.push_back(raw[i]);
        ++i;
      }
      if (i < n) ++i;  // closing quote
      // Anything up to the next ';' after a quoted string is junk.
      while (i < n && raw[i] != ';') ++i;
    } else {
      size_t vb = i;
      while (i < n && raw[i] != ';') ++i;
      val = std::string(trim(raw.substr(vb, i - vb)));
    }
    RawParam rp;
    std::string lname = text::lower(name);
    // name*N*, name*N, name*
    if (!lname.empty() && lname.back() == '*') {
      rp.extended = true;
      lname.pop_back();
    }
    if (auto star = lname.find('*'); star != std::string::npos) {
      std::string_view num = std::string_view(lname).substr(star + 1);
      int sec = 0;
      bool digits = !num.empty() && num.size() < 4;
      for (size_t k = 0; digits && k < num.size(); ++k) {
        if (num[k] < '0' || num[k] > '9') digits = false;
        else sec = sec * 10 + (num[k] - '0');
      }
      if (digits) {
        rp.section = sec;
        lname.resize(star);
      }
    }
    rp.name = std::move(lname);
    rp.value = std::move(val);
    raws.push_back(std::move(rp));
  }

  // Assemble: plain params as they are; RFC 2231 sections joined in order.
  for (size_t k = 0; k < raws.size(); ++k) {
    const RawParam& rp = raws[k];
    if (f.param(rp.name)) continue;  // first occurrence wins
    bool has_sections = false;
    for (const auto& o : raws)
      if (o.name == rp.name && o.section >= 0) has_sections = true;
    if (!has_sections) {
      std::string out;
      if (rp.extended) {
        // charset'lang'percent-encoded
        size_t a = rp.value.find('\'');
        size_t b = a == std::string::npos ? a : rp.value.find('\'', a + 1);
        if (b != std::string::npos) {
          to_utf8_append(percent_decode(std::string_view(rp.value).substr(b + 1)),
                         std::string_view(rp.value).substr(0, a), out);
        } else {
          guess_to_utf8(percent_decode(rp.value), out);
        }
      } else if (rp.name == "name" || rp.name == "filename") {
        decode_words_append(rp.value, out);
      } else {
        // Other values (boundary, charset) are tokens, compared byte for byte.
        out = rp.value;
      }
      f.params.push_back({rp.name, std::move(out)});
      continue;
    }
    std::string charset, bytes;
    for (int sec = 0; sec < 100; ++sec) {
      const RawParam* found = nullptr;
      for (const auto& o : raws)
        if (o.name == rp.name && o.section == sec) found = &o;
      if (!found) break;
      std::string_view v = found->value;
      if (sec == 0 && found->extended) {
        size_t a = v.find('\'');
        size_t b = a == std::string_view::npos ? a : v.find('\'', a + 1);
        if (b != std::string_view::npos) {
          charset = std::string(v.substr(0, a));
          v = v.substr(b + 1);
        }
      }
      bytes += found->extended ? percent_decode(v) : std::string(v);
    }
    std::string out;
    if (!charset.empty()) to_utf8_append(bytes, charset, out);
    else if (rp.name == "name" || rp.name == "filename") decode_words_append(bytes, out);
    else out = std::move(bytes);
    f.params.push_back({rp.name, std::move(out)});
  }
  return f;
}

}  // namespace detail

std::string decode_header_value(std::string_view raw) {
  std::string out;
  detail::decode_words_append(raw, out);
  return out;
}

std::string to_utf8(std::string_view bytes, std::string_view charset) {
  std::string out;
  detail::to_utf8_append(bytes, charset, out);
  return out;
}

}  // namespace digue::mime
