// Bayes model: message identity, classification, learning and stats; see
// include/digue/bayes.hpp. Dump/restore, weight training and expiry: src/bayes_*.cpp.
#include "digue/bayes.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <unordered_map>

#include "src/bayes_cache.hpp"
#include "src/bayes_grams.hpp"
#include "src/bayes_near.hpp"
#include "src/bayes_records.hpp"

namespace digue::bayes {

using namespace records;

std::string message_identity(const mime::Parsed& msg) {
  std::string buf = "digue-message-1";
  auto feed = [&](std::string_view s, bool drop_space) {
    // Line ends (CRLF at SMTP time, LF in a Maildir) and header refolding do not count.
    buf += '\0';
    for (char c : s)
      if (c != '\r' && !(drop_space && (c == ' ' || c == '\t' || c == '\n'))) buf += c;
  };
  for (const char* name : {"message-id", "date", "from"}) {
    const mime::Header* h = msg.header(name);
    feed(h ? std::string_view(h->raw_value) : std::string_view(), true);
  }
  // Trailing blank lines and spaces do not count either (an mbox or a downstream server may
  // add or drop an empty last line).
  auto trimmed = [](std::string_view t) {
    size_t end = t.find_last_not_of(" \t\r\n");
    return t.substr(0, end == std::string_view::npos ? 0 : end + 1);
  };
  feed(trimmed(msg.text), false);
  feed(trimmed(msg.html), false);
  for (const auto& a : msg.attachments) feed(a.sha256, false);
  return short_digest(buf.data(), buf.size());
}

std::string token_key(uint64_t hash) {
  std::string k(kTokenPrefix);
  k += hex64(hash);
  return k;
}

uint32_t Classifier::today() {
  using namespace std::chrono;
  return static_cast<uint32_t>(
      duration_cast<hours>(system_clock::now().time_since_epoch()).count() / 24);
}

std::string Result::evidence(size_t n) const {
  std::string out;
  char buf[32];
  for (size_t i = 0; i < clues.size() && i < n; ++i) {
    if (!out.empty()) out += ", ";
    out += clues[i].token;
    std::snprintf(buf, sizeof buf, ":%.3f", clues[i].prob);
    out += buf;
  }
  return out;
}

std::optional<Class> Autolearn::decide(const Result& r) const {
  if (!enabled || !r.ready || r.clues.empty()) return std::nullopt;
  if (r.score >= spam_at) return Class::Spam;
  if (r.score < ham_below) return Class::Ham;
  return std::nullopt;
}

Result Classifier::classify(const mime::Parsed& msg, std::string_view raw) const {
  return classify_tokens(tokenize(msg, params_.tokenizer),
                         byte_grams(raw, params_.tokenizer.gram_bytes));
}

Result Classifier::classify_tokens(const std::vector<std::string>& tokens,
                                   const std::vector<uint32_t>& grams) const {
  Result r;
  r.tokens = tokens.size();
  r.grams = grams.size();
  const size_t n = tokens.size();
  std::vector<std::pair<uint64_t, uint32_t>> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = {token_hash(tokens[i]), static_cast<uint32_t>(i)};
  std::sort(order.begin(), order.end());
  std::vector<uint64_t> hashes(n);
  for (size_t j = 0; j < n; ++j) hashes[j] = order[j].first;
  // The model's summary records and its version, then the tokens: from the process's cache
  // when it holds them under this version, from the store otherwise (in hash order = key
  // order, written into one buffer: no allocation per key, no copy per value).
  std::optional<std::string> meta_value, weights_value, version;
  std::optional<GramMeta> gram_meta;
  std::vector<Counts> sorted(n);  // in `order`
  // Reads the summary records (when asked) and the tokens at `which` in one transaction.
  auto read = [&](bool summary, const std::vector<size_t>& which) {
    const size_t klen = kTokenPrefix.size() + 16, first = summary ? 4 : 1;
    std::string buf(which.size() * klen, '\0');
    std::vector<std::string_view> keys;
    keys.reserve(which.size() + first);
    if (summary) {
      for (std::string_view k : {kGramMetaKey, kMetaKey, cache::kVersionKey, kWeightsKey})
        keys.push_back(k);  // (not insert: GCC 12 warns wrongly of an overflow there)
      gram_meta.reset();
      meta_value.reset();
      version.reset();
      weights_value.reset();
    } else {
      keys.push_back(cache::kVersionKey);
    }
    for (size_t m = 0; m < which.size(); ++m) {
      char* p = buf.data() + m * klen;
      std::memcpy(p, kTokenPrefix.data(), kTokenPrefix.size());
      uint64_t h = hashes[which[m]];
      for (int d = 15; d >= 0; --d, h >>= 4)
        p[kTokenPrefix.size() + d] = hex_digit(static_cast<unsigned>(h));
      keys.emplace_back(p, klen);
      sorted[which[m]] = Counts{};
    }
    std::optional<std::string> seen_version;
    store_.visit_many(keys, [&](size_t i, std::string_view v) {
      if (i >= first)
        sorted[which[i - first]] = decode_counts(v);
      else if (!summary || i == 2)
        seen_version.emplace(v);
      else if (i == 0)
        gram_meta = decode_gram_meta(v);
      else if (i == 1)
        meta_value.emplace(v);
      else
        weights_value.emplace(v);
    });
    if (summary) version = seen_version;
    return seen_version;
  };
  const auto tc = cache::tokens(store_);
  std::vector<size_t> misses;
  if (tc->churning()) {
    // A new version at almost every classification: the model read as without a cache.
    std::vector<size_t> all(n);
    for (size_t j = 0; j < n; ++j) all[j] = j;
    read(true, all);
    tc->note(version.value_or(""));
  } else {
    read(true, {});
    tc->note(version.value_or(""));
    if (version) tc->advance(store_, *version);
    misses = tc->find(version.value_or(""), hashes, sorted);
  }
  const std::string ver = version.value_or("");
  if (!misses.empty()) {
    if (read(false, misses) == version) {
      tc->keep(ver, hashes, misses, sorted);  // what this version holds
    } else {
      // A write landed in between: everything again from one transaction, nothing kept.
      std::vector<size_t> all(n);
      for (size_t j = 0; j < n; ++j) all[j] = j;
      read(true, all);
    }
  }
  std::vector<Counts> counts(n);
  for (size_t j = 0; j < n; ++j) counts[order[j].second] = sorted[j];
  Meta meta = decode_meta(meta_value);
  if (meta.spam < params_.min_learned || meta.ham < params_.min_learned) return r;
  r.ready = true;

  const double s = params_.robinson_s, x = params_.robinson_x;
  const double nspam = static_cast<double>(meta.spam), nham = static_cast<double>(meta.ham);
  struct Cand {
    size_t index;
    double f;
    Counts c;
  };
  std::vector<Cand> cands;
  cands.reserve(tokens.size());
  for (size_t i = 0; i < n; ++i) {
    const Counts& c = counts[i];
    double total = static_cast<double>(c.spam) + c.ham;
    if (total == 0) continue;
    double bs = std::min(1.0, c.spam / nspam), bh = std::min(1.0, c.ham / nham);
    double p = bs / (bs + bh);
    double f = (s * x + total * p) / (s + total);
    if (std::fabs(f - 0.5) < params_.min_dev) continue;
    cands.push_back({i, f, c});
  }
  size_t k = std::min(cands.size(), params_.max_clues);
  std::partial_sort(
      cands.begin(), cands.begin() + static_cast<ptrdiff_t>(k), cands.end(),
      [](const Cand& a, const Cand& b) { return std::fabs(a.f - 0.5) > std::fabs(b.f - 0.5); });
  cands.resize(k);
  if (k == 0) return r;

  // E: the mean clue log-odds, in decades; and its header and body clues' means apart.
  double sum = 0;
  for (const auto& c : cands) {
    const double lo = std::log10(c.f / (1.0 - c.f));
    sum += lo;
    if (header_token(tokens[c.index])) {
      r.header_evidence += lo;
      ++r.header_clues;
    } else {
      r.body_evidence += lo;
      ++r.body_clues;
    }
  }
  r.evidence_decades = sum / static_cast<double>(k);
  r.bayes_evidence = r.evidence_decades;
  if (r.header_clues > 0) r.header_evidence /= static_cast<double>(r.header_clues);
  if (r.body_clues > 0) r.body_evidence /= static_cast<double>(r.body_clues);
  for (size_t i = 0; i < n; ++i)
    if (tokens[i].size() > kSenderPrefix.size() &&
        std::string_view(tokens[i]).substr(0, kSenderPrefix.size()) == kSenderPrefix &&
        tokens[i].find('@') != std::string::npos) {
      r.sender_spam = counts[i].spam;
      r.sender_ham = counts[i].ham;
      break;
    }
  WeightsMeta wm = decode_weights_meta(weights_value);
  double pivot = params_.pivot_decades, per_unit = params_.score_per_decade;
  if (params_.weights && wm.messages > 0) {
    // The logistic model's logit over the tokens it knows, scaled as in training.
    double z = 0;
    for (size_t i = 0; i < n; ++i)
      if (counts[i].weight != 0)
        z += counts[i].weight * log_ratio(counts[i], nspam, nham, params_.weight_alpha);
    z = wm.bias + z / std::sqrt(static_cast<double>(n));
    r.weighted = true;
    r.weight_logit = z;
    r.evidence_decades += params_.weight_mix * z;
    pivot = params_.weighted_pivot;
    per_unit = params_.weighted_score_per_unit;
    // The combiner's coefficients were fitted on a grown model: a young one (fewer than
    // confidence_messages of a class) keeps E + weight_mix * z, scaled down below.
    if (params_.combine && std::min(nspam, nham) >= params_.confidence_messages) {
      // The gram model's figure when the model has one grown as far and the grams are given.
      if (gram_meta && !grams.empty() &&
          std::min(gram_meta->spam, gram_meta->ham) >= params_.confidence_messages)
        if (auto table = grams::table(store_, *gram_meta)) {
          r.grams_used = true;
          r.gram_logit = grams::logit(*table, grams);
          if (params_.near_window > 0) {
            std::vector<uint64_t> distinct = hashes;
            distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
            const near::Nearest nb = near::nearest(table->near, distinct, params_.near_exact);
            r.near_spam = nb.spam;
            r.near_ham = nb.ham;
            r.near_measured = nb.measured;
          }
        }
      // The full combiner's coefficients were fitted with both figures: without the nearest
      // messages (an empty window, or near_window = 0) it is the combiner without either.
      const bool full = r.grams_used && r.near_measured > 0;
      const Params::Combiner& w = full ? params_.combiner_full : params_.combiner;
      r.combined = true;
      r.evidence_decades =
          w.bias + w.bayes * r.bayes_evidence + w.logit * z + w.header * r.header_evidence +
          w.body * r.body_evidence + w.body_clues * std::log1p(static_cast<double>(r.body_clues)) +
          w.tokens * std::log1p(static_cast<double>(n)) + w.grams * r.gram_logit +
          w.near_spam * r.near_spam + w.near_ham * r.near_ham +
          w.sender * (std::log1p(static_cast<double>(std::min(r.sender_spam, params_.sender_cap))) -
                      std::log1p(static_cast<double>(std::min(r.sender_ham, params_.sender_cap))));
      pivot = params_.combined_pivot;
      per_unit = params_.combined_score_per_unit;
    }
  }
  // A young model is sure of too much: its evidence is shrunk in proportion to its size until
  // it holds confidence_messages of each class (cold start, bench/README.md).
  if (params_.confidence_messages > 0) {
    double n_min = std::min(nspam, nham);
    r.evidence_decades *= std::min(1.0, n_min / static_cast<double>(params_.confidence_messages));
  }
  r.score = std::clamp(kDefaultThreshold + (r.evidence_decades - pivot) * per_unit, 0.0,
                       kMaxScore);
  r.clues.reserve(k);
  for (const auto& c : cands) r.clues.push_back({tokens[c.index], c.f, c.c.spam, c.c.ham});
  return r;
}

namespace {

// The gram list's key of a message, from its seen key.
std::string gram_key(std::string_view seen_key) {
  return std::string(kGramPrefix) + std::string(seen_key.substr(kSeenPrefix.size()));
}

// One learn/unlearn batch as a pure function of the values read, so Store::update may retry it.
struct Batch {
  struct Msg {
    std::vector<uint64_t> hashes;
    std::string seen_key;
    std::string legacy_key;  // with an identity: where an earlier version kept its marker
    Class cls;
    const std::vector<uint32_t>* grams;
    size_t gram_slot = 0;  // with grams: the index of its gram list's key in keys
  };
  std::vector<Msg> msgs;
  std::vector<std::string> keys;  // meta, version, seen keys, gram list keys, token keys
  std::unordered_map<uint64_t, size_t> slot;  // token hash -> index in keys
  std::map<std::string, size_t> seen_slot;
  std::map<std::string, size_t> gram_slot;

  Batch(const std::vector<Classifier::Item>& items) {
    keys.emplace_back(kMetaKey);
    keys.emplace_back(cache::kVersionKey);
    for (const auto& it : items) {
      Msg m{unique_hashes(it.tokens), {}, {}, it.cls, &it.grams};
      std::string digest = std::string(kSeenPrefix) + digest_of(m.hashes);
      if (it.id.empty()) {
        m.seen_key = std::move(digest);
      } else {
        m.seen_key = std::string(kSeenPrefix) + it.id;
        m.legacy_key = std::move(digest);
        if (seen_slot.emplace(m.legacy_key, keys.size()).second) keys.push_back(m.legacy_key);
      }
      if (seen_slot.emplace(m.seen_key, keys.size()).second) keys.push_back(m.seen_key);
      if (!it.grams.empty()) {
        // Read too: a message learnt again gets its list only when it has none.
        std::string gk = gram_key(m.seen_key);
        auto [pos, fresh] = gram_slot.emplace(gk, keys.size());
        if (fresh) keys.push_back(std::move(gk));
        m.gram_slot = pos->second;
      }
      for (uint64_t h : m.hashes) add_token(h);
      msgs.push_back(std::move(m));
    }
  }
  void add_token(uint64_t h) {
    if (slot.emplace(h, keys.size()).second) keys.push_back(token_key(h));
  }
};

}  // namespace

static void run_update(Store& store, Batch& b, bool unlearn, uint32_t day,
                       std::vector<LearnOutcome>& outcomes, bool& changed, bool last_try);

static std::vector<LearnOutcome> run_batch(Store& store, const std::vector<Classifier::Item>& items,
                                           bool unlearn, uint32_t day) {
  Batch b(items);
  std::vector<LearnOutcome> outcomes;
  // Removing or moving a message subtracts the token list learnt for it (kept in its seen
  // record), not the tokens of this copy, which may differ (a delivered copy has more
  // Received lines): those tokens are read in the same transaction. They are known from a
  // read just before; when a concurrent learner changed a list in between (a token of it is
  // not in the transaction), the transaction writes nothing and the batch is read again.
  for (int attempt = 0;; ++attempt) {
    std::vector<std::string> seen_keys;
    for (const auto& [key, idx] : b.seen_slot) seen_keys.push_back(key);
    for (const auto& v : store.get_many(seen_keys))
      if (v && v->size() > 5)
        for (uint64_t h : decode_seen(*v).hashes) b.add_token(h);
    bool changed = false;
    run_update(store, b, unlearn, day, outcomes, changed, attempt >= 3);
    if (!changed) return outcomes;
  }
}

// One try of run_batch's transaction. changed: a kept list holds a token the batch did not
// read (nothing is written); with last_try, this copy's tokens are subtracted instead.
static void run_update(Store& store, Batch& b, bool unlearn, uint32_t day,
                       std::vector<LearnOutcome>& outcomes, bool& changed, bool last_try) {
  store.update(b.keys, [&](const std::vector<std::optional<std::string>>& values) {
    changed = false;
    outcomes.assign(b.msgs.size(), LearnOutcome::NotFound);
    Meta meta = decode_meta(values[0]);
    std::vector<Counts> counts(values.size());
    std::vector<bool> touched(values.size(), false);
    // key index -> the record's class ('S' / 'H' / absent), and its new value when changed
    std::map<size_t, std::optional<char>> seen;
    std::map<size_t, std::optional<std::string>> seen_new;
    std::map<size_t, std::vector<uint64_t>> learnt;  // seen slot -> its kept token list
    std::map<std::string, std::optional<std::string>> gram_ops;  // gram list key -> new value
    for (const auto& [key, idx] : b.seen_slot) {
      const auto& v = values[idx];
      seen[idx] = v && !v->empty() ? std::optional<char>((*v)[0]) : std::nullopt;
      if (v && v->size() > 5) learnt[idx] = decode_seen(*v).hashes;
    }
    // A list changed since the read: this transaction writes nothing, the batch is read again.
    if (!last_try)
      for (const auto& [sidx, hashes] : learnt)
        for (uint64_t h : hashes)
          if (!b.slot.count(h)) changed = true;
    if (changed) return std::vector<Store::Op>{};
    // What to subtract for the message at a seen slot: its kept list, else (a marker whose
    // list was dropped by expire, or a list still changing after three tries) this copy's
    // tokens.
    auto learnt_of = [&](size_t sidx, const Batch::Msg& m) -> const std::vector<uint64_t>& {
      auto it = learnt.find(sidx);
      if (it == learnt.end()) return m.hashes;
      for (uint64_t h : it->second)
        if (!b.slot.count(h)) return m.hashes;
      return it->second;
    };
    for (const auto& [h, idx] : b.slot)
      if (values[idx]) counts[idx] = decode_counts(*values[idx]);

    auto add = [&](const std::vector<uint64_t>& hashes, char cls, int delta) {
      for (uint64_t h : hashes) {
        size_t idx = b.slot.at(h);
        auto& c = counts[idx];
        uint32_t& n = cls == 'S' ? c.spam : c.ham;
        n = delta > 0 ? n + 1 : (n > 0 ? n - 1 : 0);
        if (delta > 0) c.day = day;
        touched[idx] = true;
      }
      uint64_t& total = cls == 'S' ? meta.spam : meta.ham;
      total = delta > 0 ? total + 1 : (total > 0 ? total - 1 : 0);
    };

    for (size_t i = 0; i < b.msgs.size(); ++i) {
      const auto& m = b.msgs[i];
      size_t sidx = b.seen_slot.at(m.seen_key);
      if (!m.legacy_key.empty()) {
        // A marker an earlier version keyed by the token set: adopted under the identity.
        size_t lidx = b.seen_slot.at(m.legacy_key);
        if (!seen[sidx] && seen[lidx] && values[lidx]) {
          seen[sidx] = seen[lidx];
          if (auto it = learnt.find(lidx); it != learnt.end()) learnt[sidx] = it->second;
          seen_new[sidx] = *values[lidx];
          seen[lidx].reset();
          learnt.erase(lidx);
          seen_new[lidx] = std::nullopt;
        }
      }
      auto& prev = seen[sidx];
      char want = m.cls == Class::Spam ? 'S' : 'H';
      if (unlearn) {
        if (!prev) continue;
        add(learnt_of(sidx, m), *prev, -1);
        prev.reset();
        learnt.erase(sidx);
        seen_new[sidx] = std::nullopt;
        outcomes[i] = LearnOutcome::Unlearned;
        gram_ops[gram_key(m.seen_key)] = std::nullopt;
      } else if (prev == want) {
        outcomes[i] = LearnOutcome::AlreadyKnown;
        // A message learnt before gram lists were kept gets one when learnt again — only
        // while its token list is kept (expire dropped the rest) and when it has none.
        if (!m.grams->empty() && learnt.count(sidx) && !values[m.gram_slot])
          gram_ops[b.keys[m.gram_slot]] = encode_grams(*m.grams);
      } else {
        if (prev) add(learnt_of(sidx, m), *prev, -1);
        add(m.hashes, want, +1);
        outcomes[i] = prev ? LearnOutcome::Moved : LearnOutcome::Learned;
        prev = want;
        learnt[sidx] = m.hashes;
        seen_new[sidx] = encode_seen(want, day, m.hashes);
        if (!m.grams->empty()) gram_ops[b.keys[m.gram_slot]] = encode_grams(*m.grams);
      }
    }

    std::vector<Store::Op> ops;
    ops.reserve(b.keys.size());
    using K = Store::Op::Kind;
    ops.push_back({K::Put, std::string(kMetaKey), encode_meta(meta)});
    // Token records change with any outcome but AlreadyKnown and NotFound: a new version,
    // with the hashes of the tokens changed (readers drop just those from their caches).
    if (std::any_of(outcomes.begin(), outcomes.end(), [](LearnOutcome o) {
          return o == LearnOutcome::Learned || o == LearnOutcome::Moved ||
                 o == LearnOutcome::Unlearned;
        })) {
      std::vector<uint64_t> changed;
      for (const auto& [h, idx] : b.slot)
        if (touched[idx]) changed.push_back(h);
      std::sort(changed.begin(), changed.end());
      for (auto& op : cache::bump_ops(values[1], changed)) ops.push_back(std::move(op));
    }
    for (const auto& [idx, v] : seen_new) {
      if (v)
        ops.push_back({K::Put, b.keys[idx], *v});
      else if (values[idx])
        ops.push_back({K::Del, b.keys[idx], ""});
    }
    // Gram lists are written, never read here: a delete of one that is not there is harmless.
    for (auto& [k, v] : gram_ops)
      ops.push_back(v ? Store::Op{K::Put, k, std::move(*v)} : Store::Op{K::Del, k, ""});
    for (size_t idx = 0; idx < values.size(); ++idx) {
      if (!touched[idx]) continue;
      const auto& c = counts[idx];
      if (c.spam == 0 && c.ham == 0)
        ops.push_back({K::Del, b.keys[idx], ""});
      else
        ops.push_back({K::Put, b.keys[idx], encode_counts(c)});
    }
    return ops;
  });
}

std::vector<LearnOutcome> Classifier::learn(const std::vector<Item>& items) const {
  return run_batch(store_, items, false, today());
}

LearnOutcome Classifier::learn(const mime::Parsed& msg, Class cls, std::string_view raw) const {
  Item item{tokenize(msg, params_.tokenizer), cls, message_identity(msg)};
  item.grams = byte_grams(raw, params_.tokenizer.gram_bytes);
  return learn({std::move(item)}).front();
}

std::vector<LearnOutcome> Classifier::unlearn(const std::vector<Item>& items) const {
  return run_batch(store_, items, true, today());
}

bool Classifier::gram_model_pending() const {
  if (params_.tokenizer.gram_bytes == 0 || !params_.combine) return false;
  const auto v = store_.get(kGramMetaKey);
  const auto meta = v ? decode_gram_meta(*v) : std::nullopt;
  return meta && grams::pending(store_, *meta);
}

Stats Classifier::stats() const {
  // One scan of every "bayes:" key: one read transaction, consistent while learning goes on.
  Stats st;
  store_.scan("bayes:", [&](std::string_view k, std::string_view v) {
    if (k == kMetaKey) {
      Meta m = decode_meta(std::string(v));
      st.spam_messages = m.spam;
      st.ham_messages = m.ham;
    } else if (k == kWeightsKey) {
      st.weight_messages = decode_weights_meta(std::string(v)).messages;
    } else if (k == kGramMetaKey) {
      if (auto gm = decode_gram_meta(v)) st.gram_messages = gm->messages;
    } else if (k.rfind(kGramPrefix, 0) == 0) {
      ++st.gram_lists;
    } else if (k.rfind(kTokenPrefix, 0) == 0) {
      ++st.tokens;
      if (decode_counts(v).weight != 0) ++st.weighted_tokens;
    } else if (k.rfind(kSeenPrefix, 0) == 0) {
      ++st.seen;
      if (v.size() > 5) ++st.kept_messages;
    }
    return true;
  });
  return st;
}

}  // namespace digue::bayes
