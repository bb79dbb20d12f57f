#include <catch2/catch.hpp>

#include "digue/quarantine.hpp"

using namespace digue::quarantine;

TEST_CASE("quarantine index: fields never shift", "[quarantine]") {
  IndexEntry e;
  e.from = "a@example.org";
  e.rcpts = "u@example.test,v@example.test";
  e.created = 1764064800;
  e.filter = "empty_sender";
  e.subject = "evil\t0\tx\t/etc/passwd\r\nX: y";
  IndexEntry d = decode(encode(e));
  CHECK(d.from == e.from);
  CHECK(d.rcpts == e.rcpts);
  CHECK(d.created == e.created);
  CHECK(d.filter == e.filter);
  CHECK(d.subject == "evil 0 x /etc/passwd  X: y");
  CHECK(encode(e).find('\n') == std::string::npos);

  e.from.clear();  // the null sender
  e.subject.clear();
  d = decode(encode(e));
  CHECK(d.from.empty());
  CHECK(d.subject.empty());
  CHECK(d.filter == "empty_sender");

  // A TAB stored in the subject field by hand still stays in the subject.
  d = decode("2\ta@x.test\tu@example.test\t5\tbayes\tone\ttwo");
  CHECK(d.filter == "bayes");
  CHECK(d.created == 5);
  CHECK(d.subject == "one two");
}

TEST_CASE("quarantine index: first format still read", "[quarantine]") {
  IndexEntry d =
      decode("a@x.test\tu@example.test\thello\t7\tbayes\t/s/quarantine/ID.example.test.eml");
  CHECK(d.from == "a@x.test");
  CHECK(d.rcpts == "u@example.test");
  CHECK(d.subject == "hello");
  CHECK(d.created == 7);
  CHECK(d.filter == "bayes");
  // A TAB in the subject made more fields: created and filter are counted from the end.
  d = decode("\tu@example.test\tevil\t0\tx\t/etc/passwd\t7\tbayes\t/s/quarantine/ID.d.eml");
  CHECK(d.from.empty());
  CHECK(d.subject == "evil 0 x /etc/passwd");
  CHECK(d.created == 7);
  CHECK(d.filter == "bayes");
  // Garbage decodes to an empty entry, it does not throw.
  CHECK(decode("").filter.empty());
  CHECK(decode("a\tb").filter.empty());
}

TEST_CASE("quarantine file path is derived, not stored", "[quarantine]") {
  CHECK(file_path("/s", "0ABC", "Example.Test") == "/s/quarantine/0ABC.example.test.eml");
  CHECK(file_path("/s", "0ABC", "a/../b") == "/s/quarantine/0ABC.a_.._b.eml");
  CHECK(index_key("example.test", "0ABC") == "quar:example.test:0ABC");
  CHECK(valid_id("0KQ3ZJ5W8F1A2B3C4D5E"));
  CHECK(!valid_id(""));
  CHECK(!valid_id("../x"));
  CHECK(!valid_id("a/b"));
  CHECK(!valid_id("a.b"));
}
