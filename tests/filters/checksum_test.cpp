#include <catch2/catch.hpp>

#include "digue/store.hpp"
#include "filters/checksum.hpp"
#include "tests/filters/filter_harness.hpp"

using digue::test::FilterHarness;
using digue::test::is_hit;

namespace {

// One copy of a bulk run: per-copy headers and MIME boundary differ, content does not.
std::string copy_for(int i) {
  std::string b = "b" + std::to_string(i * 7919);
  return "From: Promo <promo@bulk.example>\r\nTo: user" + std::to_string(i) +
         "@example.test\r\nMessage-ID: <" + std::to_string(i) + "@bulk.example>\r\n"
         "Subject: Offer\r\nContent-Type: multipart/alternative; boundary=" + b + "\r\n\r\n"
         "--" + b + "\r\nContent-Type: text/plain\r\n" +
         (i % 2 ? "Content-Transfer-Encoding: quoted-printable\r\n\r\nBig =\r\noffer   today\r\n"
                : "\r\nBig offer\r\ntoday\r\n") +
         "--" + b + "--\r\n";
}

void set_rcpt(FilterHarness& h, int i) {
  h.envelope.rcpts = {{"user" + std::to_string(i), "example.test"}};
}

}  // namespace

TEST_CASE("checksum: digest ignores per-copy headers, encodings and boundaries",
          "[filters][checksum]") {
  auto d0 = digue::filters::message_checksum(digue::mime::parse(copy_for(0)));
  auto d1 = digue::filters::message_checksum(digue::mime::parse(copy_for(1)));
  CHECK(d0.size() == 40);
  CHECK(d0 == d1);
  auto other = digue::filters::message_checksum(
      digue::mime::parse("From: Promo <promo@bulk.example>\r\nSubject: Offer\r\n\r\nBig offer today\r\n"));
  CHECK(other == d0);  // same visible content without MIME wrapping
  auto changed = digue::filters::message_checksum(
      digue::mime::parse("From: Promo <promo@bulk.example>\r\nSubject: Offer\r\n\r\nSmall offer\r\n"));
  CHECK(changed != d0);
}

TEST_CASE("checksum: hit at the threshold of distinct recipients", "[filters][checksum]") {
  auto store = digue::make_memory_store();
  FilterHarness h(&digue::filters::make_checksum, "threshold = 5\nwindow = 600\n");
  h.services.store = store.get();
  h.envelope.received_at = 1'700'000'000;
  for (int i = 0; i < 4; ++i) {
    set_rcpt(h, i);
    CHECK_FALSE(is_hit(h.run(copy_for(i))));
  }
  // A retry to an already counted recipient does not count again.
  set_rcpt(h, 3);
  CHECK_FALSE(is_hit(h.run(copy_for(3))));
  set_rcpt(h, 4);
  auto r = h.run(copy_for(4));
  REQUIRE(is_hit(r));
  CHECK(r.symbols[0].name == "CHECKSUM_BULK");
  CHECK(r.symbols[0].evidence.find("recipients=5") != std::string::npos);
  // A different message is counted on its own.
  CHECK_FALSE(is_hit(h.run("From: a@b.example\r\nSubject: hi\r\n\r\nhello\r\n")));
}

TEST_CASE("checksum: one message to many recipients, and the window slides",
          "[filters][checksum]") {
  auto store = digue::make_memory_store();
  FilterHarness h(&digue::filters::make_checksum, "threshold = 3\nwindow = 60\n");
  h.services.store = store.get();
  h.envelope.received_at = 1'700'000'000;
  h.envelope.rcpts = {{"a", "x.test"}, {"b", "x.test"}, {"A", "X.TEST"}};  // 2 distinct
  CHECK_FALSE(is_hit(h.run(copy_for(0))));
  // Much later: the earlier counts are out of the window.
  h.envelope.received_at += 600;
  h.envelope.rcpts = {{"c", "x.test"}, {"d", "x.test"}};
  CHECK_FALSE(is_hit(h.run(copy_for(0))));
  h.envelope.received_at += 20;
  h.envelope.rcpts = {{"e", "x.test"}};
  CHECK(is_hit(h.run(copy_for(0))));
}

TEST_CASE("checksum: no store is an error; bad options are config errors",
          "[filters][checksum]") {
  FilterHarness h(&digue::filters::make_checksum, "");
  auto r = h.run(copy_for(0));
  CHECK(r.status == digue::FilterResult::Status::Error);
  CHECK_THROWS_AS(FilterHarness(&digue::filters::make_checksum, "threshold = 1\n"),
                  digue::ConfigError);
  CHECK_THROWS_AS(FilterHarness(&digue::filters::make_checksum, "window = \"10m\"\n"),
                  digue::ConfigError);
}

TEST_CASE("checksum: malformed input still gets a digest", "[filters][checksum]") {
  auto store = digue::make_memory_store();
  FilterHarness h(&digue::filters::make_checksum, "threshold = 2\n");
  h.services.store = store.get();
  std::string junk = "\x01\x02 no headers at all\n--\n=?x?";
  set_rcpt(h, 1);
  CHECK_FALSE(is_hit(h.run(junk)));
  set_rcpt(h, 2);
  CHECK(is_hit(h.run(junk)));
}
