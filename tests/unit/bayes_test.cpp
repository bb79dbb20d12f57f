// Bayes tokenizer and model tests, on hand-built parse results (independent of the MIME
// parser) and the in-memory Store.
#include "digue/bayes.hpp"
#include "digue/mime.hpp"
#include "digue/text.hpp"
#include "tests/filters/counting_store.hpp"
#include "tests/unit/shared_data.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <set>
#include <sstream>

using namespace digue;
using namespace digue::bayes;

namespace {

mime::Parsed make_msg(const std::string& subject, const std::string& from, const std::string& text,
                      const std::string& html = {}, std::vector<mime::Header> extra = {}) {
  mime::Parsed m;
  mime::Part root;
  root.headers = {{"Subject", subject, subject},
                  {"From", from, from},
                  {"To", "u@example.test", "u@example.test"}};
  for (auto& h : extra) root.headers.push_back(h);
  root.content_type = html.empty() ? "text/plain" : "text/html";
  root.charset = "utf-8";
  m.parts.push_back(root);
  m.subject = subject;
  m.text = text;
  m.html = html;
  m.leaf_count = 1;
  return m;
}

bool has(const std::vector<std::string>& v, const std::string& t) {
  return std::find(v.begin(), v.end(), t) != v.end();
}

// Deterministic small corpus: spam talks money and pills, ham talks code and meetings.
std::vector<mime::Parsed> corpus(bool spam, int n) {
  static const char* kSpamWords[] = {"viagra", "cheap", "money",  "offer", "click",  "winner",
                                     "free",   "pills", "casino", "loan",  "credit", "urgent"};
  static const char* kHamWords[] = {"meeting", "patch",  "kernel",   "review", "lunch", "build",
                                    "release", "thanks", "compiler", "bug",    "merge", "agenda"};
  std::vector<mime::Parsed> out;
  for (int i = 0; i < n; ++i) {
    const char** w = spam ? kSpamWords : kHamWords;
    std::string body;
    for (int k = 0; k < 8; ++k) body += std::string(w[(i * 7 + k * 5) % 12]) + " ";
    body += "common words shared by both classes ref" + std::to_string(i);
    std::string subj = std::string(w[i % 12]) + " " + w[(i + 3) % 12];
    out.push_back(
        make_msg(subj, spam ? "Deals <promo@spam.example>" : "Ann <ann@work.example>", body));
  }
  return out;
}

void train(const Classifier& c, int n) {
  std::vector<Classifier::Item> items;
  for (auto& m : corpus(true, n)) items.push_back({tokenize(m), Class::Spam, message_identity(m)});
  for (auto& m : corpus(false, n)) items.push_back({tokenize(m), Class::Ham, message_identity(m)});
  c.learn(items);
}

}  // namespace

TEST_CASE("bayes fold_case handles several scripts", "[bayes]") {
  CHECK(fold_case("HeLLo") == "hello");
  CHECK(fold_case("ÉCOLE Ça") == "école ça");
  CHECK(fold_case("ΑΘΗΝΑ") == "αθηνα");
  CHECK(fold_case("МОСКВА Ёж") == "москва ёж");
  CHECK(fold_case("ŁÓDŹ") == "łódź");
  CHECK(fold_case("日本") == "日本");
  CHECK(fold_case(std::string("a\xff"
                              "B")) == std::string("a\xff"
                                                   "b"));  // invalid byte kept
}

TEST_CASE("bayes tokenizer: words, prefixes, buckets", "[bayes]") {
  auto m = make_msg("FREE MONEY NOW", "\"Big Deals\" <Promo123@Mail.Spam.Example>",
                    "Hello WORLD, call 5551234567 today! Price $19.99 at e-mail.example "
                    "x supercalifragilisticexpialidocious-and-more 2024");
  auto t = tokenize(m);
  CHECK(has(t, "s:free"));
  CHECK(has(t, "s:money"));
  CHECK(!has(t, "s:MONEY"));
  CHECK(has(t, "s:ALLCAPS"));
  CHECK(has(t, "fn:big"));
  CHECK(has(t, "fd:mail.spam.example"));
  CHECK(has(t, "fd2:spam.example"));
  CHECK(has(t, "fl:digits"));
  CHECK(has(t, "hello"));
  CHECK(has(t, "world"));
  CHECK(has(t, "num:10"));  // long numbers bucketed by length
  CHECK(has(t, "2024"));    // short ones kept
  CHECK(has(t, "$19.99"));
  CHECK(has(t, "e-mail.example"));
  CHECK(has(t, "skip:s:40"));  // long tokens bucketed
  CHECK(!has(t, "x"));         // single letters dropped
  CHECK(has(t, "hn:subject"));
  CHECK(has(t, "rcpt:1"));
  // Distinct tokens only.
  auto sorted = t;
  std::sort(sorted.begin(), sorted.end());
  CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
}

TEST_CASE("bayes tokenizer: tokens are valid UTF-8", "[bayes]") {
  // A long non-ASCII word is bucketed by its first character, not its first byte; truncated
  // header fields (long From local parts, header names) never cut a character in two.
  std::string long_word;
  for (int i = 0; i < 25; ++i) long_word += "\xc3\xa9";  // é x 25
  auto m = make_msg("caf\xc3\xa9", "\"N\xc3\xb6rd\" <\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                    "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9@example.test>",
                    "prefix " + long_word + " suffix",
                    {}, {{"X-\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                          "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "v", "v"}});
  auto t = tokenize(m);
  CHECK(has(t, "skip:\xc3\xa9:20"));
  for (const auto& tok : t) {
    INFO(tok);
    CHECK(text::valid_utf8(tok));
  }
}

TEST_CASE("bayes tokenizer: every token of the shared test messages is valid UTF-8", "[bayes]") {
  // Tokens reach the logs, `diguectl bayes classify` and `diguectl scan` JSON.
  size_t files = 0, tokens = 0;
  std::vector<std::string> bad;
  for (const char* sub : {"corpus", "mime/ruby-mail", "mime/mime4j"})
    for (const auto& f : test::files_under(test::kSharedData / sub)) {
      auto parsed = mime::parse(text::as_received(test::slurp(f)));
      for (const auto& tok : tokenize(parsed)) {
        ++tokens;
        if (!text::valid_utf8(tok) && bad.size() < 20) bad.push_back(f.filename().string() + ": " + tok);
      }
      ++files;
    }
  for (const auto& b : bad) UNSCOPED_INFO(b);
  CHECK(bad.empty());
  CHECK(files > 6000);
  CHECK(tokens > 1000000);
}

TEST_CASE("bayes tokenizer: trace headers are never learnt", "[bayes]") {
  auto m = make_msg("hi", "a@b.example", "body", {},
                    {{"X-Spam-Status", "Yes, hits=20", "Yes, hits=20"},
                     {"X-Digue-Bayes", "15.0", "15.0"},
                     {"Authentication-Results", "mx; spf=pass", "mx; spf=pass"},
                     {"Received-SPF", "pass", "pass"},
                     {"X-Mailer", "Outlook Express 6", "Outlook Express 6"}});
  auto t = tokenize(m);
  for (const auto& tok : t) {
    CHECK(tok.find("x-spam") == std::string::npos);
    CHECK(tok.find("x-digue") == std::string::npos);
    CHECK(tok.find("authentication") == std::string::npos);
    CHECK(tok.find("received-spf") == std::string::npos);
    CHECK(tok.find("hits") == std::string::npos);
  }
  CHECK(has(t, "xm:outlook"));
  CHECK(has(t, "hn:x-mailer"));
}

TEST_CASE("bayes tokenizer: CJK bigrams, Cyrillic words, accents", "[bayes]") {
  auto m = make_msg("日本語のメール", "a@b.example", "Привет МИР, café CAFÉ 東京都");
  auto t = tokenize(m);
  CHECK(has(t, "s:日本"));
  CHECK(has(t, "s:本語"));
  CHECK(has(t, "s:語の"));
  CHECK(has(t, "東京"));
  CHECK(has(t, "京都"));
  CHECK(has(t, "привет"));
  CHECK(has(t, "мир"));
  CHECK(has(t, "café"));
  CHECK(std::count(t.begin(), t.end(), "café") == 1);
}

TEST_CASE("bayes tokenizer: legacy charsets and encoded headers become the same UTF-8 words",
          "[bayes]") {
  // ISO-8859-1 quoted-printable, KOI8-R base64, ISO-2022-JP, RFC 2047 subject: the words
  // are the ones a UTF-8 message gives.
  auto latin1 = mime::parse(
      "From: a@b.example\r\nSubject: =?ISO-8859-1?Q?Caf=E9_cr=E8me?=\r\n"
      "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: "
      "quoted-printable\r\n\r\nd=E9j=E0 vu, na=EFve\r\n");
  auto t = tokenize(latin1);
  CHECK(has(t, "s:café"));
  CHECK(has(t, "s:crème"));
  CHECK(has(t, "déjà"));
  CHECK(has(t, "naïve"));
  auto koi8 = mime::parse(
      "From: a@b.example\r\nSubject: x\r\nContent-Type: text/plain; charset=koi8-r\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\n8NLJ18XUIM3J0g==\r\n");  // "Привет мир"
  t = tokenize(koi8);
  CHECK(has(t, "привет"));
  CHECK(has(t, "мир"));
  auto jis = mime::parse(
      "From: a@b.example\r\nSubject: x\r\nContent-Type: text/plain; charset=iso-2022-jp\r\n"
      "\r\n\x1b$BF|K\\8l\x1b(B\r\n");  // "日本語"
  t = tokenize(jis);
  CHECK(has(t, "日本"));
  CHECK(has(t, "本語"));
}

TEST_CASE("bayes tokenizer: Thai is segmented, Greek final sigma folds", "[bayes]") {
  // "ภาษาไทย" (Thai language): no spaces, so character bigrams, like CJK.
  auto m = make_msg("x", "a@b.example", "ภาษาไทย ΟΔΟΣ οδος");
  auto t = tokenize(m);
  CHECK(has(t, "ภา"));
  CHECK(has(t, "ไท"));
  CHECK(has(t, "ทย"));
  CHECK_FALSE(std::any_of(t.begin(), t.end(),
                          [](const std::string& s) { return s.rfind("skip:", 0) == 0; }));
  CHECK(has(t, "οδοσ"));
  CHECK_FALSE(has(t, "οδος"));
}

TEST_CASE("bayes tokenizer: HTML structure, URLs, attachments", "[bayes]") {
  auto m = make_msg("x", "a@b.example", "Buy now",
                    "<html><body><font color=\"red\" size=5>Buy</font>"
                    "<div style=\"display:none\">hidden words</div><!-- x --><img src=a.gif>");
  m.urls.push_back(
      {"http://www.shop.example.co.uk/x", "www.shop.example.co.uk", "example.co.uk", false});
  m.urls.push_back({"http://192.0.2.1/", "192.0.2.1", "192.0.2.1", true});
  mime::Attachment a;
  a.filename = "Invoice.PDF.exe";
  a.declared_type = "application/pdf";
  a.sniffed_type = "application/x-dosexec";
  m.attachments.push_back(a);
  TokenizerOptions opt;
  opt.html_tokens = true;  // off by default (CV), still available
  auto t = tokenize(m, opt);
  CHECK(has(t, "mime:htmlonly"));
  CHECK(has(t, "tag:font"));
  CHECK(has(t, "attr:font.color"));
  CHECK(has(t, "attr:font.size"));
  CHECK(has(t, "html:hidden"));
  CHECK(has(t, "html:comment"));
  CHECK(has(t, "tag:img"));
  CHECK(has(t, "url:example.co.uk"));
  CHECK(has(t, "uh:www.shop.example.co.uk"));
  CHECK(has(t, "url:ip"));
  CHECK(has(t, "att:ext:exe"));
  CHECK(!has(tokenize(m), "tag:font"));  // default: no HTML structure tokens
  CHECK(has(t, "att:type:application/x-dosexec"));
  CHECK(has(t, "an:invoice.pdf.exe"));
}

TEST_CASE("bayes tokenizer: OSB and token cap", "[bayes]") {
  TokenizerOptions opt;
  opt.osb = true;
  opt.osb_window = 4;
  auto t = tokenize(make_msg("s", "a@b.example", "alpha beta gamma delta epsilon"), opt);
  CHECK(has(t, "osb1:alpha beta"));
  CHECK(has(t, "osb4:alpha epsilon"));
  CHECK(!has(t, "osb1:alpha gamma"));
  std::string big;
  for (int i = 0; i < 5000; ++i) big += "w" + std::to_string(i) + "x ";
  opt.osb = false;
  opt.max_tokens = 100;
  CHECK(tokenize(make_msg("s", "a@b.example", big), opt).size() == 100);
}

TEST_CASE("bayes model is not ready before min_learned", "[bayes]") {
  auto store = make_memory_store();
  Classifier c(*store);
  train(c, 5);
  auto r = c.classify(corpus(true, 1)[0]);
  CHECK(!r.ready);
  CHECK(r.score == 0.0);
}

TEST_CASE("bayes learning is idempotent and relearning moves", "[bayes]") {
  auto store = make_memory_store();
  Classifier c(*store);
  auto m = corpus(true, 1)[0];
  auto toks = tokenize(m);
  CHECK(c.learn(m, Class::Spam) == LearnOutcome::Learned);
  auto key = token_key(token_hash(toks[0]));
  auto before = store->get(key);
  REQUIRE(before);
  CHECK(c.learn(m, Class::Spam) == LearnOutcome::AlreadyKnown);
  CHECK(store->get(key) == before);
  auto st = c.stats();
  CHECK(st.spam_messages == 1);
  CHECK(st.ham_messages == 0);
  CHECK(st.seen == 1);
  CHECK(st.tokens == toks.size());
  // The same message twice in one batch counts once too.
  auto m2 = corpus(true, 2)[1];
  auto outs = c.learn({{tokenize(m2), Class::Spam}, {tokenize(m2), Class::Spam}});
  CHECK(outs == std::vector<LearnOutcome>{LearnOutcome::Learned, LearnOutcome::AlreadyKnown});
  CHECK(c.stats().spam_messages == 2);
  // Relearning as ham moves it.
  CHECK(c.learn(m, Class::Ham) == LearnOutcome::Moved);
  st = c.stats();
  CHECK(st.spam_messages == 1);
  CHECK(st.ham_messages == 1);
  // Unlearning removes it and its tokens' counts.
  const std::string id = message_identity(m);
  CHECK(c.unlearn({{toks, Class::Ham, id}}) == std::vector<LearnOutcome>{LearnOutcome::Unlearned});
  CHECK(c.unlearn({{toks, Class::Ham, id}}) == std::vector<LearnOutcome>{LearnOutcome::NotFound});
  st = c.stats();
  CHECK(st.spam_messages == 1);
  CHECK(st.ham_messages == 0);
  CHECK(st.seen == 1);
}

TEST_CASE("bayes message identity survives delivery; moving subtracts what was learnt",
          "[bayes]") {
  // As digue received it, and the copy in the recipient's mailbox: CRLF become LF, a Received
  // line of ours and a downstream server's on top, a tagged Subject, X-Spam-* added.
  const std::string smtp =
      "Received: from relay.example (relay.example [192.0.2.1])\r\n\tby a.example; Mon, 1 Jan 2024\r\n"
      "From: Deals <promo@spam.example>\r\nTo: u@example.test\r\nSubject: cheap pills\r\n"
      "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <abc@spam.example>\r\n\r\n"
      "cheap pills for you, click now\r\n";
  std::string delivered =
      "Return-Path: <promo@spam.example>\nDelivered-To: u@example.test\n"
      "Received: from mx.example.test by mail.example.test with LMTP; Mon, 1 Jan 2024\n"
      "Received: from relay.example (relay.example [192.0.2.1])\n\tby mx.example.test (digue) "
      "with ESMTP id 1A2B; Mon, 1 Jan 2024\nX-Spam-Status: Yes, score=12.0\n";
  for (char ch : smtp)
    if (ch != '\r') delivered += ch;
  size_t subj = delivered.find("Subject: ");
  delivered.insert(subj + 9, "[SPAM] ");
  auto a = mime::parse(smtp), b = mime::parse(delivered);
  CHECK(message_identity(a) == message_identity(b));
  CHECK(tokenize(a) != tokenize(b));  // the token sets differ: they were the identity before
  // An mbox copy may end with an extra empty line.
  CHECK(message_identity(mime::parse(delivered + "\n\n")) == message_identity(a));
  std::string other = smtp;
  other.replace(other.find("click now"), 9, "click here");
  CHECK(message_identity(mime::parse(other)) != message_identity(a));

  auto store = make_memory_store();
  Classifier c(*store);
  CHECK(c.learn(a, Class::Spam) == LearnOutcome::Learned);
  CHECK(c.learn(b, Class::Spam) == LearnOutcome::AlreadyKnown);
  // The postmaster corrects it from the mailbox copy: it moves, and the spam counts of the
  // tokens learnt at SMTP time go back to zero (not those of the copy's extra tokens).
  CHECK(c.learn(b, Class::Ham) == LearnOutcome::Moved);
  auto st = c.stats();
  CHECK(st.spam_messages == 0);
  CHECK(st.ham_messages == 1);
  CHECK(st.seen == 1);
  for (const auto& t : tokenize(a)) {
    auto v = store->get(token_key(token_hash(t)));
    INFO(t);
    // A token record starts with its spam count (u32 LE).
    if (v) CHECK((v->size() >= 4 && (*v)[0] == 0 && (*v)[1] == 0 && (*v)[2] == 0 && (*v)[3] == 0));
  }
  // Unlearning (from either copy) removes exactly what was learnt: no token is left.
  CHECK(c.unlearn({{tokenize(a), Class::Ham, message_identity(a)}}) ==
        std::vector<LearnOutcome>{LearnOutcome::Unlearned});
  CHECK(c.stats().tokens == 0);
  CHECK(c.stats().ham_messages == 0);
}

TEST_CASE("bayes finds the seen markers of earlier versions and moves them to the identity",
          "[bayes]") {
  auto store = make_memory_store();
  Classifier c(*store);
  auto m = corpus(true, 1)[0];
  // Learnt by an earlier version: keyed by the token set.
  REQUIRE(c.learn({{tokenize(m), Class::Spam}}).front() == LearnOutcome::Learned);
  // The same message now (with its identity): known, and its marker re-keyed.
  CHECK(c.learn(m, Class::Spam) == LearnOutcome::AlreadyKnown);
  CHECK(c.stats().seen == 1);
  std::stringstream dump;
  c.dump(dump);
  CHECK(dump.str().find("seen " + message_identity(m) + " S ") != std::string::npos);
  CHECK(c.learn(m, Class::Ham) == LearnOutcome::Moved);
  CHECK(c.stats().spam_messages == 0);
  CHECK(c.stats().ham_messages == 1);
}

TEST_CASE("bayes moving a message another learner changed meanwhile subtracts its new list",
          "[bayes]") {
  test::CountingStore store;
  Classifier c(store);
  auto m = corpus(true, 1)[0];
  const std::string id = message_identity(m);
  REQUIRE(c.learn(m, Class::Spam) == LearnOutcome::Learned);
  // Between this learn's read of the kept list and its transaction, another learner
  // relearns the message with one more token.
  store.before_update = [&] {
    Classifier other(*store.inner);
    auto toks = tokenize(m);
    other.unlearn({{toks, Class::Spam, id}});
    toks.push_back("extra-token");
    other.learn({{toks, Class::Spam, id}});
  };
  CHECK(c.learn(m, Class::Ham) == LearnOutcome::Moved);
  CHECK(store.updates >= 3);  // the first transaction wrote nothing and was tried again
  // The list it subtracted was the new one: the extra token's spam count is gone.
  CHECK_FALSE(store.get(token_key(token_hash("extra-token"))));
  CHECK(c.stats().spam_messages == 0);
  CHECK(c.stats().ham_messages == 1);
}

TEST_CASE("bayes separates a freshly trained model's classes", "[bayes]") {
  auto store = make_memory_store();
  Classifier c(*store);
  train(c, 60);
  auto spam = make_msg("cheap pills offer", "Deals <promo@spam.example>",
                       "winner click free money casino loan today");
  auto ham = make_msg("kernel patch review", "Ann <ann@work.example>",
                      "thanks for the merge, the build and release meeting is after lunch");
  auto rs = c.classify(spam), rh = c.classify(ham);
  REQUIRE(rs.ready);
  CHECK(rs.score >= 12.0);
  CHECK(rh.score <= 3.0);
  CHECK(!rs.clues.empty());
  CHECK(rs.clues.front().prob > 0.9);
  CHECK(rs.evidence(3).find(':') != std::string::npos);
  // Strongest first.
  for (size_t i = 1; i < rs.clues.size(); ++i)
    CHECK(std::fabs(rs.clues[i - 1].prob - 0.5) >= std::fabs(rs.clues[i].prob - 0.5));
}

TEST_CASE("bayes score is monotonic in spam evidence", "[bayes]") {
  auto store = make_memory_store();
  Classifier c(*store);
  train(c, 60);
  static const char* kSpam[] = {"viagra", "cheap", "money", "offer", "click", "winner"};
  static const char* kHam[] = {"meeting", "patch", "kernel", "review", "lunch", "build"};
  double prev = -1;
  for (int k = 0; k <= 6; ++k) {
    std::string body;
    for (int i = 0; i < 6; ++i) body += std::string(i < k ? kSpam[i] : kHam[i]) + " ";
    auto r = c.classify(make_msg("note", "x@neutral.example", body));
    CHECK(r.score >= prev);
    CHECK(r.score >= 0.0);
    CHECK(r.score <= kMaxScore);
    prev = r.score;
  }
  CHECK(prev > kDefaultThreshold);
}

TEST_CASE("bayes dump and restore round trip", "[bayes]") {
  auto a = make_memory_store();
  Classifier ca(*a);
  train(ca, 25);
  std::stringstream dump;
  ca.dump(dump);
  auto b = make_memory_store();
  Classifier cb(*b);
  std::stringstream in(dump.str());
  size_t n = cb.restore(in);
  auto sa = ca.stats(), sb = cb.stats();
  CHECK(n == 1 + sa.tokens + sa.seen);
  CHECK(sb.spam_messages == sa.spam_messages);
  CHECK(sb.ham_messages == sa.ham_messages);
  CHECK(sb.tokens == sa.tokens);
  CHECK(sb.seen == sa.seen);
  std::stringstream dump2;
  cb.dump(dump2);
  CHECK(dump2.str() == dump.str());
  auto probe = corpus(true, 30)[29];
  CHECK(cb.classify(probe).score == Approx(ca.classify(probe).score));
  // Learning a restored message again is still idempotent (seen markers came along).
  CHECK(cb.learn(corpus(true, 1)[0], Class::Spam) == LearnOutcome::AlreadyKnown);
  std::stringstream bad("digue-bayes 1\nt zz 1 2\n");
  CHECK_THROWS_WITH(cb.restore(bad), Catch::Contains("line 2"));
}

TEST_CASE("bayes restore checks the whole dump first and never counts a model twice",
          "[bayes]") {
  auto a = make_memory_store();
  Classifier ca(*a);
  train(ca, 25);
  std::stringstream full;
  ca.dump(full);
  const std::string dump = full.str();
  REQUIRE(dump.size() > 200);
  auto b = make_memory_store();
  Classifier cb(*b);
  auto untouched = [&] {
    auto st = cb.stats();
    return st.spam_messages + st.ham_messages + st.tokens + st.seen == 0;
  };
  auto restore = [&](const std::string& text, RestoreMode mode = RestoreMode::Empty) {
    std::stringstream in(text);
    return cb.restore(in, mode);
  };
  // Cut at a line end (the end record lost), cut mid-line, a bad line late in the dump, a
  // wrong count, a record after the end, CR line ends: refused, and nothing written.
  std::string cut = dump.substr(0, dump.rfind("\nt ") + 1);
  CHECK_THROWS_WITH(restore(cut), Catch::Contains("cut short"));
  CHECK(untouched());
  CHECK_THROWS_WITH(restore(dump.substr(0, dump.size() / 2)), Catch::Contains("line"));
  CHECK(untouched());
  std::string late_bad = dump;
  late_bad.insert(late_bad.rfind("\nend "), "\nt nothex 1 2 3");
  CHECK_THROWS_WITH(restore(late_bad), Catch::Contains("bad token record"));
  CHECK(untouched());
  std::string miscount = dump.substr(0, dump.rfind("end ")) + "end 3\n";
  CHECK_THROWS_WITH(restore(miscount), Catch::Contains("end record says 3"));
  std::string after_end = dump + "meta 1 1\n";
  CHECK_THROWS_WITH(restore(after_end), Catch::Contains("after the end record"));
  std::string crlf;
  for (char ch : dump) crlf += ch == '\n' ? std::string("\r\n") : std::string(1, ch);
  CHECK_THROWS_WITH(restore(crlf), Catch::Contains("CR line ends"));
  CHECK(untouched());
  // Once: fine. Twice: refused (it would count every message twice), in either mode that
  // keeps the model; --replace gives the same model again.
  CHECK(restore(dump) > 0);
  auto once = cb.stats();
  CHECK(once.spam_messages == 25);
  CHECK_THROWS_WITH(restore(dump), Catch::Contains("not empty"));
  CHECK_THROWS_WITH(restore(dump, RestoreMode::Merge), Catch::Contains("50 messages of the dump"));
  CHECK(cb.stats().spam_messages == 25);
  CHECK(restore(dump, RestoreMode::Replace) > 0);
  std::stringstream again;
  cb.dump(again);
  CHECK(again.str() == dump);
  // Merging a model that learnt other mail adds it.
  auto c = make_memory_store();
  Classifier cc(*c);
  auto fresh = corpus(true, 60);
  cc.learn({{tokenize(fresh[55]), Class::Spam, message_identity(fresh[55])}});
  std::stringstream other_dump;
  cc.dump(other_dump);
  CHECK(restore(other_dump.str(), RestoreMode::Merge) > 0);
  CHECK(cb.stats().spam_messages == 26);
  CHECK(cb.stats().seen == 51);
}

TEST_CASE("bayes expire bounds the model", "[bayes]") {
  auto store = make_memory_store();
  Classifier c(*store);
  train(c, 25);
  auto total = c.stats().tokens;
  REQUIRE(total > 20);
  ExpireLimits lim;
  lim.stale_days = 30;
  // Nothing is stale today.
  CHECK(c.expire(lim).tokens == 0);
  lim.max_tokens = 20;
  CHECK(c.expire(lim).tokens == total - 20);
  CHECK(c.stats().tokens == 20);
  // Everything is stale 31 days later.
  lim.max_tokens = 1000000;
  CHECK(c.expire(lim, Classifier::today() + 31).tokens == 20);
  CHECK(c.stats().tokens == 0);
}

namespace {

// A model whose seen records span `days` days (one message a day, the newest today), built
// through a dump as a model moved from another node would be.
void seen_over_days(const Classifier& c, uint32_t today, int days) {
  std::stringstream dump;
  dump << "digue-bayes 2\nmeta " << days << " 0\n";
  for (int d = 0; d < days; ++d)
    dump << "seen m" << d << " S " << today - static_cast<uint32_t>(d) << " 00000000000000"
         << std::hex << 16 + d << std::dec << "\n";
  c.restore(dump);
}

}  // namespace

TEST_CASE("bayes expire caps the kept token lists and the seen markers", "[bayes]") {
  auto store = make_memory_store();
  Classifier c(*store);
  const uint32_t today = Classifier::today();
  seen_over_days(c, today, 30);
  REQUIRE(c.stats().kept_messages == 30);
  ExpireLimits lim;
  // Token lists beyond the newest 10 are dropped; their markers stay (learning stays
  // idempotent), dated.
  lim.max_lists = 10;
  auto out = c.expire(lim, today);
  CHECK(out.lists == 20);
  CHECK(out.markers == 0);
  CHECK(c.stats().kept_messages == 10);
  CHECK(c.stats().seen == 30);
  std::stringstream dump;
  c.dump(dump);
  CHECK(dump.str().find("seen m29 S " + std::to_string(today - 29) + "\n") != std::string::npos);
  CHECK(dump.str().find("seen m0 S " + std::to_string(today) + " 0000000000000010\n") !=
        std::string::npos);
  // Markers beyond the newest 15, then older than 5 days, are removed.
  lim.max_seen = 15;
  out = c.expire(lim, today);
  CHECK(out.markers == 15);
  CHECK(out.lists == 0);
  CHECK(c.stats().seen == 15);
  lim.seen_days = 5;
  CHECK(c.expire(lim, today).markers == 9);  // days today-5 .. today stay
  CHECK(c.stats().seen == 6);
  CHECK(c.stats().kept_messages == 6);
  // A second run changes nothing.
  out = c.expire(lim, today);
  CHECK((out.tokens == 0 && out.lists == 0 && out.markers == 0));
}

TEST_CASE("bayes expire dates the undated markers of older versions", "[bayes]") {
  auto store = make_memory_store();
  Classifier c(*store);
  std::stringstream v1("digue-bayes 1\nmeta 1 0\nseen legacy S\n");
  c.restore(v1);
  const uint32_t today = Classifier::today();
  ExpireLimits lim;
  lim.seen_days = 30;
  // Undated: kept (and dated today) however old the limits say markers may be.
  CHECK(c.expire(lim, today).markers == 0);
  std::stringstream dump;
  c.dump(dump);
  CHECK(dump.str().find("seen legacy S " + std::to_string(today) + "\n") != std::string::npos);
  // A dated marker survives dump and restore with its day, and then ages out.
  auto store2 = make_memory_store();
  Classifier c2(*store2);
  c2.restore(dump);
  CHECK(c2.expire(lim, today + 30).markers == 0);
  CHECK(c2.expire(lim, today + 31).markers == 1);
  CHECK(c2.stats().seen == 0);
}

TEST_CASE("bayes autolearn is off by default", "[bayes]") {
  Autolearn al;
  Result r;
  r.ready = true;
  r.score = 15.0;
  r.clues.push_back({"x", 0.99});
  CHECK(!al.decide(r));
  al.enabled = true;
  CHECK(al.decide(r) == Class::Spam);
  r.score = 0.5;
  CHECK(al.decide(r) == Class::Ham);
  r.score = 7.0;
  CHECK(!al.decide(r));
}

TEST_CASE("bayes tokenizer: Received takes dotted quads as IPs, not sendmail versions", "[bayes]") {
  std::string rcvd =
      "from mx.sender.example (mx.sender.example [192.0.2.77]) (8.12.5/8.12.5) by "
      "relay.example with ESMTP id g7";
  auto m = make_msg("hello", "Ann <ann@work.example>", "body text",
                    {}, {{"Received", rcvd, rcvd}});
  auto t = tokenize(m);
  CHECK(has(t, "rip:192.0"));
  CHECK(has(t, "rh:sender.example"));
  CHECK(!has(t, "rip:8.12"));
  CHECK(!has(t, "rh:8.12.5"));
  TokenizerOptions old;
  old.received_fix = false;  // the previous behaviour, kept for comparison in bench
  CHECK(has(tokenize(m, old), "rip:8.12"));
}

TEST_CASE("bayes tokenizer: URL path and shape tokens are opt-in", "[bayes]") {
  auto m = make_msg("hi", "Ann <ann@work.example>", "BUY NOW this FREE offer!!! $5 $6");
  m.urls.push_back({"http://www.promo.example/remove.cgi?id=123456", "www.promo.example",
                    "promo.example", false});
  auto plain = tokenize(m);
  CHECK(!has(plain, "ux:cgi"));
  CHECK(!has(plain, "caps:FREE"));
  TokenizerOptions opt;
  opt.url_paths = true;
  opt.shape_tokens = true;
  auto t = tokenize(m, opt);
  CHECK(has(t, "up:remove.cgi"));
  CHECK(has(t, "ux:cgi"));
  CHECK(has(t, "ux:query"));
  CHECK(has(t, "caps:FREE"));
  CHECK(has(t, "caps:BUY"));
  CHECK(has(t, "dollars:2"));
}

TEST_CASE("bayes token weights: trained, used, deterministic, cleared when too few", "[bayes]") {
  auto store = make_memory_store();
  Params p;
  p.confidence_messages = 0;  // the evidence as combined, not scaled for a young model
  p.combine = false;          // E + weight_mix * z as it is (the combiner: its own test)
  Classifier c(*store, p);
  train(c, 60);
  auto st = c.stats();
  CHECK(st.kept_messages == 120);  // every learnt message keeps its token list
  CHECK(st.weight_messages == 0);
  auto spam = make_msg("cheap pills offer", "Deals <promo@spam.example>",
                       "winner click free money casino loan today");
  auto ham = make_msg("kernel patch review", "Ann <ann@work.example>",
                      "thanks for the merge, the build and release meeting is after lunch");
  auto before = c.classify(spam);
  CHECK(!before.weighted);
  CHECK(before.evidence_decades == Approx(before.bayes_evidence));

  auto w = c.train_weights();
  CHECK(w.messages == 120);
  CHECK(w.nonzero > 10);
  st = c.stats();
  CHECK(st.weight_messages == 120);
  CHECK(st.weighted_tokens == w.nonzero);
  auto rs = c.classify(spam), rh = c.classify(ham);
  REQUIRE(rs.weighted);
  CHECK(rs.weight_logit > 0);
  CHECK(rh.weight_logit < 0);
  CHECK(rs.evidence_decades == Approx(rs.bayes_evidence + c.params().weight_mix * rs.weight_logit));
  // The weighted scale: the score is 7.5 + (evidence - weighted_pivot) * per unit, clamped.
  double expect = kDefaultThreshold + (rs.evidence_decades - c.params().weighted_pivot) *
                                          c.params().weighted_score_per_unit;
  CHECK(rs.score == Approx(std::clamp(expect, 0.0, kMaxScore)));
  CHECK(rs.score >= 12.0);
  CHECK(rh.score <= 3.0);
  // Same model, same weights.
  std::stringstream d1, d2;
  c.dump(d1);
  c.train_weights();
  c.dump(d2);
  CHECK(d1.str() == d2.str());
  // Learning more keeps the weights on the counts (read-modify-write of one record).
  auto key = token_key(token_hash("viagra"));
  auto rec = store->get(key);
  REQUIRE(rec);
  REQUIRE(rec->size() == 16);
  // Below min_learned of a class, training clears them.
  std::vector<Classifier::Item> forget;
  for (auto& m : corpus(false, 60)) forget.push_back({tokenize(m), Class::Ham, message_identity(m)});
  c.unlearn(forget);
  auto w2 = c.train_weights();
  CHECK(w2.messages == 0);
  CHECK(c.stats().weight_messages == 0);
  CHECK(c.stats().weighted_tokens == 0);
  CHECK(!c.classify(spam).weighted);
}

TEST_CASE("bayes dump and restore carry weights and token lists; version 1 dumps still load",
          "[bayes]") {
  auto a = make_memory_store();
  Classifier ca(*a);
  train(ca, 25);
  ca.train_weights();
  std::stringstream dump;
  ca.dump(dump);
  CHECK(dump.str().rfind("digue-bayes 4\n", 0) == 0);
  CHECK(dump.str().find("\nweights ") != std::string::npos);
  auto b = make_memory_store();
  Classifier cb(*b);
  std::stringstream in(dump.str());
  cb.restore(in);
  std::stringstream dump2;
  cb.dump(dump2);
  CHECK(dump2.str() == dump.str());
  auto probe = corpus(true, 30)[29];
  auto ra = ca.classify(probe), rb = cb.classify(probe);
  CHECK(rb.weighted);
  CHECK(rb.score == Approx(ra.score));
  CHECK(cb.stats().kept_messages == 50);
  // Retraining the restored model gives the same weights.
  cb.train_weights();
  std::stringstream dump3;
  cb.dump(dump3);
  CHECK(dump3.str() == dump.str());

  auto v1 = make_memory_store();
  Classifier c1(*v1);
  std::stringstream old("digue-bayes 1\nmeta 1 0\nt 00000000000000ff 1 0 20000\nseen abcd S\n");
  CHECK(c1.restore(old) == 3);
  CHECK(c1.stats().tokens == 1);
  CHECK(c1.stats().kept_messages == 0);
  std::stringstream bad("digue-bayes 2\nseen abcd S 20000 00000000000000zz\n");
  CHECK_THROWS_WITH(c1.restore(bad), Catch::Contains("line 2"));
  // A weight just under the bound rounds up to it as a float: what restore accepted, the
  // dump writes back in a form restore accepts again (found by bayes_dump_fuzz).
  auto w = make_memory_store();
  Classifier cw(*w);
  std::stringstream edge("digue-bayes 2\nmeta 1 0\nt 90000000100000ff 1 0 2000 "
                         "00999999999999999999999999999999\nend 2\n");
  cw.restore(edge);
  std::stringstream out;
  cw.dump(out);
  auto w2 = make_memory_store();
  Classifier cw2(*w2);
  std::stringstream back(out.str());
  CHECK_NOTHROW(cw2.restore(back));
  std::stringstream huge("digue-bayes 2\nmeta 1 0\nt 90000000100000ff 1 0 2000 3e30\nend 2\n");
  CHECK_THROWS_WITH(cw2.restore(huge), Catch::Contains("bad token record"));
}

TEST_CASE("bayes expire forgets stale token lists but keeps the seen markers", "[bayes]") {
  auto store = make_memory_store();
  Classifier c(*store);
  train(c, 25);
  CHECK(c.stats().kept_messages == 50);
  ExpireLimits lim;
  lim.stale_days = 30;
  CHECK(c.expire(lim, Classifier::today() + 31).lists == 50);
  auto st = c.stats();
  CHECK(st.kept_messages == 0);
  CHECK(st.seen == 50);
  CHECK(c.learn(corpus(true, 1)[0], Class::Spam) == LearnOutcome::AlreadyKnown);
}

TEST_CASE("bayes token weights train on at most weight_max_messages", "[bayes]") {
  auto store = make_memory_store();
  Params p;
  p.weight_max_messages = 50;
  Classifier c(*store, p);
  train(c, 60);
  CHECK(c.train_weights().messages == 50);
  CHECK(c.stats().weight_messages == 50);
}

TEST_CASE("bayes scales a young model's evidence down until confidence_messages", "[bayes]") {
  auto store = make_memory_store();
  train(Classifier(*store), 60);
  Params raw;
  raw.confidence_messages = 0;
  Params young;  // default confidence_messages = 100: 60 of each class -> 0.6
  REQUIRE(young.confidence_messages == 100);
  auto spam = corpus(true, 70)[65];
  auto a = Classifier(*store, raw).classify(spam), b = Classifier(*store, young).classify(spam);
  CHECK(b.evidence_decades == Approx(0.6 * a.evidence_decades));
  CHECK(b.score < a.score);
  Params grown;
  grown.confidence_messages = 60;
  CHECK(Classifier(*store, grown).classify(spam).evidence_decades == Approx(a.evidence_decades));
}

TEST_CASE("bayes tokenizer: the From address is a token; header and body tokens are told apart",
          "[bayes]") {
  auto t = tokenize(make_msg("hi", "Ann Example <Ann.Lee@Work.Example>", "hello world"));
  CHECK(has(t, "fa:ann.lee@work.example"));
  auto noat = tokenize(make_msg("hi", "undisclosed", "hello"));
  CHECK(has(noat, "fa:noat"));  // (the address token's "no @" marker, not a history token)
  CHECK(std::none_of(noat.begin(), noat.end(), [](const std::string& tok) {
    return tok.rfind("fa:", 0) == 0 && tok.find('@') != std::string::npos;
  }));
  CHECK(!header_token("osb1:cheap pills"));
  CHECK(!header_token("ct:text/plain"));
  CHECK(header_token("bs:----=_NextPart_999_9999"));
  CHECK(header_token("s:hello"));
  CHECK(header_token("fa:ann.lee@work.example"));
  CHECK(header_token("rip:192.0"));
  CHECK(!header_token("hello"));
  CHECK(!header_token("url:promo.example"));
  CHECK(!header_token("att:zip"));
  CHECK(!header_token("uh:www.promo.example"));
}

TEST_CASE("bayes combiner: the evidence is its formula over the message's figures", "[bayes]") {
  auto store = make_memory_store();
  Params p;
  p.confidence_messages = 0;
  Classifier c(*store, p);
  train(c, 60);
  c.train_weights();
  auto spam = make_msg("cheap pills offer", "Deals <promo@spam.example>",
                       "winner click free money casino loan today");
  auto r = c.classify(spam);
  REQUIRE(r.weighted);
  REQUIRE(r.combined);
  CHECK(r.header_clues + r.body_clues == r.clues.size());
  CHECK(r.header_clues > 0);
  CHECK(r.body_clues > 0);
  CHECK(r.sender_spam == 60);  // promo@spam.example was learnt as spam 60 times
  CHECK(r.sender_ham == 0);
  // Header and body means recomputed from the clues.
  double eh = 0, eb = 0;
  for (const auto& cl : r.clues)
    (header_token(cl.token) ? eh : eb) += std::log10(cl.prob / (1 - cl.prob));
  CHECK(r.header_evidence == Approx(eh / double(r.header_clues)));
  CHECK(r.body_evidence == Approx(eb / double(r.body_clues)));
  const Params::Combiner& w = c.params().combiner;
  double expect = w.bias + w.bayes * r.bayes_evidence + w.logit * r.weight_logit +
                  w.header * r.header_evidence + w.body * r.body_evidence +
                  w.body_clues * std::log1p(double(r.body_clues)) +
                  w.tokens * std::log1p(double(r.tokens)) +
                  w.sender * std::log1p(3.0);  // 60 learnt as spam, counted up to sender_cap
  CHECK(r.evidence_decades == Approx(expect));
  CHECK(r.score == Approx(std::clamp(kDefaultThreshold + (expect - c.params().combined_pivot) *
                                                             c.params().combined_score_per_unit,
                                     0.0, kMaxScore)));
  CHECK(r.score >= 12.0);
  CHECK(c.classify(make_msg("kernel patch review", "Ann <ann@work.example>",
                            "thanks for the merge, the build and release meeting is after lunch"))
            .score <= 3.0);
  // Without the combiner: E + weight_mix * z on the weighted scale.
  Params off = p;
  off.combine = false;
  auto r2 = Classifier(*store, off).classify(spam);
  CHECK(!r2.combined);
  CHECK(r2.evidence_decades == Approx(r2.bayes_evidence + off.weight_mix * r2.weight_logit));
  // Without weights (never trained) the combiner is not used either.
  auto fresh = make_memory_store();
  Classifier untrained(*fresh, p);
  train(untrained, 60);
  CHECK(!untrained.classify(spam).combined);
  // Nor by a young model (fewer than confidence_messages of a class): E + weight_mix * z.
  Params young = p;
  young.confidence_messages = 100;  // the default; the model holds 60 + 60
  auto ry = Classifier(*store, young).classify(spam);
  CHECK(ry.weighted);
  CHECK(!ry.combined);
  CHECK(ry.evidence_decades ==
        Approx((ry.bayes_evidence + young.weight_mix * ry.weight_logit) * 60.0 / 100.0));
}

TEST_CASE("bayes combiner: a sender's history moves the score", "[bayes]") {
  auto store = make_memory_store();
  Params p;
  p.confidence_messages = 0;
  Classifier c(*store, p);
  train(c, 60);
  // A sender learnt as spam five times, with ordinary words.
  std::vector<Classifier::Item> items;
  for (int i = 0; i < 5; ++i) {
    auto m = make_msg("note " + std::to_string(i), "Bob <bob@mixed.example>",
                      "common words shared by both classes item" + std::to_string(i));
    items.push_back({tokenize(m), Class::Spam, message_identity(m)});
  }
  c.learn(items);
  c.train_weights();
  auto known = c.classify(make_msg("status", "Bob <bob@mixed.example>", "common words today"));
  auto other = c.classify(make_msg("status", "Bob <bob@elsewhere.example>", "common words today"));
  CHECK(known.sender_spam == 5);
  CHECK(other.sender_spam == 0);
  CHECK(other.sender_ham == 0);
  CHECK(known.evidence_decades > other.evidence_decades);
  // The history's part: what the sender coefficient adds.
  Params blind = p;
  blind.combiner.sender = 0;
  auto k0 = Classifier(*store, blind)
                .classify(make_msg("status", "Bob <bob@mixed.example>", "common words today"));
  CHECK(known.evidence_decades - k0.evidence_decades ==
        Approx(p.combiner.sender * std::log1p(3.0)));  // 5 learnt, counted up to sender_cap
  // With a higher cap all 5 count.
  Params cap10 = p;
  cap10.sender_cap = 10;
  auto k10 = Classifier(*store, cap10)
                 .classify(make_msg("status", "Bob <bob@mixed.example>", "common words today"));
  CHECK(k10.evidence_decades - k0.evidence_decades == Approx(p.combiner.sender * std::log1p(5.0)));
}

TEST_CASE("bayes header_token agrees with where the tokenizer took each token", "[bayes]") {
  // header_token() names the body's namespaces by hand; this keeps that list and the
  // tokenizer together. With every optional family on, the tokens made without the header
  // pass are body tokens and the rest header tokens, but for the two the combiner was
  // fitted with on the other side: the MIME boundary's shape ("bs:", a header token) and the
  // top-level Content-Type ("ct:", a body token).
  TokenizerOptions all;
  all.html_tokens = all.all_headers = all.osb = all.url_paths = all.shape_tokens = true;
  all.consistency = true;
  all.max_tokens = 100000;
  TokenizerOptions body_only = all;
  body_only.header_tokens = false;
  std::vector<std::string> wrong;
  size_t files = 0, header = 0, body = 0;
  for (const char* sub : {"mime/ruby-mail", "mime/mime4j", "corpus/train/spam"})
    for (const auto& f : test::files_under(test::kSharedData / sub)) {
      auto parsed = mime::parse(text::as_received(test::slurp(f)));
      auto from_body = tokenize(parsed, body_only);
      std::set<std::string> body_set(from_body.begin(), from_body.end());
      for (const auto& tok : tokenize(parsed, all)) {
        const bool is_body = body_set.count(tok) != 0;
        const bool expect_header = tok.rfind("bs:", 0) == 0   ? true
                                   : tok.rfind("ct:", 0) == 0 ? false
                                                              : !is_body;
        (is_body ? body : header)++;
        if (header_token(tok) != expect_header && wrong.size() < 20)
          wrong.push_back(f.filename().string() + ": " + tok);
      }
      ++files;
    }
  for (const auto& w : wrong) UNSCOPED_INFO(w);
  CHECK(wrong.empty());
  CHECK(files > 1500);
  CHECK(header > 100000);
  CHECK(body > 100000);
}
