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

namespace {

struct Version {
  uint64_t nonce = 0, counter = 0;
};

std::optional<Version> parse(std::string_view v) {
  unsigned long long nonce = 0, counter = 0;
  const std::string s(v.substr(0, 63));
  if (std::sscanf(s.c_str(), "%16llx-%llu", &nonce, &counter) != 2) return std::nullopt;
  return Version{nonce, counter};
}

std::string change_key(uint64_t nonce, uint64_t counter) {
  return std::string(kChangePrefix) + records::hex64(nonce) + "-" + records::hex64(counter);
}

}  // namespace

std::vector<Store::Op> bump_ops(const std::optional<std::string>& v,
                                const std::vector<uint64_t>& changed) {
  std::vector<Store::Op> ops{bump_op(v)};
  const auto next = parse(ops[0].value);
  if (!next || changed.size() > kMaxChangeHashes) return ops;
  std::string list;
  list.reserve(changed.size() * 8);
  for (uint64_t h : changed) {
    records::put_u32(list, static_cast<uint32_t>(h));
    records::put_u32(list, static_cast<uint32_t>(h >> 32));
  }
  ops.push_back({Store::Op::Kind::Put, change_key(next->nonce, next->counter), std::move(list), 0, {}});
  if (next->counter > kChangeRing)
    ops.push_back({Store::Op::Kind::Del, change_key(next->nonce, next->counter - kChangeRing), "", 0, {}});
  return ops;
}

void Tokens::advance(Store& store, std::string_view version) {
  std::string have;
  {
    std::shared_lock lock(mu_);
    if (version_.empty() || version_ == version) return;
    have = version_;
  }
  const auto from = parse(have), to = parse(version);
  if (!from || !to || from->nonce != to->nonce || to->counter <= from->counter ||
      to->counter - from->counter > kChangeRing)
    return;
  std::vector<std::string> keys;
  for (uint64_t c = from->counter + 1; c <= to->counter; ++c) keys.push_back(change_key(to->nonce, c));
  std::vector<uint64_t> gone;
  for (const auto& v : store.get_many(keys)) {
    if (!v || v->size() % 8 != 0) return;  // a write without a record, or one dropped since
    for (size_t at = 0; at < v->size(); at += 8)
      gone.push_back(uint64_t{records::get_u32(*v, at)} |
                     (uint64_t{records::get_u32(*v, at + 4)} << 32));
  }
  std::unique_lock lock(mu_);
  if (version_ != have) return;  // another thread moved it meanwhile
  for (uint64_t h : gone) map_.erase(h);
  version_ = version;
}

void Tokens::note(std::string_view version) {
  std::lock_guard lock(seen_mu_);
  const int c = churn_.load(std::memory_order_relaxed);
  if (version != last_seen_) {
    last_seen_ = version;
    churn_.store(std::min(c + 1, 8), std::memory_order_relaxed);
  } else {
    churn_.store(std::max(c - 1, 0), std::memory_order_relaxed);
  }
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

}  // namespace digue::bayes::cache
