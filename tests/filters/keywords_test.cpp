#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "filters/keywords.hpp"
#include "tests/filters/filter_harness.hpp"

using digue::test::FilterHarness;
using digue::test::is_hit;

namespace {

std::string write_temp(const std::string& name, const std::string& content) {
  auto dir = std::filesystem::temp_directory_path() / "digue-keywords-test";
  std::filesystem::create_directories(dir);
  auto p = dir / name;
  std::ofstream(p) << content;
  return p.string();
}

std::string options(const std::string& platform, const std::string& extra = "") {
  return "rules = [\"" + platform + "\"]\n" + extra;
}

}  // namespace

TEST_CASE("keywords: platform rules hit on subject, body, header and raw", "[filters][keywords]") {
  std::string rules = write_temp("p.rules",
                                 "# comment\n\n"
                                 "SUBJ subject /free\\s+money/i\n"
                                 "BODY body /wire (?:the )?funds/\n"
                                 "HDR header:X-Mailer /^BulkMailer/\n"
                                 "RAW raw /^X-Secret: 42$/m\n"
                                 "HDRS headers /^Reply-To: .*@evil\\.example$/m\n");
  FilterHarness h(&digue::filters::make_keywords, options(rules));
  auto r = h.run("Subject: =?utf-8?q?FREE_money?=\n\nhello\n");
  REQUIRE(is_hit(r));
  CHECK(r.symbols[0].name == "KEYWORDS");
  CHECK(r.symbols[0].evidence == "SUBJ (subject)");
  // The body rule sees decoded text: the QP soft break joins "wire the" and "funds".
  r = h.run("Content-Transfer-Encoding: quoted-printable\n\nplease wire the =\nfunds today\n");
  REQUIRE(is_hit(r));
  CHECK(r.symbols[0].evidence == "BODY (body)");
  r = h.run("X-Mailer: BulkMailer 3\n\nx\n");
  REQUIRE(is_hit(r));
  CHECK(r.symbols[0].evidence == "HDR (header:X-Mailer)");
  CHECK(is_hit(h.run("X-Secret: 42\n\nx\n")));
  CHECK(is_hit(h.run("Reply-To: a@evil.example\n\nx\n")));
  CHECK_FALSE(is_hit(h.run("Subject: money for free\n\nnothing to see\n")));
}

TEST_CASE("keywords: per-domain lists apply only to their domain", "[filters][keywords]") {
  std::string platform = write_temp("empty.rules", "# nothing\n");
  std::string dom = write_temp("dom.rules", "DOM1 body /\\bproject falcon\\b/i\n");
  FilterHarness h(&digue::filters::make_keywords,
                  options(platform, "[domains]\n\"Example.TEST\" = \"" + dom + "\"\n"));
  CHECK(h.filter->per_domain());
  auto r = h.run("Subject: x\n\nAbout Project Falcon\n");
  REQUIRE(is_hit(r));
  CHECK(r.symbols[0].name == "KEYWORDS_DOMAIN");
  CHECK(r.symbols[0].evidence == "DOM1 (body)");
  h.domain = "other.test";
  CHECK_FALSE(is_hit(h.run("Subject: x\n\nAbout Project Falcon\n")));
}

TEST_CASE("keywords: bad rule files are config errors naming file and line", "[filters][keywords]") {
  std::string bad = write_temp("bad.rules", "OK body /fine/\n\nBAD body /(unclosed/\n");
  try {
    FilterHarness h(&digue::filters::make_keywords, options(bad));
    FAIL("no ConfigError");
  } catch (const digue::ConfigError& e) {
    CHECK(std::string(e.what()).find("bad.rules:3") != std::string::npos);
    CHECK(e.key == "filters.keywords.rules");
  }
  std::string target = write_temp("target.rules", "X nowhere /a/\n");
  CHECK_THROWS_AS(FilterHarness(&digue::filters::make_keywords, options(target)),
                  digue::ConfigError);
  std::string flags = write_temp("flags.rules", "X body /a/q\n");
  CHECK_THROWS_AS(FilterHarness(&digue::filters::make_keywords, options(flags)),
                  digue::ConfigError);
  CHECK_THROWS_AS(FilterHarness(&digue::filters::make_keywords, options("/nonexistent.rules")),
                  digue::ConfigError);
  CHECK_THROWS_AS(FilterHarness(&digue::filters::make_keywords, options(flags, "colour = 1\n")),
                  digue::ConfigError);
}

TEST_CASE("keywords: catastrophic patterns stop at the match limit", "[filters][keywords]") {
  std::string rules = write_temp("slow.rules", "SLOW body /^(a+)+$/\n");
  FilterHarness h(&digue::filters::make_keywords,
                  options(rules, "match_limit = 1000\ndepth_limit = 100\n"));
  auto r = h.run("Subject: x\n\n" + std::string(40, 'a') + "!\n");
  CHECK_FALSE(is_hit(r));
  REQUIRE(r.symbols.size() == 1);
  CHECK(r.symbols[0].name == "KEYWORDS_LIMIT");
  CHECK(r.symbols[0].evidence == "SLOW");
}

TEST_CASE("keywords: the shipped platform rules load and match", "[filters][keywords]") {
  FilterHarness h(&digue::filters::make_keywords,
                  options(DIGUE_SOURCE_DIR "/rules/keywords.rules", "all_matches = true\n"));
  auto r = h.run("Subject: cheap V1agra\n\nBuy viagra pills online\n");
  REQUIRE(is_hit(r));
  CHECK(r.symbols[0].evidence == "PHARMA_SUBJECT (subject), PHARMA_BODY (body)");
  // Invalid UTF-8 in raw bytes is matched, not an error.
  CHECK_FALSE(is_hit(h.run("Subject: hello\n\n\xff\xfe ordinary text\n")));
}
