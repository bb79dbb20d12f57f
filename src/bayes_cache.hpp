// Internal to the Bayes model's sources: the process's cache of token records, and the model
// version that keeps it right.
// Every write of token records (learn, unlearn, weight training, restore, expire) also writes
// "bayes:version" in the same transaction: "<16 hex nonce>-<counter>", the counter bumped, a
// new random nonce when the key is absent (so two models, or one rebuilt from nothing, never
// share a version). A classification reads the version with the model's summary records;
// tokens found in the cache under that version are not read from the store, the others are
// read and cached when the version did not change meanwhile (when it did, the whole model is
// read again in one transaction, as without the cache). Other processes (diguectl
// learning beside digued) bump the same key, so the cache follows them too. A model without
// the key (written by a version before this cache) is never cached until its next write.
// Learning and unlearning (autolearn: one message at a time) also write which tokens they
// changed under the new version ("bayes:chg:<nonce>-<counter hex>", the last kChangeRing
// kept): a reader a few versions behind drops just those from its cache and keeps the rest.
// Other writes (weight training, restore, expire, a learn batch of over kMaxChangeHashes
// tokens) leave no such record: readers start over.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "digue/store.hpp"
#include "src/bayes_records.hpp"

namespace digue::bayes::cache {

inline constexpr std::string_view kVersionKey = "bayes:version";
inline constexpr std::string_view kChangePrefix = "bayes:chg:";
inline constexpr uint64_t kChangeRing = 64;       // change records kept (versions)
inline constexpr size_t kMaxChangeHashes = 4096;  // a larger change leaves no record

// The next version after v (absent or unreadable: a fresh nonce).
std::string bump(const std::optional<std::string>& v);
// A Put op writing the version after v.
inline Store::Op bump_op(const std::optional<std::string>& v) {
  return {Store::Op::Kind::Put, std::string(kVersionKey), bump(v), 0, {}};
}
// The ops that write the version after v and record the token hashes the same transaction
// changes (sorted, unique), dropping the record kChangeRing versions older.
std::vector<Store::Op> bump_ops(const std::optional<std::string>& v,
                                const std::vector<uint64_t>& changed);

class Tokens {
 public:
  // Bounded: at this many entries the cache starts over (~64 bytes an entry).
  static constexpr size_t kMaxEntries = 500'000;

  // Looks the hashes up under version; fills counts[i] for each hit and returns the indexes
  // of the misses. Everything misses when version is empty (no version key).
  std::vector<size_t> find(std::string_view version, const std::vector<uint64_t>& hashes,
                           std::vector<records::Counts>& counts) const;
  // Keeps what was read from the store under version (the misses' indexes into hashes).
  void keep(std::string_view version, const std::vector<uint64_t>& hashes,
            const std::vector<size_t>& which, const std::vector<records::Counts>& counts);
  // Brings a cache a few versions behind to version when the store holds the change records
  // of every version in between: the tokens they name are dropped, the rest kept. Otherwise
  // nothing happens (keep() starts over).
  void advance(Store& store, std::string_view version);
  // Notes the version a classification read.
  void note(std::string_view version);
  // True while most recent classifications each found a new version (a learn after every
  // message, autolearn on one thread): then catching up costs more than it saves — right
  // after a write the store's fresh pages are slow to read either way — and the caller reads
  // everything in one transaction, as without a cache.
  bool churning() const { return churn_.load(std::memory_order_relaxed) >= 4; }

 private:
  mutable std::shared_mutex mu_;
  std::string version_;
  std::mutex seen_mu_;
  std::string last_seen_;  // the version the last classification read
  std::atomic<int> churn_{0};  // +1 for a new version, -1 for the same, within 0..8
  std::unordered_map<uint64_t, records::Counts> map_;
};

// One T per store object and process — what a process keeps of a model it classifies with
// (this token cache, the gram table). A process holds a few stores at most; past 8 the
// oldest go first. A store at the address of a destroyed one finds its state: harmless, the
// model versions and generations tell them apart.
template <class T>
std::shared_ptr<T> per_store(const Store& store) {
  static std::mutex mu;
  static std::vector<std::pair<const Store*, std::shared_ptr<T>>> all;
  std::lock_guard lock(mu);
  for (const auto& [s, t] : all)
    if (s == &store) return t;
  all.emplace_back(&store, std::make_shared<T>());
  if (all.size() > 8) all.erase(all.begin());
  return all.back().second;
}

// The cache of this store.
inline std::shared_ptr<Tokens> tokens(const Store& store) { return per_store<Tokens>(store); }

}  // namespace digue::bayes::cache
