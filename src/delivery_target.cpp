// Target parsing, dot-stuffing and path sanitising; see include/digue/delivery.hpp.
#include <algorithm>
#include <cctype>

#include "digue/delivery.hpp"
#include "digue/net.hpp"

namespace digue::delivery {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  return true;
}

std::optional<uint16_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + unsigned(c - '0');
  }
  if (v == 0 || v > 65535) return std::nullopt;
  return static_cast<uint16_t>(v);
}

bool valid_host_name(std::string_view h) {
  if (h.empty() || h.size() > 253 || h.front() == '.' || h.front() == '-') return false;
  for (char c : h) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_')
      return false;
  }
  return true;
}

// "host", "host:port", "[v6]", "[v6]:port", "v6" -> host (lower-cased, no brackets), port.
bool parse_host_port(std::string_view s, uint16_t def_port, std::string& host, uint16_t& port) {
  port = def_port;
  if (s.empty()) return false;
  if (s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos) return false;
    auto inner = s.substr(1, close - 1);
    auto ip = net::Ip::parse(inner);
    if (!ip) return false;
    host = std::string(inner);
    auto rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      auto p = parse_port(rest.substr(1));
      if (!p) return false;
      port = *p;
    }
  } else if (std::count(s.begin(), s.end(), ':') > 1) {
    if (!net::Ip::parse(s)) return false;  // a bare IPv6 literal, no port possible
    host = std::string(s);
  } else {
    auto colon = s.find(':');
    auto h = s.substr(0, colon);
    if (colon != std::string_view::npos) {
      auto p = parse_port(s.substr(colon + 1));
      if (!p) return false;
      port = *p;
    }
    if (!valid_host_name(h)) return false;
    host = std::string(h);
  }
  for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return true;
}

}  // namespace

std::optional<Target> Target::parse(std::string_view spec, const std::string& maildir_root) {
  spec = trim(spec);
  Target t;
  // "maildir" alone or "maildir:PATH"; anything else is a host ("maildir1.corp"), and a host
  // named just "maildir" is written "smtp:maildir".
  if (starts_with_ci(spec, "maildir") && (spec.size() == 7 || spec[7] == ':')) {
    auto rest = spec.substr(7);
    t.kind = Kind::Maildir;
    if (rest.empty()) {
      t.path = maildir_root;
    } else {
      t.path = std::string(rest.substr(1));
    }
    while (t.path.size() > 1 && t.path.back() == '/') t.path.pop_back();
    if (t.path.empty()) return std::nullopt;
    return t;
  }
  uint16_t def_port = 25;
  if (starts_with_ci(spec, "lmtp:")) {
    t.kind = Kind::Lmtp;
    def_port = 24;  // IANA's LMTP port; a real LMTP server is rarely there, name it
    spec.remove_prefix(5);
  } else if (starts_with_ci(spec, "smtp:")) {
    spec.remove_prefix(5);
  }
  if (!parse_host_port(spec, def_port, t.host, t.port)) return std::nullopt;
  return t;
}

std::optional<TlsPolicy> parse_tls_policy(std::string_view name) {
  for (auto p : {TlsPolicy::None, TlsPolicy::May, TlsPolicy::Encrypt, TlsPolicy::Verify})
    if (name == to_string(p)) return p;
  return std::nullopt;
}

Options with_tls_policy(Options o, TlsPolicy p) {
  switch (p) {
    case TlsPolicy::Default: break;
    case TlsPolicy::None: o.starttls = false, o.tls_required = false, o.tls_verify = false; break;
    case TlsPolicy::May: o.starttls = true, o.tls_required = false, o.tls_verify = false; break;
    case TlsPolicy::Encrypt: o.starttls = true, o.tls_required = true, o.tls_verify = false; break;
    case TlsPolicy::Verify: o.starttls = true, o.tls_required = true, o.tls_verify = true; break;
  }
  return o;
}

const char* to_string(TlsPolicy p) {
  switch (p) {
    case TlsPolicy::Default: return "default";
    case TlsPolicy::None: return "none";
    case TlsPolicy::May: return "may";
    case TlsPolicy::Encrypt: return "encrypt";
    case TlsPolicy::Verify: return "verify";
  }
  return "default";
}

std::string Target::key() const {
  switch (kind) {
    case Kind::Maildir:
      return "maildir:" + path;
    case Kind::Lmtp:
    case Kind::Smtp: {
      std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
      std::string key =
          std::string(kind == Kind::Lmtp ? "lmtp:" : "smtp:") + h + ":" + std::to_string(port);
      if (tls != TlsPolicy::Default) key += std::string("/tls=") + to_string(tls);
      return key;
    }
  }
  return {};
}

std::string dot_stuff(std::string_view data) {
  std::string out;
  out.reserve(data.size() + data.size() / 64 + 3);
  bool line_start = true;
  for (std::size_t i = 0; i < data.size(); ++i) {
    char c = data[i];
    if (line_start && c == '.') out += '.';
    line_start = false;
    if (c == '\r' && (i + 1 == data.size() || data[i + 1] != '\n')) {
      // A bare CR: a downstream may take it for a line end (SMTP smuggling), see DataDecoder.
      out += ' ';
      continue;
    }
    if (c == '\n') {
      if (out.empty() || out.back() != '\r') out += '\r';
      out += '\n';
      line_start = true;
      continue;
    }
    out += c;
  }
  if (!line_start) out += "\r\n";
  return out;
}

std::string sanitize_path_component(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"') continue;  // quoted local parts: the quotes are syntax, not name
    if (c == '/' || c == '\\' || u < 0x20 || u == 0x7f) {
      out += '_';
    } else {
      out += static_cast<char>(std::tolower(u));
    }
  }
  if (out.empty()) return "_";
  if (out.front() == '.') out.front() = '_';  // also rules out "." and ".."
  return out;
}

}  // namespace digue::delivery
