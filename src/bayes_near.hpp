// Internal to the Bayes model's sources: the nearest-learnt-message figure (Params::near_*).
// One record ("bayes:near", written with the gram model by train_weights) names the newest
// near_window learnt messages of each class whose token lists are kept; each process reads
// their lists once per generation (with the gram table) and sketches them (one-permutation
// MinHash). A message's sketch is compared with every one of them, and the near_exact best
// estimates of each class are measured exactly (Jaccard similarity of the token sets) on
// their lists. A message moved or unlearnt after the read counts as it was then, until the
// next training.
// bench/README.md ("Ninth session") says why a window of this size.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "digue/bayes.hpp"
#include "digue/store.hpp"
#include "src/bayes_records.hpp"

namespace digue::bayes::near {

inline constexpr size_t kBins = 64;

// One-permutation MinHash: each hash (mixed) falls in one of kBins bins by its top bits; a
// bin keeps the low 8 bits of its smallest remaining value; `filled` marks the non-empty
// bins. Two sets' share of equal bins (among bins filled in both) estimates their Jaccard
// similarity (plus 1/256 of chance matches).
struct Sketch {
  uint64_t filled = 0;
  std::array<uint8_t, kBins> bins{};
};
Sketch sketch(const std::vector<uint64_t>& hashes);

// |a ∩ b| / |a ∪ b| of two sorted, duplicate-free hash sets.
double jaccard(const uint64_t* a, size_t na, const uint64_t* b, size_t nb);

struct Nearest {
  double spam = 0, ham = 0;  // the highest similarity to a learnt spam / ham (0..1)
  size_t measured = 0;       // learnt messages measured exactly
};
// The window's messages (build), sketched and laid out for the scan, with their token lists:
// read once per gram model generation and kept with its table (~2 KB a message).
struct Window {
  std::vector<uint64_t> filled;   // per entry: its filled bins
  std::vector<uint8_t> bins;      // kBins bytes per entry
  std::vector<char> cls;          // 'S' or 'H', as its seen record says when read
  std::vector<uint64_t> hashes;   // the entries' sorted token lists, one after the other
  std::vector<size_t> offsets;    // entry i's list: hashes[offsets[i] .. offsets[i + 1])
  size_t size() const { return cls.size(); }
};
// The record's messages whose seen record still keeps a list (the others are left out).
Window load(Store& store, std::string_view record);

// hashes: the message's token hashes, sorted and unique.
Nearest nearest(const Window& window, const std::vector<uint64_t>& hashes, size_t exact_per_class);

// The record: the newest per_class of `kept` of each class learnt on from_day or later, as
// 'S' or 'H', the identity's length (one byte) and the identity ("" for 0 per_class).
std::string build(const std::vector<records::Kept>& kept, size_t per_class, uint32_t from_day);

}  // namespace digue::bayes::near
