// bayes filter; see filters/bayes.hpp.
#include "filters/bayes.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdio>
#include <optional>

#include "digue/message.hpp"
#include "digue/pipeline.hpp"
#include "digue/store.hpp"

namespace digue::filters {
namespace {

namespace asio = boost::asio;

// Autolearn's retraining state, shared by the filter's posted jobs (the filter object is
// immutable and shared by every session; a reload builds a new one with fresh state).
struct Retrain {
  std::atomic<uint64_t> learnt{0};  // autolearnt since the last retrain
  std::atomic<bool> running{false};
  std::atomic<int64_t> last{0};  // steady-clock seconds of the last retrain (0: never)
  std::atomic<bool> expiring{false};
  std::atomic<int64_t> last_expire{0};  // of the last expire (0: never)
};

int64_t steady_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// One message's tokens and their classification, kept on the Message (memo): computed once
// for all recipient domains, and reused by autolearn after the verdict.
struct Classified {
  std::vector<std::string> tokens;
  std::vector<uint32_t> grams;  // byte 4-grams (bayes::byte_grams)
  bayes::Result result;
  std::string id;  // bayes::message_identity, for autolearn (empty when it is off)
};

class BayesFilter final : public Filter {
 public:
  explicit BayesFilter(BayesSettings s) : s_(std::move(s)) {}
  std::string_view name() const override { return "bayes"; }
  Phase phase() const override { return Phase::Data; }
  bool per_domain() const override { return true; }

  asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
    if (!ctx.message) co_return FilterResult::error("no message");
    if (!ctx.services.store) co_return FilterResult::error("no store configured");
    Store& store = *ctx.services.store;
    const Message& msg = *ctx.message;
    bayes::Classifier classifier(store, s_.params);
    bayes::Result r;
    // The classification does not depend on the domain (only the threshold does): once per
    // message, whatever the number of recipient domains.
    auto work = [&] {
      r = msg.memo<Classified>(memo_key(), [&] {
              Classified c{bayes::tokenize(msg.facts(), s_.params.tokenizer),
                           bayes::byte_grams(msg.raw(), s_.params.tokenizer.gram_bytes), {}, {}};
              c.result = classifier.classify_tokens(c.tokens, c.grams);
              // Its identity only when autolearn would learn it (a confident score).
              if (s_.autolearn.decide(c.result)) c.id = bayes::message_identity(msg.facts());
              return c;
            }).result;
    };
    try {
      // (A new gram model is read into memory by the first classification after a training:
      // that one goes to a worker too.)
      if (ctx.services.workers &&
          (msg.raw().size() >= s_.offload_bytes || classifier.gram_model_pending())) {
        // The run waits for the worker (unless the slot's deadline abandons it; Message's
        // lazy parts are safe across threads either way).
        co_await asio::co_spawn(
            ctx.services.workers->get_executor(),
            [&]() -> asio::awaitable<void> {
              work();
              co_return;
            },
            asio::use_awaitable);
      } else {
        work();
      }
    } catch (const StoreError& e) {
      co_return FilterResult::error(std::string("store: ") + e.what());
    }
    if (!r.ready) {
      FilterResult out;
      out.symbols.push_back({"BAYES_UNTRAINED", 0.0, "the model needs more spam and ham"});
      co_return out;
    }
    char head[192];
    int n = std::snprintf(head, sizeof head, "score=%.2f required=%.1f", r.score,
                          ctx.policy.required);
    if (r.weighted && n > 0 && static_cast<size_t>(n) < sizeof head)
      n += std::snprintf(head + n, sizeof head - static_cast<size_t>(n),
                         " bayes=%+.2f weights=%+.2f", r.bayes_evidence, r.weight_logit);
    // The combiner's other figures: header / body clue means, the From address's history.
    if (r.combined && n > 0 && static_cast<size_t>(n) < sizeof head)
      n += std::snprintf(head + n, sizeof head - static_cast<size_t>(n),
                         " header=%+.2f body=%+.2f sender=%u/%u", r.header_evidence,
                         r.body_evidence, r.sender_spam, r.sender_ham);
    // The gram model's logit, when it took part.
    if (r.grams_used && n > 0 && static_cast<size_t>(n) < sizeof head)
      std::snprintf(head + n, sizeof head - static_cast<size_t>(n), " grams=%+.2f",
                    r.gram_logit);
    std::string evidence = head;
    if (!r.clues.empty()) evidence += " tokens: " + r.evidence(s_.evidence_tokens);
    // The score and strongest tokens also go in the message's X-Digue-Bayes trace header.
    if (r.score >= ctx.policy.required) {
      auto out = FilterResult::hit("BAYES_SPAM", r.score, evidence, "bayes: spam");
      out.trace = std::move(evidence);
      co_return out;
    }
    FilterResult out;
    out.symbols.push_back({"BAYES_HAM", 0.0, evidence});
    out.trace = std::move(evidence);
    co_return out;
  }

  // Autolearn: once per accepted message, after the final verdicts (never for a dry-run slot,
  // never from `diguectl scan`, which does not call this hook). The message is learnt on the
  // worker pool (from the filter's own classification, or tokenized and classified there
  // when the chain stopped before Bayes) when its Bayes score is confident and every
  // domain's verdict agrees; the I/O thread only posts.
  void after_message(const FilterContext& ctx,
                     const std::vector<const Verdict*>& verdicts) const override {
    if (!s_.autolearn.enabled || !ctx.message || !ctx.services.workers || !ctx.services.store)
      return;
    // Only what every recipient domain's verdict agrees with: spam when each classed it spam
    // or refused it and no whitelist passed, ham when none classed it spam (domains that
    // tempfailed have no say). A whitelisted message Bayes finds spammy, or a virus Bayes
    // finds hammy, teaches nothing — nor does a message one domain took and another refused.
    bool verdict_spam = true, verdict_ham = true, any = false;
    for (const Verdict* v : verdicts) {
      if (v->decision == Decision::Tempfail) continue;
      any = true;
      if (v->whitelisted || (v->decision != Decision::Spam && v->decision != Decision::Reject))
        verdict_spam = false;
      if (v->decision != Decision::Accept) verdict_ham = false;
    }
    if (!any || (!verdict_spam && !verdict_ham)) return;
    auto agrees = [&](bayes::Class cls) {
      return cls == bayes::Class::Spam ? verdict_spam : verdict_ham;
    };
    // The filter's own classification when it ran (usually): decided here, so a message that
    // teaches nothing (most) costs no copy and no job; one that does is not tokenized twice.
    std::optional<Classified> done;
    if (const Classified* c = ctx.message->find_memo<Classified>(memo_key())) {
      auto cls = s_.autolearn.decide(c->result);
      if (!cls || !agrees(*cls)) return;
      done = *c;
    }
    asio::post(*ctx.services.workers, [store = ctx.services.store, settings = s_,
                                       retrain = retrain_, raw = ctx.message->raw_ptr(),
                                       limits = ctx.message->limits(), done = std::move(done),
                                       verdict_spam, verdict_ham]() mutable {
      try {
        bayes::Classifier c(*store, settings.params);
        std::vector<std::string> tokens;
        std::vector<uint32_t> grams;
        std::string id;
        std::optional<bayes::Class> cls;
        if (done) {
          tokens = std::move(done->tokens);
          grams = std::move(done->grams);
          id = std::move(done->id);
          cls = settings.autolearn.decide(done->result);
        } else {
          Message msg(raw);
          msg.set_limits(limits);
          tokens = bayes::tokenize(msg.facts(), settings.params.tokenizer);
          grams = bayes::byte_grams(msg.raw(), settings.params.tokenizer.gram_bytes);
          id = bayes::message_identity(msg.facts());
          cls = settings.autolearn.decide(c.classify_tokens(tokens, grams));
        }
        if (!cls || (*cls == bayes::Class::Spam ? !verdict_spam : !verdict_ham)) return;
        bayes::Classifier::Item item{std::move(tokens), *cls, std::move(id)};
        item.grams = std::move(grams);
        auto outcome = c.learn({std::move(item)});
        if (outcome.empty() || outcome[0] == bayes::LearnOutcome::AlreadyKnown) return;
        if (settings.params.weights && settings.retrain_after > 0 &&
            retrain->learnt.fetch_add(1) + 1 >= settings.retrain_after)
          maybe_retrain(c, settings, *retrain);
        maybe_expire(c, settings, *retrain);
      } catch (const std::exception& e) {
        // Best effort: a missed autolearn only means one message less in the model (a store
        // error, or memory for a retrain or expire: never let it end the worker pool).
        spdlog::warn("bayes autolearn: {}", e.what());
      }
    });
  }

 private:
  // On a worker: one retrain at a time, at most once per retrain_min_interval; the counts
  // learnt meanwhile are kept (train_weights rewrites only the weights). While it writes
  // (in chunks), classifications may see part old, part new weights: both are valid models
  // of nearly the same data. It holds one pool thread for its duration (seconds for 200,000
  // kept messages); the other pool threads go on classifying.
  static void maybe_retrain(const bayes::Classifier& c, const BayesSettings& settings,
                            Retrain& retrain) {
    if (retrain.running.exchange(true)) return;
    // Checked once this job holds the flag, so two jobs cannot both pass it in turn.
    int64_t now = steady_seconds(), last = retrain.last.load();
    if (last != 0 && now - last < settings.retrain_min_interval.count()) {
      retrain.running.store(false);
      return;
    }
    retrain.learnt.store(0);
    auto started = std::chrono::steady_clock::now();
    try {
      auto wt = c.train_weights();
      spdlog::info("bayes: weights retrained after autolearning: {} messages, {} weights, {} ms",
                   wt.messages, wt.nonzero,
                   std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - started)
                       .count());
    } catch (const std::exception& e) {  // the store, or memory for the training set
      spdlog::warn("bayes: retraining the weights failed: {}", e.what());
    }
    retrain.last.store(steady_seconds());
    retrain.running.store(false);
  }

  // On a worker, after an autolearnt message: bounds the model (Classifier::expire with the
  // configured limits) at most once per expire_min_interval, one at a time; the first time
  // with the first autolearnt message after start or reload. A learning model thus stays
  // bounded without the digue-bayes-train timer. Costs a scan of the model on one pool thread
  // (at the default bounds ~1-4 s and ~175 MB: bench/bayes_bound_bench.cpp).
  static void maybe_expire(const bayes::Classifier& c, const BayesSettings& settings,
                           Retrain& state) {
    const int64_t interval = settings.expire_min_interval.count();
    auto due = [&] {
      int64_t prev = state.last_expire.load();
      return interval > 0 && (prev == 0 || steady_seconds() - prev >= interval);
    };
    if (!due() || state.expiring.exchange(true)) return;
    if (!due()) {  // again, holding the flag: another job may just have finished one
      state.expiring.store(false);
      return;
    }
    auto started = std::chrono::steady_clock::now();
    try {
      auto out = c.expire(settings.expire);
      spdlog::log(out.tokens + out.lists + out.markers ? spdlog::level::info : spdlog::level::debug,
                  "bayes: model bounded: {} tokens, {} token lists, {} seen markers removed, {} ms",
                  out.tokens, out.lists, out.markers,
                  std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count());
    } catch (const std::exception& e) {  // the store, or memory for the token list
      spdlog::warn("bayes: bounding the model failed: {}", e.what());
    }
    state.last_expire.store(std::max<int64_t>(1, steady_seconds()));
    state.expiring.store(false);
  }

  // This filter's key for its memo on a Message (two bayes slots never share one).
  std::string memo_key() const {
    return "bayes@" + std::to_string(reinterpret_cast<uintptr_t>(this));
  }

  BayesSettings s_;
  std::shared_ptr<Retrain> retrain_ = std::make_shared<Retrain>();
};

}  // namespace

BayesSettings read_bayes_settings(const toml::table& options) {
  OptionReader r(options, "filters.bayes");
  BayesSettings s;
  auto& p = s.params;
  p.robinson_s = r.number("robinson_s", p.robinson_s, 0.001, 10);
  p.robinson_x = r.number("robinson_x", p.robinson_x, 0.01, 0.99);
  p.min_dev = r.number("min_dev", p.min_dev, 0.0, 0.49);
  p.max_clues =
      static_cast<size_t>(r.integer("max_clues", static_cast<int64_t>(p.max_clues), 1, 10000));
  p.min_learned = static_cast<uint32_t>(r.integer("min_learned", p.min_learned, 1, 1000000));
  p.confidence_messages = static_cast<uint32_t>(
      r.integer("confidence_messages", p.confidence_messages, 0, 100000000));
  p.tokenizer.osb = r.boolean("osb", p.tokenizer.osb);
  p.weights = r.boolean("weights", p.weights);
  p.combine = r.boolean("combine", p.combine);
  if (!r.boolean("sender_history", true)) p.combiner.sender = p.combiner_full.sender = 0;
  if (!r.boolean("byte_grams", true)) p.tokenizer.gram_bytes = 0;
  p.gram_max_messages = static_cast<size_t>(r.integer(
      "gram_max_messages", static_cast<int64_t>(p.gram_max_messages), 100, int64_t{1} << 32));
  p.weight_max_messages = static_cast<size_t>(r.integer(
      "weight_max_messages", static_cast<int64_t>(p.weight_max_messages), 100, int64_t{1} << 32));
  p.tokenizer.max_tokens = static_cast<size_t>(r.integer(
      "max_tokens_per_message", static_cast<int64_t>(p.tokenizer.max_tokens), 10, 100000));
  s.evidence_tokens = static_cast<size_t>(r.integer("evidence_tokens", 8, 0, 100));
  s.offload_bytes = static_cast<size_t>(r.integer("offload_bytes", 16 << 10, 0, int64_t{1} << 40));
  s.autolearn.enabled = r.boolean("autolearn", false);
  s.autolearn.spam_at = r.number("autolearn_spam_at", s.autolearn.spam_at, 0, 15);
  s.autolearn.ham_below = r.number("autolearn_ham_below", s.autolearn.ham_below, 0, 15);
  if (s.autolearn.ham_below >= s.autolearn.spam_at)
    r.fail("autolearn_ham_below", "must be below autolearn_spam_at");
  s.retrain_after = static_cast<size_t>(
      r.integer("retrain_after", static_cast<int64_t>(s.retrain_after), 0, int64_t{1} << 32));
  s.retrain_min_interval = std::chrono::seconds(
      r.integer("retrain_min_interval", s.retrain_min_interval.count(), 0, 7 * 86400));
  auto& e = s.expire;
  e.max_tokens = static_cast<size_t>(r.integer(
      "model_max_tokens", static_cast<int64_t>(e.max_tokens), 1000, int64_t{1} << 40));
  e.stale_days = static_cast<uint32_t>(r.integer("model_stale_days", e.stale_days, 1, 36500));
  e.max_lists = p.weight_max_messages;
  e.max_gram_lists = p.gram_max_messages;
  e.max_seen = static_cast<size_t>(r.integer(
      "model_max_seen", static_cast<int64_t>(e.max_seen), 1000, int64_t{1} << 40));
  e.seen_days = static_cast<uint32_t>(r.integer("model_seen_days", e.seen_days, 1, 36500));
  s.expire_min_interval = std::chrono::seconds(
      r.integer("expire_min_interval", s.expire_min_interval.count(), 0, 30 * 86400));
  r.finish();
  return s;
}

toml::table bayes_options(const Config& config) {
  if (auto it = config.filter_options.find("bayes"); it != config.filter_options.end())
    return it->second;
  // Not in the pipeline order: the raw table, minus the keys the pipeline reads for a slot.
  toml::table t;
  if (const auto* filters = config.root["filters"].as_table())
    if (const auto* b = (*filters)["bayes"].as_table()) t = *b;
  for (const char* k : {"action", "timeout_ms", "on_error", "dry_run", "always"}) t.erase(k);
  return t;
}

FilterPtr make_bayes(const FilterBuildContext& b) {
  return std::make_shared<BayesFilter>(read_bayes_settings(b.options));
}

}  // namespace digue::filters
