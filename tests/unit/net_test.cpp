#include <catch2/catch.hpp>

#include "digue/net.hpp"

using digue::net::Cidr;
using digue::net::Ip;
using digue::net::client_key;

TEST_CASE("ip parse and reverse", "[net]") {
  auto v4 = Ip::parse("192.0.2.10");
  REQUIRE(v4);
  CHECK(!v4->v6);
  CHECK(v4->reversed() == "10.2.0.192");
  CHECK(Ip::parse("[192.0.2.10]")->str() == "192.0.2.10");
  CHECK(Ip::parse("::ffff:192.0.2.10")->str() == "192.0.2.10");
  auto v6 = Ip::parse("2001:db8::1");
  REQUIRE(v6);
  CHECK(v6->v6);
  CHECK(v6->reversed() ==
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2");
  CHECK(!Ip::parse("300.1.1.1"));
  CHECK(!Ip::parse(""));
  CHECK(!Ip::parse("example.com"));
}

TEST_CASE("cidr contains", "[net]") {
  auto c = Cidr::parse("192.0.2.77/24");
  REQUIRE(c);
  CHECK(c->str() == "192.0.2.0/24");
  CHECK(c->contains(*Ip::parse("192.0.2.1")));
  CHECK(!c->contains(*Ip::parse("192.0.3.1")));
  CHECK(!c->contains(*Ip::parse("2001:db8::1")));
  auto c6 = Cidr::parse("2001:db8::/33");
  REQUIRE(c6);
  CHECK(c6->contains(*Ip::parse("2001:db8:7fff::1")));
  CHECK(!c6->contains(*Ip::parse("2001:db8:8000::1")));
  CHECK(Cidr::parse("10.0.0.1")->prefix == 32);
  CHECK(!Cidr::parse("10.0.0.0/33"));
  CHECK(!Cidr::parse("10.0.0.0/"));
  CHECK(Cidr::parse("0.0.0.0/0")->contains(*Ip::parse("8.8.8.8")));
}

TEST_CASE("address scope: ranges no Internet host can reach", "[net]") {
  using digue::net::Scope;
  auto scope = [](const char* text) {
    auto ip = Ip::parse(text);
    REQUIRE(ip);
    return digue::net::scope_of(*ip);
  };
  CHECK(scope("8.8.8.8") == Scope::Public);
  CHECK(scope("192.0.2.10") == Scope::Public);  // documentation ranges count as public
  CHECK(scope("2001:db8::1") == Scope::Public);
  CHECK(scope("2a00:1450::1") == Scope::Public);
  CHECK(scope("0.0.0.0") == Scope::Unspecified);
  CHECK(scope("0.1.2.3") == Scope::Unspecified);
  CHECK(scope("::") == Scope::Unspecified);
  CHECK(scope("127.0.0.1") == Scope::Loopback);
  CHECK(scope("127.255.255.254") == Scope::Loopback);
  CHECK(scope("::1") == Scope::Loopback);
  CHECK(scope("::ffff:127.0.0.1") == Scope::Loopback);  // mapped: the IPv4 address
  CHECK(scope("10.1.2.3") == Scope::Private);
  CHECK(scope("172.16.0.1") == Scope::Private);
  CHECK(scope("172.31.255.255") == Scope::Private);
  CHECK(scope("172.32.0.1") == Scope::Public);
  CHECK(scope("172.15.255.255") == Scope::Public);
  CHECK(scope("192.168.1.1") == Scope::Private);
  CHECK(scope("fd12:3456::1") == Scope::Private);
  CHECK(scope("100.64.0.1") == Scope::Shared);
  CHECK(scope("100.128.0.1") == Scope::Public);
  CHECK(scope("169.254.1.1") == Scope::LinkLocal);
  CHECK(scope("fe80::1") == Scope::LinkLocal);
  CHECK(scope("224.0.0.1") == Scope::Multicast);
  CHECK(scope("239.255.255.255") == Scope::Multicast);
  CHECK(scope("ff02::1") == Scope::Multicast);
  CHECK(scope("240.0.0.1") == Scope::Reserved);
  CHECK(scope("255.255.255.255") == Scope::Reserved);
  CHECK(scope("::7f00:1") == Scope::Reserved);
  CHECK(std::string(digue::net::to_string(Scope::LinkLocal)) == "link-local");
  CHECK(std::string(digue::net::to_string(Scope::Public)) == "public");
}

TEST_CASE("per-client limits count IPv4 per address and IPv6 per /64", "[net]") {
  auto key = [](const char* text) { return client_key(*Ip::parse(text)); };
  CHECK(key("192.0.2.7") == "192.0.2.7");
  CHECK(key("192.0.2.8") != key("192.0.2.7"));
  CHECK(key("2001:db8:1:2::1") == "2001:db8:1:2::/64");
  CHECK(key("2001:db8:1:2:ffff:ffff:ffff:ffff") == key("2001:db8:1:2::1"));
  CHECK(key("2001:db8:1:3::1") != key("2001:db8:1:2::1"));
  CHECK(key("::1") == "::/64");
}
