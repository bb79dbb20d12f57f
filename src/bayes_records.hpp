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
