// The Bayes token cache and model version; see src/bayes_cache.hpp.
#include "src/bayes_cache.hpp"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <random>

namespace digue::bayes::cache {

std::string bump(const std::optional<std::string>& v) {
  unsigned long long nonce = 0, counter = 0;
  if (v && v->size() < 64 && std::sscanf(v->c_str(), "%16llx-%llu", &nonce, &counter) == 2)
    return records::hex64(nonce) + "-" + std::to_string(counter + 1);
  std::random_device rd;
  const uint64_t fresh = (uint64_t{rd()} << 32) ^ rd();
  return records::hex64(fresh) + "-1";
}

std::vector<size_t> Tokens::find(std::string_view version, const std::vector<uint64_t>& hashes,
                                 std::vector<records::Counts>& counts) const {
  std::vector<size_t> misses;
  std::shared_lock lock(mu_);
  const bool current = !version.empty() && version == version_;
  for (size_t i = 0; i < hashes.size(); ++i) {
    if (current)
      if (auto it = map_.find(hashes[i]); it != map_.end()) {
        counts[i] = it->second;
        continue;
      }
    misses.push_back(i);
  }
  return misses;
}

void Tokens::keep(std::string_view version, const std::vector<uint64_t>& hashes,
                  const std::vector<size_t>& which, const std::vector<records::Counts>& counts) {
  if (version.empty() || which.empty()) return;
  std::unique_lock lock(mu_);
  if (version != version_) {
    map_.clear();
    version_ = version;
  }
  if (map_.size() + which.size() > kMaxEntries) map_.clear();
  for (size_t i : which) map_.insert_or_assign(hashes[i], counts[i]);
}

std::shared_ptr<Tokens> tokens(const Store& store) {
  static std::mutex mu;
  static std::vector<std::pair<const Store*, std::shared_ptr<Tokens>>> all;
  std::lock_guard lock(mu);
  for (const auto& [s, t] : all)
    if (s == &store) return t;
  // A store at the address of a destroyed one reuses its cache: harmless, the versions differ
  // (fresh nonces). A process holds a few stores at most; the oldest entries go first.
  all.emplace_back(&store, std::make_shared<Tokens>());
  if (all.size() > 8) all.erase(all.begin());
  return all.back().second;
}

}  // namespace digue::bayes::cache
