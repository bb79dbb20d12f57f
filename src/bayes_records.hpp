// Internal to the Bayes model's sources (src/bayes*.cpp): the Store record formats and small
// helpers they share. Not a public interface; see include/digue/bayes.hpp for the layout.
#pragma once

#include <openssl/sha.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "digue/bayes.hpp"

namespace digue::bayes::records {

// A token record: u32 LE spam count, ham count, last day learnt, then the token weight as an
// IEEE float (bits LE); 12-byte records (no weight) from older versions read as weight 0.
struct Counts {
  uint32_t spam = 0, ham = 0, day = 0;
  float weight = 0;
};

inline void put_u32(std::string& out, uint32_t v) {
  for (int b = 0; b < 4; ++b) out += static_cast<char>((v >> (8 * b)) & 0xff);
}

inline uint32_t get_u32(std::string_view s, size_t at) {
  uint32_t v = 0;
  for (int b = 3; b >= 0; --b) v = (v << 8) | static_cast<unsigned char>(s[at + b]);
  return v;
}

inline std::string encode_counts(const Counts& c) {
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

inline Counts decode_counts(std::string_view s) {
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

inline std::string encode_seen(char cls, uint32_t day, const std::vector<uint64_t>& hashes) {
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

inline SeenRecord decode_seen(std::string_view v) {
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

// A gram list ("bayes:g:<identity>"): the byte 4-gram hashes, sorted, as LEB128 varints of
// their differences (the first from 0): ~2 bytes per gram.
inline std::string encode_grams(std::vector<uint32_t> grams) {
  // (Values byte_grams cannot give are dropped: decode_grams would refuse the whole list.)
  std::erase_if(grams, [](uint32_t g) { return g >= (uint32_t{1} << kGramBits); });
  std::sort(grams.begin(), grams.end());
  grams.erase(std::unique(grams.begin(), grams.end()), grams.end());
  std::string out;
  out.reserve(grams.size() * 2);
  uint32_t prev = 0;
  for (uint32_t g : grams) {
    uint32_t d = g - prev;
    prev = g;
    while (d >= 0x80) {
      out += static_cast<char>((d & 0x7f) | 0x80);
      d >>= 7;
    }
    out += static_cast<char>(d);
  }
  return out;
}

// nullopt when the bytes are not a list encode_grams wrote (cut, not increasing, too large).
inline std::optional<std::vector<uint32_t>> decode_grams(std::string_view v) {
  std::vector<uint32_t> out;
  out.reserve(v.size() / 2);
  uint64_t prev = 0;
  size_t i = 0;
  while (i < v.size()) {
    uint64_t d = 0;
    int shift = 0;
    for (;;) {
      if (i >= v.size() || shift > 28) return std::nullopt;
      auto b = static_cast<unsigned char>(v[i++]);
      d |= uint64_t{b & 0x7fu} << shift;
      shift += 7;
      if (!(b & 0x80)) break;
    }
    if (!out.empty() && d == 0) return std::nullopt;
    prev += d;
    if (prev >= (uint64_t{1} << kGramBits)) return std::nullopt;
    out.push_back(static_cast<uint32_t>(prev));
  }
  return out;
}

// "bayes:gram-meta" -> "<generation hex> <bias> <messages> <spam> <ham>": read with every
// classification; the table ("bayes:gram-model": "digue-grams 1 <generation hex>\n" then
// 2^kGramBits IEEE floats LE) is loaded when the generation changes.
struct GramMeta {
  uint64_t generation = 0;
  double bias = 0;
  uint64_t messages = 0, spam = 0, ham = 0;
};

inline std::optional<GramMeta> decode_gram_meta(std::string_view v) {
  GramMeta m;
  unsigned long long g = 0, n = 0, s = 0, h = 0;
  std::string str(v);
  if (std::sscanf(str.c_str(), "%llx %lf %llu %llu %llu", &g, &m.bias, &n, &s, &h) != 5 ||
      !std::isfinite(m.bias))
    return std::nullopt;
  m.generation = g;
  m.messages = n;
  m.spam = s;
  m.ham = h;
  return m;
}

inline std::string encode_gram_meta(const GramMeta& m) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%016llx %.9g %llu %llu %llu",
                static_cast<unsigned long long>(m.generation), m.bias,
                static_cast<unsigned long long>(m.messages),
                static_cast<unsigned long long>(m.spam), static_cast<unsigned long long>(m.ham));
  return buf;
}

// Training's message order: a Fisher-Yates shuffle driven by a xorshift state (never 0), the
// same for the same seed on every machine (the models are deterministic).
class Shuffle {
 public:
  explicit Shuffle(uint64_t seed) : rng_(seed ? seed : 1) {}
  void operator()(std::vector<size_t>& order) {
    for (size_t i = order.size(); i > 1; --i) {
      rng_ ^= rng_ << 13;
      rng_ ^= rng_ >> 7;
      rng_ ^= rng_ << 17;
      std::swap(order[i - 1], order[rng_ % i]);
    }
  }

 private:
  uint64_t rng_;
};

// The oldest day to keep so that the newest days hold at most cap records (per_day: records
// per day). The newest day is always kept, whole.
inline uint32_t keep_from_day(const std::map<uint32_t, size_t>& per_day, size_t cap) {
  uint32_t from = 0;
  size_t fit = 0;
  for (auto it = per_day.rbegin(); it != per_day.rend(); ++it) {
    if (fit + it->second > cap && fit > 0) break;
    fit += it->second;
    from = it->first;
  }
  return from;
}

// The learnt messages whose seen record keeps its token list: what the weights, the gram model
// and the nearest-message window are trained on (each on its newest share).
struct Kept {
  std::string id;  // the seen key without its prefix
  char cls = 0;    // 'S' or 'H'
  uint32_t day = 0;
};

// Every such message, from one scan of the seen records (their token lists are not decoded).
inline std::vector<Kept> kept_lists(Store& store) {
  std::vector<Kept> out;
  store.scan(kSeenPrefix, [&](std::string_view k, std::string_view v) {
    if (v.size() > 5 && (v[0] == 'S' || v[0] == 'H'))
      out.push_back({std::string(k.substr(kSeenPrefix.size())), v[0], get_u32(v, 1)});
    return true;
  });
  return out;
}

// The oldest day from which the newest whole days of `kept` hold at most cap messages.
inline uint32_t keep_from_day(const std::vector<Kept>& kept, size_t cap) {
  std::map<uint32_t, size_t> per_day;
  for (const auto& k : kept) ++per_day[k.day];
  return keep_from_day(per_day, cap);
}

// "bayes:weights" -> "<bias> <messages>".
struct WeightsMeta {
  double bias = 0;
  uint64_t messages = 0;
};

inline WeightsMeta decode_weights_meta(const std::optional<std::string>& v) {
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

inline std::string encode_weights_meta(const WeightsMeta& m) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g %llu", m.bias, static_cast<unsigned long long>(m.messages));
  return buf;
}

// r(w): the token's log-count ratio, the feature the weights multiply.
inline double log_ratio(const Counts& c, double nspam, double nham, double a) {
  return std::log((c.spam + a) / (nspam + 2 * a)) - std::log((c.ham + a) / (nham + 2 * a));
}

inline bool parse_hex64(std::string_view s, uint64_t& out) {
  if (s.size() != 16) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + 16, out, 16);
  return ec == std::errc() && p == s.data() + 16;
}

struct Meta {
  uint64_t spam = 0, ham = 0;
};

inline Meta decode_meta(const std::optional<std::string>& v) {
  Meta m;
  if (!v) return m;
  std::string_view s = *v;
  auto p = std::from_chars(s.data(), s.data() + s.size(), m.spam).ptr;
  while (p < s.data() + s.size() && *p == ' ') ++p;
  std::from_chars(p, s.data() + s.size(), m.ham);
  return m;
}

inline std::string encode_meta(const Meta& m) {
  return std::to_string(m.spam) + " " + std::to_string(m.ham);
}

inline char hex_digit(unsigned v) { return "0123456789abcdef"[v & 15]; }

inline std::string hex64(uint64_t h) {
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) s[i] = hex_digit(static_cast<unsigned>(h));
  return s;
}

// Unique hashes of a token list, sorted: the identity of what a message teaches.
inline std::vector<uint64_t> unique_hashes(const std::vector<std::string>& tokens) {
  std::vector<uint64_t> h;
  h.reserve(tokens.size());
  for (const auto& t : tokens) h.push_back(token_hash(t));
  std::sort(h.begin(), h.end());
  h.erase(std::unique(h.begin(), h.end()), h.end());
  return h;
}

// 32 hex digits: the first half of the SHA-256 of the bytes (seen keys).
inline std::string short_digest(const void* data, size_t size) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(static_cast<const unsigned char*>(data), size, md);
  std::string s;
  for (int i = 0; i < 16; ++i) {
    s += hex_digit(md[i] >> 4);
    s += hex_digit(md[i]);
  }
  return s;
}

inline std::string digest_of(const std::vector<uint64_t>& hashes) {
  return short_digest(hashes.data(), hashes.size() * sizeof(uint64_t));
}

}  // namespace digue::bayes::records
