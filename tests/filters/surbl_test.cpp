#include <catch2/catch.hpp>

#include <map>

#include "digue/resolver.hpp"
#include "filters/surbl.hpp"
#include "tests/filters/filter_harness.hpp"

using digue::test::FilterHarness;
using digue::test::is_hit;
namespace dns = digue::dns;

namespace {

// In-test resolver: fixed answers, NXDOMAIN otherwise; zones listed in `dead` time out.
class FakeResolver final : public dns::Resolver {
 public:
  std::map<std::string, std::string> a;  // name -> address
  std::vector<std::string> dead;
  std::vector<std::string> asked;
  boost::asio::awaitable<dns::Answer> query(std::string name, dns::Type type) override {
    asked.push_back(name);
    dns::Answer ans;
    for (const auto& z : dead)
      if (name.ends_with("." + z)) co_return ans;  // TempError
    if (auto it = a.find(name); it != a.end() && type == dns::Type::A) {
      ans.status = dns::Status::Ok;
      ans.records.push_back(it->second);
    } else {
      ans.status = dns::Status::NxDomain;
    }
    co_return ans;
  }
};

const char* kOpts = "zones = [\"one.test\", \"two.test\", \"three.test\", \"four.test\"]\n";

std::string msg(const std::string& body) {
  return "Subject: x\nContent-Type: text/html\n\n" + body + "\n";
}

}  // namespace

TEST_CASE("surbl: hit at quorum, evidence names domain and zones", "[filters][surbl]") {
  FakeResolver res;
  res.a["bad.example.one.test"] = "127.0.0.2";
  res.a["bad.example.two.test"] = "127.0.0.4";
  FilterHarness h(&digue::filters::make_surbl, kOpts);
  h.services.resolver = &res;
  auto r = h.run(msg("<a href='http://www.bad.example/x'>x</a> http://good.example/"));
  REQUIRE(is_hit(r));
  CHECK(r.symbols[0].name == "SURBL");
  CHECK(r.symbols[0].evidence == "bad.example (one.test, two.test)");
  CHECK(res.asked.size() == 8);  // 2 domains x 4 zones
}

TEST_CASE("surbl: below quorum, refusal codes and unlisted domains miss", "[filters][surbl]") {
  FakeResolver res;
  res.a["bad.example.one.test"] = "127.0.0.2";        // 1 of 4: below 50%
  res.a["meh.example.one.test"] = "127.0.0.1";        // "query refused", not a listing
  res.a["meh.example.two.test"] = "127.255.255.254";  // error code
  res.a["meh.example.three.test"] = "10.0.0.1";       // not a 127/8 answer
  FilterHarness h(&digue::filters::make_surbl, kOpts);
  h.services.resolver = &res;
  CHECK_FALSE(is_hit(h.run(msg("http://bad.example/ http://meh.example/"))));
  CHECK(h.run(msg("no links here")).symbols.empty());
}

TEST_CASE("surbl: zones that time out are excluded from the quorum and counted",
          "[filters][surbl]") {
  FakeResolver res;
  res.a["bad.example.one.test"] = "127.0.0.2";
  res.dead = {"two.test", "three.test"};
  FilterHarness h(&digue::filters::make_surbl, kOpts);
  h.services.resolver = &res;
  auto r = h.run(msg("http://bad.example/"));
  REQUIRE(is_hit(r));  // 1 of the 2 zones that answered
  REQUIRE(r.symbols.size() == 2);
  CHECK(r.symbols[1].name == "SURBL_FAIL");
  CHECK(r.symbols[1].evidence == "timed out or failed: two.test(temperror) three.test(temperror)");
  res.dead = {"one.test", "two.test", "three.test", "four.test"};
  CHECK(h.run(msg("http://bad.example/")).status == digue::FilterResult::Status::Error);
}

TEST_CASE("surbl: IP URLs reversed, domains deduplicated and capped", "[filters][surbl]") {
  FakeResolver res;
  res.a["4.3.2.1.one.test"] = "127.0.0.2";
  res.a["4.3.2.1.two.test"] = "127.0.0.2";
  FilterHarness h(&digue::filters::make_surbl, std::string(kOpts) + "max_domains = 2\n");
  h.services.resolver = &res;
  auto r = h.run(msg("http://1.2.3.4/a http://a.same.example/ http://b.same.example/ "
                     "http://third.example/ http://[::1]/"));
  REQUIRE(is_hit(r));
  CHECK(r.symbols[0].evidence == "1.2.3.4 (one.test, two.test)");
  CHECK(res.asked.size() == 8);  // 1.2.3.4 and same.example only
}

TEST_CASE("surbl: UTF-8 and A-label forms of a name are one domain, skip list included",
          "[filters][surbl]") {
  FakeResolver res;
  FilterHarness h(&digue::filters::make_surbl,
                  std::string(kOpts) + "skip_domains = [\"b\u00fccher.de\"]\n");
  h.services.resolver = &res;
  // The skip list names it in UTF-8, the message in both forms: nothing is asked.
  h.run("Subject: x\nContent-Type: text/plain; charset=utf-8\n\n"
        "http://www.b\xc3\xbc" "cher.de/ http://xn--bcher-kva.de/\n");
  CHECK(res.asked.empty());
  // Without the skip list: one domain, queried once per zone in its A-label form.
  FilterHarness plain(&digue::filters::make_surbl, kOpts);
  plain.services.resolver = &res;
  plain.run("Subject: x\nContent-Type: text/plain; charset=utf-8\n\n"
            "http://www.b\xc3\xbc" "cher.de/ http://xn--bcher-kva.de/\n");
  REQUIRE(res.asked.size() == 4);
  CHECK(res.asked[0] == "xn--bcher-kva.de.one.test");
}

TEST_CASE("surbl: no resolver is an error; malformed options are config errors",
          "[filters][surbl]") {
  FilterHarness h(&digue::filters::make_surbl, kOpts);
  CHECK(h.run(msg("http://x.example/")).status == digue::FilterResult::Status::Error);
  CHECK_THROWS_AS(FilterHarness(&digue::filters::make_surbl, "quorum = 2.0\n"),
                  digue::ConfigError);
  CHECK_THROWS_AS(FilterHarness(&digue::filters::make_surbl, "zones = [\"bad zone!\"]\n"),
                  digue::ConfigError);
}

TEST_CASE("surbl: DBL is not asked about IP hosts and its error codes are no listing",
          "[filters][surbl]") {
  // Default zones, multi.uribl.com down: DBL's "IP queries prohibited" (127.0.1.255) must
  // not make an IP URL a listing by itself.
  FakeResolver res;
  res.a["4.3.2.192.dbl.spamhaus.org"] = "127.0.1.255";
  res.dead = {"multi.uribl.com"};
  FilterHarness h(&digue::filters::make_surbl, "");
  h.services.resolver = &res;
  auto r = h.run(msg("http://192.2.3.4/"));
  CHECK_FALSE(is_hit(r));
  for (const auto& q : res.asked) CHECK_FALSE(q.ends_with(".dbl.spamhaus.org"));

  // Asked anyway (ip_hosts = true): the error code is a refusal, not a listing.
  FakeResolver res2;
  res2.a["4.3.2.192.dbl.spamhaus.org"] = "127.0.1.255";
  res2.a["bad.example.dbl.spamhaus.org"] = "127.0.1.254";
  FilterHarness forced(&digue::filters::make_surbl,
                       "zones = [{zone = \"dbl.spamhaus.org\", ip_hosts = true}]\n");
  forced.services.resolver = &res2;
  CHECK_FALSE(is_hit(forced.run(msg("http://192.2.3.4/ http://bad.example/"))));
  CHECK(res2.asked.size() == 2);
}

TEST_CASE("surbl: per-zone accepted codes", "[filters][surbl]") {
  FakeResolver res;
  res.a["bad.example.one.test"] = "127.0.0.3";  // not one of one.test's codes
  res.a["bad.example.two.test"] = "127.0.0.3";
  FilterHarness h(&digue::filters::make_surbl,
                  "zones = [{zone = \"one.test\", codes = [\"127.0.0.2\"]}, \"two.test\"]\n"
                  "quorum = 1.0\n");
  h.services.resolver = &res;
  CHECK_FALSE(is_hit(h.run(msg("http://bad.example/"))));
  res.a["bad.example.one.test"] = "127.0.0.2";
  CHECK(is_hit(h.run(msg("http://bad.example/"))));
  CHECK_THROWS_AS(FilterHarness(&digue::filters::make_surbl,
                                "zones = [{zone = \"a.test\", codes = [\"x\"]}]\n"),
                  digue::ConfigError);
  CHECK_THROWS_AS(FilterHarness(&digue::filters::make_surbl,
                                "zones = [{zone = \"a.test\", ip_host = true}]\n"),
                  digue::ConfigError);
}

TEST_CASE("surbl: refusals leave the quorum, are named, and all refused is an error",
          "[filters][surbl]") {
  FakeResolver res;
  res.a["bad.example.one.test"] = "127.0.0.2";
  res.a["bad.example.two.test"] = "127.255.255.254";  // public resolver
  res.a["bad.example.three.test"] = "127.0.0.1";      // query refused
  FilterHarness h(&digue::filters::make_surbl, kOpts);
  h.services.resolver = &res;
  auto r = h.run(msg("http://bad.example/"));
  REQUIRE(is_hit(r));  // 1 of the 2 zones that answered (one.test, four.test)
  REQUIRE(r.symbols.size() == 2);
  CHECK(r.symbols[1].name == "SURBL_REFUSED");
  CHECK(r.symbols[1].evidence == "refused: two.test three.test");

  // Nothing listed: still named.
  auto clean = h.run(msg("http://good.example/"));
  CHECK(clean.symbols.empty());
  res.a["good.example.one.test"] = "127.255.255.255";
  clean = h.run(msg("http://good.example/"));
  CHECK_FALSE(is_hit(clean));
  CHECK(clean.status == digue::FilterResult::Status::Ok);
  REQUIRE(clean.symbols.size() == 1);
  CHECK(clean.symbols[0].name == "SURBL_REFUSED");

  // Every zone refused or timed out: the check could not be made.
  res.a["bad.example.four.test"] = "127.255.255.254";
  res.dead = {"one.test"};
  auto err = h.run(msg("http://bad.example/"));
  CHECK(err.status == digue::FilterResult::Status::Error);
  REQUIRE(err.symbols.size() == 2);
  CHECK(err.symbols[0].name == "SURBL_REFUSED");
  CHECK(err.symbols[0].evidence == "refused: two.test three.test four.test");
  CHECK(err.symbols[1].name == "SURBL_FAIL");
}
