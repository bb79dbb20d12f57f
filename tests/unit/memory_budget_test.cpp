#include <catch2/catch.hpp>

#include <thread>
#include <vector>

#include "digue/memory_budget.hpp"

using digue::MemoryBudget;

TEST_CASE("memory budget: holds never pass the limit and are given back", "[budget]") {
  MemoryBudget b(100);
  {
    MemoryBudget::Hold a(b), c(b);
    CHECK(a.resize(60));
    CHECK(b.in_use() == 60);
    CHECK_FALSE(c.resize(41));  // 101 > 100: refused, nothing taken
    CHECK(c.held() == 0);
    CHECK(b.in_use() == 60);
    CHECK(c.resize(40));
    CHECK(b.in_use() == 100);
    CHECK(a.resize(10));  // giving back always works
    CHECK(b.in_use() == 50);
    CHECK_FALSE(a.resize(200));
    CHECK(a.held() == 10);
  }
  CHECK(b.in_use() == 0);  // both holds went
}

TEST_CASE("memory budget: a lowered limit keeps holdings, refuses new takes", "[budget]") {
  MemoryBudget b(100);
  MemoryBudget::Hold a(b);
  REQUIRE(a.resize(80));
  b.set_limit(50);
  CHECK(b.in_use() == 80);
  CHECK_FALSE(b.try_take(1));
  CHECK(a.resize(20));
  CHECK(b.try_take(30));
  b.give_back(30);
  CHECK(b.in_use() == 20);
}

TEST_CASE("memory budget: concurrent holders stay within the limit", "[budget]") {
  MemoryBudget b(1000);
  std::atomic<size_t> peak{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        MemoryBudget::Hold h(b);
        if (h.resize(static_cast<size_t>(100 + i % 300))) {
          size_t now = b.in_use(), p = peak.load();
          while (now > p && !peak.compare_exchange_weak(p, now)) {
          }
        }
      }
    });
  for (auto& th : threads) th.join();
  CHECK(peak.load() <= 1000);
  CHECK(b.in_use() == 0);
}
