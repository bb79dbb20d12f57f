// IP addresses and CIDR ranges (IPv4 and IPv6), for IP lists and RBL/SPF queries, and the
// ranges no Internet host can reach (for MX hosts that point nowhere).
// Contract: parsing never throws; a malformed text gives nullopt.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace digue::net {

struct Ip {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};  // v4 uses the first 4
  static std::optional<Ip> parse(std::string_view text);
  std::string str() const;
  // Reverse form for DNSBL/PTR: "4.3.2.1" or the 32 nibbles of IPv6, without a suffix.
  std::string reversed() const;
  bool operator==(const Ip&) const = default;
};

struct Cidr {
  Ip base;
  int prefix = 0;
  // "1.2.3.0/24", "2001:db8::/32", or a bare address (a /32 or /128).
  static std::optional<Cidr> parse(std::string_view text);
  bool contains(const Ip& ip) const;
  std::string str() const;
};

// The client a per-client limit counts: an IPv4 address itself, an IPv6 address's /64
// ("2001:db8:1:2::/64"): one site, even one host, usually holds a whole /64, so counting
// IPv6 per address would be no limit at all.
std::string client_key(const Ip& ip);

// Where an address can be reached from. Every range below except Public is one no host on the
// Internet can send to (RFC 6890 "not globally reachable"):
//   Private      10/8, 172.16/12, 192.168/16 (RFC 1918), fc00::/7 (IPv6 unique local)
//   Shared       100.64/10 (RFC 6598, carrier-grade NAT)
//   Loopback     127/8, ::1
//   LinkLocal    169.254/16, fe80::/10
//   Unspecified  0/8 ("this network"), ::
//   Multicast    224/4, ff00::/8
//   Reserved     240/4 (with 255.255.255.255), ::/96 (deprecated IPv4-compatible)
// The documentation ranges (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32) are
// Public here: tests and examples stand them in for public addresses.
enum class Scope { Public, Private, Shared, Loopback, LinkLocal, Unspecified, Multicast, Reserved };
Scope scope_of(const Ip& ip);
// "public", "private", "shared", "loopback", "link-local", "unspecified", "multicast",
// "reserved".
const char* to_string(Scope s);

}  // namespace digue::net
