// The Bayes gram model: training, storage and the cached weight table; see src/bayes_grams.hpp.
#include "src/bayes_grams.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "src/bayes_cache.hpp"

namespace digue::bayes::grams {

using namespace records;

namespace {

constexpr size_t kTableSize = size_t{1} << kGramBits;

std::string table_header(uint64_t generation) {
  return "digue-grams 1 " + hex64(generation) + "\n";
}

std::string near_header(uint64_t generation) {
  return "digue-near 2 " + hex64(generation) + "\n";
}

// A digest of the trained model (never 0): the generation that tells caches apart.
uint64_t generation_of(const std::vector<float>& w, double bias, std::string_view near) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint64_t x) {
    h ^= x;
    h *= 0x100000001b3ull;
    h ^= h >> 29;
  };
  uint64_t b;
  std::memcpy(&b, &bias, 8);
  mix(b);
  for (size_t i = 0; i < near.size(); i += 8) {
    uint64_t x = 0;
    std::memcpy(&x, near.data() + i, std::min<size_t>(8, near.size() - i));
    mix(x);
  }
  for (size_t i = 0; i < w.size(); i += 2) {
    uint32_t lo, hi = 0;
    std::memcpy(&lo, &w[i], 4);
    if (i + 1 < w.size()) std::memcpy(&hi, &w[i + 1], 4);
    mix(uint64_t{lo} | (uint64_t{hi} << 32));
  }
  return h ? h : 1;
}

// The process's table of one store: the last generation read, and those that did not read
// back (cut, or of another layout: not read again).
struct Slot {
  std::mutex mu;
  std::shared_ptr<const Table> table;
  std::vector<uint64_t> failed;
  std::mutex load_mu;  // one load at a time: the others wait for it, then find it
  // The table of this generation; nullptr when it did not read back; nullopt: not read yet.
  std::optional<std::shared_ptr<const Table>> known(uint64_t generation) {
    std::lock_guard lock(mu);
    if (table && table->meta.generation == generation) return table;
    if (std::find(failed.begin(), failed.end(), generation) != failed.end()) return nullptr;
    return std::nullopt;
  }
};

}  // namespace

std::shared_ptr<const Table> table(Store& store, const GramMeta& meta) {
  Slot& c = *cache::per_store<Slot>(store);
  if (auto t = c.known(meta.generation)) return *t;
  // A new generation is read once per process (16 MB and the window's token lists: tens of
  // milliseconds): threads that need it meanwhile wait for that read, classifications of a
  // known generation do not.
  std::lock_guard load(c.load_mu);
  if (auto t = c.known(meta.generation)) return *t;
  const auto v = store.get_many({std::string(kGramModelKey), std::string(kNearKey)});
  const std::string header = table_header(meta.generation), nheader = near_header(meta.generation);
  if (!v[0] || v[0]->size() != header.size() + kTableSize * 4 ||
      v[0]->compare(0, header.size(), header) != 0 || !v[1] ||
      v[1]->compare(0, nheader.size(), nheader) != 0) {
    // (Retrained since the summary was read: the next classification reads the new one.)
    std::lock_guard lock(c.mu);
    c.failed.push_back(meta.generation);
    if (c.failed.size() > 16) c.failed.erase(c.failed.begin());
    return nullptr;
  }
  auto t = std::make_shared<Table>();
  t->meta = meta;
  t->near = near::load(store, std::string_view(*v[1]).substr(nheader.size()));
  // Held as 16-bit steps of the largest weight: half the memory the lookups wander through
  // (8 MB), for an error far below the weights' own noise. Two passes over the record: no
  // float copy of the table on the way.
  auto weight = [&](size_t i) {
    const uint32_t bits = get_u32(*v[0], header.size() + i * 4);
    float f;
    std::memcpy(&f, &bits, 4);
    return std::isfinite(f) ? f : 0.0f;
  };
  float top = 0;
  for (size_t i = 0; i < kTableSize; ++i) top = std::max(top, std::fabs(weight(i)));
  t->scale = top > 0 ? top / 32767.0 : 1.0;
  t->w.resize(kTableSize);
  for (size_t i = 0; i < kTableSize; ++i)
    t->w[i] = static_cast<int16_t>(std::lround(weight(i) / t->scale));
  std::lock_guard lock(c.mu);
  c.table = t;
  return t;
}

bool pending(const Store& store, const GramMeta& meta) {
  return !cache::per_store<Slot>(store)->known(meta.generation);
}

double logit(const Table& t, const std::vector<uint32_t>& grams) {
  if (grams.empty()) return t.meta.bias;
  // The lookups land anywhere in the 8 MB table: each asked for a few ahead of its use.
  int64_t z = 0;
  const size_t n = grams.size();
  for (size_t i = 0; i < n; ++i) {
    if (i + 16 < n) __builtin_prefetch(&t.w[grams[i + 16] & (kTableSize - 1)]);
    z += t.w[grams[i] & (kTableSize - 1)];
  }
  return t.meta.bias + t.scale * static_cast<double>(z) / std::sqrt(static_cast<double>(grams.size()));
}

size_t train(Store& store, const Params& p, const std::vector<Kept>& kept,
             const std::string& near_window) {
  // The learnt messages with a kept list, newest first by day, at most gram_max_messages.
  const uint32_t from_day = keep_from_day(kept, p.gram_max_messages);
  std::unordered_map<std::string, bool> spam_of;  // identity -> spam
  for (const auto& k : kept)
    if (k.day >= from_day) spam_of.emplace(k.id, k.cls == 'S');
  struct Msg {
    bool spam;
    std::vector<uint32_t> g;
  };
  std::vector<Msg> msgs;
  size_t nspam = 0, nham = 0;
  store.scan(kGramPrefix, [&](std::string_view k, std::string_view v) {
    if (msgs.size() >= p.gram_max_messages) return false;
    auto it = spam_of.find(std::string(k.substr(kGramPrefix.size())));
    if (it == spam_of.end()) return true;
    auto g = decode_grams(v);
    if (!g || g->empty()) return true;
    (it->second ? nspam : nham)++;
    msgs.push_back({it->second, std::move(*g)});
    return true;
  });
  spam_of.clear();
  if (nspam < p.min_learned || nham < p.min_learned || p.tokenizer.gram_bytes == 0) {
    store.apply({{Store::Op::Kind::Del, std::string(kGramMetaKey), ""},
                 {Store::Op::Kind::Del, std::string(kGramModelKey), ""},
                 {Store::Op::Kind::Del, std::string(kNearKey), ""}});
    return 0;
  }
  // Stochastic gradient descent on the log loss, a fixed shuffle per pass (deterministic).
  std::vector<float> w(kTableSize, 0.0f);
  double bias = 0;
  std::vector<size_t> order(msgs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  Shuffle shuffle(p.weight_seed);
  for (int pass = 0; pass < p.gram_passes; ++pass) {
    shuffle(order);
    for (size_t i : order) {
      const Msg& m = msgs[i];
      const double scale = 1.0 / std::sqrt(static_cast<double>(m.g.size()));
      double z = 0;
      for (uint32_t g : m.g) z += w[g];
      z = bias + z * scale;
      const double err = (m.spam ? 1.0 : 0.0) - 1.0 / (1.0 + std::exp(-z));
      const auto step = static_cast<float>(p.gram_eta * err * scale);
      for (uint32_t g : m.g) w[g] += step;
      bias += p.gram_eta * err * 0.1;
    }
  }
  GramMeta meta{generation_of(w, bias, near_window), bias, msgs.size(), nspam, nham};
  std::string blob = table_header(meta.generation);
  blob.reserve(blob.size() + kTableSize * 4);
  for (float f : w) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    put_u32(blob, bits);
  }
  // Table, window and summary in one transaction: a reader sees all old or all new.
  store.apply({{Store::Op::Kind::Put, std::string(kGramModelKey), std::move(blob)},
               {Store::Op::Kind::Put, std::string(kNearKey), near_header(meta.generation) + near_window},
               {Store::Op::Kind::Put, std::string(kGramMetaKey), encode_gram_meta(meta)}});
  return msgs.size();
}

}  // namespace digue::bayes::grams
