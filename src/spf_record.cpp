// SPF record syntax and macro expansion (RFC 7208 4.5, 4.6, 5, 6, 7); see digue/spf.hpp.
// Pure functions over strings: no DNS here, so every rule is unit-tested directly.
#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include "digue/spf.hpp"
#include "digue/text.hpp"

namespace digue::spf {
namespace {

using text::iequals;
using text::lower;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }

// Marks, in the shadow copy of a macro-string, a byte produced by a macro-expand: the
// domain-end rule must tell a literal toplabel from one that a macro produced.
constexpr char kMacroMark = '\x01';
constexpr std::string_view kDelimiters = ".-+,/_=";

struct Scan {
  bool ok = false;
  bool uses_p = false;
  std::string out;     // the expansion (when a context was given)
  std::string shadow;  // literals as written, each macro-expand as one kMacroMark
};

std::string ip_dotted(const net::Ip& ip) {
  if (!ip.v6) return ip.str();
  // RFC 7208 7.3: IPv6 "i" is the 32 nibbles, dot-separated, most significant first; the
  // RFC's own examples use upper-case hex, as does the conformance suite.
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i) out += '.';
    out += kHex[ip.bytes[i] >> 4];
    out += '.';
    out += kHex[ip.bytes[i] & 0xf];
  }
  return out;
}

std::string letter_value(char letter, const MacroContext& ctx) {
  switch (letter) {
    case 's': return ctx.sender;
    case 'l': return ctx.local;
    case 'o': return ctx.sender_domain;
    case 'd': return ctx.domain;
    case 'i': return ip_dotted(ctx.ip);
    case 'p': return ctx.validated.empty() ? "unknown" : ctx.validated;
    case 'v': return ctx.ip.v6 ? "ip6" : "in-addr";
    case 'h': return ctx.helo;
    case 'c': return ctx.ip.str();
    case 'r': return ctx.receiver.empty() ? "unknown" : ctx.receiver;
    case 't': return std::to_string(ctx.timestamp);
  }
  return {};
}

std::string url_escape(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (is_alnum(char(c)) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += char(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

std::string transform(const std::string& value, size_t keep, bool reverse,
                      std::string_view delimiters) {
  std::vector<std::string> parts(1);
  for (char c : value) {
    if (delimiters.find(c) != std::string_view::npos) {
      parts.emplace_back();
    } else {
      parts.back() += c;
    }
  }
  if (reverse) std::reverse(parts.begin(), parts.end());
  size_t first = (keep && keep < parts.size()) ? parts.size() - keep : 0;
  std::string out;
  for (size_t i = first; i < parts.size(); ++i) {
    if (i > first) out += '.';
    out += parts[i];
  }
  return out;
}

// One pass serves validation (ctx null) and expansion, so both apply the same grammar.
Scan scan(std::string_view text, const MacroContext* ctx, bool exp_text) {
  Scan s;
  size_t i = 0, n = text.size();
  while (i < n) {
    char c = text[i];
    if (c == '%') {
      if (i + 1 >= n) return s;
      char d = text[i + 1];
      if (d == '%' || d == '_' || d == '-') {
        s.out += d == '%' ? "%" : d == '_' ? " " : "%20";
        s.shadow += kMacroMark;
        i += 2;
        continue;
      }
      if (d != '{') return s;
      size_t close = text.find('}', i + 2);
      if (close == std::string_view::npos) return s;
      std::string_view body = text.substr(i + 2, close - i - 2);
      if (body.empty()) return s;
      char letter = lower(body[0]);
      std::string_view allowed = exp_text ? "slodipvhcrt" : "slodipvh";
      if (allowed.find(letter) == std::string_view::npos) return s;
      if (letter == 'p') s.uses_p = true;
      size_t j = 1, keep = 0;
      bool has_digits = false;
      while (j < body.size() && is_digit(body[j])) {
        has_digits = true;
        keep = std::min<size_t>(keep * 10 + size_t(body[j] - '0'), 1000);
        ++j;
      }
      if (has_digits && keep == 0) return s;  // RFC 7208 7.3: the DIGIT must be nonzero
      bool reverse = false;
      if (j < body.size() && lower(body[j]) == 'r') {
        reverse = true;
        ++j;
      }
      std::string_view delims = body.substr(j);
      for (char dc : delims)
        if (kDelimiters.find(dc) == std::string_view::npos) return s;
      if (ctx) {
        std::string value = transform(letter_value(letter, *ctx), keep, reverse,
                                      delims.empty() ? std::string_view(".") : delims);
        s.out += is_alpha(body[0]) && body[0] != letter ? url_escape(value) : value;
      }
      s.shadow += kMacroMark;
      i = close + 1;
      continue;
    }
    bool literal = (c >= 0x21 && c <= 0x7e) || (exp_text && c == ' ');
    if (!literal) return s;
    s.out += c;
    s.shadow += c;
    ++i;
  }
  s.ok = true;
  return s;
}

bool is_toplabel(std::string_view t) {
  if (t.empty()) return false;
  bool alpha = false, dash = false;
  for (char c : t) {
    if (is_alpha(c)) alpha = true;
    else if (c == '-') dash = true;
    else if (!is_digit(c)) return false;
  }
  if (!dash) return alpha;
  return is_alnum(t.front()) && is_alnum(t.back());
}

bool parse_cidr(std::string_view digits, int max, int& out) {
  if (digits.empty() || digits.size() > 3) return false;
  if (digits.size() > 1 && digits[0] == '0') return false;  // like ip4-network: no leading 0
  int v = 0;
  for (char c : digits) {
    if (!is_digit(c)) return false;
    v = v * 10 + (c - '0');
  }
  if (v > max) return false;
  out = v;
  return true;
}

// Splits "[:domain-spec][/N][//M]" (a and mx).
bool parse_dual_cidr(std::string_view rest, Mechanism& m, std::string& error) {
  bool has_spec = !rest.empty() && rest[0] == ':';
  std::string_view s = has_spec ? rest.substr(1) : rest;
  size_t end = s.size();
  auto digits_start = [&](size_t e) {
    size_t p = e;
    while (p > 0 && is_digit(s[p - 1])) --p;
    return p;
  };
  size_t p = digits_start(end);
  if (p < end && p >= 2 && s[p - 1] == '/' && s[p - 2] == '/') {
    if (!parse_cidr(s.substr(p, end - p), 128, m.cidr6)) {
      error = "bad ip6-cidr-length in " + m.text;
      return false;
    }
    end = p - 2;
    p = digits_start(end);
  }
  if (p < end && p >= 1 && s[p - 1] == '/') {
    if (!parse_cidr(s.substr(p, end - p), 32, m.cidr4)) {
      error = "bad ip4-cidr-length in " + m.text;
      return false;
    }
    end = p - 1;
  }
  std::string_view spec = s.substr(0, end);
  if (!has_spec) {
    if (!spec.empty()) {
      error = "unexpected text after mechanism: " + m.text;
      return false;
    }
    return true;
  }
  if (!valid_domain_spec(spec)) {
    error = "bad domain-spec in " + m.text;
    return false;
  }
  m.domain_spec = std::string(spec);
  return true;
}

bool parse_network(std::string_view rest, Mechanism& m, std::string& error) {
  bool v6 = m.kind == Mech::Ip6;
  if (rest.empty() || rest[0] != ':') {
    error = m.text + ": missing network";
    return false;
  }
  rest.remove_prefix(1);
  size_t slash = rest.find('/');
  std::string addr(rest.substr(0, slash));
  m.network.v6 = v6;
  if (inet_pton(v6 ? AF_INET6 : AF_INET, addr.c_str(), m.network.bytes.data()) != 1) {
    error = "bad network in " + m.text;
    return false;
  }
  if (slash != std::string_view::npos &&
      !parse_cidr(rest.substr(slash + 1), v6 ? 128 : 32, v6 ? m.cidr6 : m.cidr4)) {
    error = "bad cidr-length in " + m.text;
    return false;
  }
  return true;
}

bool parse_mechanism(std::string_view term, Mechanism& m, std::string& error) {
  m.text = std::string(term);
  if (!term.empty() && std::string_view("+-~?").find(term[0]) != std::string_view::npos) {
    m.qualifier = term[0];
    term.remove_prefix(1);
  }
  size_t name_end = term.find_first_of(":/");
  std::string name = lower(term.substr(0, name_end));
  std::string_view rest = name_end == std::string_view::npos ? "" : term.substr(name_end);
  static const std::pair<std::string_view, Mech> kNames[] = {
      {"all", Mech::All},  {"include", Mech::Include}, {"a", Mech::A},
      {"mx", Mech::Mx},    {"ptr", Mech::Ptr},         {"ip4", Mech::Ip4},
      {"ip6", Mech::Ip6},  {"exists", Mech::Exists}};
  auto found = std::find_if(std::begin(kNames), std::end(kNames),
                            [&](const auto& kv) { return kv.first == name; });
  if (found == std::end(kNames)) {
    error = "unknown mechanism: " + m.text;
    return false;
  }
  m.kind = found->second;
  switch (m.kind) {
    case Mech::All:
      if (!rest.empty()) {
        error = "\"all\" takes no argument: " + m.text;
        return false;
      }
      return true;
    case Mech::Include:
    case Mech::Exists:
    case Mech::Ptr: {
      if (rest.empty() && m.kind == Mech::Ptr) return true;
      if (rest.empty() || rest[0] != ':' || !valid_domain_spec(rest.substr(1))) {
        error = "bad or missing domain-spec in " + m.text;
        return false;
      }
      m.domain_spec = std::string(rest.substr(1));
      return true;
    }
    case Mech::A:
    case Mech::Mx:
      return parse_dual_cidr(rest, m, error);
    case Mech::Ip4:
    case Mech::Ip6:
      return parse_network(rest, m, error);
  }
  return false;
}

}  // namespace

bool valid_macro_string(std::string_view text, bool exp_text) {
  return scan(text, nullptr, exp_text).ok;
}

bool valid_domain_spec(std::string_view text) {
  Scan s = scan(text, nullptr, false);
  if (!s.ok || s.shadow.empty()) return false;
  std::string_view sh = s.shadow;
  if (sh.back() == kMacroMark) return true;  // domain-end = macro-expand
  if (sh.back() == '.') sh.remove_suffix(1);
  size_t dot = sh.rfind('.');
  if (dot == std::string_view::npos) return false;  // a bare toplabel is not enough
  return is_toplabel(sh.substr(dot + 1));
}

bool uses_p_macro(std::string_view text) {
  Scan s = scan(text, nullptr, true);
  return s.uses_p;
}

std::optional<std::string> expand(std::string_view text, const MacroContext& ctx,
                                  bool exp_text) {
  Scan s = scan(text, &ctx, exp_text);
  if (!s.ok) return std::nullopt;
  return std::move(s.out);
}

std::string target_name(std::string_view expanded) {
  if (!expanded.empty() && expanded.back() == '.') expanded.remove_suffix(1);
  // RFC 7208 7.3: left-hand labels are dropped until the name fits 253 octets, counted as
  // queried: a UTF-8 name is converted to A-labels first (they are longer).
  std::string ace = dns::a_labels(expanded);
  expanded = ace;
  while (expanded.size() > 253) {
    size_t dot = expanded.find('.');
    if (dot == std::string_view::npos) return {};
    expanded.remove_prefix(dot + 1);
  }
  return dns::normalize_name(expanded);
}

bool is_spf_record(std::string_view txt) {
  return txt.size() >= 6 && text::iequals(txt.substr(0, 6), "v=spf1") &&
         (txt.size() == 6 || txt[6] == ' ');
}

std::optional<Record> parse_record(std::string_view txt, std::string& error) {
  if (!is_spf_record(txt)) {
    error = "not an SPF record";
    return std::nullopt;
  }
  Record rec;
  size_t pos = 6;
  while (pos < txt.size()) {
    if (txt[pos] == ' ') {  // terms are separated by one or more spaces, nothing else
      ++pos;
      continue;
    }
    size_t end = txt.find(' ', pos);
    if (end == std::string_view::npos) end = txt.size();
    std::string_view term = txt.substr(pos, end - pos);
    pos = end;
    // A modifier is name "=" ...; the name cannot hold ':' or '/', so "a:x=y" stays a
    // mechanism.
    size_t eq = term.find('=');
    bool modifier = eq != std::string_view::npos && eq > 0 && is_alpha(term[0]) &&
                    std::all_of(term.begin(), term.begin() + eq, [](char c) {
                      return is_alnum(c) || c == '-' || c == '_' || c == '.';
                    });
    if (!modifier) {
      Mechanism m;
      if (!parse_mechanism(term, m, error)) return std::nullopt;
      rec.mechanisms.push_back(std::move(m));
      continue;
    }
    std::string name = lower(term.substr(0, eq));
    std::string_view value = term.substr(eq + 1);
    if (name == "redirect" || name == "exp") {
      auto& slot = name == "redirect" ? rec.redirect : rec.exp;
      if (slot) {
        error = name + "= appears twice";
        return std::nullopt;
      }
      if (!valid_domain_spec(value)) {
        error = "bad domain-spec in " + std::string(term);
        return std::nullopt;
      }
      slot = std::string(value);
    } else if (!valid_macro_string(value, true)) {
      // Unknown modifiers are ignored, but their value must still be a macro-string.
      error = "bad macro-string in " + std::string(term);
      return std::nullopt;
    }
  }
  return rec;
}

}  // namespace digue::spf
