#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "filters/sender_complaints.hpp"
#include "tests/filters/filter_harness.hpp"

using digue::test::FilterHarness;
using digue::test::is_hit;

namespace {
std::string list_file(const std::string& content) {
  auto p = std::filesystem::temp_directory_path() / "digue-complaints-test.txt";
  std::ofstream(p) << content;
  return "file = \"" + p.string() + "\"\n";
}
const char* kList = "# comment\nSpammer@Bad.Example\n*@junk.example\nwhole.example\n*@.tree.example\n";
}  // namespace

TEST_CASE("sender_complaints: address, *@domain, domain and subtree entries",
          "[filters][sender_complaints]") {
  FilterHarness h(&digue::filters::make_sender_complaints, list_file(kList));
  CHECK(h.filter->phase() == digue::Phase::Data);
  h.envelope.mail_from = {"SPAMMER", "bad.example"};
  auto r = h.run("Subject: x\n\nx\n");
  REQUIRE(is_hit(r));
  CHECK(r.symbols[0].evidence == "spammer@bad.example (envelope) matches spammer@bad.example");
  h.envelope.mail_from = {"other", "bad.example"};
  CHECK_FALSE(is_hit(h.run("Subject: x\n\nx\n")));
  h.envelope.mail_from = {"any", "junk.example"};
  CHECK(is_hit(h.run("Subject: x\n\nx\n")));
  h.envelope.mail_from = {"any", "sub.junk.example"};
  CHECK_FALSE(is_hit(h.run("Subject: x\n\nx\n")));  // *@domain is that domain only
  h.envelope.mail_from = {"x", "whole.example"};
  CHECK(is_hit(h.run("Subject: x\n\nx\n")));
  h.envelope.mail_from = {"x", "a.b.tree.example"};
  CHECK(is_hit(h.run("Subject: x\n\nx\n")));
}

TEST_CASE("sender_complaints: From header, null sender, malformed From",
          "[filters][sender_complaints]") {
  FilterHarness h(&digue::filters::make_sender_complaints, list_file(kList));
  h.envelope.mail_from = {};
  auto r = h.run("From: \"Nice\" <boss@JUNK.example>\n\nx\n");
  REQUIRE(is_hit(r));
  CHECK(r.symbols[0].evidence == "boss@junk.example (header) matches *@junk.example");
  CHECK_FALSE(is_hit(h.run("From: @@@ <> ,,\n\nx\n")));
  CHECK_FALSE(is_hit(h.run("")));
  FilterHarness env_only(&digue::filters::make_sender_complaints,
                         list_file(kList) + "check_from_header = false\n");
  CHECK(env_only.filter->phase() == digue::Phase::Mail);
  env_only.envelope.mail_from = {};
  CHECK_FALSE(is_hit(env_only.run("From: boss@junk.example\n\nx\n")));
}

TEST_CASE("sender_complaints: bad entries and missing file are config errors",
          "[filters][sender_complaints]") {
  CHECK_THROWS_AS(FilterHarness(&digue::filters::make_sender_complaints, list_file("a b@c\n")),
                  digue::ConfigError);
  CHECK_THROWS_AS(FilterHarness(&digue::filters::make_sender_complaints, list_file("user@\n")),
                  digue::ConfigError);
  CHECK_THROWS_AS(FilterHarness(&digue::filters::make_sender_complaints,
                                "file = \"/nonexistent/complaints.txt\"\n"),
                  digue::ConfigError);
  // The shipped file loads.
  FilterHarness shipped(&digue::filters::make_sender_complaints,
                        "file = \"" DIGUE_SOURCE_DIR "/rules/sender_complaints.txt\"\n");
  CHECK_FALSE(is_hit(shipped.run("Subject: x\n\nx\n")));
}
