// What diguectl bayes reads: mbox envelope lines, splitting, and the mail-message check.
#include <catch2/catch.hpp>

#include "digue/mbox.hpp"

using namespace digue;

TEST_CASE("mbox envelope lines", "[mbox]") {
  // As in the shared corpus and common mailers.
  for (std::string_view line : {
           "From timc@2ubh.com  Thu Aug 22 13:52:59 2002\n",
           "From alice@example.org Thu Aug 22 12:36:23 2002",
           "From MAILER-DAEMON  Thu Aug  2 08:03:01 2001\r\n",
           "From MAILER-DAEMON@dogma.slashnull.org  Wed Jul 24 04:53:42 2002",
           "From zvfjenphuq@[1086695621] [ufa]  Sun Aug  5 09:51:15 2001",
           "From <> Mon Jan  1 00:00:00 2024",
           "From  Mon Jan  1 00:00:00 2024",  // no sender
           "From bob Mon Jan 1 00:00 2024",
           "From bob@x.org Mon Jan  1 00:00:00 PST 2024",
           "From bob@x.org Mon Jan  1 00:00:00 2024 +0100",
           "From bob Mon Jan  1 00:00:00 2024 remote from mars",
       }) {
    CAPTURE(line);
    CHECK(mbox::is_envelope(line));
  }
  // Body lines, and lines that are almost envelopes.
  for (std::string_view line : {
           "From what I heard, it works.\n",
           "From home recordings to downloaded mp3s, this DirectX plug-in",
           "From Mon Jan 1 we open at 00:00:00 2024",
           "From bob Mon Jan  1 00:00:00 2024 and more words",
           "From what I heard Mon Jan  1 00:00:00 2024",
           "From bob Mon Jan 1 2024",
           "From bob Mon Foo  1 00:00:00 2024",
           ">From bob Mon Jan  1 00:00:00 2024",
           "From: bob@example.org",
           "From ",
       }) {
    CAPTURE(line);
    CHECK_FALSE(mbox::is_envelope(line));
  }
}

TEST_CASE("mbox splitting", "[mbox]") {
  const std::string env = "From alice@example.org Thu Aug 22 12:36:23 2002\n";
  SECTION("a body paragraph starting with From is not a message") {
    auto m = mbox::split(env + "Subject: a\n\nHello\n\nFrom what I heard, it works.\n");
    REQUIRE(m.size() == 1);
    CHECK(m[0] == "Subject: a\n\nHello\n\nFrom what I heard, it works.\n");
  }
  SECTION("envelope lines separate messages and are dropped; >From is unquoted once") {
    auto m = mbox::split(env + "Subject: a\n\n>From here\n>>From there\n>Fromage\n\n" + env +
                         "Subject: b\r\n\r\nB\r\n\r\n" + env + "Subject: c\n\nno newline");
    REQUIRE(m.size() == 3);
    // The empty line that ends each message in an mbox is the mbox's: dropped.
    CHECK(m[0] == "Subject: a\n\nFrom here\n>From there\n>Fromage\n");
    CHECK(m[1] == "Subject: b\r\n\r\nB\r\n");
    CHECK(m[2] == "Subject: c\n\nno newline");
  }
  SECTION("a file without an envelope line is one message, unchanged") {
    std::string msg = "Subject: a\n\n>From here\n\n" + env + "Subject: b\n";
    auto m = mbox::split(msg);
    REQUIRE(m.size() == 1);
    CHECK(m[0] == msg);
  }
  SECTION("an empty file has no message; an envelope alone is one empty message") {
    CHECK(mbox::split("").empty());
    CHECK(mbox::split(env) == std::vector<std::string>{""});
  }
  SECTION("fed line by line, a message is handed out when the next envelope arrives") {
    mbox::Splitter s;
    CHECK_FALSE(s.feed(env));
    CHECK_FALSE(s.feed("Subject: a\n"));
    auto done = s.feed(env);
    REQUIRE(done);
    CHECK(*done == "Subject: a\n");
    CHECK_FALSE(s.feed("Subject: b\n"));
    CHECK(s.finish() == std::optional<std::string>("Subject: b\n"));
    CHECK_FALSE(s.finish());
  }
}

TEST_CASE("mail message check", "[mbox]") {
  for (std::string_view raw :
       {"Subject: hi\n\nbody\n", "Received: from x\r\n\tby y\r\nFrom: a@b\r\n\r\nbody",
        "X-Weird:no space\n"}) {
    CAPTURE(raw);
    CHECK(mbox::looks_like_message(raw));
  }
  static const char elf[] = "\177ELF\2\1\1\0\0\0Key: v\n";
  for (std::string_view raw :
       {std::string_view(), std::string_view("\n\nSubject: after the header block\n"),
        std::string_view("just some text\nwithout any field\n"), std::string_view(": no name\n"),
        std::string_view("not a name: value\n"), std::string_view(elf, sizeof elf - 1)}) {
    CAPTURE(raw);
    CHECK_FALSE(mbox::looks_like_message(raw));
  }
}
