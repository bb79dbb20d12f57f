// Bayes model and scoring; see include/digue/bayes.hpp.
#include "digue/bayes.hpp"

#include <openssl/sha.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <istream>
#include <map>
#include <ostream>
#include <stdexcept>
#include <unordered_map>

namespace digue::bayes {
namespace {

// A token record: u32 LE spam count, ham count, last day learnt, then the token weight as an
// IEEE float (bits LE); 12-byte records (no weight) from older versions read as weight 0.
struct Counts {
  uint32_t spam = 0, ham = 0, day = 0;
  float weight = 0;
};

void put_u32(std::string& out, uint32_t v) {
  for (int b = 0; b < 4; ++b) out += static_cast<char>((v >> (8 * b)) & 0xff);
}

uint32_t get_u32(std::string_view s, size_t at) {
  uint32_t v = 0;
  for (int b = 3; b >= 0; --b) v = (v << 8) | static_cast<unsigned char>(s[at + b]);
  return v;
}

std::string encode_counts(const Counts& c) {
  std::string out;
  out.reserve(16);
  put_u32(out, c.spam);
  put_u32(out, c.ham);
  put_u32(out, c.day);
  uint32_t w;
  std::memcpy(&w, &c.weight, 4);
  put_u32(out, w);
  return out;
}

Counts decode_counts(std::string_view s) {
  Counts c;
  if (s.size() < 12) return c;
  c.spam = get_u32(s, 0);
  c.ham = get_u32(s, 4);
  c.day = get_u32(s, 8);
  if (s.size() >= 16) {
    uint32_t w = get_u32(s, 12);
    std::memcpy(&c.weight, &w, 4);
    if (!std::isfinite(c.weight)) c.weight = 0;
  }
  return c;
}

// A seen record: 'S' or 'H', u32 LE day learnt, then (kept for weight training) the message's
// sorted token hashes as u64 LE. Five bytes: a marker whose token list was dropped. One byte
// alone: a marker from a version that kept no day (expire dates it).
struct SeenRecord {
  char cls = 0;
  uint32_t day = 0;
  std::vector<uint64_t> hashes;
};

std::string encode_seen(char cls, uint32_t day, const std::vector<uint64_t>& hashes) {
  std::string out(1, cls);
  if (day == 0 && hashes.empty()) return out;
  out.reserve(5 + hashes.size() * 8);
  put_u32(out, day);
  for (uint64_t h : hashes) {
    put_u32(out, static_cast<uint32_t>(h));
    put_u32(out, static_cast<uint32_t>(h >> 32));
  }
  return out;
}

SeenRecord decode_seen(std::string_view v) {
  SeenRecord r;
  if (v.empty()) return r;
  r.cls = v[0];
  if (v.size() < 5) return r;
  r.day = get_u32(v, 1);
  size_t n = (v.size() - 5) / 8;
  r.hashes.reserve(n);
  for (size_t i = 0; i < n; ++i)
    r.hashes.push_back(uint64_t{get_u32(v, 5 + i * 8)} |
                       (uint64_t{get_u32(v, 5 + i * 8 + 4)} << 32));
  return r;
}

// The oldest day to keep so that the newest days hold at most cap records (per_day: records
// per day). The newest day is always kept, whole.
uint32_t keep_from_day(const std::map<uint32_t, size_t>& per_day, size_t cap) {
  uint32_t from = 0;
  size_t fit = 0;
  for (auto it = per_day.rbegin(); it != per_day.rend(); ++it) {
    if (fit + it->second > cap && fit > 0) break;
    fit += it->second;
    from = it->first;
  }
  return from;
}

// "bayes:weights" -> "<bias> <messages>".
struct WeightsMeta {
  double bias = 0;
  uint64_t messages = 0;
};

WeightsMeta decode_weights_meta(const std::optional<std::string>& v) {
  WeightsMeta m;
  if (!v) return m;
  double b = 0;
  unsigned long long n = 0;
  if (std::sscanf(v->c_str(), "%lf %llu", &b, &n) == 2 && std::isfinite(b)) {
    m.bias = b;
    m.messages = n;
  }
  return m;
}

std::string encode_weights_meta(const WeightsMeta& m) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g %llu", m.bias, static_cast<unsigned long long>(m.messages));
  return buf;
}

// r(w): the token's log-count ratio, the feature the weights multiply.
double log_ratio(const Counts& c, double nspam, double nham, double a) {
  return std::log((c.spam + a) / (nspam + 2 * a)) - std::log((c.ham + a) / (nham + 2 * a));
}

bool parse_hex64(std::string_view s, uint64_t& out) {
  if (s.size() != 16) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + 16, out, 16);
  return ec == std::errc() && p == s.data() + 16;
}

struct Meta {
  uint64_t spam = 0, ham = 0;
};

Meta decode_meta(const std::optional<std::string>& v) {
  Meta m;
  if (!v) return m;
  std::string_view s = *v;
  auto p = std::from_chars(s.data(), s.data() + s.size(), m.spam).ptr;
  while (p < s.data() + s.size() && *p == ' ') ++p;
  std::from_chars(p, s.data() + s.size(), m.ham);
  return m;
}

std::string encode_meta(const Meta& m) {
  return std::to_string(m.spam) + " " + std::to_string(m.ham);
}

char hex_digit(unsigned v) { return "0123456789abcdef"[v & 15]; }

std::string hex64(uint64_t h) {
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) s[i] = hex_digit(static_cast<unsigned>(h));
  return s;
}

// Unique hashes of a token list, sorted: the identity of what a message teaches.
std::vector<uint64_t> unique_hashes(const std::vector<std::string>& tokens) {
  std::vector<uint64_t> h;
  h.reserve(tokens.size());
  for (const auto& t : tokens) h.push_back(token_hash(t));
  std::sort(h.begin(), h.end());
  h.erase(std::unique(h.begin(), h.end()), h.end());
  return h;
}

std::string digest_of(const std::vector<uint64_t>& hashes) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(hashes.data()), hashes.size() * sizeof(uint64_t),
         md);
  std::string s;
  for (int i = 0; i < 16; ++i) {
    s += hex_digit(md[i] >> 4);
    s += hex_digit(md[i]);
  }
  return s;
}

}  // namespace

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
  feed(msg.text, false);
  feed(msg.html, false);
  for (const auto& a : msg.attachments) feed(a.sha256, false);
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(buf.data()), buf.size(), md);
  std::string s;
  for (int i = 0; i < 16; ++i) {
    s += hex_digit(md[i] >> 4);
    s += hex_digit(md[i]);
  }
  return s;
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

Result Classifier::classify(const mime::Parsed& msg) const {
  return classify_tokens(tokenize(msg, params_.tokenizer));
}

Result Classifier::classify_tokens(const std::vector<std::string>& tokens) const {
  Result r;
  r.tokens = tokens.size();
  // Keys in hash order (= key order), so consecutive B-tree lookups share pages, written
  // into one buffer: no allocation per key, no copy per value (visit_many).
  const size_t n = tokens.size();
  std::vector<std::pair<uint64_t, uint32_t>> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = {token_hash(tokens[i]), static_cast<uint32_t>(i)};
  std::sort(order.begin(), order.end());
  const size_t klen = kTokenPrefix.size() + 16;
  std::string buf(n * klen, '\0');
  std::vector<std::string_view> keys;
  keys.reserve(n + 2);
  keys.push_back(kMetaKey);
  for (size_t j = 0; j < n; ++j) {
    char* p = buf.data() + j * klen;
    std::memcpy(p, kTokenPrefix.data(), kTokenPrefix.size());
    uint64_t h = order[j].first;
    for (int d = 15; d >= 0; --d, h >>= 4)
      p[kTokenPrefix.size() + d] = hex_digit(static_cast<unsigned>(h));
    keys.emplace_back(p, klen);
  }
  keys.push_back(kWeightsKey);
  std::vector<Counts> counts(n);
  std::optional<std::string> meta_value, weights_value;
  store_.visit_many(keys, [&](size_t i, std::string_view v) {
    if (i == 0)
      meta_value.emplace(v);
    else if (i == n + 1)
      weights_value.emplace(v);
    else
      counts[order[i - 1].second] = decode_counts(v);
  });
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

  // E: the mean clue log-odds, in decades.
  double sum = 0;
  for (const auto& c : cands) sum += std::log10(c.f / (1.0 - c.f));
  r.evidence_decades = sum / static_cast<double>(k);
  r.bayes_evidence = r.evidence_decades;
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

// One learn/unlearn batch as a pure function of the values read, so Store::update may retry it.
struct Batch {
  struct Msg {
    std::vector<uint64_t> hashes;
    std::string seen_key;
    Class cls;
  };
  std::vector<Msg> msgs;
  std::vector<std::string> keys;              // meta, seen keys, token keys
  std::unordered_map<uint64_t, size_t> slot;  // token hash -> index in keys
  std::map<std::string, size_t> seen_slot;

  Batch(const std::vector<Classifier::Item>& items) {
    keys.emplace_back(kMetaKey);
    for (const auto& it : items) {
      Msg m{unique_hashes(it.tokens), {}, it.cls};
      m.seen_key = std::string(kSeenPrefix) + (it.id.empty() ? digest_of(m.hashes) : it.id);
      if (seen_slot.emplace(m.seen_key, keys.size()).second) keys.push_back(m.seen_key);
      for (uint64_t h : m.hashes) add_token(h);
      msgs.push_back(std::move(m));
    }
  }
  void add_token(uint64_t h) {
    if (slot.emplace(h, keys.size()).second) keys.push_back(token_key(h));
  }
};

}  // namespace

static std::vector<LearnOutcome> run_batch(Store& store, const std::vector<Classifier::Item>& items,
                                           bool unlearn, uint32_t day) {
  Batch b(items);
  // Removing or moving a message subtracts the token list learnt for it (kept in its seen
  // record), not the tokens of this copy, which may differ (a delivered copy has more
  // Received lines): those tokens are read in the same transaction.
  {
    std::vector<std::string> seen_keys;
    for (const auto& [key, idx] : b.seen_slot) seen_keys.push_back(key);
    for (const auto& v : store.get_many(seen_keys))
      if (v && v->size() > 5)
        for (uint64_t h : decode_seen(*v).hashes) b.add_token(h);
  }
  std::vector<LearnOutcome> outcomes;
  store.update(b.keys, [&](const std::vector<std::optional<std::string>>& values) {
    outcomes.assign(b.msgs.size(), LearnOutcome::NotFound);
    Meta meta = decode_meta(values[0]);
    std::vector<Counts> counts(values.size());
    std::vector<bool> touched(values.size(), false);
    // key index -> the record's class ('S' / 'H' / absent), and its new value when changed
    std::map<size_t, std::optional<char>> seen;
    std::map<size_t, std::optional<std::string>> seen_new;
    std::map<size_t, std::vector<uint64_t>> learnt;  // seen slot -> its kept token list
    for (const auto& [key, idx] : b.seen_slot) {
      const auto& v = values[idx];
      seen[idx] = v && !v->empty() ? std::optional<char>((*v)[0]) : std::nullopt;
      if (v && v->size() > 5) learnt[idx] = decode_seen(*v).hashes;
    }
    // What to subtract for the message at a seen slot: its kept list when every token of it
    // is in this batch (a list changed since the read above is not), else this copy's tokens
    // (a marker whose list was dropped by expire).
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
      auto& prev = seen[sidx];
      char want = m.cls == Class::Spam ? 'S' : 'H';
      if (unlearn) {
        if (!prev) continue;
        add(learnt_of(sidx, m), *prev, -1);
        prev.reset();
        learnt.erase(sidx);
        seen_new[sidx] = std::nullopt;
        outcomes[i] = LearnOutcome::Unlearned;
      } else if (prev == want) {
        outcomes[i] = LearnOutcome::AlreadyKnown;
      } else {
        if (prev) add(learnt_of(sidx, m), *prev, -1);
        add(m.hashes, want, +1);
        outcomes[i] = prev ? LearnOutcome::Moved : LearnOutcome::Learned;
        prev = want;
        learnt[sidx] = m.hashes;
        seen_new[sidx] = encode_seen(want, day, m.hashes);
      }
    }

    std::vector<Store::Op> ops;
    ops.reserve(b.keys.size());
    using K = Store::Op::Kind;
    ops.push_back({K::Put, std::string(kMetaKey), encode_meta(meta)});
    for (const auto& [idx, v] : seen_new) {
      if (v)
        ops.push_back({K::Put, b.keys[idx], *v});
      else if (values[idx])
        ops.push_back({K::Del, b.keys[idx], ""});
    }
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
  return outcomes;
}

std::vector<LearnOutcome> Classifier::learn(const std::vector<Item>& items) const {
  return run_batch(store_, items, false, today());
}

LearnOutcome Classifier::learn(const mime::Parsed& msg, Class cls) const {
  return learn({Item{tokenize(msg, params_.tokenizer), cls, message_identity(msg)}}).front();
}

std::vector<LearnOutcome> Classifier::unlearn(const std::vector<Item>& items) const {
  return run_batch(store_, items, true, today());
}

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
  // At most weight_max_messages, the most recently learnt: a first pass counts the kept lists
  // per day and finds the oldest day that still fits.
  std::map<uint32_t, size_t> per_day;
  store_.scan(kSeenPrefix, [&](std::string_view, std::string_view v) {
    if (v.size() > 5) ++per_day[get_u32(v, 1)];
    return true;
  });
  const uint32_t from_day = keep_from_day(per_day, params_.weight_max_messages);
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
    uint64_t rng = params_.weight_seed ? params_.weight_seed : 1;  // xorshift: never 0
    const double eta = params_.weight_eta;
    for (int pass = 0; pass < params_.weight_passes; ++pass) {
      for (size_t i = order.size(); i > 1; --i) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::swap(order[i - 1], order[rng % i]);
      }
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
    size_t written = 0;
    store_.update(chunk, [&](const std::vector<std::optional<std::string>>& values) {
      std::vector<Store::Op> ops;
      written = 0;
      for (size_t i = 0; i < chunk.size(); ++i) {
        if (!values[i]) continue;
        Counts c = decode_counts(*values[i]);
        float nw = static_cast<float>(w[start + i]);
        if (nw != 0) ++written;
        if (c.weight == nw && values[i]->size() >= 16) continue;
        c.weight = nw;
        ops.push_back({Store::Op::Kind::Put, chunk[i], encode_counts(c)});
      }
      return ops;
    });
    out.nonzero += written;
  }
  if (enough)
    store_.put(kWeightsKey, encode_weights_meta({bias, msgs.size()}));
  else
    store_.del(kWeightsKey);
  return out;
}

Stats Classifier::stats() const {
  Stats st;
  Meta m = decode_meta(store_.get(kMetaKey));
  st.spam_messages = m.spam;
  st.ham_messages = m.ham;
  st.weight_messages = decode_weights_meta(store_.get(kWeightsKey)).messages;
  store_.scan(kTokenPrefix, [&](std::string_view, std::string_view v) {
    ++st.tokens;
    if (decode_counts(v).weight != 0) ++st.weighted_tokens;
    return true;
  });
  store_.scan(kSeenPrefix, [&](std::string_view, std::string_view v) {
    ++st.seen;
    if (v.size() > 5) ++st.kept_messages;
    return true;
  });
  return st;
}

void Classifier::dump(std::ostream& out) const {
  // One scan of every "bayes:" key: one read transaction, so a learn running meanwhile is
  // either wholly in the dump or not at all. Keys come in order: meta, seen, t, weights.
  out << "digue-bayes 3\n";
  size_t records = 0;
  bool have_meta = false;
  char wbuf[32];
  store_.scan("bayes:", [&](std::string_view k, std::string_view v) {
    if (k == kMetaKey) {
      Meta m = decode_meta(std::string(v));
      out << "meta " << m.spam << ' ' << m.ham << '\n';
      have_meta = true;
    } else if (k == kWeightsKey) {
      out << "weights " << encode_weights_meta(decode_weights_meta(std::string(v))) << '\n';
    } else if (k.rfind(kTokenPrefix, 0) == 0) {
      Counts c = decode_counts(v);
      out << "t " << k.substr(kTokenPrefix.size()) << ' ' << c.spam << ' ' << c.ham << ' '
          << c.day;
      if (c.weight != 0) {
        std::snprintf(wbuf, sizeof wbuf, " %.9g", static_cast<double>(c.weight));
        out << wbuf;
      }
      out << '\n';
    } else if (k.rfind(kSeenPrefix, 0) == 0) {
      SeenRecord rec = decode_seen(v);
      out << "seen " << k.substr(kSeenPrefix.size()) << ' ' << (rec.cls ? rec.cls : '?');
      if (rec.day != 0 || !rec.hashes.empty()) out << ' ' << rec.day;
      if (!rec.hashes.empty()) {
        out << ' ';
        for (size_t i = 0; i < rec.hashes.size(); ++i)
          out << (i ? "," : "") << hex64(rec.hashes[i]);
      }
      out << '\n';
    } else {
      return true;  // not a model record
    }
    ++records;
    return static_cast<bool>(out);
  });
  if (!have_meta) {
    out << "meta 0 0\n";
    ++records;
  }
  // The count ends the dump: a cut copy is refused by restore.
  out << "end " << records << '\n';
}

namespace {

// One line of a dump, parsed; throws std::runtime_error naming the line.
struct DumpLine {
  enum class Kind : uint8_t { Blank, Meta, Weights, Token, Seen, End } kind = Kind::Blank;
  std::string key;    // Token, Seen
  Counts c;           // Token
  std::string value;  // Seen: the record; Weights: the encoded weights meta
  uint64_t a = 0, b = 0;  // Meta: spam, ham; End: records
};

DumpLine parse_dump_line(const std::string& line, size_t lineno) {
  auto bad = [&](const std::string& why) -> DumpLine {
    throw std::runtime_error("restore: line " + std::to_string(lineno) + ": " + why);
  };
  DumpLine r;
  if (line.empty()) return r;
  if (line.back() == '\r') bad("CR at the end of the line (a dump has LF line ends)");
  char kind[8] = {0}, id[65] = {0}, cls = 0;
  unsigned long long a = 0, b = 0, d = 0;
  int pos = 0;
  if (line.rfind("meta ", 0) == 0) {
    if (std::sscanf(line.c_str(), "meta %llu %llu%n", &a, &b, &pos) != 2 ||
        static_cast<size_t>(pos) != line.size())
      bad("bad meta record");
    r.kind = DumpLine::Kind::Meta;
    r.a = a;
    r.b = b;
  } else if (line.rfind("weights ", 0) == 0) {
    double bias = 0;
    if (std::sscanf(line.c_str(), "weights %lf %llu", &bias, &a) != 2 || !std::isfinite(bias))
      bad("bad weights record");
    r.kind = DumpLine::Kind::Weights;
    r.value = encode_weights_meta({bias, a});
  } else if (line.rfind("t ", 0) == 0) {
    double wt = 0;
    int got = std::sscanf(line.c_str(), "%7s %64s %llu %llu %llu %lf", kind, id, &a, &b, &d, &wt);
    uint64_t h = 0;
    if ((got != 5 && got != 6) || !parse_hex64(id, h) || a > UINT32_MAX || b > UINT32_MAX ||
        d > UINT32_MAX || !std::isfinite(wt) || std::fabs(wt) > 1e30)
      bad("bad token record");
    r.kind = DumpLine::Kind::Token;
    r.key = std::string(kTokenPrefix) + id;
    r.c = Counts{static_cast<uint32_t>(a), static_cast<uint32_t>(b), static_cast<uint32_t>(d),
                 static_cast<float>(wt)};
  } else if (line.rfind("seen ", 0) == 0) {
    if (std::sscanf(line.c_str(), "%7s %64s %c%n", kind, id, &cls, &pos) != 3 ||
        (cls != 'S' && cls != 'H'))
      bad("bad seen record");
    std::vector<uint64_t> hashes;
    std::string_view rest = std::string_view(line).substr(static_cast<size_t>(pos));
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    uint32_t day = 0;
    if (!rest.empty()) {
      size_t sp = std::min(rest.find(' '), rest.size());
      auto [end, ec] = std::from_chars(rest.data(), rest.data() + sp, day);
      if (ec != std::errc() || end != rest.data() + sp) bad("bad seen record: day");
      rest.remove_prefix(std::min(sp + 1, rest.size()));
      while (!rest.empty()) {
        size_t comma = rest.find(',');
        uint64_t h = 0;
        if (!parse_hex64(rest.substr(0, comma), h)) bad("bad seen record: token hash");
        hashes.push_back(h);
        rest.remove_prefix(comma == std::string_view::npos ? rest.size() : comma + 1);
      }
    }
    r.kind = DumpLine::Kind::Seen;
    r.key = std::string(kSeenPrefix) + id;
    r.value = encode_seen(cls, day, hashes);
  } else if (line.rfind("end ", 0) == 0) {
    if (std::sscanf(line.c_str(), "end %llu%n", &a, &pos) != 1 ||
        static_cast<size_t>(pos) != line.size())
      bad("bad end record");
    r.kind = DumpLine::Kind::End;
    r.a = a;
  } else {
    bad("unknown record");
  }
  return r;
}

}  // namespace

size_t Classifier::restore(std::istream& in, RestoreMode mode) const {
  const std::istream::pos_type start = in.tellg();
  if (start == std::istream::pos_type(-1))
    throw std::runtime_error("restore: the input cannot be read twice (not a file)");
  std::string line;
  auto read_header = [&] {
    if (!std::getline(in, line)) throw std::runtime_error("restore: line 1: empty input");
    if (line == "digue-bayes 1" || line == "digue-bayes 2") return 2;
    if (line == "digue-bayes 3") return 3;
    throw std::runtime_error("restore: line 1: not a digue-bayes 1, 2 or 3 dump" +
                             std::string(!line.empty() && line.back() == '\r'
                                             ? " (CR line ends: a dump has LF line ends)"
                                             : ""));
  };

  // First pass: every line checked, the end record matched, before anything is written.
  const int version = read_header();
  size_t lineno = 1, records = 0;
  std::optional<uint64_t> end;
  std::vector<std::string> seen_keys;  // merge mode: checked against the model below
  while (std::getline(in, line)) {
    ++lineno;
    DumpLine r = parse_dump_line(line, lineno);
    if (r.kind == DumpLine::Kind::Blank) continue;
    if (end)
      throw std::runtime_error("restore: line " + std::to_string(lineno) +
                               ": a record after the end record");
    if (r.kind == DumpLine::Kind::End) {
      end = r.a;
      continue;
    }
    ++records;
    if (mode == RestoreMode::Merge && r.kind == DumpLine::Kind::Seen)
      seen_keys.push_back(std::move(r.key));
  }
  if (in.bad()) throw std::runtime_error("restore: read error");
  if (version >= 3 && !end)
    throw std::runtime_error("restore: the dump is cut short (no end record after " +
                             std::to_string(records) + " records)");
  if (end && *end != records)
    throw std::runtime_error("restore: the end record says " + std::to_string(*end) +
                             " records, the dump holds " + std::to_string(records));

  // The model it goes into.
  Meta have = decode_meta(store_.get(kMetaKey));
  if (mode == RestoreMode::Empty) {
    bool any = have.spam + have.ham > 0;
    for (std::string_view prefix : {kTokenPrefix, kSeenPrefix})
      store_.scan(prefix, [&](std::string_view, std::string_view) {
        any = true;
        return false;
      });
    if (any)
      throw std::runtime_error("restore: the model is not empty (" +
                               std::to_string(have.spam) + " spam, " + std::to_string(have.ham) +
                               " ham messages): restore --merge adds to it, --replace "
                               "replaces it");
  } else if (mode == RestoreMode::Merge) {
    size_t known = 0;
    for (size_t i = 0; i < seen_keys.size(); i += 20000) {
      std::vector<std::string> keys(
          seen_keys.begin() + static_cast<ptrdiff_t>(i),
          seen_keys.begin() + static_cast<ptrdiff_t>(std::min(seen_keys.size(), i + 20000)));
      for (const auto& v : store_.get_many(keys)) known += v ? 1 : 0;
    }
    if (known > 0)
      throw std::runtime_error("restore: " + std::to_string(known) +
                               " messages of the dump are already in the model: merging would "
                               "count them twice (--replace replaces the model)");
  } else {
    // Replace: the model's records go first, in transactions of 20,000.
    for (;;) {
      std::vector<Store::Op> ops;
      store_.scan("bayes:", [&](std::string_view k, std::string_view) {
        ops.push_back({Store::Op::Kind::Del, std::string(k), ""});
        return ops.size() < 20000;
      });
      if (ops.empty()) break;
      store_.apply(ops);
    }
  }

  // Second pass: written in transactions of 20,000 records, summed into what the model holds
  // (a weight in the dump replaces the token's: weights are not additive, retrain after a
  // merge); the message counts and the weights' record last, so a restore cut short leaves
  // a model that is not ready (or, merging, one without the new counts), never one whose
  // counts claim tokens it does not hold.
  in.clear();
  in.seekg(start);
  read_header();
  lineno = 1;
  std::vector<DumpLine> batch;
  Meta add_meta;
  std::optional<std::string> weights_meta;
  auto flush = [&] {
    if (batch.empty()) return;
    std::vector<std::string> keys;
    for (const auto& r : batch) keys.push_back(r.key);
    store_.update(keys, [&](const std::vector<std::optional<std::string>>& values) {
      using K = Store::Op::Kind;
      std::vector<Store::Op> ops;
      std::unordered_map<std::string, Counts> merged;
      for (size_t i = 0; i < batch.size(); ++i) {
        const auto& r = batch[i];
        if (r.kind == DumpLine::Kind::Seen) {
          ops.push_back({K::Put, r.key, r.value});
          continue;
        }
        auto it = merged.find(r.key);
        if (it == merged.end())
          it = merged.emplace(r.key, values[i] ? decode_counts(*values[i]) : Counts{}).first;
        it->second.spam += r.c.spam;
        it->second.ham += r.c.ham;
        it->second.day = std::max(it->second.day, r.c.day);
        if (r.c.weight != 0) it->second.weight = r.c.weight;
      }
      for (const auto& [k, c] : merged) ops.push_back({K::Put, k, encode_counts(c)});
      return ops;
    });
    batch.clear();
  };
  while (std::getline(in, line)) {
    DumpLine r = parse_dump_line(line, ++lineno);
    switch (r.kind) {
      case DumpLine::Kind::Meta:
        add_meta.spam += r.a;
        add_meta.ham += r.b;
        break;
      case DumpLine::Kind::Weights:
        weights_meta = std::move(r.value);
        break;
      case DumpLine::Kind::Token:
      case DumpLine::Kind::Seen:
        batch.push_back(std::move(r));
        if (batch.size() >= 20000) flush();
        break;
      default:
        break;
    }
  }
  flush();
  store_.update({std::string(kMetaKey)}, [&](const std::vector<std::optional<std::string>>& v) {
    Meta m = decode_meta(v[0]);
    m.spam += add_meta.spam;
    m.ham += add_meta.ham;
    return std::vector<Store::Op>{{Store::Op::Kind::Put, std::string(kMetaKey), encode_meta(m)}};
  });
  if (weights_meta) store_.put(kWeightsKey, *weights_meta);
  return records;
}

ExpireOutcome Classifier::expire(const ExpireLimits& lim, uint32_t now_day) const {
  if (now_day == 0) now_day = today();
  ExpireOutcome out;
  struct Tok {
    std::string key;
    Counts c;
  };
  std::vector<Tok> all;
  store_.scan(kTokenPrefix, [&](std::string_view k, std::string_view v) {
    all.push_back({std::string(k), decode_counts(v)});
    return true;
  });
  const uint32_t cutoff = now_day > lim.stale_days ? now_day - lim.stale_days : 0;
  // Oldest first; among tokens of the same day the rarest go first.
  std::sort(all.begin(), all.end(), [](const Tok& a, const Tok& b) {
    if (a.c.day != b.c.day) return a.c.day < b.c.day;
    return a.c.spam + a.c.ham < b.c.spam + b.c.ham;
  });
  size_t drop = 0;
  while (drop < all.size() && all[drop].c.day < cutoff) ++drop;
  if (all.size() - drop > lim.max_tokens) drop = all.size() - lim.max_tokens;

  // Seen records: a first pass counts lists and markers per day, a second collects what
  // goes (only keys, so a large store costs memory in proportion to what changes).
  std::map<uint32_t, size_t> lists_per_day, markers_per_day;
  store_.scan(kSeenPrefix, [&](std::string_view, std::string_view v) {
    if (v.size() < 5) return true;  // undated: dated below, never dropped this time
    uint32_t day = get_u32(v, 1);
    ++markers_per_day[day];
    if (v.size() > 5) ++lists_per_day[day];
    return true;
  });
  const uint32_t lists_from = std::max(cutoff, keep_from_day(lists_per_day, lim.max_lists));
  const uint32_t seen_cutoff = now_day > lim.seen_days ? now_day - lim.seen_days : 0;
  const uint32_t markers_from = std::max(seen_cutoff, keep_from_day(markers_per_day, lim.max_seen));
  enum class Change : uint8_t { DropList, DropMarker, Date };
  auto change_of = [&](std::string_view v) -> std::optional<Change> {
    if (v.empty()) return std::nullopt;
    if (v.size() < 5) return Change::Date;
    uint32_t day = get_u32(v, 1);
    if (day < markers_from) return Change::DropMarker;
    if (v.size() > 5 && day < lists_from) return Change::DropList;
    return std::nullopt;
  };
  std::vector<std::string> changed;
  store_.scan(kSeenPrefix, [&](std::string_view k, std::string_view v) {
    if (change_of(v)) changed.emplace_back(k);
    return true;
  });
  for (size_t start = 0; start < changed.size(); start += 10000) {
    std::vector<std::string> keys(
        changed.begin() + static_cast<ptrdiff_t>(start),
        changed.begin() + static_cast<ptrdiff_t>(std::min(changed.size(), start + 10000)));
    ExpireOutcome chunk;
    store_.update(keys, [&](const std::vector<std::optional<std::string>>& values) {
      std::vector<Store::Op> ops;
      chunk = {};
      for (size_t i = 0; i < keys.size(); ++i) {
        if (!values[i]) continue;
        const std::string& v = *values[i];
        auto c = change_of(v);  // again: the record may have changed since the scan
        if (!c) continue;
        if (*c == Change::DropMarker) {
          ops.push_back({Store::Op::Kind::Del, keys[i], ""});
          ++chunk.markers;
          if (v.size() > 5) ++chunk.lists;
        } else {
          uint32_t day = *c == Change::Date ? now_day : get_u32(v, 1);
          ops.push_back({Store::Op::Kind::Put, keys[i], encode_seen(v[0], day, {})});
          if (*c == Change::DropList) ++chunk.lists;
        }
      }
      return ops;
    });
    out.lists += chunk.lists;
    out.markers += chunk.markers;
  }

  for (size_t start = 0; start < drop; start += 10000) {
    size_t end = std::min(drop, start + 10000);
    std::vector<std::string> keys;
    for (size_t i = start; i < end; ++i) keys.push_back(all[i].key);
    size_t chunk_removed = 0;
    store_.update(keys, [&](const std::vector<std::optional<std::string>>& values) {
      std::vector<Store::Op> ops;
      for (size_t i = 0; i < keys.size(); ++i) {
        // A token learnt again since the scan is not stale any more: keep it.
        if (!values[i] || decode_counts(*values[i]).day != all[start + i].c.day) continue;
        ops.push_back({Store::Op::Kind::Del, keys[i], ""});
      }
      chunk_removed = ops.size();
      return ops;
    });
    out.tokens += chunk_removed;
  }
  return out;
}

}  // namespace digue::bayes
