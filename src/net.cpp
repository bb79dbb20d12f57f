// IP and CIDR parsing and matching, address scopes; see include/digue/net.hpp.
#include "digue/net.hpp"

#include <arpa/inet.h>

#include <algorithm>

#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

namespace digue::net {

std::optional<Ip> Ip::parse(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']')
    text = text.substr(1, text.size() - 2);
  if (text.size() > 5 && (text.substr(0, 5) == "IPv6:" || text.substr(0, 5) == "ipv6:"))
    text = text.substr(5);
  if (text.empty() || text.size() > 64) return std::nullopt;
  char buf[65];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = 0;
  Ip ip;
  if (inet_pton(AF_INET, buf, ip.bytes.data()) == 1) return ip;
  if (inet_pton(AF_INET6, buf, ip.bytes.data()) == 1) {
    ip.v6 = true;
    // An IPv4-mapped IPv6 address is the IPv4 host for every list and lookup.
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(ip.bytes.data(), kMapped, 12) == 0) {
      Ip v4;
      std::memcpy(v4.bytes.data(), ip.bytes.data() + 12, 4);
      return v4;
    }
    return ip;
  }
  return std::nullopt;
}

std::string Ip::str() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf);
  return buf;
}

std::string Ip::reversed() const {
  std::string out;
  if (!v6) {
    for (int i = 3; i >= 0; --i) {
      out += std::to_string(bytes[i]);
      if (i) out += '.';
    }
    return out;
  }
  static const char kHex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    out += kHex[bytes[i] & 0xf];
    out += '.';
    out += kHex[bytes[i] >> 4];
    if (i) out += '.';
  }
  return out;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  Cidr c;
  auto slash = text.find('/');
  auto ip = Ip::parse(text.substr(0, slash));
  if (!ip) return std::nullopt;
  c.base = *ip;
  int max = ip->v6 ? 128 : 32;
  if (slash == std::string_view::npos) {
    c.prefix = max;
  } else {
    auto p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3) return std::nullopt;
    int v = 0;
    for (char ch : p) {
      if (ch < '0' || ch > '9') return std::nullopt;
      v = v * 10 + (ch - '0');
    }
    if (v > max) return std::nullopt;
    c.prefix = v;
  }
  // Normalise the base so that str() prints the network.
  for (int bit = c.prefix; bit < max; ++bit) c.base.bytes[bit / 8] &= ~(0x80 >> (bit % 8));
  return c;
}

bool Cidr::contains(const Ip& ip) const {
  if (ip.v6 != base.v6) return false;
  int full = prefix / 8, rest = prefix % 8;
  if (std::memcmp(ip.bytes.data(), base.bytes.data(), full) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (ip.bytes[full] & mask) == (base.bytes[full] & mask);
}

std::string Cidr::str() const { return base.str() + "/" + std::to_string(prefix); }

std::string client_key(const Ip& ip) {
  if (!ip.v6) return ip.str();
  Cidr net{ip, 64};
  std::fill(net.base.bytes.begin() + 8, net.base.bytes.end(), uint8_t{0});
  return net.str();
}

Scope scope_of(const Ip& ip) {
  struct Range {
    Cidr cidr;
    Scope scope;
  };
  // Most specific first: ::/128 and ::1/128 lie inside ::/96.
  static const std::vector<Range> kRanges = [] {
    const std::pair<const char*, Scope> table[] = {
        {"0.0.0.0/8", Scope::Unspecified},    {"10.0.0.0/8", Scope::Private},
        {"100.64.0.0/10", Scope::Shared},     {"127.0.0.0/8", Scope::Loopback},
        {"169.254.0.0/16", Scope::LinkLocal}, {"172.16.0.0/12", Scope::Private},
        {"192.168.0.0/16", Scope::Private},   {"224.0.0.0/4", Scope::Multicast},
        {"240.0.0.0/4", Scope::Reserved},     {"::/128", Scope::Unspecified},
        {"::1/128", Scope::Loopback},         {"::/96", Scope::Reserved},
        {"fc00::/7", Scope::Private},         {"fe80::/10", Scope::LinkLocal},
        {"ff00::/8", Scope::Multicast}};
    std::vector<Range> out;
    for (const auto& [text, scope] : table) out.push_back({*Cidr::parse(text), scope});
    return out;
  }();
  for (const Range& r : kRanges)
    if (r.cidr.contains(ip)) return r.scope;
  return Scope::Public;
}

const char* to_string(Scope s) {
  switch (s) {
    case Scope::Public: return "public";
    case Scope::Private: return "private";
    case Scope::Shared: return "shared";
    case Scope::Loopback: return "loopback";
    case Scope::LinkLocal: return "link-local";
    case Scope::Unspecified: return "unspecified";
    case Scope::Multicast: return "multicast";
    case Scope::Reserved: return "reserved";
  }
  return "?";
}

}  // namespace digue::net
