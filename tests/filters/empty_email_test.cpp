#include <catch2/catch.hpp>

#include "filters/empty_email.hpp"
#include "tests/filters/filter_harness.hpp"

using digue::test::FilterHarness;
using digue::test::is_hit;

TEST_CASE("empty_email: hit on no text and no attachment", "[filters][empty_email]") {
  FilterHarness h(&digue::filters::make_empty_email, "");
  auto r = h.run("Subject: hello\r\n\r\n  \r\n\t\r\n");
  REQUIRE(is_hit(r));
  CHECK(r.symbols[0].name == "EMPTY_EMAIL");
  CHECK(r.symbols[0].evidence == "no text, no attachment, subject present");
  // HTML whose only content is hidden or markup is empty to a reader.
  CHECK(is_hit(h.run("Content-Type: text/html\r\n\r\n<html><body><div style='display:none'>"
                     "hidden words</div><script>x()</script></body></html>\r\n")));
  CHECK(is_hit(h.run("")));  // malformed: nothing at all
  CHECK(is_hit(h.run("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n--b--\r\n")));
}

TEST_CASE("empty_email: text or an attachment is content", "[filters][empty_email]") {
  FilterHarness h(&digue::filters::make_empty_email, "");
  CHECK_FALSE(is_hit(h.run("Subject: x\r\n\r\nhi\r\n")));
  CHECK_FALSE(is_hit(h.run("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                           "Content-Type: application/pdf\r\n\r\n%PDF-1.4\r\n--b--\r\n")));
}

TEST_CASE("empty_email: options", "[filters][empty_email]") {
  FilterHarness strict(&digue::filters::make_empty_email, "min_chars = 5\nignore_subject = false\n");
  CHECK(is_hit(strict.run("\r\nok\r\n")));                 // 2 chars < 5, no subject
  CHECK_FALSE(is_hit(strict.run("Subject: s\r\n\r\nok\r\n")));  // the subject counts
  CHECK_THROWS_AS(FilterHarness(&digue::filters::make_empty_email, "min_chars = 0\n"),
                  digue::ConfigError);
}
