// The Bayes token cache: classifications read a token from the store once per model version,
// and every write of token records makes a new version.
#include <atomic>
#include <catch2/catch.hpp>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "digue/bayes.hpp"
#include "digue/mime.hpp"
#include "src/bayes_cache.hpp"
#include "tests/filters/counting_store.hpp"

using namespace digue;
using namespace digue::bayes;

namespace {

std::vector<std::string> words(const char* const* w, int i) {
  std::vector<std::string> t;
  for (int k = 0; k < 6; ++k) t.push_back(w[(i * 5 + k) % 8]);
  t.push_back("ref" + std::to_string(i));
  return t;
}

const char* const kSpam[] = {"cheap", "pills", "casino", "loan", "winner", "free", "offer", "click"};
const char* const kHam[] = {"kernel", "patch", "review", "merge", "lunch", "build", "agenda", "bug"};

void learn(const Classifier& c, int n, int from = 0) {
  std::vector<Classifier::Item> items;
  for (int i = from; i < from + n; ++i) {
    items.push_back({words(kSpam, i), Class::Spam});
    items.push_back({words(kHam, i), Class::Ham});
  }
  c.learn(items);
}

const std::vector<std::string> kProbe{"cheap", "pills", "kernel", "unknown-token"};

// A token record's u32 at `at` (its spam count at 0, ham at 4).
uint32_t get_u32_for_test(const std::string& rec, size_t at) { return records::get_u32(rec, at); }

Params grown() {
  Params p;
  p.confidence_messages = 0;  // a small test model counts as grown
  return p;
}

}  // namespace

TEST_CASE("bayes cache: the version", "[bayes][cache]") {
  const std::string a = cache::bump(std::nullopt);
  REQUIRE(a.size() == 18);
  CHECK(a.substr(16) == "-1");
  CHECK(cache::bump(a) == a.substr(0, 16) + "-2");
  CHECK(cache::bump(cache::bump(a)) == a.substr(0, 16) + "-3");
  CHECK(cache::bump(std::nullopt).substr(0, 16) != a.substr(0, 16));  // a fresh nonce
  CHECK(cache::bump(std::string("garbage")).substr(16) == "-1");
}

TEST_CASE("bayes cache: tokens are read once per version", "[bayes][cache]") {
  test::CountingStore store;
  Classifier c(store, grown());
  learn(c, 30);
  store.visits = 0;
  const Result first = c.classify_tokens(kProbe);
  CHECK(store.visits == 2);  // the summary records, then the tokens
  const Result second = c.classify_tokens(kProbe);
  CHECK(store.visits == 3);  // the summary only: the tokens (the unknown one too) are cached
  CHECK(second.score == first.score);
  REQUIRE(second.clues.size() == first.clues.size());
  for (size_t i = 0; i < first.clues.size(); ++i) {
    CHECK(second.clues[i].token == first.clues[i].token);
    CHECK(second.clues[i].spam == first.clues[i].spam);
  }
  // A token not seen before is read alone.
  auto more = kProbe;
  more.push_back("casino");
  c.classify_tokens(more);
  CHECK(store.visits == 5);

  // Learning makes a new version: the counts are read again and the new ones are used.
  const auto cheap = [&](const Result& r) {
    for (const auto& cl : r.clues)
      if (cl.token == "cheap") return cl.spam;
    return uint32_t{0};
  };
  const uint32_t before = cheap(second);
  learn(c, 5, 100);
  store.visits = 0;
  const Result after = c.classify_tokens(kProbe);
  CHECK(store.visits == 2);
  CHECK(cheap(after) > before);
  // Learning what is known already writes no token: the version stays, the cache serves.
  learn(c, 5, 100);
  store.visits = 0;
  c.classify_tokens(kProbe);
  CHECK(store.visits == 1);

  // Unlearning, training the weights, expiring and restoring each make a new version.
  auto changes = [&](const std::function<void()>& write) {
    c.classify_tokens(kProbe);
    write();
    store.visits = 0;
    c.classify_tokens(kProbe);
    return store.visits == 2;
  };
  CHECK(changes([&] { c.unlearn({{words(kSpam, 100), Class::Spam}}); }));
  CHECK(changes([&] { c.train_weights(); }));
  CHECK(c.classify_tokens(kProbe).weighted);  // the weights written are the ones read
  CHECK(changes([&] {
    ExpireLimits lim;
    lim.max_tokens = 5;
    CHECK(c.expire(lim).tokens > 0);
  }));
  std::stringstream dump;
  c.dump(dump);
  CHECK(changes([&] {
    std::stringstream in(dump.str());
    c.restore(in, RestoreMode::Replace);
  }));
}

TEST_CASE("bayes cache: another writer of the same store is seen", "[bayes][cache]") {
  auto store = make_memory_store();
  Classifier reader(*store, grown()), writer(*store, grown());
  learn(writer, 30);
  const Result r1 = reader.classify_tokens(kProbe);
  // The writer (another thread or process in the product) learns spam "kernel" mail.
  std::vector<Classifier::Item> items;
  for (int i = 0; i < 200; ++i) items.push_back({{"kernel", "x" + std::to_string(i)}, Class::Spam});
  writer.learn(items);
  const Result r2 = reader.classify_tokens(kProbe);
  CHECK(r2.score > r1.score);
}

TEST_CASE("bayes cache: a model without a version is read every time, correctly", "[bayes][cache]") {
  test::CountingStore store;
  Classifier c(store, grown());
  learn(c, 30);
  const Result cached = c.classify_tokens(kProbe);
  store.del(cache::kVersionKey);  // as a model written before the cache
  store.visits = 0;
  const Result a = c.classify_tokens(kProbe);
  const Result b = c.classify_tokens(kProbe);
  CHECK(store.visits == 4);
  CHECK(a.score == cached.score);
  CHECK(b.score == cached.score);
}

TEST_CASE("bayes cache: classifications on many threads while learning", "[bayes][cache]") {
  auto store = make_memory_store();
  Classifier c(*store, grown());
  learn(c, 30);
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 300; ++i)
        if (c.classify_tokens(kProbe).ready) ++ready;
    });
  for (int i = 0; i < 20; ++i) learn(c, 2, 1000 + 2 * i);
  for (auto& th : threads) th.join();
  CHECK(ready == 900);
  // Afterwards the cache agrees with a fresh read of the store.
  const Result cached = c.classify_tokens(kProbe);
  store->del(cache::kVersionKey);
  CHECK(c.classify_tokens(kProbe).score == cached.score);
}

TEST_CASE("bayes cache: after learning, only the tokens it changed are read again", "[bayes][cache]") {
  test::CountingStore store;
  Classifier c(store, grown());
  learn(c, 30);
  c.classify_tokens(kProbe);  // the cache holds the probe's tokens
  // One message teaching "cheap" (and tokens the probe does not have), not "pills" or "kernel".
  c.learn({{{"cheap", "brand-new-token"}, Class::Spam}});
  store.visits = store.visited_keys = 0;
  const Result r = c.classify_tokens(kProbe);
  CHECK(store.visits == 2);
  CHECK(store.visited_keys == 4 + 1 + 1);  // summary, then the version and "cheap"
  for (const auto& cl : r.clues) {
    const auto rec = store.get(token_key(token_hash(cl.token)));
    REQUIRE(rec);
    CHECK(cl.spam == get_u32_for_test(*rec, 0));
  }
  c.classify_tokens(kProbe);  // (a classification of the same version: no churn builds up)
  // Unlearning it again: the same.
  c.unlearn({{{"cheap", "brand-new-token"}, Class::Spam}});
  store.visits = store.visited_keys = 0;
  c.classify_tokens(kProbe);
  CHECK(store.visited_keys == 4 + 1 + 1);
  c.classify_tokens(kProbe);
  // Training the weights leaves no change record: everything is read again.
  c.train_weights();
  store.visits = store.visited_keys = 0;
  c.classify_tokens(kProbe);
  CHECK(store.visited_keys == 4 + 1 + kProbe.size());
  // More than kChangeRing versions behind: everything again.
  c.classify_tokens(kProbe);
  for (uint64_t i = 0; i <= cache::kChangeRing; ++i)
    c.learn({{{"filler" + std::to_string(i)}, Class::Ham}});
  store.visits = store.visited_keys = 0;
  c.classify_tokens(kProbe);
  CHECK(store.visited_keys == 4 + 1 + kProbe.size());
  // The ring keeps kChangeRing change records.
  size_t records = 0;
  store.scan(cache::kChangePrefix, [&](std::string_view, std::string_view) {
    ++records;
    return true;
  });
  CHECK(records == cache::kChangeRing);
}

TEST_CASE("bayes cache: random learning, unlearning and training never leave a stale count",
          "[bayes][cache]") {
  auto store = make_memory_store();
  Classifier c(*store, grown());
  learn(c, 30);
  std::mt19937 rng(7);
  const std::vector<std::string> vocab{"cheap", "pills", "kernel", "patch", "loan", "lunch",
                                       "winner", "merge", "x1", "x2", "x3", "unknown-token"};
  std::vector<Classifier::Item> learnt;
  for (int step = 0; step < 300; ++step) {
    const unsigned op = rng() % 10;
    if (op < 5) {
      std::vector<std::string> t;
      for (int k = 0; k < 3; ++k) t.push_back(vocab[rng() % vocab.size()]);
      t.push_back("n" + std::to_string(step));
      learnt.push_back({t, rng() % 2 ? Class::Spam : Class::Ham});
      c.learn({learnt.back()});
    } else if (op < 7 && !learnt.empty()) {
      c.unlearn({learnt[rng() % learnt.size()]});
    } else if (op == 7 && step % 50 == 0) {
      c.train_weights();
    }
    // Every clue's counts are the store's, whatever the cache went through.
    std::vector<std::string> probe;
    for (int k = 0; k < 5; ++k) probe.push_back(vocab[rng() % vocab.size()]);
    for (const auto& cl : c.classify_tokens(probe).clues) {
      const auto rec = store->get(token_key(token_hash(cl.token)));
      REQUIRE(rec);
      CHECK(cl.spam == get_u32_for_test(*rec, 0));
      CHECK(cl.ham == get_u32_for_test(*rec, 4));
    }
  }
}

TEST_CASE("bayes cache: a learn after every classification reads as without a cache", "[bayes][cache]") {
  test::CountingStore store;
  Classifier c(store, grown());
  learn(c, 30);
  c.classify_tokens(kProbe);
  // Each classification finds a new version: after a few, catching up is not worth it and the
  // model is read in one transaction (the summary and every token).
  for (int i = 0; i < 6; ++i) {
    c.learn({{{"pills", "x" + std::to_string(i)}, Class::Spam}});
    store.visits = store.visited_keys = 0;
    c.classify_tokens(kProbe);
  }
  CHECK(store.visits == 1);
  CHECK(store.visited_keys == 4 + kProbe.size());
  // Learning stops: a few classifications later the cache serves again (the summary only).
  for (int i = 0; i < 6; ++i) c.classify_tokens(kProbe);
  store.visits = store.visited_keys = 0;
  c.classify_tokens(kProbe);
  CHECK(store.visits == 1);
  CHECK(store.visited_keys == 4);
}
