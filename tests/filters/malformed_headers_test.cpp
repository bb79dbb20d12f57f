#include <catch2/catch.hpp>

#include "filters/malformed_headers.hpp"
#include "tests/filters/filter_harness.hpp"

using digue::test::FilterHarness;
using digue::test::is_hit;

namespace {
const std::string kGood =
    "From: Alice <alice@example.org>\r\nTo: bob@example.test\r\n"
    "Date: Mon, 1 Jan 2024 10:00:00 +0100\r\nMessage-ID: <abc@example.org>\r\n"
    "Subject: hi\r\n";

std::string symbol(const digue::FilterResult& r, const std::string& name) {
  for (const auto& s : r.symbols)
    if (s.name == name) return s.evidence;
  return "-";
}
}  // namespace

TEST_CASE("malformed_headers: a well-formed message misses", "[filters][malformed_headers]") {
  FilterHarness h(&digue::filters::make_malformed_headers, "");
  CHECK_FALSE(is_hit(h.run(kGood + "\r\nbody\r\n")));
}

TEST_CASE("malformed_headers: missing, duplicate and bad syntax", "[filters][malformed_headers]") {
  FilterHarness h(&digue::filters::make_malformed_headers, "");
  auto r = h.run("From: nobody\r\nSubject: a\r\nSubject: b\r\nDate: yesterday\r\n\r\nx\r\n");
  REQUIRE(is_hit(r));
  CHECK(symbol(r, "MISSING_HEADER") == "message-id");
  CHECK(symbol(r, "DUPLICATE_HEADER") == "subject");
  CHECK(symbol(r, "BAD_HEADER_SYNTAX") == "from: no address, date");
  auto junk = h.run(kGood + "this is not a header\r\n\r\nbody\r\n");
  CHECK(symbol(junk, "BAD_HEADER_SYNTAX") == "not a header line");
  auto id = h.run("From: a@b.example\r\nDate: Mon, 1 Jan 2024 10:00:00 +0100\r\n"
                  "Message-ID: 12345\r\n\r\nx\r\n");
  CHECK(symbol(id, "BAD_HEADER_SYNTAX") == "message-id");
}

TEST_CASE("malformed_headers: 8-bit headers depend on SMTPUTF8", "[filters][malformed_headers]") {
  FilterHarness h(&digue::filters::make_malformed_headers, "");
  std::string m = kGood + "X-Note: caf\xc3\xa9\r\n\r\nx\r\n";
  CHECK(symbol(h.run(m), "HEADER_8BIT") == "x-note");
  h.envelope.smtputf8 = true;
  CHECK_FALSE(is_hit(h.run(m)));
  // RFC 2047 words are 7-bit: fine without SMTPUTF8.
  h.envelope.smtputf8 = false;
  CHECK_FALSE(is_hit(h.run(kGood + "X-Note: =?utf-8?q?caf=C3=A9?=\r\n\r\nx\r\n")));
}

TEST_CASE("malformed_headers: over-long header lines, limit configurable",
          "[filters][malformed_headers]") {
  FilterHarness h(&digue::filters::make_malformed_headers, "");
  std::string m = kGood + "X-Long: " + std::string(1000, 'a') + "\r\n\r\n" +
                  std::string(5000, 'b') + "\r\n";  // long body lines are not header lines
  CHECK(symbol(h.run(m), "LONG_HEADER_LINE") == "x-long (1008 bytes)");
  FilterHarness lax(&digue::filters::make_malformed_headers, "max_line_length = 2000\n");
  CHECK_FALSE(is_hit(lax.run(m)));
  CHECK_THROWS_AS(FilterHarness(&digue::filters::make_malformed_headers, "max_line_length = 5\n"),
                  digue::ConfigError);
}
