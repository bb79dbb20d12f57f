// PipelineRun and rcpt-phase filters: each recipient is checked once, on its RCPT, and a
// domain's result merges its recipients' results. Drives a real Pipeline (greylist, honeypot,
// same_sender_rcpt from the registry) over an in-memory store the way the SMTP session does.
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "tests/filters/pipeline_session.hpp"

using namespace digue;

namespace {

using test::Session;

const char* kConfig = R"(
[pipeline]
order = ["greylist", "honeypot", "same_sender_rcpt"]
[filters.greylist]
action = "tempfail"
delay = 0
auto_whitelist_days = 0
[filters.honeypot]
action = "spam"
traps = ["trap@b.test"]
bulk_threshold = 100
[filters.same_sender_rcpt]
action = "score"
[domains."a.test"]
greylisting = true
[domains."b.test"]
)";

}  // namespace

TEST_CASE("pipeline: rcpt-phase filters run once per recipient", "[pipeline][rcpt]") {
  Session s(kConfig);
  // First transaction: every recipient of a.test is greylisted (first sight), b.test is not.
  CHECK(s.rcpt({"u1", "a.test"}).decision == Decision::Tempfail);
  CHECK(s.rcpt({"v1", "b.test"}).decision == Decision::Accept);
  CHECK(s.store.updates == 1);  // one triplet recorded (b.test does not greylist)

  // The retry: 50 recipients, each checked once, whatever their number.
  s.run->reset();
  s.env.rcpts.clear();
  for (int i = 0; i < 50; ++i) {
    auto v = s.rcpt({"u" + std::to_string(i + 1), "a.test"});
    // u1 was seen before (delay 0: passes); the others are new triplets: refused.
    CHECK(v.decision == (i == 0 ? Decision::Accept : Decision::Tempfail));
  }
  CHECK(s.runs("greylist") == 2 + 50);  // not 2 + 50·51/2
  CHECK(s.store.updates == 1 + 50);
  REQUIRE(s.env.rcpts.size() == 1);
  s.run->set_message(std::make_shared<Message>(std::string("Subject: x\r\n\r\nbody\r\n")));
  Verdict d = s.evaluate("a.test", Phase::Data);
  CHECK(d.decision == Decision::Accept);
  REQUIRE(s.symbol(d, "GREYLIST_PASSED"));
  CHECK(s.symbol(d, "GREYLIST_PASSED")->symbol.evidence ==
        "192.0.2.0/24 bob@sender.example -> u1@a.test");
  CHECK(s.runs("greylist") == 52);  // DATA re-used the cached result
}

TEST_CASE("pipeline: a domain's rcpt-phase result merges its recipients",
          "[pipeline][rcpt]") {
  Session s(kConfig);
  // b.test does not greylist: only honeypot and same_sender_rcpt matter there.
  CHECK(s.rcpt({"x", "b.test"}).decision == Decision::Accept);
  // The sender writes to itself among other recipients.
  s.env.rcpts.clear();
  s.run->reset();
  s.env.mail_from = {"y", "b.test"};
  CHECK(s.rcpt({"x", "b.test"}).decision == Decision::Accept);
  CHECK(s.rcpt({"y", "b.test"}).decision == Decision::Accept);  // same sender: scored
  CHECK(s.rcpt({"z", "b.test"}).decision == Decision::Accept);
  s.run->set_message(std::make_shared<Message>(std::string("Subject: x\r\n\r\nbody\r\n")));
  Verdict d = s.evaluate("b.test", Phase::Data);
  // The hit of one recipient (y) is the domain's, though later recipients had none.
  REQUIRE(s.symbol(d, "SAME_SENDER_RCPT"));
  CHECK(s.symbol(d, "SAME_SENDER_RCPT")->symbol.score == 4.0);
  CHECK(s.runs("same_sender_rcpt") == 1 + 3);
  CHECK(s.runs("honeypot") == 1 + 3);
}

TEST_CASE("pipeline: a trap before a normal recipient still decides", "[pipeline][rcpt]") {
  Session s(kConfig);
  // honeypot action is "spam": the trap recipient is accepted (not refused at RCPT) and the
  // message classed spam, though a normal recipient follows.
  CHECK(s.rcpt({"trap", "b.test"}).decision == Decision::Spam);
  CHECK(s.rcpt({"carol", "b.test"}).decision == Decision::Spam);
  s.run->set_message(std::make_shared<Message>(std::string("Subject: x\r\n\r\nbody\r\n")));
  Verdict d = s.evaluate("b.test", Phase::Data);
  CHECK(d.decision == Decision::Spam);
  CHECK(d.deciding_filter == "honeypot");
  CHECK(s.runs("honeypot") == 2);
}

TEST_CASE("pipeline: a refused recipient is checked afresh when named again",
          "[pipeline][rcpt]") {
  Session s(kConfig);
  CHECK(s.rcpt({"u", "a.test"}).decision == Decision::Tempfail);  // first sight
  // delay 0: the same RCPT again in the same transaction is the retry, and passes (its
  // refused result was forgotten, not re-used).
  CHECK(s.rcpt({"u", "a.test"}).decision == Decision::Accept);
  CHECK(s.runs("greylist") == 2);
}

TEST_CASE("RecipientMerge: hit wins, errors next, a pass only when all passed",
          "[pipeline][rcpt]") {
  using V = FilterResult::Verdict;
  auto note = FilterResult::note("NOTE", 1.0, "a");
  auto hit = FilterResult::hit("HIT", 5.0, "h", "why");
  auto pass = FilterResult::pass("OK_LISTED", "listed");
  auto err = FilterResult::error("store down");

  RecipientMerge one;
  one.add(hit);
  CHECK(one.result().verdict == V::Hit);
  CHECK(one.result().reason == "why");

  // A note first, then a hit: the hit decides, its symbol first, the note kept.
  RecipientMerge m;
  m.add(note);
  m.add(hit);
  m.add(err);
  auto r = m.result();
  CHECK(r.status == FilterResult::Status::Ok);
  CHECK(r.verdict == V::Hit);
  REQUIRE(r.symbols.size() == 2);
  CHECK(r.symbols[0].name == "HIT");
  CHECK(r.symbols[1].name == "NOTE");

  // Without a hit an error decides (the slot's on_error applies).
  RecipientMerge e;
  e.add(note);
  e.add(err);
  CHECK(e.result().status == FilterResult::Status::Error);
  CHECK(e.result().reason == "store down");

  // One recipient's whitelist pass does not whitelist the others.
  RecipientMerge p;
  p.add(pass);
  p.add(note);
  CHECK(p.result().verdict == V::None);
  CHECK(p.result().symbols.at(0).name == "NOTE");
  RecipientMerge all;
  all.add(pass);
  all.add(FilterResult::pass("OK_LISTED", "listed too"));
  REQUIRE(all.result().verdict == V::Pass);
  CHECK(all.result().symbols.at(0).evidence == "listed; listed too");

  // Same-named symbols: one symbol, the first's score, evidence joined and bounded.
  RecipientMerge many;
  for (int i = 0; i < 500; ++i)
    many.add(FilterResult::note("NOTE", 1.0, "recipient" + std::to_string(i) + "@example"));
  auto n = many.result();
  REQUIRE(n.symbols.size() == 1);
  CHECK(n.symbols[0].score == 1.0);
  CHECK(n.symbols[0].evidence.size() < 700);
  CHECK(n.symbols[0].evidence.find("more recipients") != std::string::npos);
}

TEST_CASE("pipeline: many recipients, two domains, duplicates, a new transaction",
          "[pipeline][rcpt]") {
  Session s(kConfig);
  s.env.mail_from = {"z5", "b.test"};
  // 1,000 b.test recipients (no greylisting) and a duplicate: one check each.
  for (int i = 0; i < 1000; ++i)
    REQUIRE(s.rcpt({"z" + std::to_string(i), "b.test"}).decision == Decision::Accept);
  CHECK(s.rcpt({"Z5", "b.test"}).decision == Decision::Accept);  // same address, other case
  CHECK(s.runs("same_sender_rcpt") == 1000);
  CHECK(s.runs("greylist") == 1000);  // per-domain, b.test does not greylist: a quick none
  // An a.test recipient: greylisted (first sight), refused, and b.test's result unchanged.
  CHECK(s.rcpt({"u", "a.test"}).decision == Decision::Tempfail);
  s.run->set_message(std::make_shared<Message>(std::string("Subject: x\r\n\r\nbody\r\n")));
  Verdict d = s.evaluate("b.test", Phase::Data);
  REQUIRE(s.symbol(d, "SAME_SENDER_RCPT"));
  CHECK(s.symbol(d, "SAME_SENDER_RCPT")->symbol.evidence == "z5@b.test");
  CHECK(s.runs("same_sender_rcpt") == 1000);  // DATA re-used every result
  // A new transaction (RSET / next MAIL) forgets the recipients' results.
  s.run->reset();
  s.env.rcpts.clear();
  CHECK(s.rcpt({"z5", "b.test"}).decision == Decision::Accept);
  CHECK(s.runs("same_sender_rcpt") == 1001);
}
