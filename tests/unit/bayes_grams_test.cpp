// The Bayes gram model: byte 4-grams of raw messages, their lists in the Store (learn,
// unlearn, expire, dump/restore) and the model trained on them, on the in-memory Store.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "digue/bayes.hpp"
#include "digue/mime.hpp"

using namespace digue;
using namespace digue::bayes;

namespace {

// A raw message of each class: spam talks money in HTML-ish shouting, ham talks code.
std::string raw_message(bool spam, int i) {
  static const char* kSpam[] = {"CHEAP", "money", "offer", "click", "winner", "free",
                                "pills", "casino", "loan", "credit", "urgent", "viagra"};
  static const char* kHam[] = {"meeting", "patch", "kernel", "review", "lunch", "build",
                               "release", "thanks", "compiler", "bug", "merge", "agenda"};
  const char** w = spam ? kSpam : kHam;
  std::string body;
  for (int k = 0; k < 12; ++k) body += std::string(w[(i * 7 + k * 5) % 12]) + (spam ? "!! " : " ");
  body += "\nref " + std::to_string(i * 7919) + "\n";
  return std::string("From: ") + (spam ? "Deals <promo@spam.example>" : "Ann <ann@work.example>") +
         "\nTo: u@example.test\nSubject: " + w[i % 12] + " " + w[(i + 3) % 12] +
         "\nMessage-ID: <" + std::to_string(i) + (spam ? "s" : "h") + "@x.example>\n\n" + body;
}

Classifier::Item item_of(const std::string& raw, Class cls) {
  auto msg = mime::parse(raw);
  Classifier::Item it{tokenize(msg), cls, message_identity(msg)};
  it.grams = byte_grams(raw);
  return it;
}

void learn_corpus(const Classifier& c, int n, int from = 0) {
  std::vector<Classifier::Item> items;
  for (int i = from; i < from + n; ++i) {
    items.push_back(item_of(raw_message(true, i), Class::Spam));
    items.push_back(item_of(raw_message(false, i), Class::Ham));
  }
  c.learn(items);
}

Params young_ok() {
  Params p;
  p.confidence_messages = 0;  // a small test model counts as grown
  return p;
}

}  // namespace

TEST_CASE("bayes byte_grams: CRs, trace headers, bounds", "[bayes][grams]") {
  const std::string lf = "From: a@b.example\nSubject: hello there\n\nbody text here\n";
  std::string crlf;
  for (char ch : lf) crlf += ch == '\n' ? std::string("\r\n") : std::string(1, ch);
  const auto g = byte_grams(lf);
  CHECK(!g.empty());
  CHECK(byte_grams(crlf) == g);  // SMTP's CRLF and a Maildir's LF: the same grams
  auto sorted = g;
  std::sort(sorted.begin(), sorted.end());
  CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());  // each once
  for (uint32_t x : g) CHECK(x < (uint32_t{1} << kGramBits));
  // Trace headers (one folded over two lines) are left out; other headers are not.
  const std::string traced =
      "X-Spam-Status: Yes, score=12.0\n\ttests=LOTS\nFrom: a@b.example\n"
      "X-Digue-Bayes: score=9.00\nSubject: hello there\n\nbody text here\n";
  CHECK(byte_grams(traced) == g);
  CHECK(byte_grams("X-Mailer: Foo\n" + lf) != g);
  // Only the first max_bytes bytes; fewer than four bytes give none.
  CHECK(byte_grams(lf, 4).size() == 1);
  CHECK(byte_grams(lf + std::string(100000, 'x'), 200) == byte_grams(lf + std::string(200, 'x'), 200));
  CHECK(byte_grams("abc").empty());
  CHECK(byte_grams("").empty());
  // A message without a blank line (all header) and one that is all body still have grams.
  CHECK(!byte_grams("Subject: only headers").empty());
  CHECK(!byte_grams("\nonly a body").empty());
  // The body is taken as it is: a line that looks like a trace header there is content.
  CHECK(byte_grams(lf + "X-Spam-Flag: YES\n") != byte_grams(lf));
}

TEST_CASE("bayes gram lists follow learning, unlearning and relearning", "[bayes][grams]") {
  auto store = make_memory_store();
  Classifier c(*store, young_ok());
  learn_corpus(c, 30);
  CHECK(c.stats().gram_lists == 60);
  // The list is stored under the message's identity, as learnt.
  auto it = item_of(raw_message(true, 3), Class::Spam);
  auto v = store->get(std::string(kGramPrefix) + it.id);
  REQUIRE(v);
  CHECK(v->size() < it.grams.size() * 3);  // delta-coded: ~2 bytes a gram
  // Unlearning removes it with the message.
  CHECK(c.unlearn({it}).front() == LearnOutcome::Unlearned);
  CHECK(!store->get(std::string(kGramPrefix) + it.id));
  CHECK(c.stats().gram_lists == 59);
  // A message learnt without its grams (an older version) gets them when learnt again.
  Classifier::Item bare = it;
  bare.grams.clear();
  CHECK(c.learn({bare}).front() == LearnOutcome::Learned);
  CHECK(c.stats().gram_lists == 59);
  CHECK(c.learn({it}).front() == LearnOutcome::AlreadyKnown);
  CHECK(c.stats().gram_lists == 60);
}

TEST_CASE("bayes gram model: trained, used by the combiner, deterministic, cleared", "[bayes][grams]") {
  auto store = make_memory_store();
  Params p = young_ok();
  p.combiner_full.grams = 0.5;  // known coefficients to check the formula with
  p.combiner_full.near_spam = 2.0;
  p.combiner_full.near_ham = -3.0;
  Classifier c(*store, p);
  learn_corpus(c, 40);
  const std::string spam_raw = raw_message(true, 1000), ham_raw = raw_message(false, 1000);
  const auto spam = mime::parse(spam_raw);
  // Before training: no gram figure.
  CHECK(!c.classify(spam, spam_raw).grams_used);
  CHECK(!c.gram_model_pending());
  auto w = c.train_weights();
  CHECK(c.gram_model_pending());  // trained, not read into memory yet
  CHECK(w.messages == 80);
  CHECK(w.gram_messages == 80);
  CHECK(c.stats().gram_messages == 80);
  auto rs = c.classify(spam, spam_raw);
  CHECK(!c.gram_model_pending());  // the first classification read it
  auto rh = c.classify(mime::parse(ham_raw), ham_raw);
  REQUIRE(rs.combined);
  REQUIRE(rs.grams_used);
  CHECK(rs.grams == byte_grams(spam_raw).size());
  CHECK(rs.gram_logit > 0);
  CHECK(rh.gram_logit < 0);
  // The evidence is the grams combiner's formula, with its gram term.
  const Params::Combiner& k = p.combiner_full;
  const double hist = std::log1p(std::min(rs.sender_spam, p.sender_cap)) -
                      std::log1p(std::min(rs.sender_ham, p.sender_cap));
  CHECK(rs.evidence_decades ==
        Approx(k.bias + k.bayes * rs.bayes_evidence + k.logit * rs.weight_logit +
               k.header * rs.header_evidence + k.body * rs.body_evidence +
               k.body_clues * std::log1p(double(rs.body_clues)) +
               k.tokens * std::log1p(double(rs.tokens)) + k.sender * hist +
               k.grams * rs.gram_logit + k.near_spam * rs.near_spam + k.near_ham * rs.near_ham));
  // The nearest learnt messages: this spam shares most of its tokens with learnt spam.
  CHECK(rs.near_measured > 0);
  CHECK(rs.near_spam > rs.near_ham);
  CHECK(rh.near_ham > rh.near_spam);
  // A learnt message is its own nearest: similarity 1 to its class.
  const std::string learnt = raw_message(true, 5);
  auto self = c.classify(mime::parse(learnt), learnt);
  CHECK(self.near_spam == Approx(1.0));
  CHECK(self.near_ham < 1.0);
  // Without the message's bytes: the combiner without the gram term.
  auto nog = c.classify(spam);
  CHECK(nog.combined);
  CHECK(!nog.grams_used);
  const Params::Combiner& k0 = p.combiner;
  CHECK(nog.evidence_decades ==
        Approx(k0.bias + k0.bayes * nog.bayes_evidence + k0.logit * nog.weight_logit +
               k0.header * nog.header_evidence + k0.body * nog.body_evidence +
               k0.body_clues * std::log1p(double(nog.body_clues)) +
               k0.tokens * std::log1p(double(nog.tokens)) + k0.sender * hist));
  // near_window = 0: no nearest figure, and so the combiner without either (combiner_full's
  // coefficients were fitted with both); the gram logit is still reported.
  Params nonear = p;
  nonear.near_window = 0;
  auto rn = Classifier(*store, nonear).classify(spam, spam_raw);
  CHECK(rn.grams_used);
  CHECK(rn.gram_logit == Approx(rs.gram_logit));
  CHECK(rn.near_measured == 0);
  CHECK(rn.near_spam == 0.0);
  CHECK(rn.evidence_decades == Approx(nog.evidence_decades));
  // Same model, same gram model (the stored table is bit for bit the same).
  auto table = store->get(kGramModelKey);
  REQUIRE(table);
  CHECK(table->size() > (size_t{4} << kGramBits));
  c.train_weights();
  CHECK(store->get(kGramModelKey) == table);
  CHECK(c.classify(spam, spam_raw).gram_logit == Approx(rs.gram_logit));
  // Retrained on more mail: a new table, which the next classification loads.
  learn_corpus(c, 40, 2000);
  c.train_weights();
  CHECK(store->get(kGramModelKey) != table);
  CHECK(c.classify(spam, spam_raw).gram_logit != Approx(rs.gram_logit));
  // A gram model younger than confidence_messages is not used.
  Params grown = p;
  grown.confidence_messages = 100;
  CHECK(!Classifier(*store, grown).classify(spam, spam_raw).grams_used);
  // Too few lists of a class: the gram model goes.
  std::vector<Classifier::Item> forget;
  for (int i = 0; i < 40; ++i) forget.push_back(item_of(raw_message(false, i), Class::Ham));
  for (int i = 2000; i < 2040; ++i) forget.push_back(item_of(raw_message(false, i), Class::Ham));
  c.unlearn(forget);
  CHECK(c.train_weights().gram_messages == 0);
  CHECK(!store->get(kGramModelKey));
  CHECK(!store->get(kGramMetaKey));
  CHECK(!store->get(kNearKey));
  CHECK(c.stats().gram_messages == 0);
}

TEST_CASE("bayes gram model trains on at most gram_max_messages", "[bayes][grams]") {
  auto store = make_memory_store();
  Params p = young_ok();
  p.gram_max_messages = 50;
  p.min_learned = 5;
  Classifier c(*store, p);
  learn_corpus(c, 40);
  // One day's messages are kept whole (the cap is by day), so all 80 are today's: the scan
  // stops at the cap.
  CHECK(c.train_weights().gram_messages == 50);
}

TEST_CASE("bayes dump and restore carry the gram lists; the gram model is retrained", "[bayes][grams]") {
  auto a = make_memory_store();
  Classifier ca(*a, young_ok());
  learn_corpus(ca, 25);
  ca.train_weights();
  std::stringstream dump;
  ca.dump(dump);
  const std::string d = dump.str();
  CHECK(d.rfind("digue-bayes 4\n", 0) == 0);
  CHECK(d.find("\ng ") != std::string::npos);
  CHECK(d.find("digue-grams") == std::string::npos);  // the table is not dumped
  auto b = make_memory_store();
  Classifier cb(*b, young_ok());
  std::stringstream in(d);
  cb.restore(in);
  CHECK(cb.stats().gram_lists == 50);
  std::stringstream again;
  cb.dump(again);
  CHECK(again.str() == d);
  cb.train_weights();
  CHECK(b->get(kGramModelKey) == a->get(kGramModelKey));
  const std::string raw = raw_message(true, 77);
  CHECK(cb.classify(mime::parse(raw), raw).gram_logit ==
        Approx(ca.classify(mime::parse(raw), raw).gram_logit));
  // A bad gram line is refused, naming its line, and nothing is written.
  for (const char* line : {"g abcd 0", "g abcd 80", "g abcd 0100", "g abcd zz", "g abcd ffffffff0f"}) {
    auto e = make_memory_store();
    Classifier ce(*e);
    std::stringstream bad(std::string("digue-bayes 4\nmeta 0 0\n") + line + "\nend 2\n");
    CHECK_THROWS_WITH(ce.restore(bad), Catch::Contains("line 3") && Catch::Contains("gram list"));
    CHECK(ce.stats().gram_lists == 0);
  }
}

TEST_CASE("bayes expire bounds the gram lists", "[bayes][grams]") {
  auto store = make_memory_store();
  Classifier c(*store, young_ok());
  learn_corpus(c, 20);
  ExpireLimits lim;
  CHECK(c.expire(lim).gram_lists == 0);
  CHECK(c.stats().gram_lists == 40);
  // Stale token lists take their gram lists with them.
  lim.stale_days = 30;
  auto out = c.expire(lim, Classifier::today() + 31);
  CHECK(out.lists == 40);
  CHECK(out.gram_lists == 40);
  CHECK(c.stats().gram_lists == 0);
  // The gram cap alone: today's day does not fit 10, and the newest day always stays whole,
  // so nothing goes; lists of unlearnt messages (here: a list left without its record) do.
  learn_corpus(c, 5, 500);
  lim = {};
  lim.max_gram_lists = 4;
  CHECK(c.expire(lim).gram_lists == 0);
  store->put(std::string(kGramPrefix) + "00000000000000000000000000000000", "\x01\x02");
  CHECK(c.expire(lim).gram_lists == 1);
}

TEST_CASE("bayes gram lists: relearning after expire writes none; odd inputs", "[bayes][grams]") {
  auto store = make_memory_store();
  Classifier c(*store, young_ok());
  learn_corpus(c, 10);
  ExpireLimits lim;
  lim.stale_days = 30;
  CHECK(c.expire(lim, Classifier::today() + 31).gram_lists == 20);
  // Learnt again (already known, its token list gone): no gram list comes back for expire to
  // drop again on every relearn of the same mailbox.
  learn_corpus(c, 10);
  CHECK(c.stats().gram_lists == 0);
  // A gram value byte_grams cannot give is dropped, not stored to make the list unreadable.
  Classifier::Item odd = item_of(raw_message(true, 900), Class::Spam);
  odd.grams = {5, uint32_t{1} << 23, 7};
  c.learn({odd});
  std::stringstream dump;
  c.dump(dump);
  CHECK(dump.str().find("\ng " + odd.id + " 0502\n") != std::string::npos);  // 5, then +2
  // max_bytes at its largest reads what there is, no more.
  const std::string raw = raw_message(false, 901) + "\r\nend\r\n";
  CHECK(byte_grams(raw, SIZE_MAX) == byte_grams(raw, size_t{1} << 30));
}

TEST_CASE("bayes gram model: off with byte grams off; unreadable tables are not used", "[bayes][grams]") {
  auto store = make_memory_store();
  Classifier c(*store, young_ok());
  learn_corpus(c, 30);
  Params off = young_ok();
  off.tokenizer.gram_bytes = 0;
  Classifier c_off(*store, off);
  CHECK(c_off.train_weights().gram_messages == 0);  // lists kept, no model built from them
  CHECK(!store->get(kGramModelKey));
  CHECK(c.train_weights().gram_messages == 60);
  const std::string raw = raw_message(true, 950);
  REQUIRE(c.classify(mime::parse(raw), raw).grams_used);
  // A table cut short under a new summary: not used (the combiner without it), every time.
  auto meta = store->get(kGramMetaKey);
  REQUIRE(meta);
  store->put(kGramMetaKey, "00000000000000ab" + meta->substr(16));
  store->put(kGramModelKey, "digue-grams 1 00000000000000ab\n1234");
  for (int i = 0; i < 2; ++i) {
    auto r = c.classify(mime::parse(raw), raw);
    CHECK(r.combined);
    CHECK(!r.grams_used);
  }
}

TEST_CASE("bayes byte_grams: none for max_bytes 0 (byte grams off)", "[bayes][grams]") {
  CHECK(byte_grams(raw_message(true, 1), 0).empty());
}
