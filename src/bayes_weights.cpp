// Bayes token weights (Classifier::train_weights); see include/digue/bayes.hpp.
#include "digue/bayes.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>

#include "src/bayes_cache.hpp"
#include "src/bayes_grams.hpp"
#include "src/bayes_near.hpp"
#include "src/bayes_records.hpp"

namespace digue::bayes {

using namespace records;

WeightTraining Classifier::train_weights() const {
  WeightTraining out;
  Meta meta = decode_meta(store_.get(kMetaKey));
  // The model's tokens, numbered, with their log-count ratios.
  std::unordered_map<uint64_t, uint32_t> index;
  std::vector<std::string> keys;
  std::vector<double> ratio;
  const double nspam = static_cast<double>(meta.spam), nham = static_cast<double>(meta.ham);
  store_.scan(kTokenPrefix, [&](std::string_view k, std::string_view v) {
    uint64_t h = 0;
    if (!parse_hex64(k.substr(kTokenPrefix.size()), h)) return true;
    index.emplace(h, static_cast<uint32_t>(keys.size()));
    keys.emplace_back(k);
    ratio.push_back(log_ratio(decode_counts(v), nspam, nham, params_.weight_alpha));
    return true;
  });
  // The kept messages, as feature numbers; the scale is over all their tokens, as when
  // classifying (tokens the model lost since still count in the message's size).
  struct TrainMsg {
    bool spam;
    double scale;
    std::vector<uint32_t> f;
  };
  // At most weight_max_messages, the most recently learnt: the kept lists' days give the
  // oldest day that still fits (the same selection serves the gram model and the window).
  const std::vector<Kept> kept = kept_lists(store_);
  const uint32_t from_day = keep_from_day(kept, params_.weight_max_messages);
  std::vector<TrainMsg> msgs;
  size_t spam_msgs = 0, ham_msgs = 0;
  store_.scan(kSeenPrefix, [&](std::string_view, std::string_view v) {
    if (v.size() <= 5 || get_u32(v, 1) < from_day || msgs.size() >= params_.weight_max_messages)
      return true;
    SeenRecord rec = decode_seen(v);
    if (rec.hashes.empty() || (rec.cls != 'S' && rec.cls != 'H')) return true;
    TrainMsg m{rec.cls == 'S', 1.0 / std::sqrt(static_cast<double>(rec.hashes.size())), {}};
    m.f.reserve(rec.hashes.size());
    for (uint64_t h : rec.hashes)
      if (auto it = index.find(h); it != index.end()) m.f.push_back(it->second);
    (m.spam ? spam_msgs : ham_msgs)++;
    msgs.push_back(std::move(m));
    return true;
  });
  std::vector<double> w(keys.size(), 0.0);
  double bias = 0;
  bool enough = spam_msgs >= params_.min_learned && ham_msgs >= params_.min_learned;
  if (enough) {
    // Stochastic gradient descent on the log loss, a fixed shuffle per pass (deterministic).
    std::vector<size_t> order(msgs.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    Shuffle shuffle(params_.weight_seed);
    const double eta = params_.weight_eta;
    for (int pass = 0; pass < params_.weight_passes; ++pass) {
      shuffle(order);
      for (size_t i : order) {
        const auto& m = msgs[i];
        double z = bias;
        for (uint32_t f : m.f) z += w[f] * ratio[f] * m.scale;
        double g = (m.spam ? 1.0 : 0.0) - 1.0 / (1.0 + std::exp(-z));
        for (uint32_t f : m.f) w[f] += eta * g * ratio[f] * m.scale;
        bias += eta * g * 0.1;
      }
    }
    out.messages = msgs.size();
  }
  // Write the weights into the token records (read-modify-write: counts learnt meanwhile are
  // kept), in chunks of one transaction each; the bias and message count last.
  for (size_t start = 0; start < keys.size(); start += 20000) {
    size_t end = std::min(keys.size(), start + 20000);
    std::vector<std::string> chunk(keys.begin() + static_cast<ptrdiff_t>(start),
                                   keys.begin() + static_cast<ptrdiff_t>(end));
    chunk.emplace_back(cache::kVersionKey);  // last: read, bumped when a weight changes
    size_t written = 0;
    store_.update(chunk, [&](const std::vector<std::optional<std::string>>& values) {
      std::vector<Store::Op> ops;
      written = 0;
      for (size_t i = 0; i + 1 < chunk.size(); ++i) {
        if (!values[i]) continue;
        Counts c = decode_counts(*values[i]);
        float nw = static_cast<float>(w[start + i]);
        if (nw != 0) ++written;
        if (c.weight == nw && values[i]->size() >= 16) continue;
        c.weight = nw;
        ops.push_back({Store::Op::Kind::Put, chunk[i], encode_counts(c)});
      }
      if (!ops.empty()) ops.push_back(cache::bump_op(values.back()));
      return ops;
    });
    out.nonzero += written;
  }
  if (enough)
    store_.put(kWeightsKey, encode_weights_meta({bias, msgs.size()}));
  else
    store_.del(kWeightsKey);
  // The gram model, on the same learnt messages' gram lists (the newest gram_max_messages).
  // With the nearest-message window, from the messages the weights were trained on.
  // (With byte grams off — gram_bytes 0 — the gram model goes, whatever lists are kept.)
  out.gram_messages = grams::train(
      store_, params_, kept,
      near::build(kept, enough && params_.tokenizer.gram_bytes > 0 ? params_.near_window : 0,
                  from_day));
  return out;
}

}  // namespace digue::bayes
