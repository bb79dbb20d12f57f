// Resolver tests against a small scripted DNS server on a loopback UDP socket in the same
// io_context: it counts the queries it receives, so caching and in-flight sharing are
// observable, and it can answer NXDOMAIN, no data, SERVFAIL, garbage, or nothing at all.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <map>

#include "digue/config.hpp"
#include "digue/net.hpp"
#include "digue/resolver.hpp"
#include "tests/filters/fake_resolver.hpp"

namespace asio = boost::asio;
using asio::ip::udp;
using namespace digue;

namespace {

void put16(std::string& s, uint16_t v) {
  s += char(v >> 8);
  s += char(v & 0xff);
}
void put32(std::string& s, uint32_t v) {
  put16(s, uint16_t(v >> 16));
  put16(s, uint16_t(v & 0xffff));
}
std::string wire_name(const std::string& name) {
  std::string out;
  size_t start = 0;
  while (start < name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    out += char(dot - start);
    out += name.substr(start, dot - start);
    start = dot + 1;
  }
  return out + '\0';
}

// How long the server sits on a query for late.test: far beyond the resolver's timeout.
constexpr std::chrono::milliseconds kLate{1500};

class ScriptedServer {
 public:
  explicit ScriptedServer(asio::io_context& io) : socket_(io, udp::endpoint(udp::v4(), 0)) {
    asio::co_spawn(io, serve(), asio::detached);
  }
  uint16_t port() const { return socket_.local_endpoint().port(); }
  int count(const std::string& name) const {
    auto it = counts_.find(name);
    return it == counts_.end() ? 0 : it->second;
  }
  void stop() { socket_.close(); }

 private:
  asio::awaitable<void> serve() {
    char buf[1500];
    udp::endpoint peer;
    for (;;) {
      boost::system::error_code ec;
      size_t n = co_await socket_.async_receive_from(
          asio::buffer(buf), peer, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      std::string q(buf, n);
      // Question name and type (no compression in queries).
      size_t p = 12;
      std::string name;
      while (p < q.size() && q[p]) {
        if (!name.empty()) name += '.';
        name += q.substr(p + 1, uint8_t(q[p]));
        p += 1 + uint8_t(q[p]);
      }
      uint16_t qtype = uint16_t((uint8_t(q[p + 1]) << 8) | uint8_t(q[p + 2]));
      std::string question = q.substr(12, p + 5 - 12);
      ++counts_[name];
      std::string reply = respond(q, question, name, qtype);
      if (name == "late.test") {
        // A valid answer, sent long after the resolver's timeout.
        reply = header(q, 0, 1, 0) + question + rr(1, 300, std::string("\xc0\x00\x02\x09", 4));
        asio::co_spawn(socket_.get_executor(), send_late(std::move(reply), peer), asio::detached);
        continue;
      }
      if (!reply.empty())
        co_await socket_.async_send_to(asio::buffer(reply), peer,
                                       asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  asio::awaitable<void> send_late(std::string reply, udp::endpoint peer) {
    asio::steady_timer t(socket_.get_executor(), kLate);
    boost::system::error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    co_await socket_.async_send_to(asio::buffer(reply), peer,
                                   asio::redirect_error(asio::use_awaitable, ec));
  }

  static std::string header(const std::string& q, int rcode, int an, int ns) {
    std::string h = q.substr(0, 2);
    put16(h, uint16_t(0x8580 | rcode));  // QR AA RD RA
    put16(h, 1);
    put16(h, uint16_t(an));
    put16(h, uint16_t(ns));
    put16(h, 0);
    return h;
  }
  static std::string rr(uint16_t type, uint32_t ttl, const std::string& rdata) {
    std::string r = "\xc0\x0c";  // the question's name
    put16(r, type);
    put16(r, 1);
    put32(r, ttl);
    put16(r, uint16_t(rdata.size()));
    return r + rdata;
  }
  static std::string soa(uint32_t ttl, uint32_t minimum) {
    std::string rdata = wire_name("ns.test") + wire_name("host.test");
    for (uint32_t v : {1u, 3600u, 600u, 86400u, minimum}) put32(rdata, v);
    return rr(6, ttl, rdata);
  }

  std::string respond(const std::string& q, const std::string& question,
                      const std::string& name, uint16_t qtype) {
    if (name == "drop.test") return {};
    if (name == "fail.test") return header(q, 2, 0, 0) + question;
    if (name == "nx.test") return header(q, 3, 0, 1) + question + soa(3600, 45);
    if (name == "nodata.test") return header(q, 0, 0, 1) + question + soa(3600, 3600);
    if (name == "bad.test") return header(q, 0, 1, 0) + question + "\xc0\x0c\x00\x01\x00";
    if (name == "a.test" && qtype == 1) {
      return header(q, 0, 2, 0) + question + rr(1, 120, std::string("\xc0\x00\x02\x01", 4)) +
             rr(1, 300, std::string("\xc0\x00\x02\x02", 4));
    }
    if (name == "short.test" && qtype == 1)
      return header(q, 0, 1, 0) + question + rr(1, 1, std::string("\xc0\x00\x02\x03", 4));
    if (name == "txt.test" && qtype == 16) {
      std::string one = std::string("\x0b") + "v=spf1 ip4:" + "\x0e" + "192.0.2.1 -all";
      std::string two = "\x05other";
      return header(q, 0, 2, 0) + question + rr(16, 300, one) + rr(16, 300, two);
    }
    if (name == "mx.test" && qtype == 15) {
      std::string m20, m10, null;
      put16(m20, 20);
      m20 += wire_name("MX2.Example");
      put16(m10, 10);
      m10 += wire_name("mx1.example");
      put16(null, 30);
      null += '\0';
      return header(q, 0, 3, 0) + question + rr(15, 300, m20) + rr(15, 300, m10) +
             rr(15, 300, null);
    }
    return header(q, 3, 0, 0) + question;
  }

  udp::socket socket_;
  std::map<std::string, int> counts_;
};

DnsConfig test_config(uint16_t port) {
  DnsConfig c;
  c.servers.push_back({"127.0.0.1", port});
  c.timeout = std::chrono::milliseconds(200);
  c.tries = 1;
  c.min_ttl = 30;
  c.max_ttl = 200;
  c.negative_ttl = 300;
  return c;
}

struct Fixture {
  asio::io_context io;
  ScriptedServer server{io};
  std::unique_ptr<dns::Resolver> resolver = dns::make_resolver(io.get_executor(),
                                                               test_config(server.port()));
  // Turns the loop until fut is ready or the deadline passes (a safety net: the scripted
  // server never ends by itself, so an unbounded loop would hang on a lost answer).
  template <typename T>
  T wait(std::future<T>& fut, std::chrono::seconds limit = std::chrono::seconds(10)) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready &&
           std::chrono::steady_clock::now() < end)
      io.run_one_for(std::chrono::milliseconds(50));
    REQUIRE(fut.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
    return fut.get();
  }
  dns::Answer ask(const std::string& name, dns::Type t) {
    auto fut = asio::co_spawn(io, resolver->query(name, t), asio::use_future);
    return wait(fut);
  }
};

}  // namespace

TEST_CASE("resolver: answers, TTL clamping and the cache", "[dns]") {
  Fixture f;
  auto a = f.ask("A.Test.", dns::Type::A);
  REQUIRE(a.status == dns::Status::Ok);
  CHECK(a.records == std::vector<std::string>{"192.0.2.1", "192.0.2.2"});
  CHECK(a.ttl == 120);  // the smallest TTL of the RRset, inside [30, 200]
  auto again = f.ask("a.test", dns::Type::A);
  CHECK(again.records == a.records);
  CHECK(f.server.count("a.test") == 1);
  CHECK(f.resolver->stats().cache_hits == 1);
  // A 1-second TTL is raised to min_ttl: still cached.
  CHECK(f.ask("short.test", dns::Type::A).ttl == 30);
  f.ask("short.test", dns::Type::A);
  CHECK(f.server.count("short.test") == 1);
}

TEST_CASE("resolver: identical queries in flight share one network query", "[dns]") {
  Fixture f;
  std::vector<std::future<dns::Answer>> futures;
  for (int i = 0; i < 5; ++i)
    futures.push_back(asio::co_spawn(f.io, f.resolver->query("a.test", dns::Type::A),
                                     asio::use_future));
  futures.push_back(
      asio::co_spawn(f.io, f.resolver->query("txt.test", dns::Type::TXT), asio::use_future));
  // The server runs forever: turn the loop (bounded) until every answer is in.
  for (int i = 0; i < 5; ++i) CHECK(f.wait(futures[i]).records.size() == 2);
  CHECK(f.wait(futures[5]).records.size() == 2);
  CHECK(f.server.count("a.test") == 1);
  CHECK(f.resolver->stats().joined == 4);
  CHECK(f.resolver->stats().queries == 2);
}

TEST_CASE("resolver: NXDOMAIN, no data, SERVFAIL, timeout and garbage are distinct", "[dns]") {
  Fixture f;
  auto nx = f.ask("nx.test", dns::Type::A);
  CHECK(nx.status == dns::Status::NxDomain);
  CHECK(nx.ttl == 45);  // SOA MINIMUM bounds the negative TTL
  f.ask("nx.test", dns::Type::A);
  CHECK(f.server.count("nx.test") == 1);  // negative answers are cached too
  auto nodata = f.ask("nodata.test", dns::Type::A);
  CHECK(nodata.status == dns::Status::NoData);
  CHECK(nodata.ttl == 300);  // capped by negative_ttl
  CHECK(f.ask("fail.test", dns::Type::A).status == dns::Status::TempError);
  // An unanswered query ends in TempError after the configured tries (1 here): one query
  // reached the server, none was retried past the limit, and the answer is not cached.
  auto before = f.resolver->stats().queries;
  CHECK(f.ask("drop.test", dns::Type::A).status == dns::Status::TempError);
  CHECK(f.server.count("drop.test") == test_config(0).tries);
  CHECK(f.resolver->stats().queries == before + 1);
  // The resolver gives up at its own timeout (200 ms) instead of waiting for a slow server:
  // an answer sent after kLate is never seen.
  static_assert(kLate > 5 * std::chrono::milliseconds(200));
  CHECK(f.ask("late.test", dns::Type::A).status == dns::Status::TempError);
  CHECK(f.server.count("late.test") == 1);
  CHECK(f.ask("bad.test", dns::Type::A).status == dns::Status::PermError);
  // Errors are not cached: the next query goes out again.
  f.ask("fail.test", dns::Type::A);
  CHECK(f.server.count("fail.test") >= 2);
}

TEST_CASE("resolver: TXT strings joined per record, MX sorted, bad names refused", "[dns]") {
  Fixture f;
  auto txt = f.ask("txt.test", dns::Type::TXT);
  CHECK(txt.records == std::vector<std::string>{"v=spf1 ip4:192.0.2.1 -all", "other"});
  auto mx = f.ask("mx.test", dns::Type::MX);
  REQUIRE(mx.mx.size() == 3);
  CHECK(mx.mx[0].host == "mx1.example");
  CHECK(mx.mx[1].host == "mx2.example");
  CHECK(mx.mx[2].host == "");  // null MX
  for (const char* bad : {"a..test", "", ".", "x\\y.test"})
    CHECK(f.ask(bad, dns::Type::A).status == dns::Status::PermError);
  CHECK(f.ask(std::string(64, 'a') + ".test", dns::Type::A).status == dns::Status::PermError);
  CHECK(f.resolver->stats().queries == 2);
}

TEST_CASE("query names: lower case, no trailing dot, UTF-8 labels as A-labels", "[dns]") {
  CHECK(dns::normalize_name("Mail.Example.ORG.") == "mail.example.org");
  // An SMTPUTF8 sender domain or a UTF-8 URL host is queried as registries publish it.
  CHECK(dns::normalize_name("b\xc3\xbc" "cher.example") == "xn--bcher-kva.example");
  CHECK(dns::normalize_name("B\xc3\x9c" "CHER.Example.") == "xn--bcher-kva.example");
  CHECK(dns::normalize_name("\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.\xd1\x80\xd1\x84") ==
        "xn--e1afmkfd.xn--p1ai");  // пример.рф
  CHECK(dns::normalize_name("fa\xc3\x9f.de") == "xn--fa-hia.de");  // IDNA2008: ß kept
  CHECK(dns::normalize_name("xn--bcher-kva.example") == "xn--bcher-kva.example");
  // Bytes that are no UTF-8 cannot be converted: sent as they are (nobody can register them).
  CHECK(dns::normalize_name("\xff.example") == "\xff.example");
  CHECK(dns::normalize_name(std::string(64, 'a') + ".test").empty());
  CHECK(dns::normalize_name("a..test").empty());
  // Converted label by label; the 253-octet limit applies to the A-label form.
  std::string many;
  for (int i = 0; i < 40; ++i) many += "\xc3\xa9" "a.";
  CHECK(dns::a_labels(many + "example").starts_with("xn--a-9fa.xn--a-9fa."));
  CHECK(dns::normalize_name(many + "example").empty());  // 407 octets once converted
}

TEST_CASE("reverse DNS: the PTR name and forward-confirmed names", "[dns]") {
  CHECK(dns::ptr_name(*net::Ip::parse("192.0.2.5")) == "5.2.0.192.in-addr.arpa");
  CHECK(dns::ptr_name(*net::Ip::parse("2001:db8::1")) ==
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");

  test::FakeResolver res;
  res.add("5.2.0.192.in-addr.arpa", dns::Type::PTR, {"a.example", "b.example", "c.example"});
  res.add("a.example", dns::Type::A, {"192.0.2.9"});
  res.add("b.example", dns::Type::A, {"192.0.2.5"});
  res.add("c.example", dns::Type::A, {"192.0.2.7", "192.0.2.5"});
  res.add("c.example", dns::Type::AAAA, {"2001:db8::5"});
  auto run = [&](const char* ip, size_t max_names, size_t max_confirmed) {
    boost::asio::io_context io;
    res.queries = 0;
    auto fut = boost::asio::co_spawn(
        io, dns::forward_confirmed(res, *net::Ip::parse(ip), max_names, max_confirmed),
        boost::asio::use_future);
    io.run();
    return fut.get();
  };
  auto all = run("192.0.2.5", dns::kMaxPtrNames, SIZE_MAX);
  CHECK(all.ptr.ok());
  CHECK(all.names == std::vector<std::string>{"b.example", "c.example"});
  CHECK(res.queries == 4);
  auto first = run("192.0.2.5", dns::kMaxPtrNames, 1);  // stops at the first confirmed name
  CHECK(first.names == std::vector<std::string>{"b.example"});
  CHECK(res.queries == 3);
  CHECK(run("192.0.2.5", 1, SIZE_MAX).names.empty());  // only a.example is followed
  CHECK(res.queries == 2);
  auto none = run("192.0.2.6", dns::kMaxPtrNames, SIZE_MAX);
  CHECK(none.ptr.status == dns::Status::NxDomain);
  CHECK(none.names.empty());
  CHECK(res.queries == 1);
  // A forward lookup that failed is reported (a refuted name is not).
  res.fail("a.example", dns::Type::A, dns::Status::TempError);
  auto failed = run("192.0.2.5", dns::kMaxPtrNames, SIZE_MAX);
  CHECK(failed.names == std::vector<std::string>{"b.example", "c.example"});
  CHECK(failed.unverified == std::vector<std::string>{"a.example"});
  CHECK(all.unverified.empty());
}

TEST_CASE("parse_response: the resolver's parser, raw TTLs, nothing kept on error", "[dns]") {
  auto response = [](const std::string& second_rdata) {
    std::string m;
    for (uint16_t v : {0, 0x8180, 1, second_rdata.empty() ? 1 : 2, 1, 0}) put16(m, v);
    m += wire_name("c.test");
    put16(m, 5);
    put16(m, 1);
    auto rr = [&](uint16_t type, uint32_t ttl, const std::string& rdata) {
      m += "\xc0\x0c";
      put16(m, type);
      put16(m, 1);
      put32(m, ttl);
      put16(m, uint16_t(rdata.size()));
      m += rdata;
    };
    rr(5, 300, wire_name("T.test"));
    if (!second_rdata.empty()) rr(5, 300, second_rdata);
    std::string soa = wire_name("ns.test") + wire_name("host.test");
    for (uint32_t v : {1u, 3600u, 600u, 86400u, 45u}) put32(soa, v);
    rr(6, 3600, soa);
    return m;
  };
  auto parse = [](const std::string& m) {
    return dns::parse_response(dns::Type::CNAME, reinterpret_cast<const unsigned char*>(m.data()),
                               int(m.size()));
  };
  dns::Answer ok = parse(response(""));
  CHECK(ok.status == dns::Status::Ok);
  CHECK(ok.records == std::vector<std::string>{"t.test"});
  CHECK(ok.ttl == 300);
  // The second CNAME's target points outside the message: the answer is bad as a whole.
  dns::Answer bad = parse(response(std::string("\xc0\xff", 2)));
  CHECK(bad.status == dns::Status::PermError);
  CHECK(bad.records.empty());
  CHECK(bad.ttl == 0);
}
