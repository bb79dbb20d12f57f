// The SMTP/LMTP client against real servers started here on loopback free ports: Postfix's
// smtp-sink (plain SMTP, pipelining or not, 4xx/5xx injected with -r/-f/-Q, delays with
// -w/-W) and Dovecot LMTP with STARTTLS. Servers are stopped by RAII guards; waits are bounded.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>

#include "digue/delivery.hpp"
#include "tests/unit/delivery_test_support.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace digue::delivery;
using namespace digue::test;
using namespace std::chrono_literals;
using Status = RcptResult::Status;

namespace {

// Runs several deliveries concurrently on one io_context; bounded.
std::vector<std::vector<RcptResult>> run_all(asio::io_context& io, Deliverer& d, const Target& t,
                                             const std::vector<Job>& jobs) {
  std::vector<std::future<std::vector<RcptResult>>> futs;
  for (const auto& j : jobs) futs.push_back(asio::co_spawn(io, d.deliver(t, j), asio::use_future));
  auto end = std::chrono::steady_clock::now() + 30s;
  io.restart();
  auto all_ready = [&] {
    for (auto& f : futs)
      if (f.wait_for(0s) != std::future_status::ready) return false;
    return true;
  };
  while (!all_ready() && std::chrono::steady_clock::now() < end) io.run_one_for(50ms);
  REQUIRE(all_ready());
  std::vector<std::vector<RcptResult>> out;
  for (auto& f : futs) out.push_back(f.get());
  return out;
}

}  // namespace

TEST_CASE("smtp delivery to smtp-sink, pipelined, with dot-stuffing", "[delivery]") {
  Sink sink;
  asio::io_context io;
  Deliverer d(io.get_executor(), quick_options());
  Job job = make_job({"a@example.test", "b@example.test"}, kMessage);
  auto res = run(io, d.deliver(sink.target(), job));
  REQUIRE(res.size() == 2);
  for (const auto& r : res) {
    CHECK(r.status == Status::Delivered);
    CHECK(r.code == 250);
  }
  auto mails = sink.mails();
  REQUIRE(mails.size() == 1);
  auto m = slurp(mails[0]);
  CHECK(m.find("X-Helo-Args: relay.test\n") != std::string::npos);
  CHECK(m.find("X-Mail-Args: <sender@example.org>\n") != std::string::npos);
  CHECK(m.find("X-Rcpt-Args: <a@example.test>\nX-Rcpt-Args: <b@example.test>\n") !=
        std::string::npos);
  // smtp-sink removes the stuffing: what it stores is what we were given.
  CHECK(m.find("Subject: hello\n\n.leading dot\n..two dots\nbody\n") != std::string::npos);

  // A last line without CRLF, and the null sender.
  job = make_job({"a@example.test"}, "Subject: tail\r\n\r\n.no newline at the end");
  job.mail_from = {};
  res = run(io, d.deliver(sink.target(), job));
  REQUIRE(res.size() == 1);
  CHECK(res[0].status == Status::Delivered);
  mails = sink.mails();
  REQUIRE(mails.size() == 2);
  std::string both = slurp(mails[0]) + slurp(mails[1]);
  CHECK(both.find("X-Mail-Args: <>\n") != std::string::npos);
  CHECK(both.find("Subject: tail\n\n.no newline at the end\n") != std::string::npos);
}

TEST_CASE("smtp extensions: HELO fallback, 8BITMIME, SMTPUTF8 refused", "[delivery]") {
  asio::io_context io;
  SECTION("no ESMTP: HELO, no pipelining, no parameters") {
    Sink sink({"-e"});
    Deliverer d(io.get_executor(), quick_options());
    Job job = make_job({"a@example.test", "b@example.test"}, kMessage);
    job.body_8bit = true;
    auto res = run(io, d.deliver(sink.target(), job));
    REQUIRE(res.size() == 2);
    CHECK(res[0].status == Status::Delivered);
    CHECK(res[1].status == Status::Delivered);
    auto mails = sink.mails();
    REQUIRE(mails.size() == 1);
    auto m = slurp(mails[0]);
    CHECK(m.find("X-Client-Proto: SMTP\n") != std::string::npos);
    CHECK(m.find("X-Mail-Args: <sender@example.org>\n") != std::string::npos);
  }
  SECTION("8BITMIME offered: BODY=8BITMIME; SMTPUTF8 not offered: PermFail 5.6.7") {
    Sink sink;
    Deliverer d(io.get_executor(), quick_options());
    Job job = make_job({"a@example.test"}, "Subject: caf\xc3\xa9\r\n\r\nd\xc3\xa9j\xc3\xa0\r\n");
    job.body_8bit = true;
    auto res = run(io, d.deliver(sink.target(), job));
    REQUIRE(res.size() == 1);
    CHECK(res[0].status == Status::Delivered);
    REQUIRE(sink.mails().size() == 1);
    CHECK(slurp(sink.mails()[0]).find("X-Mail-Args: <sender@example.org> BODY=8BITMIME\n") !=
          std::string::npos);
    job.smtputf8 = true;
    res = run(io, d.deliver(sink.target(), job));
    REQUIRE(res.size() == 1);
    CHECK(res[0].status == Status::PermFail);
    CHECK(res[0].enhanced == "5.6.7");
    CHECK(sink.mails().size() == 1);
  }
}

TEST_CASE("smtp connection reuse: two messages, one session", "[delivery]") {
  Sink sink;
  asio::io_context io;
  Deliverer d(io.get_executor(), quick_options());
  for (int i = 0; i < 2; ++i) {
    auto res = run(io, d.deliver(sink.target(), make_job({"a@example.test"}, kMessage)));
    REQUIRE(res.size() == 1);
    CHECK(res[0].status == Status::Delivered);
  }
  auto st = d.stats();
  CHECK(st.connections_opened == 1);
  CHECK(st.connections_reused == 1);
  CHECK(st.transactions == 2);
  run(io, [&]() -> asio::awaitable<int> {
    co_await d.close_idle();
    co_return 0;
  }());
  CHECK(sink.mails().size() == 2);
  // smtp-sink's own counters: one session ended by our QUIT carried both messages (the other
  // session is wait_listening's probe, which sends no QUIT). Without reuse: sess=3 quit=2.
  const std::string expected = "sess=2 quit=1 mesg=2";
  auto end = std::chrono::steady_clock::now() + 5s;
  while (sink.counters() != expected && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(20ms);
  CHECK(sink.counters() == expected);
}

TEST_CASE("smtp pool: stale, reaped and used-up connections", "[delivery]") {
  asio::io_context io;
  Job job = make_job({"a@example.test"}, kMessage);
  SECTION("the server dropped the idle connection: RSET fails, a new one is opened") {
    Sink sink({"-t", "1"});  // smtp-sink hangs up after 1 s without a command
    Deliverer d(io.get_executor(), quick_options());
    CHECK(run(io, d.deliver(sink.target(), job))[0].status == Status::Delivered);
    std::this_thread::sleep_for(1500ms);
    CHECK(run(io, d.deliver(sink.target(), job))[0].status == Status::Delivered);
    CHECK(d.stats().connections_opened == 2);
    CHECK(d.stats().connections_reused == 0);
    CHECK(sink.mails().size() == 2);
  }
  SECTION("idle timeout: the connection is closed with QUIT") {
    Sink sink;
    Options o = quick_options();
    o.idle_timeout = 200ms;
    Deliverer d(io.get_executor(), o);
    CHECK(run(io, d.deliver(sink.target(), job))[0].status == Status::Delivered);
    io.restart();
    io.run_for(1s);  // returns early once the reaper has sent QUIT
    auto end = std::chrono::steady_clock::now() + 5s;
    while (sink.counters().find("quit=1") == std::string::npos &&
           std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(20ms);
    CHECK(sink.counters() == "sess=2 quit=1 mesg=1");
    CHECK(run(io, d.deliver(sink.target(), job))[0].status == Status::Delivered);
    CHECK(d.stats().connections_opened == 2);
  }
  SECTION("max_messages_per_connection") {
    Sink sink;
    Options o = quick_options();
    o.max_messages_per_connection = 1;
    Deliverer d(io.get_executor(), o);
    for (int i = 0; i < 2; ++i)
      CHECK(run(io, d.deliver(sink.target(), job))[0].status == Status::Delivered);
    CHECK(d.stats().connections_opened == 2);
    CHECK(d.stats().connections_reused == 0);
  }
}

TEST_CASE("smtp large message with many dot lines", "[delivery]") {
  Sink sink;
  asio::io_context io;
  Deliverer d(io.get_executor(), quick_options());
  std::string body, body_lf;
  for (int i = 0; body.size() < 1500000; ++i) {
    std::string line = (i % 3 == 0 ? "." : "") + std::string(70, char('a' + i % 26));
    body += line + "\r\n";
    body_lf += line + "\n";
  }
  auto res = run(
      io, d.deliver(sink.target(), make_job({"a@example.test"}, "Subject: big\r\n\r\n" + body)));
  REQUIRE(res.size() == 1);
  CHECK(res[0].status == Status::Delivered);
  REQUIRE(sink.mails().size() == 1);
  auto m = slurp(sink.mails()[0]);
  CHECK(m.find("Subject: big\n\n" + body_lf) != std::string::npos);
}

TEST_CASE("smtp per-recipient and transaction failures from smtp-sink", "[delivery]") {
  asio::io_context io;
  Job job = make_job({"a@example.test", "b@example.test"}, kMessage);
  SECTION("RCPT 4xx: TempFail (no pipelining)") {
    Sink sink({"-r", "RCPT"});
    Deliverer d(io.get_executor(), quick_options());
    auto res = run(io, d.deliver(sink.target(), job));
    REQUIRE(res.size() == 2);
    for (const auto& r : res) {
      CHECK(r.status == Status::TempFail);
      CHECK(r.code == 450);
      CHECK(r.enhanced == "4.3.0");
    }
    for (const auto& m : sink.mails()) CHECK(slurp(m).find("Subject: hello") == std::string::npos);
  }
  SECTION("RCPT 5xx: PermFail") {
    Sink sink({"-f", "RCPT"});
    Deliverer d(io.get_executor(), quick_options());
    auto res = run(io, d.deliver(sink.target(), job));
    REQUIRE(res.size() == 2);
    for (const auto& r : res) {
      CHECK(r.status == Status::PermFail);
      CHECK(r.code == 500);
    }
  }
  SECTION("end of data 5xx: PermFail for every accepted recipient") {
    Sink sink({"-f", "."});
    Deliverer d(io.get_executor(), quick_options());
    auto res = run(io, d.deliver(sink.target(), job));
    REQUIRE(res.size() == 2);
    for (const auto& r : res) CHECK(r.status == Status::PermFail);
  }
  SECTION("421 and disconnect at MAIL: TempFail, and the next delivery reconnects") {
    Sink sink({"-Q", "MAIL"});
    Deliverer d(io.get_executor(), quick_options());
    auto res = run(io, d.deliver(sink.target(), job));
    REQUIRE(res.size() == 2);
    for (const auto& r : res) CHECK(r.status == Status::TempFail);
    res = run(io, d.deliver(sink.target(), job));
    CHECK(res[0].status == Status::TempFail);
    CHECK(d.stats().connections_opened == 2);
    CHECK(d.stats().connections_reused == 0);
  }
  SECTION("server too slow: TempFail saying timeout") {
    // smtp-sink waits 3 s before answering DATA; as it answers pipelined commands in one
    // batch, the wait shows on the MAIL reply.
    Sink sink({"-w", "3"});
    Options o = quick_options();
    o.timeouts.command = o.timeouts.data_init = 500ms;
    Deliverer d(io.get_executor(), o);
    auto res = run(io, d.deliver(sink.target(), job));
    REQUIRE(res.size() == 2);
    for (const auto& r : res) {
      CHECK(r.status == Status::TempFail);
      CHECK(r.text.find("timeout after 500ms") != std::string::npos);
    }
    // The deliverer gave up before the server's late answer: had it waited for it, it would
    // have sent the message (smtp-sink accepts everything once it answers), and smtp-sink's
    // dump of the session would hold it.
    for (const auto& m : sink.mails()) CHECK(slurp(m).find("Subject: hello") == std::string::npos);
  }
  SECTION("TLS required but not offered: TempFail") {
    Sink sink;
    Options o = quick_options();
    o.tls_required = true;
    Deliverer d(io.get_executor(), o);
    auto res = run(io, d.deliver(sink.target(), job));
    REQUIRE(res.size() == 2);
    CHECK(res[0].status == Status::TempFail);
    CHECK(res[0].text.find("STARTTLS") != std::string::npos);
    CHECK(sink.mails().empty());
  }
}

TEST_CASE("smtp connection refused: TempFail", "[delivery]") {
  asio::io_context io;
  Deliverer d(io.get_executor(), quick_options());
  auto port = free_port();
  auto res = run(io, d.deliver(*Target::parse("127.0.0.1:" + std::to_string(port), ""),
                               make_job({"a@example.test", "b@example.test"}, kMessage)));
  REQUIRE(res.size() == 2);
  for (const auto& r : res) {
    CHECK(r.status == Status::TempFail);
    CHECK(r.enhanced == "4.4.1");
    CHECK(r.text.find("refused") != std::string::npos);
  }
}

TEST_CASE("a destination that refused is held unreachable, then probed again", "[delivery]") {
  asio::io_context io;
  Options o = quick_options();
  o.dead_hold = 400ms;
  Deliverer d(io.get_executor(), o);
  auto target = *Target::parse("127.0.0.1:" + std::to_string(free_port()), "");
  auto job = make_job({"a@example.test"}, kMessage);
  auto first = run(io, d.deliver(target, job));
  REQUIRE(first.size() == 1);
  CHECK(first[0].text.find("refused") != std::string::npos);
  // Within the hold: failed at once, without another connection attempt, saying why.
  auto second = run(io, d.deliver(target, job));
  REQUIRE(second.size() == 1);
  CHECK(second[0].status == Status::TempFail);
  CHECK(second[0].enhanced == "4.4.1");
  CHECK(second[0].text.find("held unreachable") != std::string::npos);
  CHECK(second[0].text.find("refused") != std::string::npos);
  CHECK(d.stats().connections_opened == 1);
  CHECK(d.stats().held_unreachable == 1);
  // After the hold the next delivery tries again (and the destination is now up).
  std::this_thread::sleep_for(500ms);
  Sink sink;
  auto third = run(io, d.deliver(sink.target(), job));
  REQUIRE(third.size() == 1);
  CHECK(third[0].status == Status::Delivered);
  auto again = run(io, d.deliver(target, job));
  CHECK(again[0].text.find("held unreachable") == std::string::npos);
  CHECK(d.stats().connections_opened == 3);
}

TEST_CASE("deliveries waiting for a slot fail at once when the destination is found dead",
          "[delivery]") {
  // One slot; the first delivery holds it while its connection attempt times out (a listener
  // that never accepts: the kernel backlog completes the TCP handshake, no greeting comes).
  asio::io_context io;
  asio::ip::tcp::acceptor silent(io, {asio::ip::make_address("127.0.0.1"), 0});
  auto target = *Target::parse("127.0.0.1:" + std::to_string(silent.local_endpoint().port()), "");
  Options o = quick_options();
  o.max_connections = 1;
  o.timeouts.greeting = 500ms;
  o.queue_wait = 30s;
  Deliverer d(io.get_executor(), o);
  std::vector<Job> jobs(3, make_job({"a@example.test"}, kMessage));
  auto all = run_all(io, d, target, jobs);
  REQUIRE(all.size() == 3);
  int held = 0;
  for (const auto& res : all) {
    CHECK(res[0].status == Status::TempFail);
    // Released with the verdict, not left to the 30 s queue wait ("no free connection").
    CHECK(res[0].text.find("no free connection") == std::string::npos);
    held += res[0].text.find("held unreachable") != std::string::npos;
  }
  CHECK(held == 2);
  CHECK(d.stats().connections_opened == 1);
  CHECK(d.stats().held_unreachable == 2);
}

TEST_CASE("smtp per-destination concurrency cap", "[delivery]") {
  Sink sink({"-w", "1"});  // one second before answering each DATA
  asio::io_context io;
  Options o = quick_options();
  o.max_connections = 2;
  Deliverer d(io.get_executor(), o);
  std::vector<Job> jobs(4, make_job({"a@example.test"}, kMessage));
  auto all = run_all(io, d, sink.target(), jobs);
  for (const auto& res : all) {
    REQUIRE(res.size() == 1);
    CHECK(res[0].status == Status::Delivered);
  }
  // Four slow transactions started at once: two ran side by side (peak 2: the cap is used,
  // not one at a time) and the other two waited for those connections (reused, never a
  // third: the cap holds).
  auto st = d.stats();
  CHECK(st.peak_active == 2);
  CHECK(st.connections_opened == 2);
  CHECK(st.connections_reused == 2);
  CHECK(sink.mails().size() == 4);
  // The server's view: besides wait_listening's probe, exactly two sessions carried the
  // four messages, each ended by our QUIT.
  run(io, [&]() -> asio::awaitable<int> {
    co_await d.close_idle();
    co_return 0;
  }());
  const std::string expected = "sess=3 quit=2 mesg=4";
  auto end = std::chrono::steady_clock::now() + 5s;
  while (sink.counters() != expected && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(20ms);
  CHECK(sink.counters() == expected);
}

TEST_CASE("one deliverer shared by two threads honours the cap", "[delivery]") {
  Sink sink;
  asio::io_context io1, io2;
  auto guard1 = asio::make_work_guard(io1);
  auto guard2 = asio::make_work_guard(io2);
  std::thread t1([&] { io1.run(); });
  std::thread t2([&] { io2.run(); });
  Options o = quick_options();
  o.max_connections = 1;
  {
    Deliverer d(io1.get_executor(), o);
    std::vector<std::future<std::vector<RcptResult>>> futs;
    for (int i = 0; i < 6; ++i) {
      auto& io = i % 2 ? io2 : io1;
      futs.push_back(asio::co_spawn(
          io, d.deliver(sink.target(), make_job({"a@example.test"}, kMessage)), asio::use_future));
    }
    for (auto& f : futs) {
      REQUIRE(f.wait_for(30s) == std::future_status::ready);
      auto res = f.get();
      REQUIRE(res.size() == 1);
      CHECK(res[0].status == Status::Delivered);
    }
    auto st = d.stats();
    CHECK(st.peak_active == 1);
    CHECK(st.connections_opened == 1);
    CHECK(st.connections_reused == 5);
  }
  guard1.reset();
  guard2.reset();
  io1.stop();
  io2.stop();
  t1.join();
  t2.join();
  CHECK(sink.mails().size() == 6);
}

TEST_CASE("smtp queue wait for a connection slot runs out: TempFail", "[delivery]") {
  Sink sink({"-w", "1"});
  asio::io_context io;
  Options o = quick_options();
  o.max_connections = 1;
  o.queue_wait = 300ms;
  Deliverer d(io.get_executor(), o);
  std::vector<Job> jobs(2, make_job({"a@example.test"}, kMessage));
  auto all = run_all(io, d, sink.target(), jobs);
  REQUIRE(all.size() == 2);
  CHECK(all[0][0].status == Status::Delivered);
  CHECK(all[1][0].status == Status::TempFail);
  CHECK(all[1][0].text.find("no free connection") != std::string::npos);
  CHECK(d.stats().connections_opened == 1);
}

TEST_CASE("lmtp delivery to dovecot with STARTTLS", "[delivery]") {
  Dovecot dovecot(true);
  INFO(dovecot.log());
  asio::io_context io;
  Options o = quick_options();
  o.lmtp_folder_delimiter = "+";
  Deliverer d(io.get_executor(), o);
  Job job = make_job({"alice@example.test", "carol@example.test", "bob@example.test"}, kMessage);
  auto res = run(io, d.deliver(dovecot.target(), job));
  REQUIRE(res.size() == 3);
  CHECK(res[0].status == Status::Delivered);
  CHECK(res[1].status == Status::PermFail);
  CHECK(res[1].code == 550);
  CHECK(res[1].enhanced == "5.1.1");
  CHECK(res[2].status == Status::Delivered);
  CHECK(d.stats().tls_connections == 1);
  auto alice = dovecot.mails("alice");
  REQUIRE(alice.size() == 1);
  auto m = slurp(alice[0]);
  CHECK(m.find("Subject: hello\n\n.leading dot\n..two dots\nbody\n") != std::string::npos);
  CHECK(dovecot.mails("bob").size() == 1);

  job = make_job({"alice@example.test"}, kMessage);
  job.folder = "Junk";
  res = run(io, d.deliver(dovecot.target(), job));
  REQUIRE(res.size() == 1);
  CHECK(res[0].status == Status::Delivered);
  CHECK(dovecot.mails("alice", ".Junk").size() == 1);
  CHECK(dovecot.mails("alice").size() == 1);
  CHECK(d.stats().connections_reused == 1);
}

TEST_CASE("lmtp STARTTLS with verification against a self-signed certificate", "[delivery]") {
  Dovecot dovecot(true);
  asio::io_context io;
  Options o = quick_options();
  o.tls_verify = true;
  Job job = make_job({"alice@example.test"}, kMessage);
  SECTION("opportunistic: falls back to plain text") {
    Deliverer d(io.get_executor(), o);
    auto res = run(io, d.deliver(dovecot.target(), job));
    REQUIRE(res.size() == 1);
    CHECK(res[0].status == Status::Delivered);
    CHECK(d.stats().tls_connections == 0);
  }
  SECTION("required: TempFail") {
    o.tls_required = true;
    Deliverer d(io.get_executor(), o);
    auto res = run(io, d.deliver(dovecot.target(), job));
    REQUIRE(res.size() == 1);
    CHECK(res[0].status == Status::TempFail);
    CHECK(res[0].text.find("TLS handshake") != std::string::npos);
    CHECK(dovecot.mails("alice").empty());
  }
}

TEST_CASE("per-destination TLS policy over the deliverer's defaults", "[delivery]") {
  Dovecot dovecot(true);  // LMTP with STARTTLS, a self-signed certificate
  INFO(dovecot.log());
  asio::io_context io;
  Job job = make_job({"alice@example.test"}, kMessage);
  Deliverer d(io.get_executor(), quick_options());  // opportunistic, no verification
  auto with = [&](TlsPolicy p) {
    Target t = dovecot.target();
    t.tls = p;
    return run(io, d.deliver(t, job));
  };
  SECTION("none: plain text although STARTTLS is offered") {
    auto res = with(TlsPolicy::None);
    CHECK(res[0].status == Status::Delivered);
    CHECK(d.stats().tls_connections == 0);
  }
  SECTION("encrypt: TLS, certificate not checked") {
    auto res = with(TlsPolicy::Encrypt);
    CHECK(res[0].status == Status::Delivered);
    CHECK(d.stats().tls_connections == 1);
  }
  SECTION("verify: a self-signed certificate is refused, no plain-text fallback") {
    auto res = with(TlsPolicy::Verify);
    CHECK(res[0].status == Status::TempFail);
    CHECK(res[0].text.find("TLS handshake") != std::string::npos);
    CHECK(dovecot.mails("alice").empty());
  }
  SECTION("encrypt against a server without STARTTLS: TempFail") {
    Sink sink;
    Target t = sink.target();
    t.tls = TlsPolicy::Encrypt;
    auto res = run(io, d.deliver(t, job));
    CHECK(res[0].status == Status::TempFail);
    CHECK(res[0].text.find("TLS is required") != std::string::npos);
    CHECK(sink.mails().empty());
  }
}
