#include <catch2/catch.hpp>

#include "digue/smtp_protocol.hpp"
#include "digue/text.hpp"

using namespace digue::smtp;

namespace {
Settings settings() {
  Settings s;
  s.hostname = "mx.test";
  s.max_message_size = 1000;
  s.max_recipients = 2;
  s.max_bad_commands = 5;
  s.tls_available = true;
  s.accepts_domain = [](const std::string& d) { return d == "example.test"; };
  return s;
}
std::string decode(const std::vector<std::string>& chunks, size_t* rest = nullptr) {
  DataDecoder d(1 << 20, 1 << 20);
  size_t used = 0;
  for (const auto& c : chunks) {
    used = d.feed(c);
    if (d.done()) {
      if (rest) *rest = c.size() - used;
      break;
    }
  }
  REQUIRE(d.done());
  return d.message();
}
}  // namespace

TEST_CASE("path parsing", "[smtp]") {
  std::string err;
  auto p = parse_path_and_params("<User@Example.TEST> SIZE=100 body=8bitmime", true, &err);
  REQUIRE(p);
  CHECK(p->address.local == "User");
  CHECK(p->address.domain == "example.test");
  REQUIRE(p->params.size() == 2);
  CHECK(p->params[1].first == "BODY");
  CHECK(parse_path_and_params("<>", true, &err)->address.empty());
  CHECK(!parse_path_and_params("<>", false, &err));
  CHECK(parse_path_and_params("<@relay.a,@relay.b:u@example.test>", false, &err)->address.domain ==
        "example.test");
  CHECK(parse_path_and_params("<\"a b\"@example.test>", false, &err)->address.local == "\"a b\"");
  CHECK(parse_path_and_params("<u@[192.0.2.1]>", false, &err)->address.domain == "[192.0.2.1]");
  CHECK(!parse_path_and_params("<u@example.test", false, &err));
  CHECK(!parse_path_and_params("<u..v@example.test>", false, &err));
  CHECK(!parse_path_and_params("<u@-bad.test>", false, &err));
  CHECK(!parse_path_and_params("<@example.test>", false, &err));
  CHECK(!parse_path_and_params("<u@>", false, &err));
  CHECK(!parse_path_and_params("<ü@example.test>", false, &err));
  CHECK(parse_path_and_params("<ü@example.test> SMTPUTF8", false, &err));
  // SMTPUTF8 allows UTF-8, not any byte above 127.
  CHECK(!parse_path_and_params("<\xc3@example.test> SMTPUTF8", false, &err));
  CHECK(!parse_path_and_params("<u@\xff.test>", false, &err, true));
  CHECK(!parse_path_and_params("<\xc0\xaf@example.test>", false, &err, true));  // overlong
  CHECK(parse_path_and_params("<u@b\xc3\xbc" "cher.test>", false, &err, true));
}

TEST_CASE("never an open relay", "[smtp]") {
  Protocol p(settings());
  p.on_line("EHLO client.test");
  REQUIRE(p.on_line("MAIL FROM:<a@b.test>").kind == Step::Kind::Mail);
  p.mail_accepted();
  for (const char* rcpt : {"RCPT TO:<u@other.test>", "RCPT TO:<u%other.test@example.test>",
                           "RCPT TO:<\"u@other.test\"@example.test>", "RCPT TO:<u!other@example.test>",
                           "RCPT TO:<@example.test:u@other.test>", "RCPT TO:<u@[127.0.0.1]>"}) {
    INFO(rcpt);
    Protocol q(settings());
    q.on_line("EHLO c");
    q.on_line("MAIL FROM:<a@b.test>");
    q.mail_accepted();
    Step s = q.on_line(rcpt);
    CHECK(s.kind == Step::Kind::Reply);
    CHECK(s.reply.code >= 500);
  }
  Step ok = p.on_line("RCPT TO:<@other.test:u@Example.Test>");
  CHECK(ok.kind == Step::Kind::Rcpt);
  CHECK(ok.rcpt.domain == "example.test");
}

TEST_CASE("SMTPUTF8 on MAIL allows UTF-8 recipients", "[smtp]") {
  Settings st = settings();
  // As Config::domain looks domains up: ASCII-lower-cased, other bytes as they are.
  st.accepts_domain = [](const std::string& d) {
    std::string l = digue::text::lower(d);
    return l == "example.test" || l == "b\xc3\xbc" "cher.test";
  };
  Protocol p(st);
  p.on_line("EHLO client.test");
  REQUIRE(p.on_line("MAIL FROM:<a@b.test> SMTPUTF8").kind == Step::Kind::Mail);
  p.mail_accepted();
  Step u = p.on_line("RCPT TO:<jos\xc3\xa9@example.test>");
  REQUIRE(u.kind == Step::Kind::Rcpt);
  CHECK(u.rcpt.local == "jos\xc3\xa9");
  Step d = p.on_line("RCPT TO:<u@B\xc3\xbc" "CHER.test>");
  REQUIRE(d.kind == Step::Kind::Rcpt);
  CHECK(d.rcpt.domain == "b\xc3\xbc" "cher.test");
  // The relay check is unchanged: a UTF-8 domain we do not host is refused.
  CHECK(p.on_line("RCPT TO:<u@b\xc3\xa4" "cher.test>").reply.code == 550);
  // Without SMTPUTF8 on MAIL, UTF-8 stays a syntax error.
  Protocol q(st);
  q.on_line("EHLO client.test");
  q.on_line("MAIL FROM:<a@b.test>");
  q.mail_accepted();
  CHECK(q.on_line("RCPT TO:<jos\xc3\xa9@example.test>").reply.code == 501);
  // RSET ends the transaction and its SMTPUTF8.
  p.on_line("RSET");
  p.on_line("MAIL FROM:<a@b.test>");
  p.mail_accepted();
  CHECK(p.on_line("RCPT TO:<jos\xc3\xa9@example.test>").reply.code == 501);
}

TEST_CASE("a repeated recipient is accepted once", "[smtp]") {
  Protocol p(settings());
  p.on_line("EHLO client.test");
  p.on_line("MAIL FROM:<a@b.test>");
  p.mail_accepted();
  Step r = p.on_line("RCPT TO:<User@example.test>");
  REQUIRE(r.kind == Step::Kind::Rcpt);
  p.rcpt_accepted(r.rcpt);
  // Same address, domain in another case: 250, not a second copy (and not up to the limit).
  Step again = p.on_line("RCPT TO:<User@EXAMPLE.test>");
  CHECK(again.kind == Step::Kind::Reply);
  CHECK(again.reply.code == 250);
  p.rcpt_accepted(r.rcpt);  // idempotent as well
  CHECK(p.envelope().rcpts.size() == 1);
  // The local part is case-sensitive: another recipient.
  Step other = p.on_line("RCPT TO:<user@example.test>");
  REQUIRE(other.kind == Step::Kind::Rcpt);
  p.rcpt_accepted(other.rcpt);
  CHECK(p.envelope().rcpts.size() == 2);
}

TEST_CASE("RCPT TO:<postmaster> without a domain", "[smtp]") {
  Settings st = settings();
  st.postmaster_domain = "example.test";
  Protocol p(st);
  p.on_line("EHLO client.test");
  p.on_line("MAIL FROM:<a@b.test>");
  p.mail_accepted();
  Step r = p.on_line("RCPT TO:<PostMaster>");
  REQUIRE(r.kind == Step::Kind::Rcpt);
  CHECK(r.rcpt.local == "postmaster");
  CHECK(r.rcpt.domain == "example.test");
  CHECK(p.on_line("RCPT TO:<postmasterx>").reply.code == 501);
  // No hosted domain: a clear refusal instead of a syntax error.
  Protocol none(settings());
  none.on_line("EHLO client.test");
  none.on_line("MAIL FROM:<a@b.test>");
  none.mail_accepted();
  CHECK(none.on_line("RCPT TO:<postmaster>").reply.wire() ==
        "550 5.1.1 No postmaster here: this relay hosts no domain\r\n");
  // An IDN first domain: its A-labels unless the transaction is SMTPUTF8.
  Settings idn = settings();
  idn.postmaster_domain = "b\xc3\xbc" "cher.test";
  idn.postmaster_domain_ascii = "xn--bcher-kva.test";
  idn.accepts_domain = [](const std::string& d) {  // Config::domain: either spelling
    return d == "b\xc3\xbc" "cher.test" || d == "xn--bcher-kva.test";
  };
  for (bool utf8 : {false, true}) {
    Protocol q(idn);
    q.on_line("EHLO client.test");
    q.on_line(utf8 ? "MAIL FROM:<a@b.test> SMTPUTF8" : "MAIL FROM:<a@b.test>");
    q.mail_accepted();
    Step pm = q.on_line("RCPT TO:<postmaster>");
    REQUIRE(pm.kind == Step::Kind::Rcpt);
    CHECK(pm.rcpt.domain == (utf8 ? idn.postmaster_domain : idn.postmaster_domain_ascii));
  }
}

TEST_CASE("sequence, limits and replies", "[smtp]") {
  Settings st = settings();
  st.max_bad_commands = 50;
  Protocol p(st);
  CHECK(p.greeting().wire() == "220 mx.test ESMTP digue\r\n");
  CHECK(p.on_line("MAIL FROM:<a@b.test>").reply.code == 503);
  Step e = p.on_line("EHLO client.test");
  CHECK(e.kind == Step::Kind::Helo);
  std::string w = e.reply.wire();
  CHECK(w.find("250-PIPELINING\r\n") != std::string::npos);
  CHECK(w.find("250-STARTTLS\r\n") != std::string::npos);
  CHECK(w.find("250-SIZE 1000\r\n") != std::string::npos);
  CHECK(p.on_line("RCPT TO:<u@example.test>").reply.code == 503);
  CHECK(p.on_line("DATA").reply.code == 503);
  CHECK(p.on_line("MAIL FROM:<a@b.test> SIZE=5000").reply.wire() ==
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
  CHECK(p.on_line("MAIL FROM:<a@b.test> FOO=1").reply.code == 555);
  REQUIRE(p.on_line("MAIL FROM:<a@b.test> SIZE=500").kind == Step::Kind::Mail);
  p.mail_accepted();
  CHECK(p.on_line("DATA").reply.code == 554);
  CHECK(p.on_line("MAIL FROM:<a@b.test>").reply.code == 503);
  Step r1 = p.on_line("RCPT TO:<u1@example.test>");
  REQUIRE(r1.kind == Step::Kind::Rcpt);
  p.rcpt_accepted(r1.rcpt);
  Step r2 = p.on_line("RCPT TO:<u2@example.test>");
  p.rcpt_accepted(r2.rcpt);
  CHECK(p.on_line("RCPT TO:<u3@example.test>").reply.wire() == "452 4.5.3 Too many recipients\r\n");
  CHECK(p.on_line("STARTTLS").reply.code == 503);
  Step d = p.on_line("DATA");
  CHECK(d.kind == Step::Kind::Data);
  CHECK(d.reply.code == 354);
  p.data_done();
  CHECK(p.envelope().rcpts.empty());
  CHECK(p.state() == State::Ready);
  CHECK(p.on_line("VRFY postmaster").reply.code == 252);
  CHECK(p.on_line("NOOP").reply.code == 250);
  CHECK(p.on_line("RSET").reply.code == 250);
  CHECK(p.on_line("QUIT").reply.close);
}

TEST_CASE("bad commands and garbage", "[smtp]") {
  Protocol p(settings());
  CHECK(p.on_line(std::string("EH\0LO x", 7)).reply.code == 500);
  CHECK(p.on_line("EHLO").reply.code == 501);
  CHECK(p.on_line("\r\r\r").reply.code == 500);
  CHECK(p.on_overlong_line().reply.wire() == "500 5.5.2 Line too long\r\n");
  Step last = p.on_line("FOO");
  CHECK(last.reply.code == 421);
  CHECK(last.reply.close);
  CHECK(p.closed());
}

TEST_CASE("commands that advance nothing are capped (junk commands)", "[smtp]") {
  Settings st = settings();
  st.max_junk_commands = 4;
  Protocol p(st);
  // EHLO, NOOP, RSET, HELP: four; the fifth gets 421 and the connection closes.
  CHECK(p.on_line("EHLO c").kind == Step::Kind::Helo);
  CHECK(p.on_line("NOOP").reply.code == 250);
  CHECK(p.on_line("RSET").reply.code == 250);
  CHECK(p.on_line("HELP").reply.code == 214);
  Step last = p.on_line("VRFY u");
  CHECK(last.reply.wire() == "421 4.7.0 mx.test too many commands, closing connection\r\n");
  CHECK(last.reply.close);
  CHECK(p.closed());
  // A repeated EHLO counts too.
  Protocol q(st);
  for (int i = 0; i < 4; ++i) CHECK(q.on_line("EHLO c").kind == Step::Kind::Helo);
  Step e = q.on_line("EHLO c");
  CHECK(e.kind == Step::Kind::Reply);
  CHECK(e.reply.code == 421);
  CHECK(q.closed());
}

TEST_CASE("a finished message starts the junk count again", "[smtp]") {
  Settings st = settings();
  st.max_junk_commands = 3;
  Protocol p(st);
  p.on_line("EHLO c");
  for (int round = 0; round < 5; ++round) {
    CHECK(p.on_line("RSET").reply.code == 250);
    CHECK(p.on_line("NOOP").reply.code == 250);
    REQUIRE(p.on_line("MAIL FROM:<a@b.test>").kind == Step::Kind::Mail);
    p.mail_accepted();
    Step r = p.on_line("RCPT TO:<u@example.test>");
    REQUIRE(r.kind == Step::Kind::Rcpt);
    p.rcpt_accepted(r.rcpt);
    REQUIRE(p.on_line("DATA").kind == Step::Kind::Data);
    p.data_done();
  }
  CHECK_FALSE(p.closed());
}

TEST_CASE("the session time limit answers 421 at a command boundary", "[smtp]") {
  Protocol p(settings());
  p.on_line("EHLO c");
  Step s = p.on_session_expired();
  CHECK(s.reply.wire() == "421 4.4.2 mx.test session time limit, closing connection\r\n");
  CHECK(s.reply.close);
  CHECK(p.closed());
  CHECK(p.on_line("NOOP").reply.code == 421);
}

TEST_CASE("STARTTLS resets the session", "[smtp]") {
  Protocol p(settings());
  p.on_line("EHLO c");
  Step s = p.on_line("STARTTLS");
  REQUIRE(s.kind == Step::Kind::StartTls);
  p.tls_started();
  CHECK(p.on_line("MAIL FROM:<a@b.test>").reply.code == 503);
  Step e = p.on_line("EHLO c");
  CHECK(e.reply.wire().find("STARTTLS") == std::string::npos);
  CHECK(p.on_line("STARTTLS").reply.code == 502);
}

TEST_CASE("DATA decoding across chunk boundaries", "[smtp]") {
  CHECK(decode({"Subject: x\r\n\r\nhello\r\n.\r\n"}) == "Subject: x\r\n\r\nhello\r\n");
  CHECK(decode({"a\r\n..b\r\n.", "\r", "\n"}) == "a\r\n.b\r\n");
  CHECK(decode({"a\r", "\n", ".", ".", "\r\n.\r\nQUIT\r\n"}) == "a\r\n.\r\n");
  size_t rest = 0;
  decode({"x\r\n.\r\nQUIT\r\n"}, &rest);
  CHECK(rest == 6);
  // Bare LF line ends are normalised; "\n.\n" does not end the message (smuggling).
  CHECK(decode({"a\nb\n.\nc\r\n.\r\n"}) == "a\r\nb\r\n\r\nc\r\n");
  CHECK(decode({"a\r\n.\rx\r\n.\r\n"}) == "a\r\n x\r\n");
  // Byte by byte.
  std::string in = "H: v\r\n\r\n..dot\r\nend\r\n.\r\n";
  std::vector<std::string> bytes;
  for (char c : in) bytes.emplace_back(1, c);
  CHECK(decode(bytes) == "H: v\r\n\r\n.dot\r\nend\r\n");
}

TEST_CASE("DATA ends only at CRLF.CRLF (SMTP smuggling)", "[smtp]") {
  // <LF>.<CRLF>: the "." line is content, what follows is not a command.
  size_t rest = 0;
  CHECK(decode({"a\n.\r\nMAIL FROM:<x@y>\r\n\r\n.\r\nQUIT\r\n"}, &rest) ==
        "a\r\n.\r\nMAIL FROM:<x@y>\r\n\r\n");
  CHECK(rest == 6);
  // The same split across reads at every place.
  const std::string in = "a\n.\r\nMAIL FROM:<x@y>\r\n.\r\n";
  for (size_t cut = 1; cut < in.size(); ++cut) {
    INFO("cut " << cut);
    CHECK(decode({in.substr(0, cut), in.substr(cut)}) == "a\r\n.\r\nMAIL FROM:<x@y>\r\n");
  }
  // <CR>.<CRLF>: a lone CR is no line end (and is not passed on, see below).
  CHECK(decode({"a\r.\r\nRSET\r\n.\r\n"}) == "a .\r\nRSET\r\n");
  // <CR>.<CR><LF> after a CRLF line: the dot is stuffing, the first CR a bare one.
  CHECK(decode({"a\r\n.\r\r\n.\r\n"}) == "a\r\n \r\n");
  // <LF>.<LF> and <LF>.<CR> followed by more.
  CHECK(decode({"a\n.\nb\n.\rc\r\n.\r\n"}) == "a\r\n\r\nb\r\n c\r\n");
  // An empty bare-LF line, then "." CRLF: still content.
  CHECK(decode({"a\r\n\n.\r\nb\r\n.\r\n"}) == "a\r\n\r\n.\r\nb\r\n");
  // A bare-LF line followed by a CRLF line, then the real end.
  CHECK(decode({"a\nb\r\n.\r\n"}) == "a\r\nb\r\n");
  // Nothing ends at <LF>.<CRLF> alone.
  DataDecoder d(1 << 20, 1 << 20);
  CHECK(d.feed("x\n.\r\n") == 5);
  CHECK(!d.done());
  // An empty message still ends at once (the 354 stands for the line end before it).
  CHECK(decode({".\r\n"}).empty());
  // A content "." line ended with CRLF: the next "." CRLF is the end.
  CHECK(decode({"a\n.\r\n.\r\nQUIT\r\n"}, &rest) == "a\r\n.\r\n");
  CHECK(rest == 6);
  // Byte by byte, the smuggling attempt stays content.
  const std::string smuggle = "a\n.\r\nRCPT TO:<v@example.test>\r\n.\r\n";
  std::vector<std::string> bytes;
  for (char c : smuggle) bytes.emplace_back(1, c);
  CHECK(decode(bytes) == "a\r\n.\r\nRCPT TO:<v@example.test>\r\n");
}

TEST_CASE("DATA: a bare CR never reaches the downstream (SMTP smuggling)", "[smtp]") {
  // A downstream that takes a bare CR for a line end would see "x<CR>.<CRLF>" as the end of
  // data and the MAIL/RCPT/DATA after it as a second, forged transaction.
  struct Case {
    std::string in, out;
  };
  const std::vector<Case> cases = {
      {"x\r.\r\nMAIL FROM:<a@evil.test>\r\nRCPT TO:<v@example.test>\r\nDATA\r\nforged\r\n"
       ".\r\n",
       "x .\r\nMAIL FROM:<a@evil.test>\r\nRCPT TO:<v@example.test>\r\nDATA\r\nforged\r\n"},
      {"x\r\n.\r.\rMAIL FROM:<a@evil.test>\r\n.\r\n", "x\r\n . MAIL FROM:<a@evil.test>\r\n"},
      {"x\r\r\n.\r\r\nQUIT\r\n.\r\n", "x \r\n \r\nQUIT\r\n"},
      {"\r.\r\r\n.\r\n", " . \r\n"},
  };
  for (size_t c = 0; c < cases.size(); ++c) {
    const auto& [in, out] = cases[c];
    CHECK(decode({in}) == out);
    // Split at every place, so that a CR at the end of a read is decided by the next one.
    for (size_t cut = 1; cut < in.size(); ++cut) {
      INFO("case " << c << " cut " << cut);
      std::string got = decode({in.substr(0, cut), in.substr(cut)});
      CHECK(got == out);
    }
  }
  // A CRLF split across reads is still a line end; a bare CR at the end of a read is not.
  CHECK(decode({"a\r", "\nb\r", "c\r\n.\r\n"}) == "a\r\nb c\r\n");
  CHECK(decode({"a\r", "\r", "\n.\r\n"}) == "a \r\n");
  // No bare CR survives, whatever the input.
  const std::string noise = "\r\r.\r\n\r\n.\r\r\n\n.\n\r";
  for (size_t cut = 0; cut <= noise.size(); ++cut) {
    DataDecoder d(1 << 20, 1 << 20);
    d.feed(noise.substr(0, cut));
    d.feed(noise.substr(cut));
    d.feed("\r\n.\r\n");
    REQUIRE(d.done());
    const std::string& m = d.message();
    for (size_t i = 0; i < m.size(); ++i)
      if (m[i] == '\r') CHECK((i + 1 < m.size() && m[i + 1] == '\n'));
  }
}

TEST_CASE("DATA discarded for want of memory is still read to its end", "[smtp]") {
  DataDecoder d(1 << 20, 1 << 20);
  CHECK(d.storing());
  d.feed("Subject: x\r\n\r\nfirst part\r\n");
  CHECK(d.message().size() > 0);
  d.discard();
  CHECK(d.discarded());
  CHECK_FALSE(d.storing());
  CHECK(d.message().empty());
  size_t used = d.feed("second\r\n.\r\nQUIT\r\n");
  CHECK(d.done());
  CHECK(used == std::string("second\r\n.\r\n").size());  // pipelined QUIT left over
  CHECK(d.message().empty());
  CHECK_FALSE(d.too_big());
  CHECK(d.size() == std::string("Subject: x\r\n\r\nfirst part\r\nsecond\r\n").size());
}

TEST_CASE("DATA limits", "[smtp]") {
  DataDecoder d(10, 5);
  d.feed("0123456789abc\r\n.\r\n");
  CHECK(d.done());
  CHECK(d.too_big());
  CHECK(d.line_too_long());
  DataDecoder e(100, 100);
  e.feed("caf\xc3\xa9\r\n.\r\n");
  CHECK(e.has_8bit());
  CHECK(!e.too_big());
}
