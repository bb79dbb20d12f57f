// bayes — the Bayesian classifier (FEATURES item 23) as a data-phase filter.
// Phase: data, decided per recipient domain (the threshold is the domain's `required`).
// Symbols: BAYES_SPAM (hit, score = the Bayes score 0..15, when score >= required);
// BAYES_HAM (no hit, score 0: a hammy verdict must not add to the message score; the Bayes
// score is in the evidence); BAYES_UNTRAINED (no hit, score 0) while the model has fewer than
// min_learned messages of either class. Evidence: "score=S required=R" + strongest tokens;
// the same line is the message's X-Digue-Bayes trace header (FilterResult::trace).
// Config keys ([filters.bayes]): robinson_s, robinson_x, min_dev, max_clues, min_learned,
// osb, max_tokens_per_message, evidence_tokens, offload_bytes, autolearn (bool),
// autolearn_spam_at, autolearn_ham_below, retrain_after, retrain_min_interval,
// model_max_tokens, model_stale_days, model_max_seen, model_seen_days, expire_min_interval.
// Dependencies: services.store (the model, see digue/bayes.hpp); services.workers for
// messages of offload_bytes or more (tokenizing is CPU work; never on an I/O thread).
// Failure: no store -> error result; a StoreError -> error result (the slot's on_error
// applies). Untrusted input: the whole message; the tokenizer never throws on bad input.
// Autolearn (off by default) learns confident verdicts on the worker pool, after the reply;
// after every retrain_after autolearnt messages (and at most once per retrain_min_interval)
// the daemon retrains the token weights there too, and bounds the model (expire, at most once
// per expire_min_interval), so a model that learns by itself stays consistent and bounded
// without the digue-bayes-train timer.
#pragma once

#include <chrono>

#include "digue/bayes.hpp"
#include "digue/filter_registry.hpp"
#include "digue/options.hpp"

namespace digue::filters {

struct BayesSettings {
  bayes::Params params;
  bayes::Autolearn autolearn;
  size_t evidence_tokens = 8;
  size_t offload_bytes = 16u << 10;
  size_t retrain_after = 1000;  // autolearnt messages between weight retrains; 0: never
  std::chrono::seconds retrain_min_interval{900};
  // Model bounds (model_max_tokens, model_stale_days, model_max_seen, model_seen_days; the
  // kept token lists follow weight_max_messages): `diguectl bayes expire` applies them, and
  // digued itself after a newly autolearnt message, at most once per expire_min_interval
  // (the clock starts with the filter: a config reload starts it again).
  bayes::ExpireLimits expire;
  std::chrono::seconds expire_min_interval{3600};
};

// Reads [filters.bayes] (shared by the filter and `diguectl bayes`); throws ConfigError.
BayesSettings read_bayes_settings(const toml::table& options);
// The filter's own options of a loaded config ([filters.bayes] without the slot keys such as
// action and timeout_ms; empty when absent), for `diguectl bayes`.
toml::table bayes_options(const Config& config);

FilterPtr make_bayes(const FilterBuildContext& b);

}  // namespace digue::filters
