// MemoryBudget: a process-wide cap on the bytes many holders keep in memory at once (the DATA
// of all SMTP sessions, [server] max_data_memory).
// Contract: thread-safe and lock-free; a take that would pass the limit is refused at once
// (nobody waits, the caller decides what to answer); a Hold gives back all it holds when it
// goes. The limit may change at any time (reload): holdings above a lowered limit stay until
// given back, later takes see the new limit.
#pragma once

#include <atomic>
#include <cstddef>

namespace digue {

class MemoryBudget {
 public:
  explicit MemoryBudget(size_t limit) : limit_(limit) {}
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  void set_limit(size_t limit) { limit_.store(limit, std::memory_order_relaxed); }
  size_t limit() const { return limit_.load(std::memory_order_relaxed); }
  size_t in_use() const { return used_.load(std::memory_order_relaxed); }

  bool try_take(size_t n) {
    size_t cur = used_.load(std::memory_order_relaxed);
    for (;;) {
      size_t lim = limit();
      if (n > lim || cur > lim - n) return false;
      if (used_.compare_exchange_weak(cur, cur + n, std::memory_order_relaxed)) return true;
    }
  }
  void give_back(size_t n) { used_.fetch_sub(n, std::memory_order_relaxed); }

  // What one holder (a session's message) has taken.
  class Hold {
   public:
    explicit Hold(MemoryBudget& budget) : budget_(budget) {}
    ~Hold() { budget_.give_back(held_); }
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;

    // Holds exactly n bytes. Giving back always succeeds; when taking more is refused, the
    // holding stays as it was and false is returned.
    bool resize(size_t n) {
      if (n == held_) return true;  // the usual case per read: no atomic operation
      if (n < held_) {
        budget_.give_back(held_ - n);
      } else if (!budget_.try_take(n - held_)) {
        return false;
      }
      held_ = n;
      return true;
    }
    size_t held() const { return held_; }

   private:
    MemoryBudget& budget_;
    size_t held_ = 0;
  };

 private:
  std::atomic<size_t> limit_;
  std::atomic<size_t> used_{0};
};

}  // namespace digue
