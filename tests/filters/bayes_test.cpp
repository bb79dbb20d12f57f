// bayes filter: symbols against the domain's threshold, untrained model, worker offload,
// store failure -> error result. Real MIME parsing, in-memory Store.
#include "digue/bayes.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <future>
#include <sstream>

#include "digue/config.hpp"
#include "digue/message.hpp"
#include "digue/pipeline.hpp"
#include "digue/store.hpp"
#include "filters/bayes.hpp"
#include "tests/filters/counting_store.hpp"

using namespace digue;
namespace asio = boost::asio;

namespace {

std::string spam_raw(int i) {
  return "From: Deals <promo" + std::to_string(i) +
         "@spam.example>\r\n"
         "To: you@example.test\r\nSubject: cheap pills offer " +
         std::to_string(i) +
         "\r\nContent-Type: text/plain\r\n\r\n"
         "winner click free money casino loan viagra credit urgent ref" +
         std::to_string(i) + "\r\n";
}

std::string ham_raw(int i) {
  return "From: Ann <ann@work.example>\r\nTo: team@example.test\r\n"
         "Subject: kernel patch review " +
         std::to_string(i) +
         "\r\nContent-Type: text/plain\r\n\r\n"
         "thanks for the merge, the build and release meeting is after lunch ref" +
         std::to_string(i) + "\r\n";
}

void train(Store& store, int n) {
  bayes::Classifier c(store);
  std::vector<bayes::Classifier::Item> items;
  for (int i = 0; i < n; ++i) {
    items.push_back({bayes::tokenize(mime::parse(spam_raw(i))), bayes::Class::Spam});
    items.back().grams = bayes::byte_grams(spam_raw(i));
    items.push_back({bayes::tokenize(mime::parse(ham_raw(i))), bayes::Class::Ham});
    items.back().grams = bayes::byte_grams(ham_raw(i));
  }
  c.learn(items);
}

FilterResult run(const Filter& f, Services& services, const std::string& raw, double required) {
  asio::io_context io;
  Envelope env;
  auto msg = std::make_shared<Message>(raw);
  DomainPolicy policy;
  policy.name = "example.test";
  policy.required = required;
  auto fut = asio::co_spawn(
      io,
      [&]() -> asio::awaitable<FilterResult> {
        FilterContext ctx{env, msg.get(), policy.name, policy, services, io.get_executor()};
        co_return co_await f.check(ctx);
      },
      asio::use_future);
  io.run();
  return fut.get();
}

// The hooks the pipeline calls after the final verdicts, one verdict per recipient domain
// (autolearn is in after_message); with check_first, the filter's check runs on the same
// message before, as in the pipeline (the path where autolearn finds the filter's own
// classification), and its result is returned.
FilterResult hooks(const Filter& f, Services& services, const std::string& raw,
                   const std::vector<Verdict>& verdicts, bool check_first = false) {
  asio::io_context io;
  Envelope env;
  auto msg = std::make_shared<Message>(raw);
  DomainPolicy policy;
  policy.name = "example.test";
  FilterContext ctx{env, msg.get(), policy.name, policy, services, io.get_executor()};
  FilterResult r;
  if (check_first) {
    auto fut = asio::co_spawn(io, f.check(ctx), asio::use_future);
    io.run();
    r = fut.get();
  }
  std::vector<const Verdict*> all;
  for (const auto& v : verdicts) {
    f.after_verdict(ctx, v);
    all.push_back(&v);
  }
  f.after_message(ctx, all);
  return r;
}

Verdict verdict(Decision decision, bool whitelisted = false) {
  Verdict v;
  v.decision = decision;
  v.whitelisted = whitelisted;
  return v;
}

// One recipient domain.
void after_verdict(const Filter& f, Services& services, const std::string& raw,
                   Decision decision = Decision::Spam, bool whitelisted = false) {
  hooks(f, services, raw, {verdict(decision, whitelisted)});
}

FilterResult check_then_spam_verdict(const Filter& f, Services& services, const std::string& raw) {
  return hooks(f, services, raw, {verdict(Decision::Spam)}, /*check_first=*/true);
}

FilterPtr build(const std::string& toml_text) {
  auto cfg = parse_config("[store]\ndir = \"/nonexistent\"\n" + toml_text, "test.toml");
  SlotConfig slot;
  slot.filter = "bayes";
  static toml::table options;  // outlives the build (the factory copies what it needs)
  options = filters::bayes_options(*cfg);
  FilterBuildContext b{*cfg, slot, options};
  return filters::make_bayes(b);
}

// A model trained on 40 + 40 messages and a one-thread worker pool, as the daemon gives
// the filter (services.store and services.workers set).
struct WithPool {
  Store& store;
  asio::thread_pool pool{1};
  Services services;
  explicit WithPool(Store& s) : store(s) {
    train(s, 40);
    services.store = &s;
    services.workers = &pool;
  }
};

class FailingStore final : public Store {
 public:
  std::optional<std::string> get(std::string_view) override { throw StoreError("disk gone"); }
  void put(std::string_view, std::string_view, std::chrono::seconds) override {}
  bool del(std::string_view) override { return false; }
  int64_t incr(std::string_view, int64_t, std::chrono::seconds) override { return 0; }
  void scan(std::string_view,
            const std::function<bool(std::string_view, std::string_view)>&) override {}
  void apply(const std::vector<Op>&) override {}
};

}  // namespace

TEST_CASE("bayes filter scores against the domain threshold", "[bayes][filters]") {
  auto store = make_memory_store();
  train(*store, 40);
  Services services;
  services.store = store.get();
  // A 40 + 40 model: its evidence taken as is (confidence_messages scales it down by default).
  auto f = build("[filters.bayes]\nconfidence_messages = 0\n");
  CHECK(f->name() == "bayes");
  CHECK(f->phase() == Phase::Data);
  CHECK(f->per_domain());

  auto spam = run(*f, services, spam_raw(100), 7.5);
  REQUIRE(spam.status == FilterResult::Status::Ok);
  CHECK(spam.verdict == FilterResult::Verdict::Hit);
  REQUIRE(spam.symbols.size() == 1);
  CHECK(spam.symbols[0].name == "BAYES_SPAM");
  CHECK(spam.symbols[0].score >= 12.0);
  CHECK(spam.symbols[0].evidence.find("required=7.5") != std::string::npos);
  CHECK(spam.symbols[0].evidence.find("tokens:") != std::string::npos);
  // The score and strongest tokens go in the X-Digue-Bayes trace header too.
  CHECK(spam.trace == spam.symbols[0].evidence);

  auto ham = run(*f, services, ham_raw(100), 7.5);
  CHECK(ham.verdict == FilterResult::Verdict::None);
  REQUIRE(ham.symbols.size() == 1);
  CHECK(ham.symbols[0].name == "BAYES_HAM");
  CHECK(ham.symbols[0].score == 0.0);
  CHECK(ham.trace.rfind("score=", 0) == 0);

  // The most lenient level above the spam score turns the hit off.
  double s = spam.symbols[0].score;
  auto lenient = run(*f, services, spam_raw(100), s + 0.01);
  CHECK(lenient.verdict == FilterResult::Verdict::None);
  CHECK(lenient.symbols[0].name == "BAYES_HAM");
  CHECK(spam.symbols[0].evidence.find("weights=") == std::string::npos);

  // Once the token weights are trained the filter uses them and says so.
  REQUIRE(bayes::Classifier(*store).train_weights().messages == 80);
  auto weighted = run(*f, services, spam_raw(100), 7.5);
  CHECK(weighted.verdict == FilterResult::Verdict::Hit);
  CHECK(weighted.symbols[0].evidence.find(" bayes=+") != std::string::npos);
  CHECK(weighted.symbols[0].evidence.find(" weights=+") != std::string::npos);
  CHECK(weighted.symbols[0].evidence.find(" header=") != std::string::npos);
  CHECK(weighted.symbols[0].evidence.find(" sender=") != std::string::npos);
  // The gram model (trained with the weights) on the message's bytes.
  CHECK(weighted.symbols[0].evidence.find(" grams=+") != std::string::npos);
  auto nograms = build("[filters.bayes]\nconfidence_messages = 0\nbyte_grams = false\n");
  auto ng = run(*nograms, services, spam_raw(100), 7.5);
  CHECK(ng.verdict == FilterResult::Verdict::Hit);
  CHECK(ng.symbols[0].evidence.find(" sender=") != std::string::npos);
  CHECK(ng.symbols[0].evidence.find(" grams=") == std::string::npos);
  CHECK(run(*f, services, ham_raw(100), 7.5).verdict == FilterResult::Verdict::None);
  // combine = false: E + weight_mix * z, without the combiner's figures.
  auto plain = build("[filters.bayes]\nconfidence_messages = 0\ncombine = false\n");
  auto p = run(*plain, services, spam_raw(100), 7.5);
  CHECK(p.verdict == FilterResult::Verdict::Hit);
  CHECK(p.symbols[0].evidence.find(" weights=+") != std::string::npos);
  CHECK(p.symbols[0].evidence.find(" header=") == std::string::npos);
}

TEST_CASE("bayes filter: untrained model, no store, store failure", "[bayes][filters]") {
  auto f = build("[filters.bayes]\nmin_learned = 50\n");
  auto store = make_memory_store();
  train(*store, 10);
  Services services;
  services.store = store.get();
  auto r = run(*f, services, spam_raw(1), 7.5);
  CHECK(r.verdict == FilterResult::Verdict::None);
  REQUIRE(r.symbols.size() == 1);
  CHECK(r.symbols[0].name == "BAYES_UNTRAINED");

  Services none;
  CHECK(run(*f, none, spam_raw(1), 7.5).status == FilterResult::Status::Error);

  FailingStore failing;
  Services bad;
  bad.store = &failing;
  auto e = run(*f, bad, spam_raw(1), 7.5);
  CHECK(e.status == FilterResult::Status::Error);
  CHECK(e.reason.find("disk gone") != std::string::npos);
}

TEST_CASE("bayes filter offloads large messages to the worker pool", "[bayes][filters]") {
  auto store = make_memory_store();
  WithPool d(*store);
  auto& [_, pool, services] = d;
  auto f = build("[filters.bayes]\noffload_bytes = 0\nautolearn = true\nconfidence_messages = 0\n");
  auto r = run(*f, services, spam_raw(200), 7.5);
  CHECK(r.verdict == FilterResult::Verdict::Hit);
  // check() itself never learns (a dry run or `diguectl scan` must not change the model) ...
  CHECK(bayes::Classifier(*store).stats().spam_messages == 40);
  // ... the after-verdict hook does, on the pool.
  after_verdict(*f, services, spam_raw(200));
  pool.join();
  // Autolearn (on here) learnt the confident spam on the pool.
  CHECK(bayes::Classifier(*store).stats().spam_messages == 41);
}

TEST_CASE("bayes options come without the slot keys", "[bayes][filters]") {
  auto cfg = parse_config(
      "[store]\ndir = \"/nonexistent\"\n[pipeline]\norder = [\"bayes\"]\n"
      "[filters.bayes]\naction = \"score\"\ntimeout_ms = 2000\nmin_learned = 7\n",
      "test.toml");
  auto t = filters::bayes_options(*cfg);
  CHECK(!t.contains("action"));
  CHECK(filters::read_bayes_settings(t).params.min_learned == 7);
  auto cfg2 = parse_config("[store]\ndir = \"/x\"\n[filters.bayes]\naction = \"log\"\nosb = true\n",
                           "test.toml");
  CHECK(filters::read_bayes_settings(filters::bayes_options(*cfg2)).params.tokenizer.osb);
  // The combiner and its sender history are on by default; each can be turned off.
  auto defaults = filters::read_bayes_settings(filters::bayes_options(*cfg2)).params;
  CHECK(defaults.combine);
  CHECK(defaults.combiner.sender > 0);
  auto cfg3 = parse_config(
      "[store]\ndir = \"/x\"\n[filters.bayes]\ncombine = false\nsender_history = false\n",
      "test.toml");
  auto off = filters::read_bayes_settings(filters::bayes_options(*cfg3)).params;
  CHECK(!off.combine);
  CHECK(off.combiner.sender == 0);
  CHECK(off.combiner.header == defaults.combiner.header);
}

TEST_CASE("bayes filter options are validated", "[bayes][filters]") {
  CHECK_THROWS_AS(build("[filters.bayes]\nmax_clues = 0\n"), ConfigError);
  CHECK_THROWS_AS(build("[filters.bayes]\nunknown_key = 1\n"), ConfigError);
  CHECK_THROWS_AS(build("[filters.bayes]\nsender_history = 1\n"), ConfigError);  // a boolean
  CHECK_THROWS_AS(build("[filters.bayes]\nautolearn_spam_at = 1.0\nautolearn_ham_below = 2.0\n"),
                  ConfigError);
}

TEST_CASE("bayes filter: autolearn off (the default) learns nothing after the verdict",
          "[bayes][filters]") {
  auto store = make_memory_store();
  WithPool d(*store);
  auto& [_, pool, services] = d;
  auto f = build("[filters.bayes]\nconfidence_messages = 0\n");
  after_verdict(*f, services, spam_raw(200));
  pool.join();
  CHECK(bayes::Classifier(*store).stats().spam_messages == 40);
}

TEST_CASE("bayes filter: autolearn learns only what the domain's verdict agrees with",
          "[bayes][filters]") {
  auto store = make_memory_store();
  WithPool d(*store);
  auto& [_, pool, services] = d;
  auto f = build("[filters.bayes]\nautolearn = true\nconfidence_messages = 0\n");
  // Confident spam: learnt when classed spam or refused; not when the verdict says clean, a
  // whitelist passed, or the domain tempfailed.
  after_verdict(*f, services, spam_raw(600), Decision::Accept);
  after_verdict(*f, services, spam_raw(601), Decision::Spam, /*whitelisted=*/true);
  after_verdict(*f, services, spam_raw(602), Decision::Tempfail);
  after_verdict(*f, services, spam_raw(603), Decision::Reject);
  after_verdict(*f, services, spam_raw(604), Decision::Spam);
  // Confident ham: learnt only when nothing classed it spam (a whitelist pass is fine).
  after_verdict(*f, services, ham_raw(600), Decision::Spam);
  after_verdict(*f, services, ham_raw(601), Decision::Accept, /*whitelisted=*/true);
  after_verdict(*f, services, ham_raw(602), Decision::Accept);
  pool.join();
  CHECK(bayes::Classifier(*store).stats().spam_messages == 42);
  CHECK(bayes::Classifier(*store).stats().ham_messages == 42);
  // What autolearn learnt keeps its byte 4-grams for the gram model, as the CLI's learning.
  CHECK(bayes::Classifier(*store).stats().gram_lists == 84);
}

TEST_CASE("bayes filter: a message autolearnt at SMTP time is the one in the mailbox",
          "[bayes][filters]") {
  // Autolearnt as spam by the daemon; the recipient's copy (trace headers on top) learnt as
  // ham by the postmaster moves it instead of counting a second message.
  for (bool filter_ran : {true, false}) {
    auto store = make_memory_store();
    WithPool d(*store);
    auto& [_, pool, services] = d;
    auto f = build("[filters.bayes]\nautolearn = true\nconfidence_messages = 0\n");
    const std::string raw = spam_raw(800);
    if (filter_ran) {
      REQUIRE(check_then_spam_verdict(*f, services, raw).verdict == FilterResult::Verdict::Hit);
    } else {
      after_verdict(*f, services, raw);  // the chain stopped before Bayes
    }
    std::promise<void> drained;
    asio::post(pool, [&] { drained.set_value(); });
    drained.get_future().wait();
    const std::string delivered =
        "Received: from mx by box with LMTP; Mon, 1 Jan 2024 10:00:00 +0000\r\n"
        "Received: from x by mx (digue) with ESMTP id 1; Mon, 1 Jan 2024 10:00:00 +0000\r\n" +
        raw;
    REQUIRE(bayes::Classifier(*store).stats().spam_messages == 41);
    CHECK(bayes::Classifier(*store).learn(mime::parse(delivered), bayes::Class::Ham) ==
          bayes::LearnOutcome::Moved);
    pool.join();
    CHECK(bayes::Classifier(*store).stats().spam_messages == 40);
    CHECK(bayes::Classifier(*store).stats().ham_messages == 41);
  }
}

TEST_CASE("bayes filter: autolearn needs every domain's verdict to agree", "[bayes][filters]") {
  auto store = make_memory_store();
  WithPool d(*store);
  auto& [_, pool, services] = d;
  auto f = build("[filters.bayes]\nautolearn = true\nconfidence_messages = 0\n");
  auto learn_with = [&](const std::string& raw, const std::vector<Decision>& decisions) {
    std::vector<Verdict> vs;
    for (Decision dec : decisions) vs.push_back(verdict(dec));
    hooks(*f, services, raw, vs);
  };
  // Hammy, one domain took it and another classed it spam (a virus, say): not learnt.
  learn_with(ham_raw(900), {Decision::Accept, Decision::Spam});
  // Spammy, one domain took it clean: not learnt; both spam (or one tempfailed): learnt.
  learn_with(spam_raw(900), {Decision::Spam, Decision::Accept});
  learn_with(spam_raw(901), {Decision::Spam, Decision::Reject});
  learn_with(spam_raw(902), {Decision::Tempfail, Decision::Spam});
  learn_with(spam_raw(903), {Decision::Tempfail});
  pool.join();
  CHECK(bayes::Classifier(*store).stats().ham_messages == 40);
  CHECK(bayes::Classifier(*store).stats().spam_messages == 42);
}

TEST_CASE("bayes filter classifies a message once for all its domains", "[bayes][filters]") {
  // One classification is two batched reads: the model's summary records, then the tokens
  // the process's cache does not hold (all of them: this store's version is new).
  test::CountingStore store;
  train(store, 40);
  Services services;
  services.store = &store;
  asio::thread_pool pool(2);
  bool offload = GENERATE(false, true);  // on the I/O thread, and on the worker pool
  if (offload) services.workers = &pool;
  auto f = build(std::string("[filters.bayes]\nconfidence_messages = 0\n") +
                 (offload ? "offload_bytes = 0\n" : ""));
  asio::io_context io;
  Envelope env;
  auto msg = std::make_shared<Message>(spam_raw(100));
  DomainPolicy strict, lenient;
  strict.name = "a.test";
  strict.required = 5.0;
  lenient.name = "b.test";
  lenient.required = 15.01;  // above the top of the scale
  std::vector<FilterResult> out;
  auto fut = asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (const DomainPolicy* p : {&strict, &lenient}) {
          FilterContext ctx{env, msg.get(), p->name, *p, services, io.get_executor()};
          FilterResult r = co_await f->check(ctx);
          out.push_back(std::move(r));
        }
      },
      asio::use_future);
  io.run();
  fut.get();
  CHECK(store.visits == 2);
  REQUIRE(out.size() == 2);
  CHECK(out[0].verdict == FilterResult::Verdict::Hit);   // each domain its own level
  CHECK(out[1].verdict == FilterResult::Verdict::None);
  CHECK(out[0].symbols.at(0).evidence.find("required=5.0") != std::string::npos);
  CHECK(out[1].symbols.at(0).evidence.find("required=15.0") != std::string::npos);
}

TEST_CASE("bayes filter: autolearning retrains the weights in the daemon", "[bayes][filters]") {
  auto store = make_memory_store();
  WithPool d(*store);  // counts only: no weights yet
  auto& [_, pool, services] = d;
  REQUIRE(bayes::Classifier(*store).stats().weight_messages == 0);
  auto f = build(
      "[filters.bayes]\nautolearn = true\nconfidence_messages = 0\nretrain_after = 3\n"
      "retrain_min_interval = 0\n");
  // Two confident spam learnt: not yet; the same message again is not a new one.
  after_verdict(*f, services, spam_raw(300));
  after_verdict(*f, services, spam_raw(301));
  after_verdict(*f, services, spam_raw(301));
  // The pool's one thread runs jobs in order: a last empty one marks the others done.
  std::promise<void> drained;
  asio::post(pool, [&] { drained.set_value(); });
  drained.get_future().wait();
  CHECK(bayes::Classifier(*store).stats().spam_messages == 42);
  CHECK(bayes::Classifier(*store).stats().weight_messages == 0);
  // The third new one triggers the retrain, on the pool, over all 83 learnt messages.
  after_verdict(*f, services, spam_raw(302));
  pool.join();
  CHECK(bayes::Classifier(*store).stats().spam_messages == 43);
  CHECK(bayes::Classifier(*store).stats().weight_messages == 83);
  CHECK_THROWS_AS(build("[filters.bayes]\nretrain_after = -1\n"), ConfigError);
}

TEST_CASE("bayes filter: autolearning bounds the model in the daemon", "[bayes][filters]") {
  // An undated seen marker (from an older version) gets dated by the first expire: the sign
  // that one ran. Then none again within expire_min_interval; none at all when it is 0.
  auto marker_dated = [](Store& store, const std::string& id) {
    std::stringstream dump;
    bayes::Classifier(store).dump(dump);
    return dump.str().find("seen " + id + " S " + std::to_string(bayes::Classifier::today())) !=
           std::string::npos;
  };
  auto legacy = [](Store& store, const std::string& id) {
    std::stringstream v1("digue-bayes 1\nseen " + id + " S\n");
    bayes::Classifier(store).restore(v1, bayes::RestoreMode::Merge);
  };
  for (bool enabled : {true, false}) {
    auto store = make_memory_store();
    WithPool d(*store);
    auto& [_, pool, services] = d;
    legacy(*store, "old1");
    auto f = build(std::string("[filters.bayes]\nautolearn = true\nconfidence_messages = 0\n") +
                   (enabled ? "" : "expire_min_interval = 0\n"));
    after_verdict(*f, services, spam_raw(500));
    std::promise<void> first;
    asio::post(pool, [&] { first.set_value(); });
    first.get_future().wait();
    CHECK(marker_dated(*store, "old1") == enabled);
    legacy(*store, "old2");
    after_verdict(*f, services, spam_raw(501));
    pool.join();
    CHECK(bayes::Classifier(*store).stats().spam_messages == 42);
    CHECK_FALSE(marker_dated(*store, "old2"));  // within the hour: no second expire
  }
  CHECK_THROWS_AS(build("[filters.bayes]\nmodel_max_seen = 10\n"), ConfigError);
}

TEST_CASE("bayes filter: autolearn reuses the filter's own classification", "[bayes][filters]") {
  test::CountingStore store;  // a classification is two batched reads (summary, tokens)
  WithPool d(store);
  auto& [_, pool, services] = d;
  auto f = build("[filters.bayes]\nautolearn = true\nconfidence_messages = 0\n");
  CHECK(check_then_spam_verdict(*f, services, spam_raw(400)).verdict ==
        FilterResult::Verdict::Hit);
  pool.join();
  CHECK(bayes::Classifier(store).stats().spam_messages == 41);  // learnt ...
  CHECK(store.visits == 2);  // ... with the one classification the check made
}
