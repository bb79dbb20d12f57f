#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "digue/memory_budget.hpp"
#include "digue/smtp_protocol.hpp"

using digue::MemoryBudget;
using digue::smtp::DataDecoder;
using digue::smtp::feed_counted;

namespace {

// `lines` lines of 78 bytes, every other one ending in a bare LF (stored as CRLF: the message
// grows faster than the bytes read), then the end of data.
std::string data_lines(size_t lines) {
  std::string out;
  for (size_t i = 0; i < lines; ++i)
    out += std::string(76, static_cast<char>('a' + i % 26)) + (i % 2 ? "\n" : "\r\n");
  return out + "\r\n.\r\n";
}

}  // namespace

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

TEST_CASE("memory budget: DATA is counted by the capacity that holds it", "[budget]") {
  MemoryBudget b(size_t{64} << 20);
  DataDecoder dec(size_t{8} << 20, 1000);
  std::string wire = data_lines(40000);  // about 3 MB
  size_t reallocations = 0;
  {
    MemoryBudget::Hold hold(b);
    const char* buffer = nullptr;
    size_t pos = 0, chunk = 1000;
    while (!dec.done()) {
      REQUIRE(pos < wire.size());
      size_t n = std::min(chunk, wire.size() - pos);
      pos += feed_counted(dec, hold, std::string_view(wire).substr(pos, n));
      // What is counted is what the string holds, not its size (up to half of it).
      CHECK(hold.held() == dec.capacity());
      CHECK(b.in_use() == dec.capacity());
      CHECK(dec.message().size() <= dec.capacity());
      if (dec.message().data() != buffer) {
        buffer = dec.message().data();
        reallocations++;
      }
      chunk = chunk * 3 % 65536 + 1;  // reads of every size up to 64 KiB
    }
    CHECK_FALSE(dec.discarded());
    CHECK(dec.message().size() > 3000000);
  }
  CHECK(b.in_use() == 0);
  // Geometric growth: a few reallocations for megabytes, not one per read.
  CHECK(reallocations <= 12);
}

TEST_CASE("memory budget: a message of max_message_size fits the smallest budget allowed",
          "[budget]") {
  // [server] max_data_memory may be as small as max_message_size + 256 KiB (config.cpp): the
  // buffer's growth stops at max_message_size, so the largest message is never refused.
  std::string wire = data_lines(13000);
  size_t max_size = 13000 * 78 + 2;  // the message's size (bare LFs stored as CRLF)
  MemoryBudget b(max_size + (256 << 10));
  DataDecoder dec(max_size, 1000);
  MemoryBudget::Hold hold(b);
  for (size_t pos = 0; !dec.done(); pos += 65536)
    feed_counted(dec, hold, std::string_view(wire).substr(pos, 65536));
  CHECK_FALSE(dec.discarded());
  CHECK_FALSE(dec.too_big());
  CHECK(dec.message().size() == max_size);
  CHECK(dec.capacity() <= max_size);
  CHECK(hold.held() == dec.capacity());
}

TEST_CASE("memory budget: a read the budget cannot hold discards the message", "[budget]") {
  MemoryBudget b(100000);
  MemoryBudget::Hold other(b);
  REQUIRE(other.resize(40000));
  DataDecoder dec(size_t{1} << 20, 1000);
  MemoryBudget::Hold hold(b);
  std::string wire = data_lines(3000);  // 234 kB
  for (size_t pos = 0; !dec.done(); pos += 8192)
    feed_counted(dec, hold, std::string_view(wire).substr(pos, 8192));
  CHECK(dec.discarded());  // read to its end all the same
  CHECK(dec.message().empty());
  CHECK(hold.held() == dec.capacity());  // the freed buffer: (almost) nothing
  CHECK(hold.held() < 64);
  CHECK(b.in_use() == 40000 + hold.held());
}
