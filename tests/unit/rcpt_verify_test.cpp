// Recipient verification: the config keys, the static list, the replies, and callouts to a
// real smtp-sink on loopback (accepted, refused with -f RCPT, cached, unreachable, silent).
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "digue/config.hpp"
#include "digue/rcpt_verify.hpp"
#include "digue/recipient_list.hpp"
#include "digue/store.hpp"
#include "tests/unit/delivery_test_support.hpp"

namespace asio = boost::asio;
using namespace digue;
using namespace digue::test;
using Status = VerifyResult::Status;
using Source = VerifyResult::Source;

namespace {

std::shared_ptr<const Config> domain_config(const std::string& keys) {
  return parse_config("[domains.\"example.test\"]\n" + keys, "t.toml");
}

void check_refused(const std::string& keys, const std::string& key, int line) {
  INFO(keys);
  try {
    domain_config(keys);
    FAIL("accepted");
  } catch (const ConfigError& e) {
    CHECK(e.key == "domains.\"example.test\"." + key);
    CHECK(e.line == line);
  }
}

Address addr(const std::string& a) {
  auto at = a.find('@');
  return {a.substr(0, at), a.substr(at + 1)};
}

std::string sink_config(const Sink& sink, const std::string& extra = "") {
  return "downstream = [\"127.0.0.1:" + std::to_string(sink.port) +
         "\"]\nverify_recipients = \"callout\"\nverify_timeout = 5\n" + extra;
}

VerifyResult verify(asio::io_context& io, RecipientVerifier& v, const Config& c,
                    const std::string& rcpt) {
  const DomainPolicy& p = *c.domain("example.test");
  return run(io, v.check(c, p, addr(rcpt), "test"));
}

// The first check of `first` makes a callout answering `want`; the second, of the same
// address written `again`, is answered from the cache.
void check_callout_then_cache(asio::io_context& io, RecipientVerifier& v, const Config& c,
                              const std::string& first, const std::string& again, Status want) {
  auto r = verify(io, v, c, first);
  CHECK(r.status == want);
  CHECK(r.source == Source::Callout);
  r = verify(io, v, c, again);
  CHECK(r.status == want);
  CHECK(r.source == Source::Cache);
  CHECK(v.stats().callouts == 1);
}

// A verifier over a memory store, for the checks of one test case.
struct Verifying {
  asio::io_context io;
  std::unique_ptr<Store> store = make_memory_store();
  RecipientVerifier v{store.get()};
};

}  // namespace

TEST_CASE("rcpt verify config: defaults leave existing setups unchanged", "[rcpt_verify]") {
  auto c = domain_config("downstream = [\"127.0.0.1:2526\"]\n");
  const auto& v = c->domain("example.test")->verify;
  CHECK(v.mode == RecipientVerification::Mode::Off);
  CHECK_FALSE(v.tempfail_accept);
  CHECK(v.timeout == std::chrono::seconds(10));
  CHECK(v.positive_ttl == std::chrono::seconds(7 * 86400));
  CHECK(v.negative_ttl == std::chrono::seconds(3 * 3600));
  CHECK(v.list == nullptr);
  CHECK(v.max_callouts_per_session == 20);
  CHECK(v.max_callouts_per_client == 100);
  CHECK(v.callout_window == std::chrono::seconds(600));
}

TEST_CASE("rcpt verify config: keys and their errors", "[rcpt_verify]") {
  auto c = domain_config(
      "verify_recipients = \"callout\"\nverify_tempfail = \"accept\"\nverify_timeout = 3\n"
      "verify_positive_ttl = 600\nverify_negative_ttl = 60\n");
  const auto& v = c->domain("example.test")->verify;
  CHECK(v.mode == RecipientVerification::Mode::Callout);
  CHECK(v.tempfail_accept);
  CHECK(v.timeout == std::chrono::seconds(3));
  CHECK(v.positive_ttl == std::chrono::seconds(600));
  CHECK(v.negative_ttl == std::chrono::seconds(60));
  check_refused("downstream = [\"maildir\"]\nverify_recipients = \"yes\"\n", "verify_recipients",
                3);
  check_refused("verify_tempfail = \"bounce\"\n", "verify_tempfail", 2);
  check_refused("verify_timeout = 0\n", "verify_timeout", 2);
  check_refused("verify_negative_ttl = \"3h\"\n", "verify_negative_ttl", 2);
  check_refused("recipients = \"/nonexistent/digue-recipients\"\n", "recipients", 2);
}

TEST_CASE("rcpt verify config: the callout limits and their errors", "[rcpt_verify]") {
  auto c = domain_config(
      "max_callouts_per_session = 5\nmax_callouts_per_client = 50\ncallout_window = 60\n");
  const auto& v = c->domain("example.test")->verify;
  CHECK(v.max_callouts_per_session == 5);
  CHECK(v.max_callouts_per_client == 50);
  CHECK(v.callout_window == std::chrono::seconds(60));
  check_refused("downstream = [\"maildir\"]\nmax_callouts_per_session = 0\n",
                "max_callouts_per_session", 3);
  check_refused("max_callouts_per_session = \"20\"\n", "max_callouts_per_session", 2);
  check_refused("max_callouts_per_client = -1\n", "max_callouts_per_client", 2);
  check_refused("callout_window = 0\n", "callout_window", 2);
  check_refused("callout_window = 86401\n", "callout_window", 2);
  check_refused("callout_window = \"10m\"\n", "callout_window", 2);
}

TEST_CASE("rcpt verify config: the recipient list file is loaded with the config",
          "[rcpt_verify]") {
  TempDir dir;
  auto path = (dir.path / "rcpts").string();
  std::ofstream(path) << "# users\nalice@example.test\n  Bob  \n\n@catchall.test\n";
  auto c = domain_config("recipients = \"" + path + "\"\n");
  const auto& v = c->domain("example.test")->verify;
  REQUIRE(v.list);
  CHECK(v.list_path == path);
  CHECK(v.list->size() == 3);
  std::ofstream(path) << "alice@example.test\nbad entry\n";
  try {
    domain_config("\nrecipients = \"" + path + "\"\n");
    FAIL("accepted");
  } catch (const ConfigError& e) {
    CHECK(e.key == "domains.\"example.test\".recipients");
    CHECK(e.line == 3);
    CHECK(std::string(e.what()).find(path + ":2:") != std::string::npos);
  }
}

TEST_CASE("recipient list: addresses, catch-all domains and local parts", "[rcpt_verify]") {
  auto l = RecipientList::parse("Alice@Example.test\r\n@catchall.test\nbob\n# carol\n");
  CHECK(l->contains(addr("alice@example.test")));
  CHECK(l->contains(addr("ALICE@example.test")));
  CHECK_FALSE(l->contains(addr("alice@other.test")));
  CHECK(l->contains(addr("anyone@catchall.test")));
  CHECK(l->contains(addr("bob@example.test")));
  CHECK(l->contains(addr("Bob@other.test")));
  CHECK_FALSE(l->contains(addr("carol@example.test")));
  CHECK_FALSE(l->contains(addr("mallory@example.test")));
  CHECK_THROWS_AS(RecipientList::parse("a@"), std::invalid_argument);
  CHECK_THROWS_AS(RecipientList::parse("ok\n<a@b>"), std::invalid_argument);
  CHECK(RecipientList::parse("")->size() == 0);
  // An IDN domain is one domain in either spelling, as the hosted-domain lookup has it.
  auto idn = RecipientList::parse("@b\xc3\xbc" "cher.test\nuser@xn--mnchen-3ya.test\n");
  CHECK(idn->contains(addr("anyone@xn--bcher-kva.test")));
  CHECK(idn->contains(addr("anyone@B\xc3\xbc" "cher.test")));
  CHECK(idn->contains(addr("user@m\xc3\xbc" "nchen.test")));
  CHECK_FALSE(idn->contains(addr("other@m\xc3\xbc" "nchen.test")));
}

TEST_CASE("rcpt verify replies: 550 5.1.1, 450 4.1.1 or accept", "[rcpt_verify]") {
  RecipientVerification v;
  Address a = addr("user@example.test");
  VerifyResult r;
  CHECK_FALSE(verify_reply(v, a, r));
  r.status = Status::Rejected;
  r.text = "5.1.1 Unknown user";
  auto rej = verify_reply(v, a, r);
  REQUIRE(rej);
  CHECK(rej->code == 550);
  CHECK(rej->enhanced == "5.1.1");
  CHECK(rej->lines[0].find("Unknown user") != std::string::npos);
  r.status = Status::TempFail;
  auto temp = verify_reply(v, a, r);
  REQUIRE(temp);
  CHECK(temp->code == 450);
  CHECK(temp->enhanced == "4.1.1");
  v.tempfail_accept = true;
  CHECK_FALSE(verify_reply(v, a, r));
  CHECK(sanitize_reply_text("a\r\nb\x01\xc3\xa9", 5) == "a??b?");
}

TEST_CASE_METHOD(Verifying, "rcpt verify: static list before the callout, postmaster always", "[rcpt_verify]") {
  TempDir dir;
  auto path = (dir.path / "rcpts").string();
  std::ofstream(path) << "alice\n";
  // The callout target is closed: a callout would tempfail, never reject or accept.
  auto c = domain_config("downstream = [\"127.0.0.1:" + std::to_string(free_port()) +
                         "\"]\nrecipients = \"" + path + "\"\n");
  auto r = verify(io, v, *c, "mallory@example.test");
  CHECK(r.status == Status::Rejected);
  CHECK(r.source == Source::List);
  CHECK(verify(io, v, *c, "alice@example.test").status == Status::Accepted);
  CHECK(verify(io, v, *c, "Postmaster@example.test").source == Source::Postmaster);
  CHECK(v.stats().callouts == 0);
  CHECK(v.stats().rejected == 1);
}

TEST_CASE_METHOD(Verifying, "rcpt verify callout: accepted, cached, refused and cached negatively",
          "[rcpt_verify]") {
  SECTION("accepted, then from the cache without a second callout") {
    Sink sink;
    auto c = domain_config(sink_config(sink));
    check_callout_then_cache(io, v, *c, "user@example.test", "USER@example.test",
                             Status::Accepted);
    CHECK(v.stats().cache_hits == 1);
    CHECK(v.stats().verified == 2);
    // A local part too long for a cache key: verified each time, never a store error.
    std::string huge(300, 'x');
    huge += std::string(300, 'y') + "@example.test";
    CHECK(verify(io, v, *c, huge).source == Source::Callout);
    CHECK(verify(io, v, *c, huge).source == Source::Callout);
    CHECK(v.stats().store_errors == 0);
    // Never DATA: smtp-sink opens its dump file at MAIL (our QUIT may still be on its way)
    // and writes into it only what DATA brings.
    for (const auto& m : sink.mails()) CHECK(slurp(m).empty());
  }
  SECTION("5xx to RCPT: refused and cached") {
    Sink sink({"-f", "RCPT"});
    auto c = domain_config(sink_config(sink));
    check_callout_then_cache(io, v, *c, "nobody@example.test", "nobody@example.test",
                             Status::Rejected);
    CHECK(v.stats().rejected == 2);
  }
  SECTION("4xx to RCPT: tempfail, not cached") {
    Sink sink({"-r", "RCPT"});
    auto c = domain_config(sink_config(sink));
    CHECK(verify(io, v, *c, "user@example.test").status == Status::TempFail);
    CHECK(verify(io, v, *c, "user@example.test").status == Status::TempFail);
    CHECK(v.stats().callouts == 2);
    CHECK(v.stats().tempfailed == 2);
  }
  SECTION("a downstream that refuses connections is held: no callout per RCPT") {
    unsigned short port;
    {
      asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
      port = a.local_endpoint().port();
    }  // closed: connections to it are refused at once
    auto c = domain_config("downstream = [\"127.0.0.1:" + std::to_string(port) +
                           "\"]\nverify_recipients = \"callout\"\nverify_timeout = 5\n");
    CHECK(verify(io, v, *c, "a@example.test").status == Status::TempFail);
    auto held = verify(io, v, *c, "b@example.test");
    CHECK(held.status == Status::TempFail);
    CHECK(held.text.find("held") != std::string::npos);
    CHECK(v.stats().callouts == 1);
    CHECK(v.stats().held == 1);
    CHECK(v.stats().tempfailed == 2);
    // Another domain's downstream is not held with it.
    Sink sink;
    auto other = domain_config(sink_config(sink));
    CHECK(verify(io, v, *other, "a@example.test").status == Status::Accepted);
  }
  SECTION("5xx to MAIL FROM:<>: tempfail (says nothing about the recipient)") {
    Sink sink({"-f", "MAIL"});
    auto c = domain_config(sink_config(sink));
    CHECK(verify(io, v, *c, "user@example.test").status == Status::TempFail);
  }
}

TEST_CASE_METHOD(Verifying, "rcpt verify callout over LMTP: Dovecot knows alice, not mallory", "[rcpt_verify]") {
  Dovecot dovecot(false);
  auto c = domain_config("downstream = [\"lmtp:127.0.0.1:" + std::to_string(dovecot.port) +
                         "\"]\nverify_recipients = \"callout\"\nverify_timeout = 5\n");
  auto alice = verify(io, v, *c, "alice@example.test");
  CHECK(alice.status == Status::Accepted);
  auto mallory = verify(io, v, *c, "mallory@example.test");
  CHECK(mallory.status == Status::Rejected);
  INFO(mallory.text);
  auto reply = verify_reply(c->domain("example.test")->verify, addr("mallory@example.test"),
                            mallory);
  REQUIRE(reply);
  CHECK(reply->code == 550);
  CHECK(dovecot.mails("alice").empty());  // never DATA (Dovecot writes on delivery only)
}

TEST_CASE_METHOD(Verifying, "rcpt verify callout: the domain's downstream TLS policy applies", "[rcpt_verify]") {
  SECTION("encrypt: STARTTLS with Dovecot") {
    Dovecot dovecot(true);
    auto c = domain_config("downstream = [\"lmtp:127.0.0.1:" + std::to_string(dovecot.port) +
                           "\"]\nverify_recipients = \"callout\"\ntls = \"encrypt\"\n");
    CHECK(verify(io, v, *c, "alice@example.test").status == Status::Accepted);
    CHECK(verify(io, v, *c, "mallory@example.test").status == Status::Rejected);
  }
  SECTION("encrypt: a downstream without STARTTLS is not asked in clear text") {
    Sink sink;
    auto c = domain_config(sink_config(sink, "tls = \"encrypt\"\n"));
    auto r = verify(io, v, *c, "user@example.test");
    CHECK(r.status == Status::TempFail);
    INFO(r.text);
    CHECK(r.text.find("STARTTLS") != std::string::npos);
  }
}

TEST_CASE_METHOD(Verifying, "rcpt verify callout: the first reachable downstream; none: tempfail",
          "[rcpt_verify]") {
  auto dead = std::to_string(free_port());
  SECTION("refused, then a sink") {
    Sink sink({"-f", "RCPT"});
    auto c = domain_config("downstream = [\"127.0.0.1:" + dead + "\", \"127.0.0.1:" +
                           std::to_string(sink.port) + "\"]\nverify_recipients = \"callout\"\n");
    CHECK(verify(io, v, *c, "user@example.test").status == Status::Rejected);
  }
  SECTION("refused, then maildir: accepted") {
    auto c = domain_config("downstream = [\"127.0.0.1:" + dead +
                           "\", \"maildir\"]\nverify_recipients = \"callout\"\n");
    CHECK(verify(io, v, *c, "user@example.test").status == Status::Accepted);
  }
  SECTION("only refused: tempfail, nothing cached") {
    auto c = domain_config("downstream = [\"127.0.0.1:" + dead +
                           "\"]\nverify_recipients = \"callout\"\n");
    CHECK(verify(io, v, *c, "user@example.test").status == Status::TempFail);
    CHECK(verify(io, v, *c, "user@example.test").status == Status::TempFail);
    CHECK(v.stats().cache_hits == 0);
  }
  SECTION("a downstream that never greets: tempfail after verify_timeout") {
    uint16_t port = 0;
    int fd = loopback_socket(SOCK_STREAM, port);
    REQUIRE(::listen(fd, 8) == 0);
    auto c = domain_config("downstream = [\"127.0.0.1:" + std::to_string(port) +
                           "\"]\nverify_recipients = \"callout\"\nverify_timeout = 1\n");
    auto r = verify(io, v, *c, "user@example.test");
    ::close(fd);
    CHECK(r.status == Status::TempFail);
  }
}

TEST_CASE_METHOD(Verifying, "rcpt verify callout: concurrent checks of one address share one probe",
          "[rcpt_verify]") {
  Sink sink({"-W", "RCPT:1"});  // a slow RCPT reply keeps the first probe in flight
  auto c = domain_config(sink_config(sink));
  const DomainPolicy& p = *c->domain("example.test");
  auto a = addr("user@example.test");
  auto f1 = asio::co_spawn(io, v.check(*c, p, a, "test"), asio::use_future);
  auto f2 = asio::co_spawn(io, v.check(*c, p, a, "test"), asio::use_future);
  auto end = std::chrono::steady_clock::now() + 30s;
  while ((f1.wait_for(0s) != std::future_status::ready ||
          f2.wait_for(0s) != std::future_status::ready) &&
         std::chrono::steady_clock::now() < end)
    io.run_one_for(50ms);
  REQUIRE(f1.wait_for(0s) == std::future_status::ready);
  REQUIRE(f2.wait_for(0s) == std::future_status::ready);
  auto r1 = f1.get(), r2 = f2.get();
  CHECK(r1.status == Status::Accepted);
  CHECK(r2.status == Status::Accepted);
  CHECK(r1.text == r2.text);  // the waiter gets the leader's whole answer
  CHECK(v.stats().callouts == 1);
}

TEST_CASE_METHOD(Verifying, "rcpt verify callout: a session's callouts are bounded, cache hits are free",
          "[rcpt_verify]") {
  Sink sink({"-f", "RCPT"});  // every address unknown: a dictionary attack's view
  auto c = domain_config(sink_config(sink, "max_callouts_per_session = 2\n"));
  const DomainPolicy& p = *c->domain("example.test");
  int made = 0;
  auto check = [&](const std::string& a) { return run(io, v.check(*c, p, addr(a), "t", &made)); };
  CHECK(check("a1@example.test").status == Status::Rejected);
  CHECK(check("a2@example.test").status == Status::Rejected);
  auto limited = check("a3@example.test");
  CHECK(limited.status == Status::TempFail);
  CHECK(limited.source == Source::Limit);
  CHECK(check("a1@example.test").source == Source::Cache);  // known: answered, no callout
  CHECK(v.stats().callouts == 2);
  CHECK(v.stats().limited == 1);
  CHECK(made == 2);
  // Never accepted unverified, even where a failed verification would be.
  RecipientVerification lenient;
  lenient.tempfail_accept = true;
  auto reply = verify_reply(lenient, addr("a3@example.test"), limited);
  REQUIRE(reply);
  CHECK(reply->code == 450);
}

TEST_CASE("rcpt verify config: recipient_delimiter", "[rcpt_verify]") {
  CHECK(domain_config("")->domain("example.test")->verify.delimiter.empty());
  CHECK(domain_config("recipient_delimiter = \"+-\"\n")->domain("example.test")->verify.delimiter ==
        "+-");
  // '@', a letter, a space, more than 8, not a string.
  for (const char* bad : {"\"@\"", "\"+a\"", "\"+ \"", "\"+-_=.~!#$\"", "1"})
    check_refused("\nrecipient_delimiter = " + std::string(bad) + "\n", "recipient_delimiter", 3);
}

TEST_CASE("recipient list: user+tag is user when user+tag itself is not listed",
          "[rcpt_verify]") {
  CHECK(strip_extension("user+tag", "+") == "user");
  CHECK(strip_extension("user-a+b", "+-") == "user");
  CHECK(strip_extension("user+tag", "") == std::nullopt);
  CHECK(strip_extension("user", "+") == std::nullopt);
  CHECK(strip_extension("+tag", "+") == std::nullopt);
  CHECK(strip_extension("\"user+tag\"", "+") == std::nullopt);
  auto l = RecipientList::parse("alice\nbob+lists@example.test\n");
  CHECK(l->contains(addr("Alice+News@example.test"), "+"));
  CHECK_FALSE(l->contains(addr("alice+news@example.test")));
  CHECK_FALSE(l->contains(addr("alice-news@example.test"), "+"));
  CHECK(l->contains(addr("bob+lists@example.test"), "+"));  // the address as given first
  CHECK_FALSE(l->contains(addr("bob+other@example.test"), "+"));
  CHECK_FALSE(l->contains(addr("bob@example.test"), "+"));
}

TEST_CASE_METHOD(Verifying, "rcpt verify: recipient_delimiter in the static list and the cache",
                 "[rcpt_verify]") {
  SECTION("the static list") {
    TempDir dir;
    std::ofstream(dir.path / "rcpts") << "alice\n";
    auto keys = "downstream = [\"maildir\"]\nrecipients = \"" + (dir.path / "rcpts").string() +
                "\"\n";
    CHECK(verify(io, v, *domain_config(keys), "alice+x@example.test").status ==
          Status::Rejected);
    auto c = domain_config(keys + "recipient_delimiter = \"+\"\n");
    auto r = verify(io, v, *c, "alice+x@example.test");
    CHECK(r.status == Status::Accepted);
    CHECK(r.source == Source::List);
    CHECK(verify(io, v, *c, "mallory+x@example.test").status == Status::Rejected);
  }
  SECTION("the cache: user answers for user+tag; the address as given first") {
    Sink sink({"-f", "RCPT"});  // a callout would refuse
    auto c = domain_config(sink_config(sink, "recipient_delimiter = \"+\"\n"));
    store->put(verify_cache_key("example.test", "user"), "1");
    store->put(verify_cache_key("example.test", "user+blocked"), "0 5.1.1 no");
    auto r = verify(io, v, *c, "User+News@example.test");
    CHECK(r.status == Status::Accepted);
    CHECK(r.source == Source::Cache);
    r = verify(io, v, *c, "user+blocked@example.test");
    CHECK(r.status == Status::Rejected);
    CHECK(r.source == Source::Cache);
    CHECK(v.stats().callouts == 0);
    // Not cached in either form: the callout probes the address as given, cached under it.
    r = verify(io, v, *c, "other+tag@example.test");
    CHECK(r.status == Status::Rejected);
    CHECK(r.source == Source::Callout);
    CHECK(store->get(verify_cache_key("example.test", "other+tag")));
    CHECK_FALSE(store->get(verify_cache_key("example.test", "other")));
    CHECK(verify(io, v, *c, "other+tag@example.test").source == Source::Cache);
    CHECK(v.stats().callouts == 1);
  }
  SECTION("one client's callouts are bounded across its sessions, as configured") {
    Sink sink;
    auto c = domain_config(sink_config(sink, "max_callouts_per_client = 3\n"));
    const DomainPolicy& p = *c->domain("example.test");
    auto from = [&](const std::string& local, const std::string& client) {
      int fresh_session = 0;  // a new connection each time
      return run(io, v.check(*c, p, addr(local + "@example.test"), "t", &fresh_session, client));
    };
    for (int i = 0; i < 3; ++i)
      REQUIRE(from("u" + std::to_string(i), "192.0.2.1").status == Status::Accepted);
    auto over = from("one-more", "192.0.2.1");
    CHECK(over.status == Status::TempFail);
    CHECK(over.source == Source::Limit);
    CHECK(from("u0", "192.0.2.1").source == Source::Cache);  // the cache stays free
    CHECK(from("one-more", "192.0.2.2").status == Status::Accepted);  // another client
    CHECK(v.stats().callouts == 4);
    CHECK(v.stats().limited == 1);
  }
  SECTION("a client's allowance is renewed after callout_window") {
    Sink sink;
    auto c = domain_config(sink_config(sink, "max_callouts_per_client = 1\ncallout_window = 2\n"));
    const DomainPolicy& p = *c->domain("example.test");
    auto from = [&](const std::string& local) {
      return run(io, v.check(*c, p, addr(local + "@example.test"), "t", nullptr, "192.0.2.1"));
    };
    CHECK(from("w1").source == Source::Callout);
    CHECK(from("w2").source == Source::Limit);
    std::this_thread::sleep_for(std::chrono::milliseconds(2100));
    CHECK(from("w2").source == Source::Callout);
    CHECK(v.stats().callouts == 2);
  }
  SECTION("a domain with a shorter callout_window does not renew a longer one's bound") {
    Sink sink;
    auto longer = domain_config(sink_config(sink, "max_callouts_per_client = 2\n"));
    auto shorter = domain_config(
        sink_config(sink, "max_callouts_per_client = 2\ncallout_window = 1\n"));
    auto from = [&](const std::shared_ptr<const Config>& c, const std::string& local) {
      return run(io, v.check(*c, *c->domain("example.test"), addr(local + "@example.test"), "t",
                             nullptr, "192.0.2.1"));
    };
    CHECK(from(longer, "l1").source == Source::Callout);
    CHECK(from(longer, "l2").source == Source::Callout);
    CHECK(from(longer, "l3").source == Source::Limit);
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    // The window that began under the 600 s domain still runs, for both domains.
    CHECK(from(shorter, "s1").source == Source::Limit);
    CHECK(from(longer, "l4").source == Source::Limit);
    CHECK(v.stats().callouts == 2);
  }
  SECTION("postmaster+tag is postmaster, with a delimiter only") {
    Sink sink({"-f", "RCPT"});  // a callout would refuse
    auto c = domain_config(sink_config(sink, "recipient_delimiter = \"+\"\n"));
    CHECK(verify(io, v, *c, "Postmaster+abuse@example.test").source == Source::Postmaster);
    auto plain = domain_config(sink_config(sink));
    CHECK(verify(io, v, *plain, "postmaster+abuse@example.test").status == Status::Rejected);
    CHECK(v.stats().callouts == 1);
  }
  SECTION("a refused user does not refuse user-eu: that address is asked itself") {
    Sink sink;  // the downstream has the mailbox sales-eu
    auto c = domain_config(sink_config(sink, "recipient_delimiter = \"-\"\n"));
    store->put(verify_cache_key("example.test", "sales"), "0 5.1.1 no");
    auto r = verify(io, v, *c, "sales-eu@example.test");
    CHECK(r.status == Status::Accepted);
    CHECK(r.source == Source::Callout);
    CHECK(v.stats().callouts == 1);
  }
  SECTION("without a delimiter user+tag is its own address") {
    Sink sink({"-f", "RCPT"});
    auto c = domain_config(sink_config(sink));
    store->put(verify_cache_key("example.test", "user"), "1");
    auto r = verify(io, v, *c, "user+news@example.test");
    CHECK(r.status == Status::Rejected);
    CHECK(r.source == Source::Callout);
  }
}
