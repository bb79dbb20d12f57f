#include <catch2/catch.hpp>

#include "filters/scripts.hpp"
#include "tests/filters/filter_harness.hpp"

using digue::test::FilterHarness;
using digue::test::is_hit;

namespace {
std::vector<std::string> names(const digue::FilterResult& r) {
  std::vector<std::string> n;
  for (const auto& s : r.symbols) n.push_back(s.name);
  return n;
}
}  // namespace

TEST_CASE("scripts: Cyrillic subject (RFC 2047) and body", "[filters][scripts]") {
  FilterHarness h(&digue::filters::make_scripts, "");
  auto r = h.run("From: =?koi8-r?B?8NLJ18XU?= <a@b.example>\n"
                 "Subject: =?utf-8?B?0JrRg9C/0LjRgtGMINC00ZHRiNC10LLQvg==?=\n"
                 "Content-Type: text/plain; charset=utf-8\n\n"
                 "Специальное предложение только сегодня для вас\n");
  REQUIRE(is_hit(r));
  CHECK(names(r) == std::vector<std::string>{"CYRILLIC_SUBJECT", "CYRILLIC_FROM", "CYRILLIC_BODY"});
  CHECK(r.symbols[0].evidence == "share=1.00 letters=12");
}

TEST_CASE("scripts: CJK in Shift_JIS body", "[filters][scripts]") {
  FilterHarness h(&digue::filters::make_scripts, "");
  // "こんにちは、世界の皆さん。今日はとても良い天気ですね。" in Shift_JIS via iconv's view.
  std::string sjis = "\x82\xb1\x82\xf1\x82\xc9\x82\xbf\x82\xcd\x81\x41\x90\xa2\x8a\x45\x82\xcc"
                     "\x8a\x46\x82\xb3\x82\xf1\x81\x42\x8d\xa1\x93\xfa\x82\xcd\x82\xc6\x82\xc4"
                     "\x82\xe0\x97\xc7\x82\xa2\x93\x56\x8b\x43\x82\xc5\x82\xb7\x82\xcb\x81\x42";
  auto r = h.run("Subject: hello\nContent-Type: text/plain; charset=shift_jis\n\n" + sjis + "\n");
  REQUIRE(is_hit(r));
  CHECK(names(r) == std::vector<std::string>{"CJK_BODY"});
}

TEST_CASE("scripts: Latin text, short and mixed parts miss", "[filters][scripts]") {
  FilterHarness h(&digue::filters::make_scripts, "");
  CHECK_FALSE(is_hit(h.run("Subject: Café au lait\n\nBonjour à tous, voici le menu du jour.\n")));
  // A few Russian words in a long English body stay under 30%.
  CHECK_FALSE(is_hit(h.run("Subject: trip\n\nWe visited the city and learned to say "
                           "спасибо and привет to everyone we met along the way home.\n")));
  // Two letters: under min_letters_header.
  CHECK_FALSE(is_hit(h.run("Subject: Да\n\nok\n")));
  // Malformed UTF-8 does not break the count.
  auto c = digue::filters::count_scripts("\xff\xd0\x90\xd0");
  CHECK(c.cyrillic == 1);
  CHECK(c.letters == 1);
}

TEST_CASE("scripts: options switch scripts off and move thresholds", "[filters][scripts]") {
  FilterHarness off(&digue::filters::make_scripts, "cyrillic = false\n");
  CHECK_FALSE(is_hit(off.run("Subject: Специальное предложение\n\nx\n")));
  FilterHarness low(&digue::filters::make_scripts, "cyrillic_threshold = 0.05\n");
  CHECK(is_hit(low.run("Subject: trip\n\nWe visited the city and learned to say "
                       "спасибо and привет to everyone we met along the way home.\n")));
  CHECK_THROWS_AS(FilterHarness(&digue::filters::make_scripts, "cjk_threshold = 0\n"),
                  digue::ConfigError);
}
