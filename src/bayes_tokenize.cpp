// Bayes tokenizer: mime::Parsed -> distinct tokens; see include/digue/bayes.hpp.
// Token namespaces (prefix "x:") keep a word in the Subject apart from the same word in the
// body, because their spamminess differs. Untrusted input: every byte comes from the sender;
// the code only reads bounded ranges and never throws on bad UTF-8.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <string>

#include "digue/bayes.hpp"
#include "digue/text.hpp"

namespace digue::bayes {
namespace {

// Headers that carry an earlier verdict or are added by the receiving side: learning them
// would make the model copy other filters (or our own previous runs) instead of the mail.
bool is_trace_header(std::string_view lname) {
  static constexpr std::string_view kPrefixes[] = {
      "x-spam",        "x-digue",    "x-virus",       "x-bogosity",
      "x-dspam",       "x-amavis",   "x-mailscanner", "x-barracuda",
      "x-proofpoint",  "x-ironport", "x-forefront",   "x-microsoft-antispam",
      "x-ms-exchange", "arc-",       "x-quarantine",  "x-razor",
      "x-pyzor",       "x-crm114",   "x-rspamd",      "x-greylist"};
  static constexpr std::string_view kExact[] = {"received-spf",
                                                "authentication-results",
                                                "x-original-authentication-results",
                                                "delivered-to",
                                                "x-original-to",
                                                "return-path",
                                                "envelope-to",
                                                "x-envelope-to",
                                                "x-envelope-from",
                                                "status",
                                                "x-status",
                                                "x-keywords",
                                                "x-uid",
                                                "x-uidl",
                                                "lines",
                                                "content-length",
                                                "x-filtered-by",
                                                "x-loop"};
  for (auto p : kPrefixes)
    if (lname.substr(0, p.size()) == p) return true;
  for (auto e : kExact)
    if (lname == e) return true;
  return false;
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return out;
}

// Decodes one UTF-8 code point at s[i]; advances i. Invalid bytes decode as U+FFFD (one byte).
char32_t next_cp(std::string_view s, size_t& i) {
  auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  int len = b0 >= 0xF0 && b0 < 0xF5 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC2 && b0 < 0xE0 ? 2 : 0;
  if (len == 0 || i + len > s.size()) {
    ++i;
    return 0xFFFD;
  }
  char32_t cp = b0 & (0x7F >> len);
  for (int k = 1; k < len; ++k) {
    auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  i += len;
  return cp;
}

void append_cp(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

char32_t lower_cp(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  if ((c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 32;  // Latin-1
  if (c >= 0x100 && c <= 0x17E && c != 0x130 && c != 0x138 && c != 0x149 && c != 0x178)
    return (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E) ? (c % 2 ? c + 1 : c)
                                                                    : (c % 2 ? c : c + 1);
  if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 32;  // Greek
  if (c == 0x3C2) return 0x3C3;                                // final sigma folds to sigma
  if (c >= 0x410 && c <= 0x42F) return c + 32;                // Cyrillic
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}

// Scripts written without spaces between words: CJK (Han, kana, Hangul syllables) and the
// South-East Asian scripts (Thai, Lao, Myanmar, Khmer). Runs of them become overlapping
// character bigrams, as search engines without a dictionary segment them.
bool is_unspaced(char32_t c) {
  return (c >= 0x3040 && c <= 0x30FF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xF900 && c <= 0xFAFF) ||
         (c >= 0xAC00 && c <= 0xD7AF) || (c >= 0x20000 && c <= 0x2FFFF) ||
         (c >= 0xFF66 && c <= 0xFF9F) || (c >= 0x0E01 && c <= 0x0E5B) ||  // Thai
         (c >= 0x0E81 && c <= 0x0EDF) ||                                  // Lao
         (c >= 0x1000 && c <= 0x109F) ||                                  // Myanmar
         (c >= 0x1780 && c <= 0x17F9);                                    // Khmer
}

// Letters and digits of any script; punctuation, symbols and spaces split words.
bool is_word_cp(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  if (c < 0xC0) return c == 0xAA || c == 0xB5 || c == 0xBA;
  if (c == 0xD7 || c == 0xF7 || c == 0xFFFD) return false;
  if (c >= 0x2000 && c <= 0x2BFF) return false;  // punctuation, symbols, arrows, boxes
  if (c >= 0x3000 && c <= 0x303F) return false;  // CJK punctuation
  if (c >= 0xFE30 && c <= 0xFE4F) return false;
  if (c >= 0xFF00 && c <= 0xFF0F) return false;    // fullwidth punctuation
  if (c >= 0xE000 && c <= 0xF8FF) return false;    // private use
  if (c >= 0x1F000 && c <= 0x1FAFF) return false;  // emoji: see is_symbol_token
  return true;
}

constexpr uint64_t kFnvOffset = 1469598103934665603ull;

uint64_t fnv(uint64_t h, std::string_view s) {
  for (unsigned char ch : s) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return h;
}

uint64_t finish_hash(uint64_t h) {
  // murmur3's finaliser: FNV alone mixes the last bytes poorly.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

// Open-addressing set of token hashes: dedup is on the hot path, std::unordered_set's node
// allocations are not needed.
class HashSet {
 public:
  HashSet() : slots_(1024, 0) {}
  bool insert(uint64_t h) {
    if (h == 0) h = 1;  // 0 marks an empty slot
    if ((count_ + 1) * 2 > slots_.size()) grow();
    size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      if (slots_[i] == h) return false;
      if (slots_[i] == 0) {
        slots_[i] = h;
        ++count_;
        return true;
      }
    }
  }

 private:
  void grow() {
    std::vector<uint64_t> old(slots_.size() * 2, 0);
    old.swap(slots_);
    count_ = 0;
    for (uint64_t h : old)
      if (h) insert(h);
  }
  std::vector<uint64_t> slots_;
  size_t count_ = 0;
};

class Collector {
 public:
  Collector(const TokenizerOptions& opt, std::vector<std::string>& out) : opt_(opt), out_(out) {}

  bool full() const { return out_.size() >= opt_.max_tokens; }

  // Tokens are valid UTF-8 (they reach logs and JSON): a character cut in two by one of the
  // length limits below becomes U+FFFD.
  void add(std::string tok) {
    if (full() || tok.empty()) return;
    if (!text::valid_utf8(tok)) {
      std::string fixed;
      text::utf8_repair(tok, fixed);
      tok = std::move(fixed);
    }
    if (seen_.insert(token_hash(tok))) out_.push_back(std::move(tok));
  }
  void add(std::string_view prefix, std::string_view value) {
    if (full() || value.empty()) return;
    if (!text::valid_utf8(prefix) || !text::valid_utf8(value)) {
      std::string t(prefix);
      t.append(value);
      add(std::move(t));
      return;
    }
    // Hash first: most words repeat, and a repeat costs no string.
    if (!seen_.insert(finish_hash(fnv(fnv(kFnvOffset, prefix), value)))) return;
    std::string t;
    t.reserve(prefix.size() + value.size());
    t.append(prefix).append(value);
    out_.push_back(std::move(t));
  }

  // Splits UTF-8 text into words and adds them with the prefix; words go to `words` too when
  // given (for bigrams).
  void text(std::string_view s, std::string_view prefix,
            std::vector<std::string>* words = nullptr) {
    size_t i = 0;
    std::string word;
    std::u32string unspaced;
    size_t cps = 0, digits = 0, letters = 0;
    int bangs = 0;
    auto flush_word = [&] {
      if (!word.empty()) emit_word(word, cps, digits, letters, prefix, words);
      word.clear();
      cps = digits = letters = 0;
    };
    auto flush_unspaced = [&] {
      if (unspaced.size() == 1) {
        std::string t;
        append_cp(t, unspaced[0]);
        add(prefix, t);
      }
      for (size_t k = 0; k + 1 < unspaced.size() && !full(); ++k) {
        std::string t;
        append_cp(t, unspaced[k]);
        append_cp(t, unspaced[k + 1]);
        add(prefix, t);
      }
      unspaced.clear();
    };
    while (i < s.size() && !full()) {
      char32_t c = next_cp(s, i);
      if (is_unspaced(c)) {
        flush_word();
        unspaced.push_back(c);
        continue;
      }
      if (!unspaced.empty()) flush_unspaced();
      if (is_word_cp(c)) {
        append_cp(word, lower_cp(c));
        ++cps;
        if (c >= '0' && c <= '9')
          ++digits;
        else
          ++letters;
        continue;
      }
      // '.', '-', '\'', '_' , ',' inside a word ("e-mail", "www.x.com", "1,000", "don't")
      // join it when a word character follows.
      if ((c == '.' || c == '-' || c == '\'' || c == '_' || c == ',') && !word.empty() &&
          i < s.size()) {
        size_t j = i;
        char32_t n = next_cp(s, j);
        if (is_word_cp(n) && !is_unspaced(n)) {
          word += static_cast<char>(c);
          ++cps;
          continue;
        }
      }
      if (c == '$' && word.empty()) {
        word += '$';
        ++cps;
        continue;
      }
      flush_word();
      if (c == '!') {
        if (++bangs == 3) add(prefix, "!!!");
      } else if (c != ' ') {
        bangs = 0;
      }
      if (c >= 0x1F000 && c <= 0x1FAFF) add(prefix, "emoji");
    }
    flush_word();
    if (!unspaced.empty()) flush_unspaced();
  }

 private:
  void emit_word(const std::string& w, size_t cps, size_t digits, size_t letters,
                 std::string_view prefix, std::vector<std::string>* words) {
    std::string_view v = w;
    while (!v.empty() && (v.back() == '.' || v.back() == ',' || v.back() == '-'))
      v.remove_suffix(1);
    if (v.empty()) return;
    if (cps < 2 && digits == 0) return;  // single letters carry nothing
    std::string tok;
    if (v.front() == '$' && letters == 0) {
      // Prices: "$19.99" and "$5" say a lot, "$1234567" only that it is a big amount.
      tok = cps <= 8 ? std::string(v) : "num:$";
    } else if (letters == 0 || (digits > 0 && v.front() != '$' && digits * 2 > cps)) {
      // Numbers: short ones (years, prices, "24") stay, long ones (phone numbers, ids)
      // collapse to their length, which is what generalises.
      if (cps <= 4)
        tok.assign(v);
      else
        tok = "num:" + std::to_string(std::min<size_t>(cps, 20));
    } else if (cps > 20) {
      // Long words: base64 leftovers, hashes, glued words; keep their first letter and size.
      // (The first character, not the first byte: tokens stay valid UTF-8.)
      size_t first = std::max<size_t>(1, text::utf8_char_length(v, 0));
      tok = "skip:" + std::string(v.substr(0, first)) + ":" + std::to_string(cps / 10 * 10);
    } else {
      tok.assign(v);
    }
    add(prefix, tok);
    if (words) words->push_back(std::move(tok));
  }

  const TokenizerOptions& opt_;
  std::vector<std::string>& out_;
  HashSet seen_;
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '"'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '"')) s.remove_suffix(1);
  return s;
}

// The last two labels of a host name ("mail.example.com" -> "example.com"): a cheap stand-in
// for the registered domain where the MIME parser does not give one.
std::string_view last_two_labels(std::string_view host) {
  size_t dot = host.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return host;
  size_t dot2 = host.rfind('.', dot - 1);
  return dot2 == std::string_view::npos ? host : host.substr(dot2 + 1);
}

std::string bucket(size_t n) {
  if (n <= 3) return std::to_string(n);
  if (n <= 5) return "4-5";
  if (n <= 10) return "6-10";
  if (n <= 30) return "11-30";
  return "31+";
}

// Splits "Display Name <local@domain>" or "local@domain (Name)" into tokens; returns the
// lower-cased "local@domain" (empty without an @, or beyond 64 / 255 bytes).
std::string address(Collector& c, std::string_view value, std::string_view pfx) {
  std::string_view addr = value, name;
  size_t lt = value.find('<');
  if (lt != std::string_view::npos) {
    size_t gt = value.find('>', lt);
    addr =
        value.substr(lt + 1, gt == std::string_view::npos ? std::string_view::npos : gt - lt - 1);
    name = value.substr(0, lt);
  } else if (size_t lp = value.find('('); lp != std::string_view::npos) {
    name = value.substr(lp + 1);
    addr = value.substr(0, lp);
  }
  addr = trim(addr);
  name = trim(name);
  std::string p(pfx);
  if (!name.empty())
    c.text(name, p + "n:");
  else
    c.add(p, "n:none");
  size_t at = addr.rfind('@');
  if (at == std::string_view::npos) {
    c.add(p, "a:noat");
    return {};
  }
  std::string dom = lower_ascii(addr.substr(at + 1, 255));  // a domain is at most 255 bytes
  std::string local = lower_ascii(addr.substr(0, at));
  c.add(p + "d:", dom);
  c.add(p + "d2:", last_two_labels(dom));
  c.add(p + "l:", local.size() > 20 ? "long" : local);
  size_t digits =
      std::count_if(local.begin(), local.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
  if (digits >= 3) c.add(p, "l:digits");
  if (local.empty() || local.size() > 64 || dom.empty() || dom.size() > 255) return {};
  return local + "@" + dom;
}

// A dotted quad with octets 0..255 ("8.12.5", sendmail's version, is not one).
bool dotted_quad(std::string_view s) {
  int parts = 0;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find('.', i);
    if (j == std::string_view::npos) j = s.size();
    std::string_view o = s.substr(i, j - i);
    if (o.empty() || o.size() > 3) return false;
    int v = 0;
    for (char ch : o) {
      if (ch < '0' || ch > '9') return false;
      v = v * 10 + (ch - '0');
    }
    if (v > 255) return false;
    ++parts;
    i = j + 1;
  }
  return parts == 4;
}

void received(Collector& c, std::string_view v, bool fix, std::vector<std::string>* domains) {
  // "from HELO (rdns [ip]) by ..." : the sending hosts as the relay saw them.
  std::string lv = lower_ascii(v.substr(0, 400));
  size_t from = lv.find("from ");
  if (from == std::string::npos) return;
  size_t by = lv.find(" by ", from);
  std::string_view seg =
      std::string_view(lv).substr(from + 5, by == std::string::npos ? 200 : by - from - 5);
  size_t i = 0;
  while (i < seg.size()) {
    while (i < seg.size() && !(std::isalnum(static_cast<unsigned char>(seg[i])))) ++i;
    size_t j = i;
    while (j < seg.size() &&
           (std::isalnum(static_cast<unsigned char>(seg[j])) || seg[j] == '.' || seg[j] == '-'))
      ++j;
    std::string_view host = seg.substr(i, j - i);
    if (host.find('.') != std::string_view::npos) {
      bool ip = std::all_of(host.begin(), host.end(), [](char ch) {
        return std::isdigit(static_cast<unsigned char>(ch)) || ch == '.';
      });
      if (ip && fix && !dotted_quad(host)) {
        // a version number ("8.12.5/8.12.5"): not a host
      } else if (ip) {
        size_t d1 = host.find('.');
        size_t d2 = d1 == std::string_view::npos ? d1 : host.find('.', d1 + 1);
        c.add("rip:", host.substr(0, d2));  // the /16: provider, not the single host
      } else {
        c.add("rh:", last_two_labels(host));
        if (domains) domains->emplace_back(last_two_labels(host));
      }
    }
    i = j + 1;
  }
}

void html_structure(Collector& c, std::string_view html) {
  // Tag and attribute names: spam leans on <font>, colours, tables of images, hidden text.
  size_t i = 0, tags = 0;
  while ((i = html.find('<', i)) != std::string_view::npos && tags < 5000 && !c.full()) {
    ++i;
    if (i < html.size() && html[i] == '!') {
      if (html.substr(i, 3) == "!--") c.add("html:", "comment");
      continue;
    }
    bool closing = i < html.size() && html[i] == '/';
    if (closing) ++i;
    size_t j = i;
    while (j < html.size() && std::isalnum(static_cast<unsigned char>(html[j])) && j - i < 12) ++j;
    if (j == i) continue;
    ++tags;
    std::string tag = lower_ascii(html.substr(i, j - i));
    if (closing) continue;
    c.add("tag:", tag);
    size_t end = html.find('>', j);
    std::string_view attrs =
        html.substr(j, end == std::string_view::npos ? 300 : std::min<size_t>(end - j, 300));
    std::string la = lower_ascii(attrs);
    for (std::string_view a : {"color", "bgcolor", "size", "face", "width", "height", "style",
                               "align", "border", "href", "src", "alt", "class"}) {
      size_t p = la.find(a);
      if (p != std::string::npos && p + a.size() < la.size() && la[p + a.size()] == '=' &&
          (p == 0 || la[p - 1] == ' '))
        c.add("attr:" + tag + ".", a);
    }
    if (la.find("display:none") != std::string::npos ||
        la.find("display: none") != std::string::npos)
      c.add("html:", "hidden");
    i = j;
  }
  c.add("html:tags:", bucket(tags / 10));
}

// Capitalisation and punctuation: SHOUTED words keep their case ("caps:FREE"), and the share
// of shouted words, exclamation marks and dollar signs, bucketed.
void shape(Collector& c, std::string_view body) {
  size_t words = 0, caps = 0, bangs = 0, dollars = 0;
  size_t i = 0;
  while (i < body.size() && !c.full()) {
    unsigned char ch = static_cast<unsigned char>(body[i]);
    if (ch == '!') ++bangs;
    if (ch == '$') ++dollars;
    if (!std::isalpha(ch)) {
      ++i;
      continue;
    }
    size_t j = i, up = 0;
    while (j < body.size() && std::isalpha(static_cast<unsigned char>(body[j]))) {
      if (std::isupper(static_cast<unsigned char>(body[j]))) ++up;
      ++j;
    }
    ++words;
    if (up == j - i && j - i >= 3) {
      ++caps;
      if (j - i <= 20) c.add("caps:", body.substr(i, j - i));
    }
    i = j;
  }
  if (words >= 20) c.add("capsratio:", bucket(caps * 100 / words / 2));
  c.add("bangs:", bucket(bangs));
  c.add("dollars:", bucket(dollars));
}

// The shape of a machine-made string: digit runs -> "9", lower-case runs -> "a", upper-case
// runs -> "A", other bytes kept, capped at 40 bytes. "<20020828.1A2b@x>" -> "<9.9A9a9@x>":
// the software that made a Message-ID, a MIME boundary or a Date shows in its shape.
std::string shape_of(std::string_view s) {
  std::string out;
  char last = 0;
  for (unsigned char ch : s.substr(0, 80)) {
    char k = std::isdigit(ch) ? '9' : std::islower(ch) ? 'a' : std::isupper(ch) ? 'A' : char(ch);
    if (k == last && (k == '9' || k == 'a' || k == 'A')) continue;
    out += k;
    last = k;
    if (out.size() >= 40) break;
  }
  return out;
}

}  // namespace

std::string fold_case(std::string_view utf8) {
  std::string out;
  out.reserve(utf8.size());
  size_t i = 0;
  while (i < utf8.size()) {
    size_t start = i;
    char32_t cp = next_cp(utf8, i);
    if (cp == 0xFFFD && i - start == 1 && static_cast<unsigned char>(utf8[start]) >= 0x80)
      out += utf8[start];  // keep invalid bytes as they were
    else
      append_cp(out, lower_cp(cp));
  }
  return out;
}

uint64_t token_hash(std::string_view token) { return finish_hash(fnv(kFnvOffset, token)); }

bool header_token(std::string_view token) {
  // Body words carry no namespace; the body's other namespaces are listed here: URLs, HTML,
  // shape, attachments and the MIME structure, with the top-level Content-Type ("ct:"). The
  // MIME boundary's shape ("bs:", a fingerprint of the sending software) counts as a header
  // token. The combiner's coefficients were fitted with exactly this split.
  static constexpr std::string_view kBody[] = {
      "url:", "uh:", "up:", "ux:", "urls:", "att:", "an:", "html:", "pt:", "cs:",
      "cte:", "mp:", "mime:", "parts:", "defect:", "num:", "caps:", "dollars:", "bangs:",
      "tag:", "attr:", "body:", "capsratio:", "skip:", "ct:"};
  if (token.find(':') == std::string_view::npos) return false;
  if (token.substr(0, 3) == "osb") return false;  // word bigrams ("osb1:a b"; osb = true)
  for (std::string_view pre : kBody)
    if (token.substr(0, pre.size()) == pre) return false;
  return true;
}

std::vector<std::string> tokenize(const mime::Parsed& msg, const TokenizerOptions& opt) {
  std::vector<std::string> out;
  out.reserve(512);
  Collector c(opt, out);

  if (opt.header_tokens && !msg.parts.empty()) {
    size_t rcpts = 0;
    bool have_date = false, have_mid = false;
    std::string from_domain, reply_domain, mid_domain, prev_name = "^";
    std::vector<std::string> rcvd_domains;
    size_t hops = 0;
    for (const auto& h : msg.headers()) {
      std::string name = lower_ascii(h.name);
      if (name.empty() || is_trace_header(name)) continue;
      c.add("hn:", name);
      if (opt.fingerprints) {
        // Header order: each header's name after the previous one's.
        c.add("ho:", prev_name + ">" + name.substr(0, 30));
        prev_name = name.substr(0, 30);
      }
      const std::string& v = h.value;
      if (name == "subject") {
        // From the header list rather than msg.subject so that repeated Subjects all count.
        c.text(v, "s:");
        size_t up = 0, low = 0;
        for (unsigned char ch : v) {
          if (ch >= 'A' && ch <= 'Z') ++up;
          if (ch >= 'a' && ch <= 'z') ++low;
        }
        if (up >= 4 && low == 0) c.add("s:", "ALLCAPS");
        if (v.empty()) c.add("s:", "empty");
      } else if (name == "from") {
        // The whole address too: its learnt counts are the sender's history (the combiner).
        if (std::string a = address(c, v, "f"); !a.empty()) c.add(kSenderPrefix, a);
        size_t at = v.rfind('@');
        if (at != std::string::npos)
          from_domain =
              lower_ascii(last_two_labels(trim(v.substr(at + 1, v.find('>', at) - at - 1))));
      } else if (name == "reply-to") {
        size_t at = v.rfind('@');
        if (at != std::string::npos)
          reply_domain =
              lower_ascii(last_two_labels(trim(v.substr(at + 1, v.find('>', at) - at - 1))));
      } else if (name == "to" || name == "cc") {
        rcpts += static_cast<size_t>(std::count(v.begin(), v.end(), '@'));
        if (lower_ascii(v).find("undisclosed") != std::string::npos) c.add("to:", "undisclosed");
        if (opt.recipient_tokens) {
          // The first few addresses: a list's or a person's own address is a strong ham cue,
          // a harvested alphabetic run a spam one.
          std::string lv = lower_ascii(std::string_view(v).substr(0, 400));
          size_t at = 0, n = 0;
          while ((at = lv.find('@', at)) != std::string::npos && n++ < 5) {
            size_t b = lv.find_last_of(" <,;:\"", at);
            b = b == std::string::npos ? 0 : b + 1;
            size_t e = lv.find_first_of(" >,;\"", at);
            std::string_view local = std::string_view(lv).substr(b, at - b);
            std::string_view dom = std::string_view(lv).substr(
                at + 1, e == std::string::npos ? std::string::npos : e - at - 1);
            c.add("tod:", dom);
            c.add("toa:", std::string(local.substr(0, 20)) + "@" + std::string(dom));
            ++at;
          }
        }
      } else if (name == "received") {
        received(c, h.raw_value, opt.received_fix, opt.consistency ? &rcvd_domains : nullptr);
        ++hops;
        if (opt.fingerprints) {
          std::string lv = lower_ascii(h.raw_value.substr(0, 400));
          size_t w = lv.find(" with ");
          if (w != std::string::npos) {
            size_t e = lv.find_first_of(" ;(", w + 6);
            c.add("rw:",
                  lv.substr(w + 6, e == std::string::npos ? 20 : std::min<size_t>(e - w - 6, 20)));
          }
        }
        if (opt.all_headers) c.text(std::string_view(h.raw_value).substr(0, 1000), "rcvd:");
      } else if (name == "x-mailer" || name == "user-agent") {
        c.text(v, "xm:");
      } else if (name == "message-id") {
        have_mid = true;
        size_t at = v.rfind('@');
        if (opt.fingerprints) c.add("mids:", shape_of(trim(v.substr(0, at))));
        if (at != std::string::npos)
          mid_domain =
              lower_ascii(last_two_labels(trim(v.substr(at + 1, v.find('>', at) - at - 1))));
        if (at == std::string::npos)
          c.add("mid:", "noat");
        else
          c.add("mid:",
                lower_ascii(last_two_labels(trim(v.substr(at + 1, v.find('>', at) - at - 1)))));
      } else if (name == "date") {
        have_date = true;
        if (opt.fingerprints) c.add("ds:", shape_of(trim(v)));
        size_t sp = v.find_last_of(' ');
        if (sp != std::string::npos) c.add("tz:", v.substr(sp + 1, 6));
      } else if (name == "list-id" || name == "organization" || name == "precedence") {
        c.text(v, name.substr(0, 3) + ":");
      } else if (name == "content-type") {
        size_t semi = v.find(';');
        c.add("ct:", lower_ascii(trim(v.substr(0, semi))));
      } else if (opt.all_headers && name != "to" && name != "cc") {
        // Every other header's words, under the header's name: mailers, list managers and
        // bulk senders each leave their own vocabulary there.
        c.text(std::string_view(v).substr(0, 1000), "h:" + name.substr(0, 24) + ":");
      }
    }
    c.add("rcpt:", bucket(rcpts));
    if (opt.fingerprints) c.add("hops:", bucket(hops));
    if (opt.consistency && !from_domain.empty()) {
      // Mail from a domain's own servers names them in Received and Message-ID; forged
      // senders (free-mail addresses on spam) do not.
      bool in_rcvd = std::find(rcvd_domains.begin(), rcvd_domains.end(), from_domain) !=
                     rcvd_domains.end();
      c.add("cons:rcvd:", in_rcvd ? "from" : "other");
      c.add("cons:mid:", mid_domain.empty()          ? "none"
                         : mid_domain == from_domain ? "from"
                                                     : "other");
      if (in_rcvd) c.add("cons:fd:", from_domain);
    }
    if (!have_date) c.add("date:", "none");
    if (!have_mid) c.add("mid:", "none");
    if (!reply_domain.empty() && reply_domain != from_domain) c.add("rt:", "diff");
  }

  // MIME structure: part types, charsets and encodings.
  bool have_plain = false, have_html = false;
  for (const auto& p : msg.parts) {
    if (p.multipart) {
      c.add("mp:", p.content_type);
      if (opt.fingerprints && !p.boundary.empty()) c.add("bs:", shape_of(p.boundary));
      continue;
    }
    c.add("pt:", p.content_type);
    if (!p.charset.empty()) c.add("cs:", p.charset);
    if (!p.transfer_encoding.empty()) c.add("cte:", p.transfer_encoding);
    if (p.content_type == "text/plain") have_plain = true;
    if (p.content_type == "text/html") have_html = true;
  }
  c.add("parts:", bucket(msg.leaf_count));
  if (have_html && !have_plain) c.add("mime:", "htmlonly");
  for (const auto& d : msg.defects)
    c.add("defect:", d.substr(0, d.find(' ') == std::string::npos ? d.size() : d.find(' ')));

  for (const auto& u : msg.urls) {
    if (c.full()) break;
    c.add("url:", u.registered_domain);
    if (u.is_ip)
      c.add("url:", "ip");
    else if (u.host != u.registered_domain)
      c.add("uh:", u.host);
  }
  c.add("urls:", bucket(msg.urls.size()));
  if (opt.url_paths) {
    size_t n = 0;
    for (const auto& u : msg.urls) {
      if (c.full() || ++n > 50) break;
      std::string_view url = u.url;
      size_t scheme = url.find("://");
      size_t start = scheme == std::string_view::npos ? 0 : scheme + 3;
      size_t slash = url.find('/', start);
      if (slash == std::string_view::npos) continue;
      std::string path = lower_ascii(url.substr(slash + 1, 200));
      // Path segments and query words: "remove.cgi", "?id=", tracking ids collapse to num:N.
      c.text(path, "up:");
      size_t q = path.find('?');
      std::string_view p = std::string_view(path).substr(0, q);
      size_t dot = p.rfind('.');
      if (dot != std::string_view::npos && p.size() - dot <= 6 && p.find('/', dot) == p.npos)
        c.add("ux:", p.substr(dot + 1));
      if (q != std::string::npos) c.add("ux:", "query");
    }
  }

  for (const auto& a : msg.attachments) {
    std::string fname = fold_case(a.filename);
    size_t dot = fname.rfind('.');
    if (dot != std::string::npos && fname.size() - dot <= 6)
      c.add("att:ext:", fname.substr(dot + 1));
    c.add("att:type:", a.sniffed_type.empty() ? a.declared_type : a.sniffed_type);
    if (a.image) c.add("att:", "image");
    c.text(fname, "an:");
  }

  if (opt.html_tokens && !msg.html.empty()) {
    html_structure(c, std::string_view(msg.html).substr(0, opt.max_body_bytes));
    // Little visible text for a lot of HTML: image spam.
    size_t ratio = msg.text.size() * 10 / (msg.html.size() + 1);
    c.add("html:textratio:", std::to_string(std::min<size_t>(ratio, 10)));
  }

  if (opt.body_tokens) {
    std::string_view body = std::string_view(msg.text).substr(0, opt.max_body_bytes);
    if (opt.osb) {
      std::vector<std::string> words;
      c.text(body, "", &words);
      // Orthogonal sparse bigrams: each word paired with each of the next few, the gap kept.
      for (size_t i = 0; i < words.size() && !c.full(); ++i)
        for (size_t k = 1; k <= opt.osb_window && i + k < words.size(); ++k)
          c.add("osb" + std::to_string(k) + ":" + words[i] + " " + words[i + k]);
    } else {
      c.text(body, "");
    }
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) c.add("body:", "empty");
    if (opt.shape_tokens) shape(c, body);
  }
  return out;
}

std::vector<uint32_t> byte_grams(std::string_view raw, size_t max_bytes) {
  // The bytes the grams are taken from: CRs dropped (SMTP's CRLF and a Maildir's LF give
  // the same grams), the header fields tokenize never learns left out, at most max_bytes.
  std::string s;
  s.reserve(std::min(raw.size(), max_bytes));
  size_t i = 0;
  bool skipping = false;
  while (i < raw.size() && s.size() < max_bytes) {
    size_t eol = raw.find('\n', i);
    size_t end = eol == std::string_view::npos ? raw.size() : eol + 1;
    std::string_view line = raw.substr(i, end - i);
    i = end;
    std::string_view bare = line.substr(0, line.find_first_of("\r\n"));
    if (bare.empty()) {  // the blank line: the body follows
      s += '\n';
      break;
    }
    if (line[0] == ' ' || line[0] == '\t') {
      if (skipping) continue;
    } else {
      size_t colon = bare.find(':');
      std::string_view name = bare.substr(0, colon == std::string_view::npos ? 0 : colon);
      while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
      skipping = !name.empty() && is_trace_header(lower_ascii(name));
      if (skipping) continue;
    }
    for (char c : line)
      if (c != '\r') s += c;
  }
  // The body, in runs between CRs.
  while (i < raw.size() && s.size() < max_bytes) {
    const size_t cr = std::min(raw.find('\r', i), raw.size());
    const size_t stop = i + std::min(cr - i, max_bytes - s.size());  // never past raw
    s.append(raw.substr(i, stop - i));
    i = stop == cr ? stop + 1 : stop;
  }
  if (s.size() > max_bytes) s.resize(max_bytes);
  std::vector<uint32_t> out;
  if (s.size() < kGramBytes) return out;
  const size_t positions = s.size() - kGramBytes + 1;
  out.resize(positions);
  // Distinct through a bitmap of every gram value, without a branch on whether a gram is new
  // (half are, at random: a branch mispredicted on every other gram), cleared after use.
  thread_local std::vector<uint64_t> seen(size_t{1} << (kGramBits - 6));
  size_t n = 0;
  for (size_t j = 0; j < positions; ++j) {
    uint32_t x;
    std::memcpy(&x, s.data() + j, 4);
    // murmur3's finaliser: every input bit moves every output bit; the top kGramBits kept.
    x ^= x >> 16;
    x *= 0x85ebca6bu;
    x ^= x >> 13;
    x *= 0xc2b2ae35u;
    x ^= x >> 16;
    const uint32_t g = x >> (32 - kGramBits);
    uint64_t& word = seen[g >> 6];
    const uint64_t bit = uint64_t{1} << (g & 63);
    out[n] = g;
    n += (word & bit) == 0;
    word |= bit;
  }
  out.resize(n);
  for (uint32_t g : out) seen[g >> 6] = 0;
  return out;
}

}  // namespace digue::bayes
