#include <catch2/catch.hpp>

#include "digue/headers.hpp"

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
