// URLs in text and links, their host and registered domain (Public Suffix List).
// The registered domain comes from libpsl: psl_latest() picks the newest of the system's
// compiled list (/usr/share/publicsuffix/public_suffix_list.dafsa, package publicsuffix) and
// the library's builtin copy. It is loaded once per process, on first use, under a
// function-local static (thread-safe initialisation); look-ups after that only read it.
#include <libpsl.h>

#include <charconv>

#include "digue/net.hpp"
#include "src/mime_internal.hpp"

namespace digue::mime::detail {
namespace {

// Never freed: a worker thread may still look a host up while the process exits.
const psl_ctx_t* suffix_list() {
  static const psl_ctx_t* const psl = psl_latest(nullptr);
  return psl;
}

bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || static_cast<unsigned char>(c) >= 0x80 || c == '%';
}

// Characters that end a URL found in free text.
bool ends_url(char c) {
  return is_space(c) || c == '"' || c == '\'' || c == '<' || c == '>' || c == '`' ||
         c == '{' || c == '}' || c == '|' || c == '^' || static_cast<unsigned char>(c) < 0x20;
}

// "1.2.3.4", or the single-number and hex forms browsers accept ("http://3232235777/").
bool parse_ipv4(std::string_view h, std::string& dotted) {
  uint64_t parts[4];
  int count = 0;
  size_t i = 0;
  while (i <= h.size() && count < 4) {
    size_t dot = h.find('.', i);
    std::string_view p = h.substr(i, dot == std::string_view::npos ? h.size() - i : dot - i);
    if (p.empty() || p.size() > 12) return false;
    uint64_t v = 0;
    int base = 10;
    if (p.size() > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
      base = 16;
      p.remove_prefix(2);
    } else if (p.size() > 1 && p[0] == '0') {
      base = 8;
    }
    auto r = std::from_chars(p.data(), p.data() + p.size(), v, base);
    if (r.ec != std::errc() || r.ptr != p.data() + p.size()) return false;
    parts[count++] = v;
    if (dot == std::string_view::npos) {
      i = h.size() + 1;
      break;
    }
    i = dot + 1;
  }
  if (i <= h.size() || count == 0) return false;  // more than 4 parts, or trailing text
  uint64_t addr = 0;
  for (int k = 0; k < count - 1; ++k) {
    if (parts[k] > 255) return false;
    addr = (addr << 8) | parts[k];
  }
  int rest_bits = 8 * (4 - (count - 1));
  if (parts[count - 1] >= (uint64_t{1} << rest_bits)) return false;
  addr = (addr << rest_bits) | parts[count - 1];
  // A lone small number ("http://42/") is not an address anyone writes.
  if (count == 1 && addr < (1u << 24)) return false;
  dotted = std::to_string((addr >> 24) & 255) + "." + std::to_string((addr >> 16) & 255) + "." +
           std::to_string((addr >> 8) & 255) + "." + std::to_string(addr & 255);
  return true;
}

}  // namespace

bool find_urls(std::string_view text, std::vector<std::string_view>& found, size_t max_found) {
  const size_t n = text.size();
  size_t i = 0;
  // The first "://" at or after i, searched again only once i has passed it: text with many
  // "www." and no "://" must not be rescanned to its end for each.
  size_t colon = text.find("://");
  // Likewise the first 'w' or 'W' at or after i not yet ruled out as the start of "www.":
  // text with many "://" and no 'w' after them must not be rescanned to its end for each.
  size_t w = text.find_first_of("wW");
  while (i < n) {
    // Candidates: "scheme://" for http(s)/ftp, and "www." at a word start.
    if (colon != std::string_view::npos && colon < i) colon = text.find("://", i);
    if (w != std::string_view::npos && w < i) w = text.find_first_of("wW", i);
    size_t www = std::string_view::npos;
    for (; w != std::string_view::npos && w < colon; w = text.find_first_of("wW", w + 1)) {
      if (istarts_with(text.substr(w), "www.") &&
          (w == 0 || !(is_host_char(text[w - 1]) || text[w - 1] == '/' || text[w - 1] == '@'))) {
        www = w;
        break;
      }
    }
    size_t begin;
    if (www != std::string_view::npos && (colon == std::string_view::npos || www < colon)) {
      begin = www;
    } else if (colon != std::string_view::npos) {
      size_t s = colon;
      while (s > i && s + 6 > colon && ((text[s - 1] >= 'a' && text[s - 1] <= 'z') ||
                                        (text[s - 1] >= 'A' && text[s - 1] <= 'Z')))
        --s;
      std::string_view scheme = text.substr(s, colon - s);
      if (!(text::iequals(scheme, "http") || text::iequals(scheme, "https") || text::iequals(scheme, "ftp"))) {
        i = colon + 3;
        continue;
      }
      begin = s;
    } else {
      break;
    }
    size_t e = begin;
    while (e < n && !ends_url(text[e])) ++e;
    // Trailing punctuation belongs to the sentence, not the URL.
    while (e > begin && (text[e - 1] == '.' || text[e - 1] == ',' || text[e - 1] == ')' ||
                         text[e - 1] == ';' || text[e - 1] == ':' || text[e - 1] == '!' ||
                         text[e - 1] == '?' || text[e - 1] == ']'))
      --e;
    if (found.size() >= max_found) return false;
    found.push_back(text.substr(begin, e - begin));
    i = std::max(e, begin + 4);
  }
  return true;
}

bool make_url(std::string_view cand, Url& out) {
  cand = trim(cand);
  std::string scheme;
  std::string_view rest;
  if (auto p = cand.find("://"); p != std::string_view::npos && p <= 10) {
    scheme = text::lower(cand.substr(0, p));
    if (scheme != "http" && scheme != "https" && scheme != "ftp") return false;
    rest = cand.substr(p + 3);
  } else if (cand.starts_with("//")) {
    scheme = "http";
    rest = cand.substr(2);
  } else if (istarts_with(cand, "www.")) {
    scheme = "http";
    rest = cand;
  } else {
    return false;
  }
  // Browsers accept backslashes as slashes; spammers know it.
  size_t host_end = rest.find_first_of("/?#\\");
  std::string_view authority = rest.substr(0, host_end);
  std::string_view tail = host_end == std::string_view::npos ? "" : rest.substr(host_end);
  if (auto at = authority.rfind('@'); at != std::string_view::npos)
    authority = authority.substr(at + 1);
  std::string host;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    host = text::lower(authority.substr(1, close - 1));
    out.is_ip = true;
  } else {
    if (auto colon = authority.find(':'); colon != std::string_view::npos)
      authority = authority.substr(0, colon);
    // Escapes decoded once; a '%' left (bare, or from "%25") is no host character.
    host = text::lower(percent_decode(authority));
    for (char c : host)
      if (!is_host_char(c) || c == '%') return false;
    while (!host.empty() && host.back() == '.') host.pop_back();
    if (host.empty() || host.size() > 253 || host.front() == '.' ||
        host.find("..") != std::string::npos)
      return false;
    std::string dotted;
    if (parse_ipv4(host, dotted)) {
      host = std::move(dotted);
      out.is_ip = true;
    } else {
      out.is_ip = false;
      // A host name needs a dot and a non-numeric top label to be worth looking up.
      size_t dot = host.rfind('.');
      if (dot == std::string::npos || dot + 1 >= host.size()) return false;
      char t = host[dot + 1];
      if (t >= '0' && t <= '9') return false;
    }
  }
  if (host.empty()) return false;
  out.url = scheme + "://" + (out.is_ip && host.find(':') != std::string::npos
                                  ? "[" + host + "]"
                                  : host) +
            std::string(tail.substr(0, std::min<size_t>(tail.size(), 2048)));
  out.registered_domain = out.is_ip ? host : registered_domain(host);
  out.host = std::move(host);
  return !out.registered_domain.empty();
}

}  // namespace digue::mime::detail

namespace digue::mime {

std::string registered_domain(std::string_view host) {
  // Not a host name: empty labels at either end (callers strip a root dot), or a NUL that
  // would cut the C string libpsl reads.
  if (host.empty() || host.front() == '.' || host.back() == '.' ||
      host.find('\0') != std::string_view::npos)
    return {};
  if (net::Ip::parse(host)) return std::string(host);  // an address has no public suffix
  const std::string name(host);
  const psl_ctx_t* psl = detail::suffix_list();
  if (!psl) {
    // No list at all (libpsl built without data, no system file): the last two labels.
    size_t dot = name.rfind('.');
    if (dot == std::string::npos) return {};
    dot = name.rfind('.', dot - 1);
    return dot == std::string::npos ? name : name.substr(dot + 1);
  }
  // Both sections of the list (PSL_TYPE_ANY), and the implicit "*" rule: under a TLD the list
  // does not know, the last two labels. libpsl matches punycode and UTF-8 labels alike.
  const char* rd = psl_registrable_domain(psl, name.c_str());
  return rd ? std::string(rd) : std::string();
}

}  // namespace digue::mime
