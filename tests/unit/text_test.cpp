// The shared text helpers: ASCII case folding and comparison, JSON string escaping.
#include <catch2/catch.hpp>

#include "digue/text.hpp"

using namespace digue;

TEST_CASE("text: ASCII lower and case-insensitive equality", "[text]") {
  CHECK(text::lower("MiXeD.Example-1") == "mixed.example-1");
  CHECK(text::lower("\xc3\x89t\xc3\xa9") == "\xc3\x89t\xc3\xa9");  // only ASCII folds
  CHECK(text::iequals("Subject", "sUBJECT"));
  CHECK(text::iequals("", ""));
  CHECK(text::iequals("Bob@Example.NET", "bob@example.net"));
  CHECK_FALSE(text::iequals("Subject", "Subjects"));
  CHECK_FALSE(text::iequals("a", "b"));
  CHECK_FALSE(text::iequals("[", "{"));                 // 0x5b and 0x7b are not a case pair
  CHECK_FALSE(text::iequals("\xc3\xa9", "\xc3\x89"));  // ASCII only
}

TEST_CASE("text: json_escape keeps or escapes bytes from 0x7f", "[text]") {
  CHECK(text::json_escape("a\"b\\c\nd\r\te\x01") == "a\\\"b\\\\c\\nd\\r\\te\\u0001");
  CHECK(text::json_escape("caf\xc3\xa9 \x7f") == "caf\xc3\xa9 \x7f");
  CHECK(text::json_escape("caf\xc3\xa9 \x7f", text::NonAscii::Escape) ==
        "caf\\u00c3\\u00a9 \\u007f");
  CHECK(text::json_escape("\"\x1f", text::NonAscii::Escape) == "\\\"\\u001f");
  // Keep: ill-formed UTF-8 (a cut sequence, a lone continuation byte, an overlong form, a
  // surrogate) becomes U+FFFD per byte, so the output is always valid UTF-8.
  CHECK(text::json_escape("a\xc3") == "a\\ufffd");
  CHECK(text::json_escape("\xa9" "b\xe6\x97\xa5") == "\\ufffd" "b\xe6\x97\xa5");
  CHECK(text::json_escape("\xc0\xaf") == "\\ufffd\\ufffd");
  CHECK(text::json_escape("\xed\xa0\x80") == "\\ufffd\\ufffd\\ufffd");
  CHECK(text::json_escape("\xf0\x9f\x98\x80") == "\xf0\x9f\x98\x80");
  CHECK(text::valid_utf8("caf\xc3\xa9 \xf0\x9f\x98\x80"));
  CHECK(!text::valid_utf8("caf\xc3"));
  CHECK(!text::valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
}
