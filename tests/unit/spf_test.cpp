// SPF unit tests: macro expansion and record syntax (pure functions), and check_host over an
// in-memory resolver for the evaluation rules (limits, include/redirect, exp, errors).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <map>

#include "digue/spf.hpp"
#include "tests/filters/fake_resolver.hpp"

namespace asio = boost::asio;
using namespace digue;
using spf::Result;

namespace {

using test::FakeResolver;

spf::SpfResult run_check(FakeResolver& r, const std::string& ip, const std::string& from,
                         const std::string& helo = "mail.example.org") {
  asio::io_context io;
  auto addr = *net::Ip::parse(ip);
  auto fut = asio::co_spawn(io, spf::check_sender(r, addr, from, helo), asio::use_future);
  io.run();
  return fut.get();
}

spf::MacroContext rfc_context(const std::string& ip) {
  // RFC 7208 7.4's example context.
  spf::MacroContext c;
  c.sender = "strong-bad@email.example.com";
  c.local = "strong-bad";
  c.sender_domain = "email.example.com";
  c.domain = "email.example.com";
  c.ip = *net::Ip::parse(ip);
  c.helo = "mx.example.org";
  c.receiver = "mx.digue.test";
  c.timestamp = 1700000000;
  return c;
}

std::string ex(std::string_view text, const spf::MacroContext& c, bool exp_text = false) {
  auto r = spf::expand(text, c, exp_text);
  return r ? *r : std::string("<error>");
}

}  // namespace

TEST_CASE("macro expansion follows RFC 7208 7.4's examples", "[spf]") {
  auto c = rfc_context("192.0.2.3");
  CHECK(ex("%{s}", c) == "strong-bad@email.example.com");
  CHECK(ex("%{o}", c) == "email.example.com");
  CHECK(ex("%{d4}", c) == "email.example.com");
  CHECK(ex("%{d2}", c) == "example.com");
  CHECK(ex("%{d1}", c) == "com");
  CHECK(ex("%{dr}", c) == "com.example.email");
  CHECK(ex("%{d2r}", c) == "example.email");
  CHECK(ex("%{l}", c) == "strong-bad");
  CHECK(ex("%{l-}", c) == "strong.bad");
  CHECK(ex("%{lr}", c) == "strong-bad");
  CHECK(ex("%{lr-}", c) == "bad.strong");
  CHECK(ex("%{l1r-}", c) == "strong");
  CHECK(ex("%{ir}.%{v}._spf.%{d2}", c) == "3.2.0.192.in-addr._spf.example.com");
  CHECK(ex("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", c) ==
        "bad.strong.lp.3.2.0.192.in-addr._spf.example.com");
  CHECK(ex("%{d2}.trusted-domains.example.net", c) == "example.com.trusted-domains.example.net");
  auto c6 = rfc_context("2001:db8::cb01");
  CHECK(ex("%{ir}.%{v}._spf.%{d2}", c6) ==
        "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com");
}

TEST_CASE("macro escapes, upper-case URL encoding and exp-only letters", "[spf]") {
  auto c = rfc_context("192.0.2.3");
  CHECK(ex("a%%b%_c%-d", c) == "a%b c%20d");
  c.local = "~jack&jill=up-a_b3.c";
  CHECK(ex("%{L}", c) == "~jack%26jill%3Dup-a_b3.c");
  CHECK(ex("%{l}", c) == "~jack&jill=up-a_b3.c");
  CHECK(ex("%{c}", c) == "<error>");  // c, r, t only in explanations
  CHECK(ex("%{c} via %{r} at %{t}", c, true) == "192.0.2.3 via mx.digue.test at 1700000000");
  CHECK(ex("%{x}", c) == "<error>");
  CHECK(ex("%{d0}", c) == "<error>");  // the digit must be nonzero
  CHECK(ex("%{d", c) == "<error>");
  CHECK(ex("100%", c) == "<error>");
  CHECK(ex("%a", c) == "<error>");
  CHECK(ex("a b", c) == "<error>");  // spaces only in explanations
  CHECK(ex("a b", c, true) == "a b");
  CHECK(spf::uses_p_macro("%{p}.x.example"));
  CHECK_FALSE(spf::uses_p_macro("%%{p}.x.example"));
}

TEST_CASE("domain-spec must end in a macro or a dot and a valid toplabel", "[spf]") {
  CHECK(spf::valid_domain_spec("example.com"));
  CHECK(spf::valid_domain_spec("example.com."));
  CHECK(spf::valid_domain_spec("foo.example.xn--zckzah"));
  CHECK(spf::valid_domain_spec("foo:bar/baz.example.com"));
  CHECK(spf::valid_domain_spec("%{d}"));
  CHECK(spf::valid_domain_spec("_spf.%{d2}"));
  CHECK(spf::valid_domain_spec("mail.example...com"));  // syntax allows it; DNS will not
  CHECK_FALSE(spf::valid_domain_spec(""));
  CHECK_FALSE(spf::valid_domain_spec("museum"));
  CHECK_FALSE(spf::valid_domain_spec("museum."));
  CHECK_FALSE(spf::valid_domain_spec("foo-bar"));
  CHECK_FALSE(spf::valid_domain_spec("111.222.33.44"));
  CHECK_FALSE(spf::valid_domain_spec("abc.123"));
  CHECK_FALSE(spf::valid_domain_spec("example.-com"));
  CHECK_FALSE(spf::valid_domain_spec("example.com:8080"));
  CHECK_FALSE(spf::valid_domain_spec(std::string("foo.example.com\0", 16)));
}

TEST_CASE("target names: trailing dot dropped, left labels cut past 253 bytes", "[spf]") {
  CHECK(spf::target_name("Example.COM.") == "example.com");
  std::string label(60, 'a');
  std::string longname = "xyz." + label + "." + label + "." + label + "." + label + ".example";
  CHECK(longname.size() > 253);
  CHECK(spf::target_name(longname) == longname.substr(4));
  CHECK(spf::target_name("a..b.example") == "");
  CHECK(spf::target_name(std::string(64, 'a') + ".example") == "");
  // UTF-8 labels count in their A-label form, which is longer: 40 labels "\u00e9a" are 120
  // bytes in UTF-8 but 40 x "xn--a-9fa." (400 bytes) once converted, so the left ones go.
  std::string utf8;
  for (int i = 0; i < 40; ++i) utf8 += "\xc3\xa9" "a.";
  utf8 += "example";
  CHECK(utf8.size() < 253);
  std::string t = spf::target_name(utf8);
  CHECK(!t.empty());
  CHECK(t.size() <= 253);
  CHECK(t.ends_with(".xn--a-9fa.example"));
  CHECK(t.find('\xc3') == std::string::npos);
}

TEST_CASE("record parsing: terms, qualifiers, cidr lengths and modifiers", "[spf]") {
  std::string err;
  auto r = spf::parse_record("v=spf1 a/24//64 -mx:mx.example.com ~ip4:192.0.2.0/24 "
                             "?ip6:2001:db8::/32 include:_spf.example.net exists:%{i}.x.example "
                             "ptr redirect=other.example exp=why.example  unknown=%{d}",
                             err);
  REQUIRE(r);
  REQUIRE(r->mechanisms.size() == 7);
  CHECK(r->mechanisms[0].kind == spf::Mech::A);
  CHECK(r->mechanisms[0].cidr4 == 24);
  CHECK(r->mechanisms[0].cidr6 == 64);
  CHECK(r->mechanisms[1].qualifier == '-');
  CHECK(r->mechanisms[1].domain_spec == "mx.example.com");
  CHECK(r->mechanisms[2].network.str() == "192.0.2.0");
  CHECK(r->mechanisms[3].network.v6);
  CHECK(r->mechanisms[3].cidr6 == 32);
  CHECK(r->redirect == "other.example");
  CHECK(r->exp == "why.example");
  CHECK(spf::parse_record("V=SpF1", err));
  CHECK_FALSE(spf::is_spf_record("v=spf10"));

  for (const char* bad :
       {"v=spf1 -all moo", "v=spf1 a/33", "v=spf1 a//129", "v=spf1 a/24/64", "v=spf1 ip4:1.2.3",
        "v=spf1 ip4:1.2.3.4/032", "v=spf1 ip4:1.2.3.4//32", "v=spf1 ip6::CAFE::BABE",
        "v=spf1 -all.", "v=spf1 -all:foo", "v=spf1 ptr/0", "v=spf1 ptr:", "v=spf1 include",
        "v=spf1 exists:", "v=spf1 redirect:x.example", "v=spf1 1up=foo", "v=spf1 =all",
        "v=spf1 foo=%abc", "v=spf1 exp= -all", "v=spf1 exp=a.example exp=b.example",
        "v=spf1 redirect=a.example redirect=a.example", "v=spf1 exp=%{r}.example.com",
        "v=spf1 a:ctrl.example.com\rptr", "v=spf1 \x80" "a:example.net"}) {
    INFO(bad);
    CHECK_FALSE(spf::parse_record(bad, err));
  }
}

TEST_CASE("check_host: mechanisms, include and redirect", "[spf]") {
  FakeResolver r;
  r.add("example.org", dns::Type::TXT,
        {"unrelated text", "v=spf1 mx include:_spf.partner.example redirect=_spf.example.org"});
  r.add_mx("example.org", {{10, "mx1.example.org"}, {20, ""}});
  r.add("mx1.example.org", dns::Type::A, {"192.0.2.10"});
  r.add("_spf.partner.example", dns::Type::TXT, {"v=spf1 ip4:198.51.100.0/24 -all"});
  r.add("_spf.example.org", dns::Type::TXT, {"v=spf1 a:relay.example.org ~all"});
  r.add("relay.example.org", dns::Type::A, {"203.0.113.7"});

  CHECK(run_check(r, "192.0.2.10", "a@example.org").result == Result::Pass);
  auto inc = run_check(r, "198.51.100.99", "a@example.org");
  CHECK(inc.result == Result::Pass);
  CHECK(inc.mechanism == "include:_spf.partner.example");
  CHECK(run_check(r, "203.0.113.7", "a@example.org").result == Result::Pass);
  auto soft = run_check(r, "203.0.113.8", "a@example.org");
  CHECK(soft.result == Result::SoftFail);
  CHECK(soft.dns_lookups == 4);  // mx, include, redirect, a
  CHECK(run_check(r, "2001:db8::1", "a@example.org").result == Result::SoftFail);
  CHECK(run_check(r, "192.0.2.10", "a@nospf.example").result == Result::None);
  // The null sender checks the HELO identity.
  CHECK(run_check(r, "192.0.2.10", "", "example.org").result == Result::Pass);
}

TEST_CASE("check_host: errors and processing limits", "[spf]") {
  FakeResolver r;
  r.fail("slow.example", dns::Type::TXT, dns::Status::TempError);
  CHECK(run_check(r, "192.0.2.1", "a@slow.example").result == Result::TempError);
  r.add("two.example", dns::Type::TXT, {"v=spf1 -all", "v=spf1 +all"});
  CHECK(run_check(r, "192.0.2.1", "a@two.example").result == Result::PermError);
  r.add("inc-none.example", dns::Type::TXT, {"v=spf1 include:nospf.example -all"});
  CHECK(run_check(r, "192.0.2.1", "a@inc-none.example").result == Result::PermError);
  r.add("inc-temp.example", dns::Type::TXT, {"v=spf1 include:slow.example -all"});
  CHECK(run_check(r, "192.0.2.1", "a@inc-temp.example").result == Result::TempError);

  r.add("loop.example", dns::Type::TXT, {"v=spf1 include:loop.example -all"});
  auto loop = run_check(r, "192.0.2.1", "a@loop.example");
  CHECK(loop.result == Result::PermError);
  CHECK(loop.dns_lookups == 11);

  r.add("voids.example", dns::Type::TXT, {"v=spf1 a:n1.example a:n2.example ?all"});
  CHECK(run_check(r, "192.0.2.1", "a@voids.example").result == Result::Neutral);
  r.add("voids3.example", dns::Type::TXT, {"v=spf1 a:n1.example a:n2.example mx:n3.example ?all"});
  CHECK(run_check(r, "192.0.2.1", "a@voids3.example").result == Result::PermError);

  std::vector<dns::Mx> many;
  for (int i = 0; i < 11; ++i) many.push_back({uint16_t(i), "m.example"});
  r.add_mx("manymx.example", many);
  r.add("manymx.example", dns::Type::TXT, {"v=spf1 mx -all"});
  CHECK(run_check(r, "192.0.2.1", "a@manymx.example").result == Result::PermError);
}

TEST_CASE("check_host: explanation only for fail, problems ignored", "[spf]") {
  FakeResolver r;
  r.add("exp.example", dns::Type::TXT, {"v=spf1 ip4:192.0.2.1 -all exp=why.exp.example"});
  r.add("why.exp.example", dns::Type::TXT, {"%{i} may not send for %{d} (%{l})"});
  auto f = run_check(r, "192.0.2.9", "bob@exp.example");
  CHECK(f.result == Result::Fail);
  CHECK(f.explanation == "192.0.2.9 may not send for exp.example (bob)");
  CHECK(run_check(r, "192.0.2.1", "bob@exp.example").explanation.empty());

  r.add("exp2.example", dns::Type::TXT, {"v=spf1 -all exp=two.exp.example"});
  r.add("two.exp.example", dns::Type::TXT, {"one", "two"});
  auto two = run_check(r, "192.0.2.9", "bob@exp2.example");
  CHECK(two.result == Result::Fail);
  CHECK(two.explanation.empty());
}

TEST_CASE("Received-SPF header is built and sanitised", "[spf]") {
  spf::SpfResult res;
  res.result = Result::Fail;
  res.mechanism = "-all";
  auto ip = *net::Ip::parse("192.0.2.9");
  std::string h = spf::received_spf_header(res, ip, "bob@example.org", "evil\r\nX-Injected: 1",
                                           "mx.digue.test", "mailfrom");
  CHECK(h.rfind("Received-SPF: fail (mx.digue.test: domain of bob@example.org does not "
                "designate 192.0.2.9 as permitted sender) client-ip=192.0.2.9;", 0) == 0);
  CHECK(h.find('\r') == std::string::npos);
  CHECK(h.find('\n') == std::string::npos);
  CHECK(h.find("helo=\"evil??X-Injected: 1\";") != std::string::npos);
  CHECK(h.find("identity=mailfrom; mechanism=\"-all\";") != std::string::npos);
  // An IPv6 client is quoted: its ':' is not allowed in a dot-atom (RFC 7208 §9.1).
  std::string h6 = spf::received_spf_header(res, *net::Ip::parse("2001:db8::1"), "bob@example.org",
                                            "mx.example.org", "mx.digue.test", "mailfrom");
  CHECK(h6.find(" client-ip=\"2001:db8::1\";") != std::string::npos);
}
