// ip_blacklist_cache: what bans a client (ban_after verdicts of ban_on filters within
// ban_window, once per message, never a trusted or exempt IP) and whom a ban refuses (never
// the client of a domain that whitelists it), on the filter alone and in a real pipeline.
#include "filters/ip_blacklist_cache.hpp"

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "digue/pipeline.hpp"
#include "digue/store.hpp"
#include "tests/filters/net_harness.hpp"
#include "tests/filters/pipeline_session.hpp"

using namespace digue;
using V = FilterResult::Verdict;

namespace {

Verdict spam_by(const std::string& filter, Decision d = Decision::Spam) {
  Verdict v;
  v.decision = d;
  v.deciding_filter = filter;
  return v;
}

// Runs f's after_message for one accepted message with these per-domain verdicts.
void message(test::Net& h, const FilterPtr& f, const std::vector<Verdict>& verdicts) {
  h.services.store = h.store.get();
  boost::asio::io_context io;
  FilterContext ctx{h.env, nullptr, h.domain, h.policy, h.services, io.get_executor()};
  std::vector<const Verdict*> all;
  for (const Verdict& v : verdicts) all.push_back(&v);
  f->after_message(ctx, all);
}

bool banned(test::Net& h, const std::string& ip) {
  return h.store->get(filters::ip_blacklist_key(*net::Ip::parse(ip))).has_value();
}

}  // namespace

TEST_CASE("ip_blacklist_cache: record_spammer bans for the TTL", "[filters][ip_blacklist_cache]") {
  test::Net h;
  auto f = h.build("ip_blacklist_cache");
  h.env.client_ip = "2001:db8:0::9";
  CHECK(h.run(f).verdict == V::None);
  filters::record_spammer(*h.store, *net::Ip::parse("2001:db8::9"), std::chrono::seconds(1),
                          "spam: queue Q1\r\nX-Evil: 1");
  auto r = h.run(f);
  REQUIRE(r.verdict == V::Hit);
  CHECK(r.symbols[0].name == "IP_BLACKLIST_CACHE");
  CHECK(r.symbols[0].evidence.rfind("2001:db8::9 recorded 20", 0) == 0);
  CHECK(r.symbols[0].evidence.find("spam: queue Q1  X-Evil: 1") != std::string::npos);
  h.env.client_ip = "2001:db8::10";
  CHECK(h.run(f).verdict == V::None);
  h.env.client_ip = "2001:db8::9";
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));  // the ban expires
  CHECK(h.run(f).verdict == V::None);

  test::Net nostore;
  nostore.store.reset();
  CHECK(nostore.run(nostore.build("ip_blacklist_cache")).status == FilterResult::Status::Error);
}

TEST_CASE("ip_blacklist_cache: ban_after verdicts of ban_on filters ban the client",
          "[filters][ip_blacklist_cache]") {
  test::Net h;  // the defaults: 3 within an hour, the strong filters
  auto f = h.build("ip_blacklist_cache");
  message(h, f, {spam_by("bayes", Decision::Accept)});
  Verdict white = spam_by("rbl");
  white.whitelisted = true;
  message(h, f, {white});
  // Bulk, a score total without a hit, one domain's own blacklist: never counted.
  for (const char* weak : {"checksum", "score", "always_spam_ips", "spf", "surbl"})
    for (int i = 0; i < 3; ++i) message(h, f, {spam_by(weak)});
  CHECK_FALSE(h.store->get("ipblhits:192.0.2.1").has_value());
  CHECK(h.run(f).verdict == V::None);

  message(h, f, {spam_by("rbl")});
  message(h, f, {spam_by("bayes", Decision::Reject)});  // refused by a domain, kept for others
  CHECK(h.run(f).verdict == V::None);                   // 2 of 3: no ban yet
  message(h, f, {spam_by("keywords")});
  auto r = h.run(f);
  REQUIRE(r.verdict == V::Hit);
  CHECK(r.symbols[0].evidence.find("keywords (3 in 3600 s)") != std::string::npos);
  CHECK_FALSE(h.store->get("ipblhits:192.0.2.1").has_value());  // a renewed ban needs 3 more

  h.env.client_ip = "127.0.0.1";  // loopback (local injection) is never banned
  for (int i = 0; i < 3; ++i) message(h, f, {spam_by("rbl")});
  CHECK(h.run(f).verdict == V::None);
}

TEST_CASE("ip_blacklist_cache: a message counts once, and not when a domain whitelisted it",
          "[filters][ip_blacklist_cache]") {
  test::Net h;
  h.options.insert("ban_after", 2);
  h.options.insert("ban_on", toml::array{"checksum"});
  auto f = h.build("ip_blacklist_cache");
  message(h, f, {spam_by("bayes")});  // not in this ban_on any more
  Verdict white;
  white.whitelisted = true;
  message(h, f, {spam_by("checksum"), white});
  // One message to three domains is one verdict about the client, not three.
  message(h, f, {spam_by("checksum"), spam_by("checksum"), spam_by("checksum")});
  CHECK(h.run(f).verdict == V::None);
  message(h, f, {spam_by("bayes"), spam_by("checksum")});
  CHECK(h.run(f).verdict == V::Hit);

  test::Net off;  // ban_seconds 0: the cache is only read
  off.options.insert("ban_seconds", 0);
  off.options.insert("ban_after", 1);
  auto g = off.build("ip_blacklist_cache");
  message(off, g, {spam_by("rbl")});
  CHECK_FALSE(banned(off, "192.0.2.1"));
}

TEST_CASE("ip_blacklist_cache: trusted and exempt IPs are never banned nor refused",
          "[filters][ip_blacklist_cache]") {
  test::Net h;
  h.options.insert("ban_after", 1);
  h.options.insert("exempt_ips", toml::array{"198.51.100.0/24"});
  h.config.domains["a.test"].never_spam_ips = {*net::Cidr::parse("203.0.113.0/24")};
  h.config.domains["b.test"].relay_ips = {*net::Cidr::parse("2001:db8:1::/48")};
  auto f = h.build("ip_blacklist_cache");
  for (const char* ip : {"198.51.100.7", "203.0.113.7", "2001:db8:1::25"}) {
    h.env.client_ip = ip;
    message(h, f, {spam_by("rbl")});
    CHECK_FALSE(banned(h, ip));
  }
  h.env.client_ip = "192.0.2.1";
  message(h, f, {spam_by("rbl")});
  CHECK(banned(h, "192.0.2.1"));

  // A ban written earlier (another node, before the exemption) refuses no exempt client, and
  // none whitelisted or allowed to relay by the domain the check decides for.
  for (const char* ip : {"198.51.100.7", "203.0.113.7"})
    filters::record_spammer(*h.store, *net::Ip::parse(ip), std::chrono::seconds(60), "old");
  h.env.client_ip = "198.51.100.7";
  CHECK(h.run(f).verdict == V::None);
  h.env.client_ip = "203.0.113.7";
  CHECK(h.run(f).verdict == V::Hit);  // example.net does not whitelist it
  h.policy.never_spam_ips = {*net::Cidr::parse("203.0.113.7")};
  CHECK(h.run(f).verdict == V::None);
  h.policy.never_spam_ips.clear();
  h.policy.relay_ips = {*net::Cidr::parse("203.0.113.0/24")};
  CHECK(h.run(f).verdict == V::None);
}

TEST_CASE("ip_blacklist_cache: bad ban options name the key and the line",
          "[filters][ip_blacklist_cache][config]") {
  auto fails = [](const std::string& options, int line) {
    std::string text =
        "[pipeline]\norder = [\"ip_blacklist_cache\"]\n"
        "[filters.ip_blacklist_cache]\naction = \"reject\"\n" +
        options + "\n[domains.\"a.test\"]\n";
    try {
      Pipeline::build(parse_config(text, "t.toml"));
    } catch (const ConfigError& e) {
      INFO(options << ": " << e.what());
      CHECK(e.key.rfind("filters.ip_blacklist_cache.", 0) == 0);
      CHECK(e.line == line);
      return true;
    }
    return false;
  };
  CHECK(fails("ban_on = [\"rbl\", \"no_such_filter\"]", 5));
  CHECK(fails("ban_on = [\"ip_blacklist_cache\"]", 5));
  CHECK(fails("ban_on = \"rbl\"", 5));
  CHECK(fails("score = 1\nban_after = 0", 6));
  CHECK(fails("ban_window = 10", 5));
  CHECK(fails("exempt_ips = [\"192.0.2.0/33\"]", 5));
  CHECK(fails("ban_after_count = 3", 5));
  CHECK_FALSE(
      fails("ban_after = 5\nban_window = 600\nban_on = [\"bayes\"]\n"
            "exempt_ips = [\"192.0.2.0/24\", \"2001:db8::/32\"]",
            0));
}

namespace {

// Domain a.test whitelists the client; b.test classes it spam with always_spam_ips.
std::string two_domains(const std::string& cache_options, bool a_whitelists) {
  return "[pipeline]\norder = [\"ip_blacklist_cache\", \"never_spam_ips\", "
         "\"always_spam_ips\", \"empty_email\"]\n"
         "[filters.ip_blacklist_cache]\naction = \"reject\"\n" +
         cache_options +
         "\n[filters.always_spam_ips]\naction = \"spam\"\n"
         "[filters.empty_email]\naction = \"spam\"\n"
         "[domains.\"a.test\"]\n" +
         (a_whitelists ? "never_spam_ips = [\"192.0.2.0/24\"]\n" : "") +
         "[domains.\"b.test\"]\nalways_spam_ips = [\"192.0.2.9\"]\n";
}

const char* kText = "Subject: offer\r\n\r\nBuy now.\r\n";
const char* kEmpty = "Subject: x\r\n\r\n\r\n";

}  // namespace

TEST_CASE("pipeline: a ban never refuses the client of a domain that whitelists it",
          "[pipeline][ip_blacklist_cache]") {
  test::Session s(two_domains("", true));
  filters::record_spammer(s.store, *net::Ip::parse("192.0.2.9"), std::chrono::seconds(60),
                          "spam: queue Q0 rbl");
  auto b = s.rcpt({"u", "b.test"});
  CHECK(b.decision == Decision::Reject);
  CHECK(b.deciding_filter == "ip_blacklist_cache");
  auto a = s.rcpt({"u", "a.test"});
  CHECK(a.decision == Decision::Accept);
  CHECK(a.whitelisted);
  CHECK(s.symbol(a, "IP_BLACKLIST_CACHE") == nullptr);
  REQUIRE(s.env.rcpts.size() == 1);
  CHECK(s.data(kText).at("a.test").decision == Decision::Accept);
}

TEST_CASE("pipeline: domain B's spam does not ban domain A's whitelisted client",
          "[pipeline][ip_blacklist_cache]") {
  auto send_to_b = [](test::Session& s) {
    s.reconnect();
    REQUIRE(s.rcpt({"u", "b.test"}).decision == Decision::Spam);
    auto v = s.data(kText);
    CHECK(v.at("b.test").deciding_filter == "always_spam_ips");
  };
  // ban_on names always_spam_ips here (not a default) so that b.test's spam would count.
  const std::string counts = "ban_after = 1\nban_on = [\"always_spam_ips\"]";
  {
    test::Session s(two_domains(counts, true));
    for (int i = 0; i < 3; ++i) send_to_b(s);
    s.reconnect();
    CHECK(s.rcpt({"u", "a.test"}).decision == Decision::Accept);
    CHECK(s.rcpt({"v", "b.test"}).decision == Decision::Spam);  // not refused: no ban
    CHECK_FALSE(s.store.get("ipbl:192.0.2.9").has_value());
  }
  {  // The same without a.test's whitelist: the first spam bans the client everywhere.
    test::Session s(two_domains(counts, false));
    send_to_b(s);
    s.reconnect();
    auto a = s.rcpt({"u", "a.test"});
    CHECK(a.decision == Decision::Reject);
    CHECK(a.deciding_filter == "ip_blacklist_cache");
  }
}

TEST_CASE("pipeline: N-1 spam verdicts do not ban, N do; other filters never count",
          "[pipeline][ip_blacklist_cache]") {
  auto empty_spam = [](test::Session& s) {
    s.reconnect();
    auto r = s.rcpt({"u", "a.test"});
    if (r.decision == Decision::Reject) return r;
    auto v = s.data(kEmpty);
    CHECK(v.at("a.test").decision == Decision::Spam);
    CHECK(v.at("a.test").deciding_filter == "empty_email");
    return r;
  };
  {  // The default ban_on leaves empty_email out.
    test::Session s(two_domains("", false));
    for (int i = 0; i < 5; ++i) CHECK(empty_spam(s).decision == Decision::Accept);
  }
  test::Session s(two_domains("ban_after = 3\nban_on = [\"empty_email\"]", false));
  CHECK(empty_spam(s).decision == Decision::Accept);
  CHECK(empty_spam(s).decision == Decision::Accept);
  CHECK(empty_spam(s).decision == Decision::Accept);  // the 3rd spam verdict bans
  auto r = empty_spam(s);
  CHECK(r.decision == Decision::Reject);
  REQUIRE(s.symbol(r, "IP_BLACKLIST_CACHE"));
  CHECK(s.symbol(r, "IP_BLACKLIST_CACHE")->symbol.evidence.find("empty_email (3 in 3600 s)") !=
        std::string::npos);
}
