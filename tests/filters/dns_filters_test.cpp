// The spf and rdns filters over an in-memory resolver: symbols, hits, evidence and options.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>

#include "digue/config.hpp"
#include "digue/filter_registry.hpp"
#include "tests/filters/fake_resolver.hpp"
#include "tests/filters/net_harness.hpp"

namespace asio = boost::asio;
using namespace digue;

using Harness = test::Net;

TEST_CASE("spf filter: fail is a hit with the Received-SPF header as evidence", "[filters][spf]") {
  Harness h;
  h.resolver.add("example.org", dns::Type::TXT, {"v=spf1 ip4:192.0.2.0/24 -all"});
  h.env.client_ip = "198.51.100.7";
  h.env.helo = "client.example.org";
  h.env.mail_from = {"bob", "example.org"};
  auto f = h.build("spf");
  CHECK(f->phase() == Phase::Mail);
  auto r = h.run(f);
  CHECK(r.verdict == FilterResult::Verdict::Hit);
  REQUIRE(r.symbols.size() == 1);
  CHECK(r.symbols[0].name == "SPF_FAIL");
  CHECK(r.symbols[0].score == 5.0);
  CHECK(r.symbols[0].evidence.rfind("Received-SPF: fail (mx.digue.test: ", 0) == 0);
  CHECK(r.symbols[0].evidence.find("identity=mailfrom;") != std::string::npos);

  h.env.client_ip = "192.0.2.9";
  auto pass = h.run(f);
  CHECK(pass.verdict == FilterResult::Verdict::None);
  CHECK(pass.symbols.at(0).name == "SPF_PASS");
  CHECK(pass.symbols.at(0).score == 0.0);
}

TEST_CASE("spf filter: a DNS outage is an error that keeps its symbol and header",
          "[filters][spf]") {
  Harness h;
  h.resolver.fail("example.org", dns::Type::TXT, dns::Status::TempError);
  h.env.client_ip = "198.51.100.7";
  h.env.helo = "client.example.org";
  h.env.mail_from = {"bob", "example.org"};
  auto r = h.run(h.build("spf"));
  CHECK(r.status == FilterResult::Status::Error);
  REQUIRE(r.symbols.size() == 1);
  CHECK(r.symbols[0].name == "SPF_TEMPERROR");
  CHECK(r.symbols[0].score == 0.0);
  CHECK(r.symbols[0].evidence.rfind("Received-SPF: temperror (", 0) == 0);
  CHECK(r.trace_field == "Received-SPF");
  CHECK(r.trace.rfind("temperror (mx.digue.test: ", 0) == 0);
  CHECK(r.reason.find("example.org") != std::string::npos);

  // The operator made temperror a hit: a result, not an error.
  Harness hit;
  hit.options.insert("hits", toml::array{"fail", "temperror"});
  hit.resolver.fail("example.org", dns::Type::TXT, dns::Status::TempError);
  hit.env = h.env;
  auto rh = hit.run(hit.build("spf"));
  CHECK(rh.status == FilterResult::Status::Ok);
  CHECK(rh.verdict == FilterResult::Verdict::Hit);

  // A broken published policy is a result (RFC 7208 8.7), as before.
  Harness perm;
  perm.resolver.add("example.org", dns::Type::TXT, {"v=spf1 ip4:300.1.1.1 -all"});
  perm.env = h.env;
  auto rp = perm.run(perm.build("spf"));
  CHECK(rp.status == FilterResult::Status::Ok);
  CHECK(perm.first_symbol(rp) == "SPF_PERMERROR");
}

TEST_CASE("spf filter: hits and score are options; null sender checks HELO", "[filters][spf]") {
  Harness h;
  h.options.insert("hits", toml::array{"fail", "softfail"});
  h.options.insert("score", 2.5);
  h.resolver.add("helo.example", dns::Type::TXT, {"v=spf1 ~all"});
  h.env.client_ip = "192.0.2.1";
  h.env.helo = "helo.example";
  auto r = h.run(h.build("spf"));
  CHECK(r.verdict == FilterResult::Verdict::Hit);
  CHECK(r.symbols.at(0).name == "SPF_SOFTFAIL");
  CHECK(r.symbols.at(0).score == 2.5);
  CHECK(r.symbols.at(0).evidence.find("identity=helo;") != std::string::npos);

  Harness bad;
  bad.options.insert("hits", toml::array{"failed"});
  CHECK_THROWS_AS(bad.build("spf"), ConfigError);
}

TEST_CASE("rdns filter: none, unconfirmed, confirmed, DNS error", "[filters][rdns]") {
  Harness h;
  auto f = h.build("rdns");
  CHECK(f->phase() == Phase::Connect);
  h.env.client_ip = "192.0.2.1";
  auto none = h.run(f);
  CHECK(none.verdict == FilterResult::Verdict::Hit);
  CHECK(none.symbols.at(0).name == "RDNS_NONE");

  h.resolver.add("1.2.0.192.in-addr.arpa", dns::Type::PTR, {"liar.example", "host.example"});
  h.resolver.add("liar.example", dns::Type::A, {"203.0.113.1"});
  auto unconfirmed = h.run(f);
  CHECK(unconfirmed.verdict == FilterResult::Verdict::Hit);
  CHECK(unconfirmed.symbols.at(0).name == "RDNS_UNCONFIRMED");
  CHECK(unconfirmed.symbols.at(0).evidence.find("liar.example host.example") !=
        std::string::npos);

  h.resolver.add("host.example", dns::Type::A, {"192.0.2.1"});
  auto ok = h.run(f);
  CHECK(ok.verdict == FilterResult::Verdict::None);
  CHECK(ok.symbols.at(0).name == "RDNS_OK");
  CHECK(ok.symbols.at(0).evidence == "host.example");

  h.env.client_ip = "2001:db8::1";
  h.resolver.fail(
      "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
      dns::Type::PTR, dns::Status::TempError);
  auto err = h.run(f);
  CHECK(err.status == FilterResult::Status::Error);
}

TEST_CASE("rdns filter: a failed lookup is an error, not a missing or unconfirmed PTR",
          "[filters][rdns]") {
  Harness h;
  auto f = h.build("rdns");
  h.env.client_ip = "192.0.2.1";
  h.resolver.add("1.2.0.192.in-addr.arpa", dns::Type::PTR, {"host.example"});
  h.resolver.fail("host.example", dns::Type::A, dns::Status::TempError);
  auto r = h.run(f);
  CHECK(r.status == FilterResult::Status::Error);
  CHECK(r.reason.find("host.example") != std::string::npos);

  // One name unverified, another refuted: still unknown.
  h.resolver.add("1.2.0.192.in-addr.arpa", dns::Type::PTR, {"liar.example", "host.example"});
  h.resolver.add("liar.example", dns::Type::A, {"203.0.113.1"});
  CHECK(h.run(f).status == FilterResult::Status::Error);
  // One confirmed: the failure of the other does not matter.
  h.resolver.add("1.2.0.192.in-addr.arpa", dns::Type::PTR, {"host.example", "ok.example"});
  h.resolver.add("ok.example", dns::Type::A, {"192.0.2.1"});
  auto ok = h.run(f);
  CHECK(ok.status == FilterResult::Status::Ok);
  CHECK(h.first_symbol(ok) == "RDNS_OK");

  // A malformed PTR answer (FORMERR) is not "no PTR".
  h.resolver.fail("1.2.0.192.in-addr.arpa", dns::Type::PTR, dns::Status::PermError);
  CHECK(h.run(f).status == FilterResult::Status::Error);
}
