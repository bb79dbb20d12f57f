// Delivery layer tests without a network server: targets, dot-stuffing, replies, DSN, Maildir.
// The SMTP/LMTP client against real servers is in delivery_server_test.cpp.
#include "digue/delivery.hpp"

#include <boost/asio/thread_pool.hpp>
#include <catch2/catch.hpp>

#include "src/delivery_protocol.hpp"
#include "tests/unit/delivery_test_support.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace digue::delivery;
using namespace std::chrono_literals;
using Status = RcptResult::Status;
using namespace digue::test;

TEST_CASE("target parse", "[delivery]") {
  auto t = Target::parse("mx.Example.NET", "/var/mail");
  REQUIRE(t);
  CHECK(t->kind == Target::Kind::Smtp);
  CHECK(t->host == "mx.example.net");
  CHECK(t->port == 25);
  CHECK(t->key() == "smtp:mx.example.net:25");
  t = Target::parse("10.0.0.5:2525", "");
  REQUIRE(t);
  CHECK(t->host == "10.0.0.5");
  CHECK(t->port == 2525);
  t = Target::parse("[::1]:26", "");
  REQUIRE(t);
  CHECK(t->host == "::1");
  CHECK(t->port == 26);
  CHECK(t->key() == "smtp:[::1]:26");
  t = Target::parse("2001:db8::1", "");
  REQUIRE(t);
  CHECK(t->host == "2001:db8::1");
  CHECK(t->port == 25);
  t = Target::parse("lmtp:127.0.0.1:24024", "");
  REQUIRE(t);
  CHECK(t->kind == Target::Kind::Lmtp);
  CHECK(t->key() == "lmtp:127.0.0.1:24024");
  t = Target::parse("lmtp:[::1]:2424", "");
  REQUIRE(t);
  CHECK(t->host == "::1");
  t = Target::parse("maildir:/srv/mail/", "/var/mail");
  REQUIRE(t);
  CHECK(t->kind == Target::Kind::Maildir);
  CHECK(t->path == "/srv/mail");
  t = Target::parse("maildir", "/var/mail");
  REQUIRE(t);
  CHECK(t->path == "/var/mail");
  CHECK(t->key() == "maildir:/var/mail");
  CHECK(!Target::parse("maildir", ""));
  // A host whose name starts with "maildir" is a host.
  t = Target::parse("maildir1.corp:2525", "/var/mail");
  REQUIRE(t);
  CHECK(t->kind == Target::Kind::Smtp);
  CHECK(t->host == "maildir1.corp");
  CHECK(t->port == 2525);
  t = Target::parse("smtp:maildir", "/var/mail");
  REQUIRE(t);
  CHECK(t->kind == Target::Kind::Smtp);
  CHECK(!Target::parse("", ""));
  CHECK(!Target::parse("host:0", ""));
  CHECK(!Target::parse("host:70000", ""));
  CHECK(!Target::parse("host:", ""));
  CHECK(!Target::parse("[::1", ""));
  CHECK(!Target::parse("[nothost]:25", ""));
  CHECK(!Target::parse("bad host", ""));
  CHECK(!Target::parse("a/b", ""));
  CHECK(!Target::parse("1:2:zz", ""));
}

TEST_CASE("tls policy names and the pool key", "[delivery]") {
  CHECK(parse_tls_policy("verify") == TlsPolicy::Verify);
  CHECK(parse_tls_policy("none") == TlsPolicy::None);
  CHECK(!parse_tls_policy("required"));
  CHECK(!parse_tls_policy("default"));
  auto t = *Target::parse("mx.example.test", "");
  CHECK(t.key() == "smtp:mx.example.test:25");
  t.tls = TlsPolicy::Verify;
  CHECK(t.key() == "smtp:mx.example.test:25/tls=verify");  // pooled apart from "may"
}

TEST_CASE("dot stuffing", "[delivery]") {
  CHECK(dot_stuff("a\r\n.b\r\n") == "a\r\n..b\r\n");
  CHECK(dot_stuff(".\r\n") == "..\r\n");
  CHECK(dot_stuff("a.b\r\n") == "a.b\r\n");
  CHECK(dot_stuff("last line") == "last line\r\n");
  CHECK(dot_stuff("x\r\n.") == "x\r\n..\r\n");
  CHECK(dot_stuff("bare\n.lf\n") == "bare\r\n..lf\r\n");
  CHECK(dot_stuff("") == "");
  // A bare CR never goes out: "x<CR>.<CRLF>" would end the data for some receivers.
  CHECK(dot_stuff("x\r.\r\nMAIL FROM:<a@b>\r\n") == "x .\r\nMAIL FROM:<a@b>\r\n");
  CHECK(dot_stuff("a\r\r\nb\r") == "a \r\nb \r\n");
  CHECK(dot_stuff("..\r\n") == "...\r\n");
}

TEST_CASE("reply parser and capabilities", "[delivery]") {
  using namespace digue::delivery::detail;
  ReplyParser p;
  REQUIRE(p.feed("250-mx.test hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n25"));
  CHECK(!p.next());
  REQUIRE(p.feed("0-STARTTLS\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n550 5.1.1 no such user\r\n"));
  auto ehlo = p.next();
  REQUIRE(ehlo);
  CHECK(ehlo->code == 250);
  CHECK(ehlo->lines.size() == 6);
  auto caps = Capabilities::from_ehlo(*ehlo);
  CHECK(caps.pipelining);
  CHECK(caps.starttls);
  CHECK(caps.eightbitmime);
  CHECK(caps.smtputf8);
  CHECK(caps.size_limit == 1000);
  auto rej = p.next();
  REQUIRE(rej);
  CHECK(rej->enhanced() == "5.1.1");
  CHECK(rej->text() == "no such user");
  auto res = result_of(*rej);
  CHECK(res.status == Status::PermFail);
  CHECK(res.code == 550);
  CHECK(result_of(Reply{451, {"4.3.0 later"}}).status == Status::TempFail);
  CHECK(result_of(Reply{250, {"ok"}}).enhanced.empty());
  ReplyParser bad;
  CHECK(!bad.feed("hello\r\n"));
  ReplyParser mixed;
  CHECK(!mixed.feed("250-a\r\n251 b\r\n"));
  ReplyParser longline;
  CHECK(!longline.feed(std::string(5000, '2')));

  Job j = make_job({"a@b.test"}, "x");
  j.mail_from = {};
  j.body_8bit = j.smtputf8 = true;
  CHECK(mail_command(j, caps, 42) == "MAIL FROM:<> SIZE=42 BODY=8BITMIME SMTPUTF8\r\n");
  CHECK(mail_command(j, Capabilities{}, 42) == "MAIL FROM:<>\r\n");
  CHECK(rcpt_command({"bob", "x.test"}, "Junk", "+") == "RCPT TO:<bob+Junk@x.test>\r\n");
  CHECK(rcpt_command({"bob", "x.test"}, "Junk", "") == "RCPT TO:<bob@x.test>\r\n");
}

TEST_CASE("dsn structure", "[delivery]") {
  DsnInput in;
  in.reporting_mta = "relay.test";
  in.sender = {"alice", "example.org"};
  in.queue_id = "ABC123";
  in.arrival = 1700000000;
  in.now = 1700003600;
  in.rcpts.push_back({{"bob", "example.test"},
                      {Status::PermFail, 550, "5.1.1", "user unknown\r\nsecond line"},
                      "dns; mx.example.test"});
  in.rcpts.push_back({{"carol", "example.test"}, {Status::TempFail, 451, "", "try later"}, ""});
  std::string original = "From: alice@example.org\r\nSubject: hi\r\n\r\nsecret body\r\n";
  in.original = original;
  std::string dsn = make_dsn(in);
  CHECK(dsn.find("From: Mail Delivery System <MAILER-DAEMON@relay.test>\r\n") == 0);
  CHECK(dsn.find("\r\nTo: <alice@example.org>\r\n") != std::string::npos);
  CHECK(dsn.find("Content-Type: multipart/report; report-type=delivery-status;") !=
        std::string::npos);
  CHECK(dsn.find("Auto-Submitted: auto-replied\r\n") != std::string::npos);
  CHECK(dsn.find("Date: Tue, 14 Nov 2023 23:13:20 +0000\r\n") != std::string::npos);
  CHECK(dsn.find("Reporting-MTA: dns; relay.test\r\n") != std::string::npos);
  CHECK(dsn.find("Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n") != std::string::npos);
  CHECK(dsn.find("Final-Recipient: rfc822; bob@example.test\r\nAction: failed\r\n"
                 "Status: 5.1.1\r\nRemote-MTA: dns; mx.example.test\r\n"
                 "Diagnostic-Code: smtp; 550 5.1.1 user unknown  second line\r\n") !=
        std::string::npos);
  CHECK(dsn.find("Final-Recipient: rfc822; carol@example.test\r\nAction: delayed\r\n"
                 "Status: 4.0.0\r\n") != std::string::npos);
  CHECK(dsn.find("Content-Type: message/delivery-status\r\n\r\n") != std::string::npos);
  CHECK(dsn.find("Content-Type: text/rfc822-headers\r\n\r\nFrom: alice@example.org\r\n"
                 "Subject: hi\r\n") != std::string::npos);
  CHECK(dsn.find("secret body") == std::string::npos);
  // Three parts, one closing delimiter, and every line ends in CRLF.
  auto b = dsn.find("boundary=\"");
  REQUIRE(b != std::string::npos);
  std::string boundary = dsn.substr(b + 10, dsn.find('"', b + 10) - b - 10);
  std::size_t parts = 0;
  for (auto p = dsn.find("\r\n--" + boundary + "\r\n"); p != std::string::npos;
       p = dsn.find("\r\n--" + boundary + "\r\n", p + 1))
    ++parts;
  CHECK(parts == 3);
  CHECK(dsn.size() >= boundary.size() + 6);
  CHECK(dsn.substr(dsn.size() - boundary.size() - 6) == "--" + boundary + "--\r\n");
  for (std::size_t i = 0; i < dsn.size(); ++i)
    if (dsn[i] == '\n') REQUIRE((i > 0 && dsn[i - 1] == '\r'));
}

TEST_CASE("maildir writes", "[delivery]") {
  TempDir root;
  CHECK(sanitize_path_component("Bob") == "bob");
  CHECK(sanitize_path_component("..") == "_.");
  CHECK(sanitize_path_component("a/../b") == "a_.._b");
  CHECK(sanitize_path_component("\"john doe\"") == "john doe");
  CHECK(sanitize_path_component("") == "_");
  CHECK(sanitize_path_component(".hidden") == "_hidden");

  Job job = make_job({"Bob@example.test", "../etc@example.test"}, "Subject: x\r\n\r\nbody\r\n");
  auto res = write_maildir(root.path.string(), job, "relay.test");
  REQUIRE(res.size() == 2);
  CHECK(res[0].status == Status::Delivered);
  CHECK(res[1].status == Status::Delivered);
  auto dir = root.path / "example.test" / "bob";
  CHECK(fs::is_directory(dir / "cur"));
  CHECK(files_in(dir / "tmp").empty());
  auto news = files_in(dir / "new");
  REQUIRE(news.size() == 1);
  CHECK(slurp(news[0]) ==
        "Return-Path: <sender@example.org>\nDelivered-To: Bob@example.test\n"
        "Subject: x\n\nbody\n");
  CHECK(news[0].filename().string().find(".relay.test,S=") != std::string::npos);
  CHECK(files_in(root.path / "example.test" / "_._etc" / "new").size() == 1);
  CHECK(!fs::exists(root.path / "etc"));

  job.folder = "Junk";
  job.rcpts.resize(1);
  res = write_maildir(root.path.string(), job, "relay.test");
  REQUIRE(res.size() == 1);
  CHECK(res[0].status == Status::Delivered);
  CHECK(files_in(dir / ".Junk" / "new").size() == 1);
  CHECK(fs::exists(dir / ".Junk" / "maildirfolder"));
  CHECK(files_in(dir / "new").size() == 1);

  // A file where a directory should be: a disk error, so TempFail, never Delivered.
  std::ofstream(root.path / "blocked.test") << "x";
  job = make_job({"x@blocked.test"}, "x\r\n");
  res = write_maildir(root.path.string(), job, "relay.test");
  REQUIRE(res.size() == 1);
  CHECK(res[0].status == Status::TempFail);
  CHECK(res[0].text.find("blocked.test") != std::string::npos);
}

TEST_CASE("maildir through the deliverer on a thread pool", "[delivery]") {
  TempDir root;
  asio::io_context io;
  asio::thread_pool pool(1);
  Options o = quick_options();
  o.blocking_executor = pool.get_executor();
  Deliverer d(io.get_executor(), o);
  auto target = *Target::parse("maildir:" + root.path.string(), "");
  Job job = make_job({"a@example.test"}, kMessage);
  auto res = run(io, d.deliver(target, job));
  REQUIRE(res.size() == 1);
  CHECK(res[0].status == Status::Delivered);
  CHECK(files_in(root.path / "example.test" / "a" / "new").size() == 1);
  pool.join();
}
