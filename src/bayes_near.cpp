// Bayes nearest-learnt-message figure; see src/bayes_near.hpp.
#include "src/bayes_near.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <map>
#include <string>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "src/bayes_records.hpp"

namespace digue::bayes::near {

using namespace records;

namespace {

constexpr uint8_t kStoredEmpty = 0x80;  // bins hold 7 bits; the two empties never match
constexpr uint8_t kQueryEmpty = 0xff;   // each other nor a value

uint64_t mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Set bits of x: the popcnt instruction in the copy of nearest() built for CPUs that have it
// (all x86-64 of the last fifteen years; Debian's baseline lacks it, where std::popcount is a
// libgcc call: 7 % of classification in perf), a library call in the other. The copy is
// chosen at run time (__builtin_cpu_supports), not by an ifunc: a resolver runs before the
// sanitizers' runtimes are up and crashed every TSan build at start.
inline int bits(uint64_t x) { return std::popcount(x); }

#if defined(__GNUC__) && defined(__x86_64__)
#define DIGUE_POPCNT_COPY 1
#endif

#if !defined(__SSE2__)
// Equal bytes of two 64-byte blocks.
size_t equal_bytes(const uint8_t* a, const uint8_t* b) {
  constexpr uint64_t kLow7 = 0x7f7f7f7f7f7f7f7fULL;
  uint64_t sum = 0;
  for (size_t i = 0; i < kBins; i += 8) {
    uint64_t x, y;
    std::memcpy(&x, a + i, 8);
    std::memcpy(&y, b + i, 8);
    const uint64_t d = x ^ y;
    const uint64_t zero = ~(((d & kLow7) + kLow7) | d | kLow7);  // high bit of each 0 byte
    sum += zero >> 7;  // 1 in each equal byte; at most 8 per byte over the 8 words
  }
  return static_cast<size_t>((sum * 0x0101010101010101ULL) >> 56);
}
#endif

}  // namespace

Sketch sketch(const std::vector<uint64_t>& hashes) {
  Sketch s;
  std::array<uint64_t, kBins> min;
  min.fill(~uint64_t{0});
  for (uint64_t h : hashes) {
    const uint64_t v = mix(h);
    const size_t bin = v >> 58;  // top 6 bits: kBins = 64
    min[bin] = std::min(min[bin], v & ((uint64_t{1} << 58) - 1));
    s.filled |= uint64_t{1} << bin;
  }
  for (size_t i = 0; i < kBins; ++i)
    s.bins[i] = (s.filled >> i & 1) ? static_cast<uint8_t>(min[i] & 0x7f) : kStoredEmpty;
  return s;
}

double jaccard(const uint64_t* a, size_t na, const uint64_t* b, size_t nb) {
  // Without branches on the data: which side moves is as good as random.
  size_t i = 0, j = 0, inter = 0;
  while (i < na && j < nb) {
    const uint64_t x = a[i], y = b[j];
    inter += x == y;
    i += x <= y;
    j += y <= x;
  }
  const size_t uni = na + nb - inter;
  return uni ? static_cast<double>(inter) / static_cast<double>(uni) : 0.0;
}

Window load(Store& store, std::string_view v) {
  std::vector<std::string> keys;
  size_t at = 0;
  while (at + 2 <= v.size()) {
    const char cls = v[at];
    const size_t idlen = static_cast<unsigned char>(v[at + 1]);
    if (at + 2 + idlen > v.size()) break;
    if (cls == 'S' || cls == 'H') keys.push_back(std::string(kSeenPrefix) + std::string(v.substr(at + 2, idlen)));
    at += 2 + idlen;
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  const std::vector<std::string_view> views(keys.begin(), keys.end());
  Window w;
  w.offsets.push_back(0);
  // Each message's class as its seen record says now, its list and the list's sketch.
  store.visit_many(views, [&](size_t, std::string_view seen) {
    if (seen.size() <= 5 || (seen[0] != 'S' && seen[0] != 'H')) return;
    std::vector<uint64_t> h = decode_seen(seen).hashes;
    std::sort(h.begin(), h.end());
    h.erase(std::unique(h.begin(), h.end()), h.end());
    const Sketch s = sketch(h);
    w.filled.push_back(s.filled);
    w.bins.insert(w.bins.end(), s.bins.begin(), s.bins.end());
    w.cls.push_back(seen[0]);
    w.hashes.insert(w.hashes.end(), h.begin(), h.end());
    w.offsets.push_back(w.hashes.size());
  });
  return w;
}

namespace {

[[gnu::always_inline]] inline Nearest nearest_in(const Window& window,
                                                 const std::vector<uint64_t>& hashes,
                                                 size_t exact_per_class) {
  Nearest out;
  if (hashes.empty() || exact_per_class == 0) return out;
  Sketch me = sketch(hashes);
  for (auto& b : me.bins)
    if (b == kStoredEmpty) b = kQueryEmpty;
  // Per class, the exact_per_class best estimates: the share of equal bins among the bins
  // both filled (compared as fractions eq / both, without dividing).
  struct Cand {
    int eq, both;
    size_t entry;
    bool above(int e, int b) const { return e * both > eq * b; }  // e / b > eq / both
  };
  std::vector<Cand> best[2];
#if defined(__SSE2__)
  const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(me.bins.data()));
  const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(me.bins.data() + 16));
  const __m128i q2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(me.bins.data() + 32));
  const __m128i q3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(me.bins.data() + 48));
  auto equal = [&](const uint8_t* b) {
    auto mask = [](__m128i x, __m128i y) {
      return static_cast<uint64_t>(static_cast<uint16_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(x, y))));
    };
    const auto* v = reinterpret_cast<const __m128i*>(b);
    return bits(mask(_mm_loadu_si128(v), q0) | mask(_mm_loadu_si128(v + 1), q1) << 16 |
                mask(_mm_loadu_si128(v + 2), q2) << 32 | mask(_mm_loadu_si128(v + 3), q3) << 48);
  };
#else
  auto equal = [&](const uint8_t* b) { return static_cast<int>(equal_bytes(b, me.bins.data())); };
#endif
  for (size_t i = 0; i < window.size(); ++i) {
    const int both = bits(window.filled[i] & me.filled);
    if (both == 0) continue;
    const int eq = equal(window.bins.data() + i * kBins);
    auto& b = best[window.cls[i] == 'S' ? 0 : 1];
    if (b.size() < exact_per_class || b.back().above(eq, both)) {
      auto pos = std::find_if(b.begin(), b.end(), [&](const Cand& c) { return c.above(eq, both); });
      b.insert(pos, {eq, both, i});
      if (b.size() > exact_per_class) b.pop_back();
    }
  }
  for (int c = 0; c < 2; ++c)
    for (const Cand& cand : best[c]) {
      const size_t from = window.offsets[cand.entry], to = window.offsets[cand.entry + 1];
      double& m = c == 0 ? out.spam : out.ham;
      m = std::max(m, jaccard(hashes.data(), hashes.size(), window.hashes.data() + from, to - from));
      ++out.measured;
    }
  return out;
}

#ifdef DIGUE_POPCNT_COPY
[[gnu::target("popcnt")]] Nearest nearest_popcnt(const Window& window,
                                                 const std::vector<uint64_t>& hashes,
                                                 size_t exact_per_class) {
  return nearest_in(window, hashes, exact_per_class);
}
#endif

}  // namespace

Nearest nearest(const Window& window, const std::vector<uint64_t>& hashes, size_t exact_per_class) {
#ifdef DIGUE_POPCNT_COPY
  static const bool popcnt = __builtin_cpu_supports("popcnt");
  if (popcnt) return nearest_popcnt(window, hashes, exact_per_class);
#endif
  return nearest_in(window, hashes, exact_per_class);
}

std::string build(const std::vector<Kept>& kept, size_t per_class, uint32_t from_day) {
  // The newest per_class of each class: by day, then in seen-key order (arbitrary but the
  // same on every node).
  std::vector<const Kept*> msgs[2];
  if (per_class > 0)
    for (const auto& k : kept)
      if (k.day >= from_day && k.id.size() <= 255) msgs[k.cls == 'S' ? 0 : 1].push_back(&k);
  std::string value;
  for (auto& m : msgs) {
    std::stable_sort(m.begin(), m.end(), [](const Kept* a, const Kept* b) { return a->day > b->day; });
    if (m.size() > per_class) m.resize(per_class);
    for (const Kept* k : m) {
      value += k->cls;
      value += static_cast<char>(k->id.size());
      value += k->id;
    }
  }
  return value;
}

}  // namespace digue::bayes::near
