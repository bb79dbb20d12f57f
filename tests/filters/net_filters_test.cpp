// The network and IP-list filters (helo, invalid_mx, rbl, never/always_spam_ips,
// ip_complaints, honeypot, greylist) over an in-memory resolver and store: symbols, verdicts,
// evidence, options and their errors (ip_blacklist_cache: ip_blacklist_cache_test.cpp).
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>

#include "digue/config.hpp"
#include "digue/filter_registry.hpp"
#include "digue/pipeline.hpp"
#include "digue/store.hpp"
#include "filters/greylist.hpp"
#include "filters/helo.hpp"
#include "tests/filters/fake_resolver.hpp"
#include "tests/filters/net_harness.hpp"

namespace asio = boost::asio;
using namespace digue;
using V = FilterResult::Verdict;
using test::Net;

namespace {

std::string tmp_file(const std::string& text) {
  char name[] = "/tmp/digue-ipc-XXXXXX";
  int fd = mkstemp(name);
  REQUIRE(fd >= 0);
  close(fd);
  std::ofstream(name) << text;
  return name;
}

}  // namespace

TEST_CASE("FilterResult::note: one symbol, no hit", "[filters]") {
  auto r = FilterResult::note("MX_A_FALLBACK", 1.5, "example.org has no MX");
  CHECK(r.status == FilterResult::Status::Ok);
  CHECK(r.verdict == V::None);
  REQUIRE(r.symbols.size() == 1);
  CHECK(r.symbols[0].name == "MX_A_FALLBACK");
  CHECK(r.symbols[0].score == 1.5);
  CHECK(r.symbols[0].evidence == "example.org has no MX");
  CHECK(r.reason.empty());
}

TEST_CASE("helo: RFC 5321 domain syntax", "[filters][helo]") {
  CHECK(filters::is_rfc5321_domain("mail.example.org"));
  CHECK(filters::is_rfc5321_domain("a-b.x1"));
  CHECK_FALSE(filters::is_rfc5321_domain(""));
  CHECK_FALSE(filters::is_rfc5321_domain("mail.example.org."));
  CHECK_FALSE(filters::is_rfc5321_domain("-a.example"));
  CHECK_FALSE(filters::is_rfc5321_domain("a-.example"));
  CHECK_FALSE(filters::is_rfc5321_domain("a..example"));
  CHECK_FALSE(filters::is_rfc5321_domain("under_score.example"));
  CHECK_FALSE(filters::is_rfc5321_domain(std::string(64, 'a') + ".example"));
  CHECK(filters::is_rfc5321_domain(std::string(63, 'a') + ".example"));
}

TEST_CASE("helo: syntax, bare IP, literal, ours", "[filters][helo]") {
  Net h;
  auto f = h.build("helo");
  CHECK(f->phase() == Phase::Helo);
  auto sym = [&](const std::string& helo) {
    h.env.helo = helo;
    auto r = h.run(f);
    return r.verdict == V::Hit ? h.first_symbol(r) : std::string("-");
  };
  CHECK(sym("client.example.org") == "-");
  CHECK(sym("bad_name.example.org") == "HELO_INVALID");
  CHECK(sym("localhost") == "HELO_INVALID");  // require_fqdn
  CHECK(sym("") == "HELO_INVALID");
  CHECK(sym("192.0.2.1") == "HELO_BARE_IP");
  CHECK(sym("[192.0.2.1]") == "-");
  CHECK(sym("[192.0.2.99]") == "HELO_IP_MISMATCH");
  CHECK(sym("[2001:db8::1]") == "HELO_INVALID");  // IPv6 needs the tag
  CHECK(sym("[foo]") == "HELO_INVALID");
  CHECK(sym("mx.digue.test") == "HELO_OURS");
  CHECK(sym("EXAMPLE.net") == "HELO_OURS");
  h.services.hostname = "MX.Digue.Test";  // our name compares without case, both ways
  CHECK(sym("mx.DIGUE.test") == "HELO_OURS");
  CHECK(sym("mx2.digue.test") == "-");
  h.services.hostname = "mx.digue.test";
  h.env.client_ip = "2001:db8::1";
  CHECK(sym("[IPv6:2001:db8::1]") == "-");
  CHECK(sym("[ipv6:2001:DB8:0::1]") == "-");
  CHECK(sym("[IPv6:2001:db8::2]") == "HELO_IP_MISMATCH");
  h.env.client_ip = "::ffff:192.0.2.1";  // IPv4 client on a dual-stack socket
  CHECK(sym("[192.0.2.1]") == "-");

  h.env.helo = std::string("a\r\nX-Evil: 1");
  h.env.client_ip = "192.0.2.1";
  auto r = h.run(f);
  REQUIRE(r.verdict == V::Hit);
  CHECK(r.symbols[0].evidence.find('\n') == std::string::npos);

  Net lax;
  lax.options.insert("require_fqdn", false);
  lax.env.helo = "localhost";
  CHECK(lax.run(lax.build("helo")).verdict == V::None);
}

TEST_CASE("helo: strict mode resolves the name", "[filters][helo]") {
  Net h;
  h.options.insert("strict", true);
  auto f = h.build("helo");
  h.env.client_ip = "192.0.2.1";
  h.resolver.add("good.example.org", dns::Type::A, {"192.0.2.1"});
  h.resolver.add("other.example.org", dns::Type::A, {"203.0.113.5"});
  h.resolver.add("1.2.0.192.in-addr.arpa", dns::Type::PTR, {"out1.example.com"});
  h.resolver.add("out1.example.com", dns::Type::A, {"192.0.2.1"});
  h.resolver.add("mx.example.com", dns::Type::A, {"198.51.100.1"});

  h.env.helo = "good.example.org";
  CHECK(h.run(f).verdict == V::None);

  h.env.helo = "nowhere.example.org";
  auto r = h.run(f);
  CHECK(r.verdict == V::Hit);
  CHECK(h.first_symbol(r) == "HELO_NOT_RESOLVING");
  CHECK(r.symbols[0].evidence.find("out1.example.com") != std::string::npos);

  h.env.helo = "other.example.org";
  r = h.run(f);
  CHECK(h.first_symbol(r) == "HELO_MISMATCH_PTR");
  CHECK(r.symbols[0].evidence.find("203.0.113.5") != std::string::npos);

  // Same registered domain as the forward-confirmed PTR: consistent.
  h.env.helo = "mx.example.com";
  r = h.run(f);
  CHECK(r.verdict == V::None);
  CHECK(h.first_symbol(r) == "HELO_PTR_DOMAIN");

  h.resolver.fail("slow.example.org", dns::Type::A, dns::Status::TempError);
  h.env.helo = "slow.example.org";
  CHECK(h.run(f).status == FilterResult::Status::Error);

  // The PTR name's forward lookup failed: the client is not known to be unverified.
  h.resolver.fail("out1.example.com", dns::Type::A, dns::Status::TempError);
  h.env.helo = "other.example.org";
  r = h.run(f);
  CHECK(r.status == FilterResult::Status::Error);
  CHECK(r.reason.find("out1.example.com") != std::string::npos);
  h.resolver.fail("1.2.0.192.in-addr.arpa", dns::Type::PTR, dns::Status::PermError);
  CHECK(h.run(f).status == FilterResult::Status::Error);

  Net bad;
  bad.options.insert("strict", "yes");
  CHECK_THROWS_AS(bad.build("helo"), ConfigError);
}

TEST_CASE("invalid_mx: MX, A fallback, null MX, NXDOMAIN, errors", "[filters][invalid_mx]") {
  Net h;
  auto f = h.build("invalid_mx");
  CHECK(f->phase() == Phase::Mail);
  h.resolver.add_mx("good.example", {{10, "mx1.good.example"}, {20, "mx2.good.example"}});
  h.resolver.add("mx1.good.example", dns::Type::A, {"192.0.2.25"});
  h.resolver.add("mx2.good.example", dns::Type::AAAA, {"2001:db8::25"});
  h.env.mail_from = {"bob", "good.example"};
  auto ok = h.run(f);
  CHECK(ok.verdict == V::None);
  CHECK(h.first_symbol(ok) == "MX_OK");
  CHECK(ok.symbols[0].evidence == "good.example MX mx1.good.example mx2.good.example");

  h.resolver.add_mx("nullmx.example", {{0, ""}});
  h.env.mail_from = {"bob", "nullmx.example"};
  auto null_mx = h.run(f);
  CHECK(null_mx.verdict == V::Hit);
  CHECK(null_mx.symbols.at(0).evidence == "nullmx.example publishes a null MX (RFC 7505)");

  h.env.mail_from = {};
  CHECK(h.run(f).verdict == V::None);  // null sender: nothing to check
  CHECK(h.run(f).symbols.empty());

  h.env.mail_from = {"bob", "nx.example"};
  auto r = h.run(f);
  CHECK(r.verdict == V::Hit);
  CHECK(h.first_symbol(r) == "INVALID_MX");
  CHECK(r.symbols[0].evidence == "nx.example does not exist");

  h.resolver.add("aonly.example", dns::Type::A, {"192.0.2.8"});
  h.env.mail_from = {"bob", "aonly.example"};
  r = h.run(f);
  CHECK(r.verdict == V::None);
  CHECK(h.first_symbol(r) == "MX_A_FALLBACK");
  CHECK(r.symbols[0].score == 0.0);

  h.resolver.add("txtonly.example", dns::Type::TXT, {"hello"});
  h.env.mail_from = {"bob", "txtonly.example"};
  r = h.run(f);
  CHECK(r.verdict == V::Hit);
  CHECK(r.symbols[0].evidence == "txtonly.example has no MX and no A/AAAA");

  h.resolver.fail("slow.example", dns::Type::MX, dns::Status::TempError);
  h.env.mail_from = {"bob", "slow.example"};
  CHECK(h.run(f).status == FilterResult::Status::Error);
  h.resolver.fail("garbled.example", dns::Type::MX, dns::Status::PermError);
  h.env.mail_from = {"bob", "garbled.example"};
  CHECK(h.run(f).status == FilterResult::Status::Error);

  h.env.mail_from = {"bob", "nodot"};
  CHECK(h.first_symbol(h.run(f)) == "INVALID_MX");

  Net hit;
  hit.options.insert("a_fallback_is_hit", true);
  hit.options.insert("score_a_fallback", 0.5);
  hit.resolver.add("aonly.example", dns::Type::AAAA, {"2001:db8::8"});
  hit.env.mail_from = {"bob", "aonly.example"};
  r = hit.run(hit.build("invalid_mx"));
  CHECK(r.verdict == V::Hit);
  CHECK(r.symbols.at(0).score == 0.5);
}

TEST_CASE("invalid_mx: MX hosts without a usable address", "[filters][invalid_mx]") {
  Net h;
  auto f = h.build("invalid_mx");
  auto run = [&](const std::string& domain) {
    h.env.mail_from = {"bob", domain};
    return h.run(f);
  };
  h.resolver.add("lo.example", dns::Type::A, {"127.0.0.1"});
  h.resolver.add("lo.example", dns::Type::AAAA, {"::1"});
  h.resolver.add("lan.example", dns::Type::A, {"10.1.2.3"});
  h.resolver.add("good.example", dns::Type::A, {"192.0.2.25"});
  h.resolver.add("noaddr.example", dns::Type::TXT, {"x"});

  h.resolver.add_mx(
      "bogus.example",
      {{10, "nx.example"}, {20, "lo.example"}, {30, "noaddr.example"}, {40, "[192.0.2.1]"}});
  auto r = run("bogus.example");
  CHECK(r.verdict == V::Hit);
  CHECK(h.first_symbol(r) == "INVALID_MX");
  CHECK(r.symbols.at(0).evidence ==
        "bogus.example: no MX host can receive mail: nx.example does not exist; lo.example "
        "resolves only to 127.0.0.1 (loopback); noaddr.example has no A/AAAA; [192.0.2.1] is "
        "an IP literal");

  h.resolver.add_mx("lan-mx.example", {{10, "lan.example"}});
  r = run("lan-mx.example");
  CHECK(h.first_symbol(r) == "INVALID_MX");
  CHECK(r.symbols.at(0).evidence.ends_with("lan.example resolves only to 10.1.2.3 (private)"));

  // One usable host is enough; the others are named.
  h.resolver.add_mx("mixed.example", {{10, "lo.example"}, {20, "good.example"}});
  r = run("mixed.example");
  CHECK(r.verdict == V::None);
  CHECK(h.first_symbol(r) == "MX_OK");
  CHECK(r.symbols.at(0).evidence ==
        "mixed.example MX lo.example good.example; unusable: "
        "lo.example resolves only to 127.0.0.1 (loopback)");

  // A failed host lookup could be the working host: an error, never a hit.
  h.resolver.fail("slow.example", dns::Type::A, dns::Status::TempError);
  h.resolver.add_mx("slowmx.example", {{10, "lo.example"}, {20, "slow.example"}});
  r = run("slowmx.example");
  CHECK(r.status == FilterResult::Status::Error);
  CHECK(r.reason.find("slow.example lookup failed (temperror)") != std::string::npos);

  // Only the first 5 distinct hosts are looked up; when they are all unusable and more
  // exist, one of the others may work: no verdict.
  std::vector<dns::Mx> many;
  for (int i = 0; i < 11; ++i)
    many.push_back({static_cast<uint16_t>(i), "nx" + std::to_string(i) + ".example"});
  many.push_back({19, "good.example"});
  h.resolver.add_mx("many.example", many);
  int before = h.resolver.queries;
  r = run("many.example");
  CHECK(r.verdict == FilterResult::Verdict::None);
  CHECK(h.first_symbol(r) == "MX_UNVERIFIED");
  CHECK(r.symbols.at(0).evidence.find("the first 10 of 12 MX hosts") != std::string::npos);
  CHECK(h.resolver.queries - before == 1 + 10 * 2);
  // Six dead hosts: all looked up, a hit.
  std::vector<dns::Mx> six;
  for (int i = 0; i < 6; ++i)
    six.push_back({static_cast<uint16_t>(i), "nx" + std::to_string(i) + ".example"});
  h.resolver.add_mx("six.example", six);
  CHECK(h.first_symbol(run("six.example")) == "INVALID_MX");
  // The same dead host listed 8 times is one host: a hit.
  std::vector<dns::Mx> repeated;
  for (int i = 0; i < 8; ++i) repeated.push_back({static_cast<uint16_t>(i), "nx.example"});
  h.resolver.add_mx("repeated.example", repeated);
  before = h.resolver.queries;
  r = run("repeated.example");
  CHECK(h.first_symbol(r) == "INVALID_MX");
  CHECK(h.resolver.queries - before == 1 + 2);

  // The A fallback gets the same address check.
  r = run("lo.example");
  CHECK(h.first_symbol(r) == "INVALID_MX");
  CHECK(r.symbols.at(0).evidence ==
        "lo.example has no MX and resolves only to 127.0.0.1 (loopback)");

  Net lab;
  lab.options.insert("allow_private", true);
  auto g = lab.build("invalid_mx");
  lab.resolver.add("lan.example", dns::Type::A, {"10.1.2.3"});
  lab.resolver.add("lo.example", dns::Type::A, {"127.0.0.1"});
  lab.resolver.add_mx("lan-mx.example", {{10, "lan.example"}});
  lab.resolver.add_mx("lo-mx.example", {{10, "lo.example"}});
  lab.env.mail_from = {"bob", "lan-mx.example"};
  CHECK(lab.first_symbol(lab.run(g)) == "MX_OK");
  lab.env.mail_from = {"bob", "lo-mx.example"};
  CHECK(lab.first_symbol(lab.run(g)) == "INVALID_MX");  // loopback is never private
  lab.env.mail_from = {"bob", "lan.example"};
  CHECK(lab.first_symbol(lab.run(g)) == "MX_A_FALLBACK");
}

namespace {

// Answers like FakeResolver, each after `delay`; counts the queries in flight, so whether
// they overlap shows in max_in_flight.
class SlowResolver : public dns::Resolver {
 public:
  explicit SlowResolver(test::FakeResolver& inner) : inner_(inner) {}
  asio::awaitable<dns::Answer> query(std::string name, dns::Type type) override {
    max_in_flight = std::max(max_in_flight, ++in_flight);
    asio::steady_timer t(co_await asio::this_coro::executor, delay);
    co_await t.async_wait(asio::use_awaitable);
    --in_flight;
    dns::Answer a = co_await inner_.query(name, type);
    co_return a;
  }
  std::chrono::milliseconds delay{100};
  int in_flight = 0;
  int max_in_flight = 0;

 private:
  test::FakeResolver& inner_;
};

// r is no listing, with status `status` and one score-0 note: `name` with `evidence`.
void check_only_note(const FilterResult& r, FilterResult::Status status, const char* name,
                     const char* evidence) {
  CHECK(r.verdict == V::None);
  CHECK(r.status == status);
  REQUIRE(r.symbols.size() == 1);
  CHECK(r.symbols[0].name == name);
  CHECK(r.symbols[0].evidence == evidence);
  CHECK(r.symbols[0].score == 0.0);
}

toml::array zone_list(std::initializer_list<const char*> zones) {
  toml::array a;
  for (const char* z : zones) a.push_back(z);
  return a;
}

}  // namespace

TEST_CASE("rbl: quorum over the zones that answered", "[filters][rbl]") {
  Net h;
  h.options.insert("zones", zone_list({"a.test", "b.test", "c.test", "d.test"}));
  auto f = h.build("rbl");
  CHECK(f->phase() == Phase::Connect);
  h.env.client_ip = "192.0.2.1";
  CHECK(h.run(f).verdict == V::None);  // NXDOMAIN everywhere

  h.resolver.add("1.2.0.192.a.test", dns::Type::A, {"127.0.0.2"});
  auto one = h.run(f);
  CHECK(one.verdict == V::None);  // 1 of 4 < 0.5
  CHECK(h.first_symbol(one) == "RBL_BELOW_QUORUM");

  h.resolver.add("1.2.0.192.b.test", dns::Type::A, {"127.0.0.4"});
  auto two = h.run(f);
  REQUIRE(two.verdict == V::Hit);  // 2 of 4 meets 0.5
  CHECK(two.symbols[0].name == "RBL_LISTED");
  CHECK(two.symbols[0].score == 5.0);
  CHECK(two.symbols[0].evidence ==
        "listed in a.test (127.0.0.2), b.test (127.0.0.4); 2/4 answered");

  // Timeouts leave the quorum: 1 listed of 2 answering.
  h.resolver.fail("1.2.0.192.b.test", dns::Type::A, dns::Status::TempError);
  h.resolver.fail("1.2.0.192.c.test", dns::Type::A, dns::Status::TempError);
  auto timed = h.run(f);
  CHECK(timed.verdict == V::Hit);
  CHECK(timed.symbols[0].evidence ==
        "listed in a.test (127.0.0.2); 1/2 answered; timed out or failed: "
        "b.test(temperror) c.test(temperror)");

  h.resolver.fail("1.2.0.192.a.test", dns::Type::A, dns::Status::TempError);
  h.resolver.fail("1.2.0.192.d.test", dns::Type::A, dns::Status::PermError);
  CHECK(h.run(f).status == FilterResult::Status::Error);  // nobody answered
}

TEST_CASE("rbl: return codes, refusals, IPv6, domain zones", "[filters][rbl]") {
  Net h;
  toml::table strict_zone{{"zone", "zen.test"}, {"codes", toml::array{"127.0.0.2", "127.0.0.4"}}};
  toml::array zones;
  zones.push_back(strict_zone);
  zones.push_back("any.test");
  h.options.insert("zones", zones);
  h.options.insert("quorum", 1.0);
  auto f = h.build("rbl");

  h.resolver.add("1.2.0.192.zen.test", dns::Type::A, {"127.0.0.10"});  // not an accepted code
  h.resolver.add("1.2.0.192.any.test", dns::Type::A, {"127.0.0.3"});
  auto r = h.run(f);
  CHECK(r.verdict == V::None);
  CHECK(r.symbols.at(0).evidence == "listed in any.test (127.0.0.3); 1/2 answered");

  h.resolver.add("1.2.0.192.zen.test", dns::Type::A, {"127.0.0.10", "127.0.0.4"});
  CHECK(h.run(f).verdict == V::Hit);

  // "Query refused" answers are not listings, and say so: when every zone refused, the
  // filter could not check (an error: the slot's on_error applies), naming the zones.
  h.resolver.add("1.2.0.192.zen.test", dns::Type::A, {"127.255.255.254"});
  h.resolver.add("1.2.0.192.any.test", dns::Type::A, {"127.0.0.1"});
  check_only_note(h.run(f), FilterResult::Status::Error, "RBL_REFUSED",
                  "refused: zen.test any.test");
  // A hijacking resolver's public address is not a listing either.
  h.resolver.add("1.2.0.192.any.test", dns::Type::A, {"198.51.100.1"});
  r = h.run(f);
  CHECK(r.verdict == V::None);
  CHECK(r.status == FilterResult::Status::Ok);
  CHECK(h.first_symbol(r) == "RBL_REFUSED");

  h.env.client_ip = "2001:db8::1";
  h.resolver.add(
      "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.any.test",
      dns::Type::A, {"127.0.0.2"});
  h.resolver.add(
      "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.test",
      dns::Type::A, {"127.0.0.2"});
  CHECK(h.run(f).verdict == V::Hit);

  Net d;
  d.options.insert("zones", zone_list({"ip.test"}));
  d.options.insert("domain_zones", zone_list({"dbl.test"}));
  auto fd = d.build("rbl");
  CHECK(fd->phase() == Phase::Mail);
  d.env.mail_from = {"x", "spammy.example"};
  d.resolver.add("spammy.example.dbl.test", dns::Type::A, {"127.0.1.2"});
  auto dr = d.run(fd);
  CHECK(dr.verdict == V::Hit);  // 1 of 2
  CHECK(dr.symbols.at(0).evidence.find("dbl.test (127.0.1.2)") != std::string::npos);
  d.env.mail_from = {};
  CHECK(d.run(fd).verdict == V::None);  // null sender: the IP zone only
}

TEST_CASE("rbl: refusals leave the quorum and are never silent", "[filters][rbl]") {
  Net h;
  h.options.insert("zones", zone_list({"a.test", "b.test", "c.test"}));
  h.options.insert("quorum", 1.0);
  auto f = h.build("rbl");
  h.resolver.add("1.2.0.192.a.test", dns::Type::A, {"127.0.0.2"});
  h.resolver.add("1.2.0.192.b.test", dns::Type::A, {"127.255.255.255"});  // over quota
  h.resolver.fail("1.2.0.192.c.test", dns::Type::A, dns::Status::TempError);
  auto r = h.run(f);
  REQUIRE(r.verdict == V::Hit);  // 1 of the 1 zone that answered
  REQUIRE(r.symbols.size() == 3);
  CHECK(r.symbols[0].evidence ==
        "listed in a.test (127.0.0.2); 1/1 answered; timed out or failed: c.test(temperror); "
        "refused: b.test");
  CHECK(r.symbols[1].name == "RBL_REFUSED");
  CHECK(r.symbols[1].evidence == "refused: b.test");
  CHECK(r.symbols[2].name == "RBL_FAIL");
  CHECK(r.symbols[2].evidence == "timed out or failed: c.test(temperror)");

  // Nothing listed: the notes are still there.
  h.resolver.add("1.2.0.192.a.test", dns::Type::A, {"127.0.0.1"});
  h.resolver.add("1.2.0.192.c.test", dns::Type::A, {"10.0.0.1"});
  check_only_note(h.run(f), FilterResult::Status::Ok, "RBL_REFUSED", "refused: a.test b.test");

  // Refused or failed everywhere: an error that names them.
  h.resolver.fail("1.2.0.192.c.test", dns::Type::A, dns::Status::TempError);
  r = h.run(f);
  CHECK(r.status == FilterResult::Status::Error);
  CHECK(r.reason == "rbl: no zone answered; timed out or failed: c.test(temperror); refused: "
                    "a.test b.test");
  REQUIRE(r.symbols.size() == 2);
  CHECK(r.symbols[0].name == "RBL_REFUSED");
  CHECK(r.symbols[1].name == "RBL_FAIL");
}

TEST_CASE("rbl: queries run in parallel; bad options", "[filters][rbl]") {
  Net h;
  h.options.insert("zones", zone_list({"a.test", "b.test", "c.test", "d.test", "e.test"}));
  auto f = h.build("rbl");
  SlowResolver slow(h.resolver);
  h.resolver.add("1.2.0.192.e.test", dns::Type::A, {"127.0.0.2"});
  h.services.store = h.store.get();
  asio::io_context io;
  h.services.resolver = &slow;
  FilterContext ctx{h.env, nullptr, h.domain, h.policy, h.services, io.get_executor()};
  auto fut = asio::co_spawn(io, f->check(ctx), asio::use_future);
  io.run_for(std::chrono::seconds(10));  // a safety net: returns as soon as the check is done
  REQUIRE(fut.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
  auto r = fut.get();
  CHECK(r.verdict == V::None);
  CHECK(r.symbols.at(0).evidence == "listed in e.test (127.0.0.2); 1/5 answered");
  // All five lookups were in flight at once; one after the other would peak at 1.
  CHECK(slow.max_in_flight == 5);
  CHECK(slow.in_flight == 0);

  for (auto bad : {"zones = []", "zones = [\"\"]", "zones = [{zone = \"a.test\", codes = [\"x\"]}]",
                   "zones = [\"a.test\"]\nquorum = 0", "zones = [\"a.test\"]\nquorum = 1.5",
                   "zones = [{zone = \"a.test\", code = [\"127.0.0.2\"]}]", "zones = [3]"}) {
    Net b;
    b.options = toml::parse(bad);
    CHECK_THROWS_AS(b.build("rbl"), ConfigError);
  }
}

TEST_CASE("never_spam_ips and always_spam_ips", "[filters][ip_lists]") {
  Net h;
  h.policy.never_spam_ips = {*net::Cidr::parse("192.0.2.0/24")};
  h.policy.always_spam_ips = {*net::Cidr::parse("2001:db8::/32")};
  auto never = h.build("never_spam_ips");
  auto always = h.build("always_spam_ips");
  CHECK(never->per_domain());
  CHECK(always->per_domain());
  h.env.client_ip = "192.0.2.77";
  auto w = h.run(never);
  CHECK(w.verdict == V::Pass);
  CHECK(w.symbols.at(0).evidence == "Whitelisted IP 192.0.2.77 (192.0.2.0/24)");
  CHECK(h.run(always).verdict == V::None);
  h.env.client_ip = "2001:db8::5";
  CHECK(h.run(never).verdict == V::None);
  auto b = h.run(always);
  CHECK(b.verdict == V::Hit);
  CHECK(b.symbols.at(0).name == "ALWAYS_SPAM_IP");
  CHECK(b.symbols.at(0).evidence == "2001:db8::5 in 2001:db8::/32");
  h.env.client_ip = "garbage";
  CHECK(h.run(never).verdict == V::None);
  CHECK(h.run(always).verdict == V::None);
}

TEST_CASE("ip_complaints: file of CIDRs with comments", "[filters][ip_complaints]") {
  std::string path = tmp_file("# complaints\n\n198.51.100.0/24  # ticket 42\n203.0.113.9\n"
                              "2001:db8:bad::/48\n");
  Net h;
  h.options.insert("file", path);
  auto f = h.build("ip_complaints");
  h.env.client_ip = "198.51.100.200";
  auto r = h.run(f);
  REQUIRE(r.verdict == V::Hit);
  CHECK(r.symbols[0].evidence == "198.51.100.200 in 198.51.100.0/24 (" + path + ":3) ticket 42");
  h.env.client_ip = "203.0.113.9";
  CHECK(h.run(f).verdict == V::Hit);
  h.env.client_ip = "203.0.113.10";
  CHECK(h.run(f).verdict == V::None);
  h.env.client_ip = "2001:db8:bad:1::1";
  CHECK(h.run(f).verdict == V::Hit);
  std::remove(path.c_str());

  std::string bad = tmp_file("192.0.2.0/24\n192.0.2.300\n");
  Net b;
  b.options.insert("file", bad);
  try {
    b.build("ip_complaints");
    FAIL("a bad line must be refused");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find(bad + ":2") != std::string::npos);
  }
  std::remove(bad.c_str());
  Net missing;
  missing.options.insert("file", "/nonexistent/complaints.txt");
  CHECK_THROWS_AS(missing.build("ip_complaints"), ConfigError);
}

TEST_CASE("ip_complaints: a relative file is read next to the config", "[filters][ip_complaints]") {
  char dir[] = "/tmp/digue-ipc-dir-XXXXXX";
  REQUIRE(mkdtemp(dir));
  std::string rules = std::string(dir) + "/rules";
  REQUIRE(mkdir(rules.c_str(), 0700) == 0);
  std::ofstream(rules + "/complaints.txt") << "198.51.100.0/24 # near the config\n";
  Net h;
  h.config.path = std::string(dir) + "/digue.toml";  // the working directory is elsewhere
  h.options.insert("file", "rules/complaints.txt");
  FilterPtr f;
  REQUIRE_NOTHROW(f = h.build("ip_complaints"));
  h.env.client_ip = "198.51.100.7";
  auto r = h.run(f);
  REQUIRE(r.verdict == V::Hit);
  CHECK(r.symbols.at(0).evidence ==
        "198.51.100.7 in 198.51.100.0/24 (" + rules + "/complaints.txt:1) near the config");
  std::remove((rules + "/complaints.txt").c_str());
  rmdir(rules.c_str());
  rmdir(dir);
}

TEST_CASE("honeypot: trap hits, bulk ban, window", "[filters][honeypot]") {
  Net h;
  h.options.insert("traps", toml::array{"Trap@Example.net", "bait@example.org"});
  h.options.insert("bulk_threshold", 2);
  h.options.insert("ban_seconds", 60);
  auto f = h.build("honeypot");
  CHECK(f->phase() == Phase::Rcpt);
  h.env.client_ip = "192.0.2.50";
  h.env.rcpts = {{"user", "example.net"}};
  CHECK(h.run(f).verdict == V::None);

  h.env.rcpts.push_back({"trap", "example.net"});
  auto r = h.run(f);
  REQUIRE(r.verdict == V::Hit);
  CHECK(r.symbols[0].name == "HONEYPOT_TRAP");
  CHECK(r.symbols[0].evidence == "trap@example.net; 192.0.2.50 trap hit 1");
  // The pipeline re-running the filter for the same recipient does not count it again.
  CHECK(h.run(f).symbols.at(0).evidence == "trap@example.net; 192.0.2.50 trap hit 1");

  // Not yet banned: a normal recipient still passes.
  h.env.rcpts = {{"user", "example.net"}};
  CHECK(h.run(f).verdict == V::None);

  h.env.rcpts = {{"BAIT", "example.org"}};
  r = h.run(f);
  CHECK(r.symbols.at(0).evidence == "bait@example.org; 192.0.2.50 banned after 2 trap hits");

  h.env.rcpts = {{"user", "example.net"}};
  r = h.run(f);
  CHECK(r.verdict == V::Hit);
  CHECK(r.symbols.at(0).name == "HONEYPOT_BANNED");
  h.env.client_ip = "192.0.2.51";  // another IP is not banned
  CHECK(h.run(f).verdict == V::None);

  Net none;
  CHECK_THROWS_AS(none.build("honeypot"), ConfigError);  // no traps
  Net bad;
  bad.options.insert("traps", toml::array{"nodomain"});
  CHECK_THROWS_AS(bad.build("honeypot"), ConfigError);
}

TEST_CASE("honeypot: a trap hit survives later recipients", "[filters][honeypot]") {
  // The pipeline re-runs rcpt-phase filters on each RCPT: the trap must still be seen when a
  // normal recipient follows it (and counted once).
  Net h;
  h.options.insert("traps", toml::array{"trap@example.net", "bait@example.org"});
  auto f = h.build("honeypot");
  h.env.client_ip = "192.0.2.60";
  h.env.session_id = "s-later";
  h.env.rcpts = {{"trap", "example.net"}};
  CHECK(h.run(f).symbols.at(0).evidence == "trap@example.net; 192.0.2.60 trap hit 1");
  h.env.rcpts.push_back({"user", "example.net"});
  auto r = h.run(f);
  REQUIRE(r.verdict == V::Hit);
  CHECK(r.symbols.at(0).name == "HONEYPOT_TRAP");
  CHECK(r.symbols.at(0).evidence == "trap@example.net; 192.0.2.60 trap hit 1");
  // A second trap in the same session counts once more; both are named.
  h.env.rcpts.push_back({"Bait", "example.org"});
  h.env.rcpts.push_back({"other", "example.net"});
  r = h.run(f);
  REQUIRE(r.verdict == V::Hit);
  CHECK(r.symbols.at(0).evidence == "trap@example.net, bait@example.org; 192.0.2.60 trap hit 2");
  CHECK(h.run(f).symbols.at(0).evidence ==
        "trap@example.net, bait@example.org; 192.0.2.60 trap hit 2");
}

TEST_CASE("greylist: first sight, early retry, pass, auto-whitelist", "[filters][greylist]") {
  Net h;
  h.options.insert("delay", 300);
  int64_t now = 1'700'000'000;
  h.slot.filter = "greylist";
  auto f = filters::make_greylist(FilterBuildContext{h.config, h.slot, h.options},
                                  [&] { return now; });
  CHECK(f->phase() == Phase::Rcpt);
  CHECK(f->per_domain());
  h.env.client_ip = "192.0.2.10";
  h.env.mail_from = {"Bob", "sender.example"};
  h.env.rcpts = {{"alice", "example.net"}};

  CHECK(h.run(f).verdict == V::None);  // the domain does not greylist
  h.policy.greylisting = true;

  auto r = h.run(f);
  REQUIRE(r.verdict == V::Hit);
  CHECK(r.symbols[0].name == "GREYLIST");
  CHECK(r.symbols[0].evidence ==
        "192.0.2.0/24 bob@sender.example -> alice@example.net: first seen, retry after 300 s");

  now += 100;
  h.env.client_ip = "192.0.2.11";  // same /24
  r = h.run(f);
  REQUIRE(r.verdict == V::Hit);
  CHECK(r.symbols[0].evidence.find("retry too early, 200 s left") != std::string::npos);

  // A different sender is a different triplet.
  h.env.mail_from = {"carol", "sender.example"};
  CHECK(h.run(f).symbols.at(0).evidence.find("first seen") != std::string::npos);
  h.env.mail_from = {"Bob", "sender.example"};

  now += 200;
  r = h.run(f);
  CHECK(r.verdict == V::None);
  CHECK(r.symbols.at(0).name == "GREYLIST_PASSED");

  // The network is now whitelisted: a brand-new triplet from it passes at once.
  h.env.mail_from = {"dave", "other.example"};
  h.env.rcpts = {{"zed", "example.net"}};
  r = h.run(f);
  CHECK(r.verdict == V::None);
  CHECK(r.symbols.at(0).name == "GREYLIST_WHITELISTED");

  // Another network is still greylisted, IPv6 by /64.
  h.env.client_ip = "2001:db8:1:2::99";
  r = h.run(f);
  CHECK(r.verdict == V::Hit);
  CHECK(r.symbols[0].evidence.rfind("2001:db8:1:2::/64 ", 0) == 0);
}

TEST_CASE("greylist: without auto-whitelist each triplet waits; all recipients recorded",
          "[filters][greylist]") {
  Net h;
  h.options.insert("auto_whitelist_days", 0);
  h.options.insert("delay", 60);
  h.policy.greylisting = true;
  int64_t now = 1'700'000'000;
  h.slot.filter = "greylist";
  auto f = filters::make_greylist(FilterBuildContext{h.config, h.slot, h.options},
                                  [&] { return now; });
  h.env.mail_from = {};
  h.env.rcpts = {{"a", "example.net"}, {"b", "example.net"}, {"c", "other.example"}};
  auto r = h.run(f);
  CHECK(r.verdict == V::Hit);
  CHECK(r.symbols.at(0).evidence.find("<> -> a@example.net") != std::string::npos);
  now += 61;
  r = h.run(f);
  REQUIRE(r.verdict == V::None);
  CHECK(r.symbols.at(0).evidence == "192.0.2.0/24 <> -> a@example.net, b@example.net");
  h.env.rcpts = {{"new", "example.net"}};
  CHECK(h.run(f).verdict == V::Hit);  // no auto-whitelist

  CHECK(filters::greylist_network(*net::Ip::parse("10.1.2.3"), 16, 64) == "10.1.0.0/16");
  Net bad;
  bad.options.insert("delay", 600);
  bad.options.insert("retry_window", 300);
  CHECK_THROWS_AS(bad.build("greylist"), ConfigError);
}

TEST_CASE("conf/filters defaults of the network filters load and build", "[filters][conf]") {
  std::string text = "[pipeline]\norder = [\"ip_blacklist_cache\", \"greylist\", "
                     "\"never_spam_ips\", \"always_spam_ips\", \"helo\", \"invalid_mx\", "
                     "\"rbl\", \"honeypot\", \"ip_complaints\"]\n";
  for (const char* f : {"helo", "invalid_mx", "rbl", "ip_lists", "ip_blacklist_cache",
                        "ip_complaints", "honeypot", "greylist"}) {
    auto body = std::ifstream(std::string(DIGUE_SOURCE_DIR) + "/conf/filters/" + f + ".toml");
    REQUIRE(body);
    text += std::string(std::istreambuf_iterator<char>(body), {}) + "\n";
  }
  text += "[domains.\"example.test\"]\ngreylisting = true\n";
  // ip_complaints' default file is relative to the working directory: the source tree
  // (the previous directory is restored for the other tests).
  char previous[4096];
  REQUIRE(getcwd(previous, sizeof previous));
  REQUIRE(chdir(DIGUE_SOURCE_DIR) == 0);
  auto config = parse_config(text, "conf-filters-test.toml");
  std::shared_ptr<const Pipeline> pipeline;
  try {
    pipeline = Pipeline::build(config);
  } catch (...) {
    REQUIRE(chdir(previous) == 0);
    throw;
  }
  REQUIRE(chdir(previous) == 0);
  REQUIRE(pipeline->slots().size() == 9);
  CHECK(pipeline->slots()[1].config.action == SlotAction::Tempfail);  // greylist
  CHECK(pipeline->slots()[0].config.action == SlotAction::Reject);    // ip_blacklist_cache
}
