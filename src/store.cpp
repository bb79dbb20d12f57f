// Store: the parts shared by every implementation; see include/digue/store.hpp.
#include "digue/store.hpp"

#include <charconv>
#include <map>
#include <mutex>
#include <set>

namespace digue {

std::vector<std::optional<std::string>> Store::get_many(const std::vector<std::string>& keys) {
  // Fallback for stores without a batched read: correct, one lookup per key.
  std::vector<std::optional<std::string>> out;
  out.reserve(keys.size());
  for (const auto& k : keys) out.push_back(get(k));
  return out;
}

void Store::visit_many(const std::vector<std::string_view>& keys,
                       const std::function<void(size_t, std::string_view)>& found) {
  std::vector<std::string> copies(keys.begin(), keys.end());
  auto values = get_many(copies);
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i]) found(i, *values[i]);
}

void Store::update(const std::vector<std::string>& keys, const UpdateFn& fn) {
  // Not atomic against a concurrent writer; stores that can do better override this.
  auto ops = fn(get_many(keys));
  if (!ops.empty()) apply(ops);
}

namespace {

// Reads see the overlay's own writes over the base store; writes stay in memory.
class OverlayStore final : public Store {
 public:
  explicit OverlayStore(Store& base) : base_(base), top_(make_memory_store()) {}

  std::optional<std::string> get(std::string_view key) override {
    std::lock_guard lock(mu_);
    return get_locked(key);
  }
  void put(std::string_view key, std::string_view value, std::chrono::seconds ttl) override {
    std::lock_guard lock(mu_);
    put_locked(key, value, ttl);
  }
  bool del(std::string_view key) override {
    std::lock_guard lock(mu_);
    return del_locked(key);
  }
  int64_t incr(std::string_view key, int64_t delta, std::chrono::seconds ttl) override {
    std::lock_guard lock(mu_);
    return incr_locked(key, delta, ttl);
  }
  void scan(std::string_view prefix,
            const std::function<bool(std::string_view, std::string_view)>& fn) override {
    std::map<std::string, std::string, std::less<>> merged;
    {
      std::lock_guard lock(mu_);
      base_.scan(prefix, [&](std::string_view k, std::string_view v) {
        if (!deleted_.count(k)) merged.emplace(k, v);
        return true;
      });
      top_->scan(prefix, [&](std::string_view k, std::string_view v) {
        merged[std::string(k)] = v;
        return true;
      });
    }
    for (const auto& [k, v] : merged)
      if (!fn(k, v)) break;
  }
  void apply(const std::vector<Op>& ops) override {
    std::lock_guard lock(mu_);
    for (const auto& op : ops) {
      switch (op.kind) {
        case Op::Kind::Put: put_locked(op.key, op.value, op.ttl); break;
        case Op::Kind::Del: del_locked(op.key); break;
        case Op::Kind::Incr: incr_locked(op.key, op.delta, op.ttl); break;
      }
    }
  }

 private:
  std::optional<std::string> get_locked(std::string_view key) {
    if (auto v = top_->get(key)) return v;
    if (deleted_.count(key)) return std::nullopt;
    return base_.get(key);
  }
  void put_locked(std::string_view key, std::string_view value, std::chrono::seconds ttl) {
    top_->put(key, value, ttl);
  }
  bool del_locked(std::string_view key) {
    bool had = get_locked(key).has_value();
    top_->del(key);
    deleted_.emplace(key);
    return had;
  }
  int64_t incr_locked(std::string_view key, int64_t delta, std::chrono::seconds ttl) {
    int64_t n = 0;
    if (auto v = get_locked(key)) std::from_chars(v->data(), v->data() + v->size(), n);
    n += delta;
    top_->put(key, std::to_string(n), ttl);
    return n;
  }

  std::mutex mu_;
  Store& base_;
  std::unique_ptr<Store> top_;
  std::set<std::string, std::less<>> deleted_;
};

}  // namespace

std::unique_ptr<Store> make_overlay_store(Store& base) {
  return std::make_unique<OverlayStore>(base);
}

}  // namespace digue
