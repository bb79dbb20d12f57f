// IP addresses and CIDR ranges (IPv4 and IPv6), for IP lists and RBL/SPF queries.
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

}  // namespace digue::net
