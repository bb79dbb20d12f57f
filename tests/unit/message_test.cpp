// Message: the lazily derived facts and memo values, across threads (a filter abandoned at
// its deadline may still be computing on a worker while the run goes on).
#include "digue/message.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>

using namespace digue;

TEST_CASE("message: a memo value is computed once; facts() never waits for a computation",
          "[message]") {
  Message msg(std::string("Subject: hello\r\n\r\nbody\r\n"));
  CHECK_FALSE(msg.parsed());
  std::promise<void> started, release;
  int computed = 0;
  // A worker computes a slow value (as an abandoned bayes run would) ...
  std::thread worker([&] {
    msg.memo<int>("slow", [&] {
      ++computed;
      started.set_value();
      release.get_future().wait();
      return 42;
    });
  });
  started.get_future().wait();
  // ... meanwhile another thread parses and reads other keys without waiting for it.
  auto other = std::async(std::launch::async, [&] {
    return msg.facts().subject + "/" + std::to_string(msg.memo<int>("fast", [] { return 7; }));
  });
  bool done = other.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  release.set_value();
  worker.join();
  REQUIRE(done);  // a deadlock or a wait on the slow value would leave it pending
  CHECK(other.get() == "hello/7");
  CHECK(msg.parsed());
  // The slow value was computed once and is shared.
  CHECK(msg.memo<int>("slow", [&] {
    ++computed;
    return 0;
  }) == 42);
  CHECK(computed == 1);
  // Same key, other type: a separate value.
  CHECK(msg.memo<std::string>("slow", [] { return std::string("s"); }) == "s");
}

TEST_CASE("message: a memo computation that throws is retried by the next caller",
          "[message]") {
  Message msg(std::string("Subject: x\r\n\r\n"));
  CHECK(msg.find_memo<int>("k") == nullptr);
  CHECK_THROWS_AS(msg.memo<int>("k", []() -> int { throw std::runtime_error("store down"); }),
                  std::runtime_error);
  CHECK(msg.find_memo<int>("k") == nullptr);  // a failed computation leaves nothing
  CHECK(msg.memo<int>("k", [] { return 3; }) == 3);
  REQUIRE(msg.find_memo<int>("k") != nullptr);
  CHECK(*msg.find_memo<int>("k") == 3);
  CHECK(msg.find_memo<long>("k") == nullptr);  // another type, another value
}

TEST_CASE("message: a caller waiting for a memo computation that throws computes it itself",
          "[message]") {
  Message msg(std::string("Subject: x\r\n\r\n"));
  std::atomic<bool> started{false}, release{false};
  std::atomic<int> computed{0};
  std::thread first([&] {
    try {
      msg.memo<int>("k", [&]() -> int {
        started = true;
        while (!release) std::this_thread::yield();
        throw std::runtime_error("store down");
      });
    } catch (const std::runtime_error&) {
    }
  });
  while (!started) std::this_thread::yield();
  int got = 0;
  std::thread second([&] {
    got = msg.memo<int>("k", [&] {
      ++computed;
      return 7;
    });
  });
  release = true;  // the first computation throws while (most likely) the second waits
  first.join();
  second.join();
  CHECK(got == 7);
  CHECK(computed == 1);
  REQUIRE(msg.find_memo<int>("k") != nullptr);
  CHECK(*msg.find_memo<int>("k") == 7);
}
