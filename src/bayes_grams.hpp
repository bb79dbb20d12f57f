// Internal to the Bayes model's sources: the gram model (a logistic model over byte 4-grams,
// see Params::gram_*), its training and the in-memory copy of its weight table.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "digue/bayes.hpp"
#include "src/bayes_near.hpp"
#include "src/bayes_records.hpp"

namespace digue::bayes::grams {

struct Table {
  records::GramMeta meta;
  std::vector<int16_t> w;  // 2^kGramBits weights, in steps of scale
  double scale = 1.0;
  near::Window near;     // the nearest-message window, sketched (near::load)
};

// The weight table of this generation: the process keeps the last one it read per store; a
// new generation is read from the store once (16 MB). nullptr when the store holds no table
// of that generation (retrained or removed since the meta was read).
std::shared_ptr<const Table> table(Store& store, const records::GramMeta& meta);

// Whether table() would read this generation from the store (not held, not known to fail).
bool pending(const Store& store, const records::GramMeta& meta);

// bias + sum of the grams' weights / sqrt(number of grams).
double logit(const Table& t, const std::vector<uint32_t>& grams);

// Trains the gram model on the gram lists of the newest p.gram_max_messages learnt messages
// (`kept`: those whose seen record keeps its token list) and stores it with the
// nearest-message window (near::build) in one update, or removes both when fewer than
// p.min_learned of a class have a list. Returns the messages trained on.
size_t train(Store& store, const Params& p, const std::vector<records::Kept>& kept,
             const std::string& near_window);

}  // namespace digue::bayes::grams
