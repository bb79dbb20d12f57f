// A Store that forwards to an in-memory store and counts the calls tests care about
// (read-modify-write updates, batched reads), and can play a concurrent writer or a failing
// store. Header-only.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "digue/store.hpp"

namespace digue::test {

class CountingStore final : public Store {
 public:
  std::unique_ptr<Store> inner = make_memory_store();
  size_t updates = 0;  // update() calls
  size_t visits = 0;   // visit_many() calls (a Bayes classification: one or two)
  size_t visited_keys = 0;  // keys asked for in them
  // Run once just before the next update() (a concurrent writer's change), then cleared.
  std::function<void()> before_update;
  // put() throws StoreError while set (a full or broken store); may be set from any thread.
  std::atomic<bool> fail_puts{false};

  std::optional<std::string> get(std::string_view k) override { return inner->get(k); }
  void put(std::string_view k, std::string_view v, std::chrono::seconds ttl) override {
    if (fail_puts) throw StoreError("put failed (test)");
    inner->put(k, v, ttl);
  }
  bool del(std::string_view k) override { return inner->del(k); }
  int64_t incr(std::string_view k, int64_t delta, std::chrono::seconds ttl) override {
    return inner->incr(k, delta, ttl);
  }
  void scan(std::string_view prefix,
            const std::function<bool(std::string_view, std::string_view)>& fn) override {
    inner->scan(prefix, fn);
  }
  void apply(const std::vector<Op>& ops) override { inner->apply(ops); }
  void update(const std::vector<std::string>& keys, const UpdateFn& fn) override {
    ++updates;
    if (auto hook = std::move(before_update)) {
      before_update = nullptr;
      hook();
    }
    inner->update(keys, fn);
  }
  void visit_many(const std::vector<std::string_view>& keys,
                  const std::function<void(size_t, std::string_view)>& found) override {
    ++visits;
    visited_keys += keys.size();
    inner->visit_many(keys, found);
  }
};

}  // namespace digue::test
