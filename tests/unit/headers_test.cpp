#include <algorithm>
#include <catch2/catch.hpp>

#include "digue/headers.hpp"
#include "digue/mime.hpp"

using namespace digue;

TEST_CASE("rewrite strips spoofed verdicts and tags the subject", "[headers]") {
  std::string raw =
      "From: a@b.test\r\nX-Spam-Status: No, score=-100\r\n\tcontinued\r\nSubject: hello\r\n"
      " world\r\nX-Digue-Queue-ID: fake\r\n\r\nX-Spam-Status: in body stays\r\n";
  std::string out = headers::rewrite(raw, "SPAM: ");
  CHECK(out ==
        "From: a@b.test\r\nSubject: SPAM: hello\r\n world\r\n\r\nX-Spam-Status: in body stays\r\n");
  CHECK(headers::rewrite("From: a\r\n\r\nbody", "SPAM: ") == "From: a\r\nSubject: SPAM:\r\n\r\nbody");
  CHECK(headers::rewrite("From: a\r\n\r\nbody", "") == "From: a\r\n\r\nbody");
  CHECK(headers::rewrite("", "") == "");
}

TEST_CASE("RFC 5322 dates", "[headers]") {
  CHECK(headers::rfc5322_date(1700000000, true) == "Tue, 14 Nov 2023 22:13:20 +0000");
  CHECK(headers::rfc5322_date(0, true) == "Thu, 1 Jan 1970 00:00:00 +0000");
  // Local time: same shape, a numeric zone.
  std::string local = headers::rfc5322_date(1700000000);
  REQUIRE(local.size() >= 30);
  CHECK((local[local.size() - 5] == '+' || local[local.size() - 5] == '-'));
}

TEST_CASE("trace block", "[headers]") {
  Envelope env;
  env.client_ip = "192.0.2.1";
  env.helo = "client.test\r\nX-Injected: 1";
  env.esmtp = true;
  env.tls = TlsInfo{"TLSv1.3", "TLS_AES_256_GCM_SHA384"};
  env.mail_from = {"a", "b.test"};
  env.queue_id = "QID1";
  env.received_at = 1700000000;
  Verdict v;
  v.score = 3.25;
  v.required = 7.5;
  v.symbols.push_back({{"EMPTY_SENDER", 3.25, ""}, "empty_sender", true});
  std::string block = headers::trace_block(env, "mx.test", {{"u", "example.test"}}, v, false);
  CHECK(block.find("Received: from client.test??X-Injected: 1 ([192.0.2.1])\r\n"
                   "\tby mx.test (digue) with ESMTPS (TLSv1.3:TLS_AES_256_GCM_SHA384) id QID1\r\n"
                   "\tfor <u@example.test>; ") == 0);
  CHECK(block.find("\r\nX-Spam-Status: No, score=3.2 required=7.5 tests=EMPTY_SENDER\r\n") !=
        std::string::npos);
  CHECK(block.find("X-Digue-Envelope-From: <a@b.test>\r\n") != std::string::npos);
  CHECK(block.find("\r\nX-Injected") == std::string::npos);
}

TEST_CASE("trace block: a filter's trace line as X-Digue-<Filter>, 7-bit", "[headers]") {
  Envelope env;
  env.client_ip = "192.0.2.1";
  env.queue_id = "QID1";
  Verdict v;
  // Bayes evidence with non-ASCII tokens (one long enough to need two encoded-words), a
  // comma inside one, and an attempt to inject a header line.
  std::string tokens = "score=12.80 required=7.5 tokens: caf\xc3\xa9:0.990, \xe6\x97\xa5\xe6\x9c\xac:0.999, ";
  for (int i = 0; i < 30; ++i) tokens += "\xd0\xb6";  // ж x 30
  tokens += ",x:0.5\r\nX-Injected: 1";
  v.traces.push_back({"bayes", tokens, ""});
  v.traces.push_back({"invalid_mx", "plain ascii", ""});
  std::string block = headers::trace_block(env, "mx.test", {{"u", "example.test"}}, v, true);
  INFO(block);
  CHECK(block.find("\r\nX-Digue-Invalid-Mx: plain ascii\r\n") != std::string::npos);
  CHECK(block.find("\r\nX-Injected") == std::string::npos);
  size_t at = block.find("X-Digue-Bayes: score=12.80 required=7.5 tokens:");
  REQUIRE(at != std::string::npos);
  // 7-bit, lines of at most 78 characters.
  CHECK(std::all_of(block.begin(), block.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x80; }));
  for (size_t b = 0, e; (e = block.find("\r\n", b)) != std::string::npos; b = e + 2)
    CHECK(e - b <= 78);
  // Unfolded and decoded, it reads as the filter wrote it (control characters as '?').
  size_t end = block.find("\r\nX-", at);
  std::string field = block.substr(at + 15, end - at - 15);
  std::string unfolded;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field.compare(i, 3, "\r\n\t") == 0) {
      unfolded += ' ';
      i += 2;
    } else {
      unfolded += field[i];
    }
  }
  std::string want = tokens;
  want.replace(want.find("\r\n"), 2, "??");
  CHECK(mime::decode_header_value(unfolded) == want);
}
