#include <catch2/catch.hpp>

#include "digue/net.hpp"

using digue::net::Cidr;
using digue::net::Ip;

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
