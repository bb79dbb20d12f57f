// In-memory Store (unit tests, single-process tools): one mutex around a std::map, which gives
// prefix scans in key order for free. Expired entries read as absent and are erased when met.
#include <charconv>
#include <map>
#include <mutex>

#include "digue/store.hpp"

namespace digue {
namespace {

using Clock = std::chrono::system_clock;

struct Entry {
  std::string value;
  Clock::time_point expires{};  // epoch = never
  bool live(Clock::time_point now) const { return expires == Clock::time_point{} || now < expires; }
};

Clock::time_point expiry_for(std::chrono::seconds ttl, Clock::time_point now) {
  return ttl.count() > 0 ? now + ttl : Clock::time_point{};
}

int64_t parse_int(std::string_view key, std::string_view v) {
  if (v.empty()) return 0;
  int64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc{} || p != v.data() + v.size())
    throw StoreError("store: value at '" + std::string(key) + "' is not an integer");
  return n;
}

class MemoryStore final : public Store {
 public:
  std::optional<std::string> get(std::string_view key) override {
    std::lock_guard lock(mu_);
    auto* e = find_live(key, Clock::now());
    if (!e) return std::nullopt;
    return e->value;
  }

  std::vector<std::optional<std::string>> get_many(const std::vector<std::string>& keys) override {
    std::lock_guard lock(mu_);
    auto now = Clock::now();
    std::vector<std::optional<std::string>> out;
    out.reserve(keys.size());
    for (const auto& k : keys) {
      auto* e = find_live(k, now);
      out.push_back(e ? std::optional<std::string>(e->value) : std::nullopt);
    }
    return out;
  }

  void visit_many(const std::vector<std::string_view>& keys,
                  const std::function<void(size_t, std::string_view)>& found) override {
    std::lock_guard lock(mu_);
    auto now = Clock::now();
    for (size_t i = 0; i < keys.size(); ++i)
      if (auto* e = find_live(keys[i], now)) found(i, e->value);
  }

  void put(std::string_view key, std::string_view value, std::chrono::seconds ttl) override {
    std::lock_guard lock(mu_);
    do_put(key, value, ttl, Clock::now());
  }

  bool del(std::string_view key) override {
    std::lock_guard lock(mu_);
    return do_del(key, Clock::now());
  }

  int64_t incr(std::string_view key, int64_t delta, std::chrono::seconds ttl) override {
    std::lock_guard lock(mu_);
    return do_incr(key, delta, ttl, Clock::now());
  }

  void scan(std::string_view prefix,
            const std::function<bool(std::string_view, std::string_view)>& fn) override {
    // Copy the matches first so fn may call back into the store without deadlocking.
    std::vector<std::pair<std::string, std::string>> hits;
    {
      std::lock_guard lock(mu_);
      auto now = Clock::now();
      for (auto it = map_.lower_bound(prefix); it != map_.end(); ++it) {
        if (std::string_view(it->first).substr(0, prefix.size()) != prefix) break;
        if (it->second.live(now)) hits.emplace_back(it->first, it->second.value);
      }
    }
    for (const auto& [k, v] : hits)
      if (!fn(k, v)) break;
  }

  void apply(const std::vector<Op>& ops) override {
    std::lock_guard lock(mu_);
    apply_locked(ops, Clock::now());
  }

  void update(const std::vector<std::string>& keys, const UpdateFn& fn) override {
    std::lock_guard lock(mu_);
    auto now = Clock::now();
    std::vector<std::optional<std::string>> values;
    values.reserve(keys.size());
    for (const auto& k : keys) {
      auto* e = find_live(k, now);
      values.push_back(e ? std::optional<std::string>(e->value) : std::nullopt);
    }
    apply_locked(fn(values), now);
  }

  size_t purge_expired() override {
    std::lock_guard lock(mu_);
    auto now = Clock::now();
    size_t n = 0;
    for (auto it = map_.begin(); it != map_.end();) {
      if (it->second.live(now)) {
        ++it;
      } else {
        it = map_.erase(it);
        ++n;
      }
    }
    return n;
  }

 private:
  Entry* find_live(std::string_view key, Clock::time_point now) {
    auto it = map_.find(key);
    if (it == map_.end()) return nullptr;
    return it->second.live(now) ? &it->second : nullptr;
  }

  void do_put(std::string_view key, std::string_view value, std::chrono::seconds ttl,
              Clock::time_point now) {
    auto& e = map_[std::string(key)];
    e.value.assign(value);
    e.expires = expiry_for(ttl, now);
  }

  bool do_del(std::string_view key, Clock::time_point now) {
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    bool was_live = it->second.live(now);
    map_.erase(it);
    return was_live;
  }

  int64_t do_incr(std::string_view key, int64_t delta, std::chrono::seconds ttl,
                  Clock::time_point now) {
    auto* e = find_live(key, now);
    if (!e) {
      // Absent or expired: a new key, which gets the ttl.
      auto& fresh = map_[std::string(key)];
      fresh.value = std::to_string(delta);
      fresh.expires = expiry_for(ttl, now);
      return delta;
    }
    int64_t n = parse_int(key, e->value) + delta;
    e->value = std::to_string(n);
    return n;
  }

  void apply_locked(const std::vector<Op>& ops, Clock::time_point now) {
    // All or nothing: remember what each touched key held and put it back if an op throws
    // (an Incr over a non-integer value).
    std::vector<std::pair<std::string, std::optional<Entry>>> undo;
    undo.reserve(ops.size());
    for (const auto& op : ops) {
      auto it = map_.find(op.key);
      undo.emplace_back(op.key, it == map_.end() ? std::nullopt : std::optional(it->second));
    }
    try {
      for (const auto& op : ops) {
        switch (op.kind) {
          case Op::Kind::Put:
            do_put(op.key, op.value, op.ttl, now);
            break;
          case Op::Kind::Del:
            do_del(op.key, now);
            break;
          case Op::Kind::Incr:
            do_incr(op.key, op.delta, op.ttl, now);
            break;
        }
      }
    } catch (...) {
      for (auto it = undo.rbegin(); it != undo.rend(); ++it) {
        if (it->second)
          map_[it->first] = *it->second;
        else
          map_.erase(it->first);
      }
      throw;
    }
  }

  std::mutex mu_;
  std::map<std::string, Entry, std::less<>> map_;
};

}  // namespace

std::unique_ptr<Store> make_memory_store() { return std::make_unique<MemoryStore>(); }

}  // namespace digue
