// Store contract tests, run against every implementation (memory and LMDB on a temp dir).
#include "digue/store.hpp"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <thread>

using digue::Store;
using digue::StoreError;
using namespace std::chrono_literals;

namespace {

struct TempDir {
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "digue-store-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string path;
};

struct Fixture {
  explicit Fixture(const std::string& kind) : kind(kind) { reopen(); }
  void reopen() {
    store.reset();
    store = kind == "memory" ? digue::make_memory_store()
                             : digue::make_lmdb_store(dir.path, size_t{64} << 20);
  }
  std::string kind;
  TempDir dir;
  std::unique_ptr<Store> store;
};

std::vector<std::string> scan_keys(Store& s, std::string_view prefix) {
  std::vector<std::string> keys;
  s.scan(prefix, [&](std::string_view k, std::string_view) {
    keys.emplace_back(k);
    return true;
  });
  return keys;
}

}  // namespace

TEST_CASE("store get put del", "[store]") {
  Fixture f(GENERATE(as<std::string>{}, "memory", "lmdb"));
  auto& s = *f.store;
  CHECK(!s.get("a:1"));
  s.put("a:1", "one");
  CHECK(s.get("a:1") == "one");
  s.put("a:1", std::string("b\0in", 4));  // values are bytes, NUL included
  CHECK(s.get("a:1") == std::string("b\0in", 4));
  s.put("a:2", "");
  CHECK(s.get("a:2") == "");
  CHECK(s.del("a:1"));
  CHECK(!s.del("a:1"));
  CHECK(!s.get("a:1"));
  std::vector<std::pair<size_t, std::string>> seen;
  s.visit_many({"nope", "a:2"}, [&](size_t i, std::string_view v) { seen.emplace_back(i, v); });
  CHECK(seen == std::vector<std::pair<size_t, std::string>>{{1, ""}});
  auto many = s.get_many({"a:2", "nope", "a:1"});
  REQUIRE(many.size() == 3);
  CHECK(many[0] == "");
  CHECK(!many[1]);
  CHECK(!many[2]);
}

TEST_CASE("store incr", "[store]") {
  Fixture f(GENERATE(as<std::string>{}, "memory", "lmdb"));
  auto& s = *f.store;
  CHECK(s.incr("c:x", 5) == 5);
  CHECK(s.incr("c:x", -2) == 3);
  CHECK(s.get("c:x") == "3");
  s.put("c:y", "40");
  CHECK(s.incr("c:y", 2) == 42);
  s.put("c:z", "abc");
  CHECK_THROWS_AS(s.incr("c:z", 1), StoreError);
  CHECK(s.get("c:z") == "abc");
}

TEST_CASE("store incr is atomic across threads", "[store]") {
  Fixture f(GENERATE(as<std::string>{}, "memory", "lmdb"));
  auto& s = *f.store;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) s.incr("c:n", 1);
    });
  for (auto& t : threads) t.join();
  CHECK(s.get("c:n") == "800");
}

TEST_CASE("store update is read-modify-write without lost updates", "[store]") {
  Fixture f(GENERATE(as<std::string>{}, "memory", "lmdb"));
  auto& s = *f.store;
  auto bump = [&] {
    s.update({"u:a", "u:b"}, [](const auto& values) {
      std::vector<Store::Op> ops;
      for (int i = 0; i < 2; ++i) {
        int n = values[i] ? std::stoi(*values[i]) : 0;
        ops.push_back({Store::Op::Kind::Put, i == 0 ? "u:a" : "u:b", std::to_string(n + 1)});
      }
      return ops;
    });
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) bump();
    });
  for (auto& t : threads) t.join();
  CHECK(s.get("u:a") == "400");
  CHECK(s.get("u:b") == "400");
}

TEST_CASE("store scan by prefix in key order", "[store]") {
  Fixture f(GENERATE(as<std::string>{}, "memory", "lmdb"));
  auto& s = *f.store;
  for (auto k : {"p:b", "p:a", "q:a", "p:c", "o:z", "p"}) s.put(k, k);
  CHECK(scan_keys(s, "p:") == std::vector<std::string>{"p:a", "p:b", "p:c"});
  CHECK(scan_keys(s, "p") == std::vector<std::string>{"p", "p:a", "p:b", "p:c"});
  CHECK(scan_keys(s, "zz").empty());
  CHECK(scan_keys(s, "").size() == 6);
  // Stops when fn returns false.
  int n = 0;
  s.scan("p:", [&](std::string_view, std::string_view v) {
    CHECK(v == "p:a");
    return ++n < 1;
  });
  CHECK(n == 1);
}

TEST_CASE("store ttl expiry", "[store]") {
  Fixture f(GENERATE(as<std::string>{}, "memory", "lmdb"));
  auto& s = *f.store;
  s.put("t:short", "x", 1s);
  s.put("t:long", "y", 3600s);
  s.put("t:forever", "z");
  CHECK(s.incr("t:ctr", 1, 1s) == 1);
  CHECK(s.get("t:short") == "x");
  CHECK(scan_keys(s, "t:").size() == 4);
  std::this_thread::sleep_for(1100ms);
  CHECK(!s.get("t:short"));
  CHECK(!s.get_many({"t:short"})[0]);
  CHECK(s.get("t:long") == "y");
  CHECK(s.get("t:forever") == "z");
  CHECK(scan_keys(s, "t:") == std::vector<std::string>{"t:forever", "t:long"});
  // An expired counter starts again from zero.
  CHECK(s.incr("t:ctr", 1, 1s) == 1);
  // Deleting an expired key reports it as absent.
  s.put("t:gone", "x", 1s);
  std::this_thread::sleep_for(1100ms);
  CHECK(!s.del("t:gone"));
  s.put("t:gone2", "x", 1s);
  std::this_thread::sleep_for(1100ms);
  CHECK(s.purge_expired() >= 1);
  CHECK(s.purge_expired() == 0);
  CHECK(s.get("t:long") == "y");
}

TEST_CASE("store apply is atomic", "[store]") {
  Fixture f(GENERATE(as<std::string>{}, "memory", "lmdb"));
  auto& s = *f.store;
  using K = Store::Op::Kind;
  s.put("x:old", "1");
  s.put("x:text", "not a number");
  s.apply({{K::Put, "x:a", "A"}, {K::Incr, "x:n", "", 7}, {K::Del, "x:old", ""}});
  CHECK(s.get("x:a") == "A");
  CHECK(s.get("x:n") == "7");
  CHECK(!s.get("x:old"));
  // A failing op rolls back the ones before it.
  CHECK_THROWS_AS(s.apply({{K::Put, "x:b", "B"}, {K::Del, "x:a", ""}, {K::Incr, "x:text", "", 1}}),
                  StoreError);
  CHECK(!s.get("x:b"));
  CHECK(s.get("x:a") == "A");
  CHECK(s.get("x:text") == "not a number");
}

TEST_CASE("lmdb store persists across reopen", "[store]") {
  Fixture f("lmdb");
  f.store->put("k:1", "v1");
  f.store->incr("k:n", 3);
  f.store->put("k:ttl", "soon", 3600s);
  f.reopen();
  CHECK(f.store->get("k:1") == "v1");
  CHECK(f.store->get("k:n") == "3");
  CHECK(f.store->get("k:ttl") == "soon");
}

TEST_CASE("lmdb store rejects bad keys and reports a full map", "[store]") {
  TempDir dir;
  auto s = digue::make_lmdb_store(dir.path, size_t{1} << 20);
  CHECK_THROWS_AS(s->put(std::string(600, 'k'), "v"), StoreError);
  CHECK_THROWS_AS(s->put("", "v"), StoreError);
  std::string big(64 * 1024, 'x');
  auto fill = [&] {
    for (int i = 0; i < 100; ++i) s->put("big:" + std::to_string(i), big);
  };
  CHECK_THROWS_WITH(fill(), Catch::Contains("MDB_MAP_FULL"));
  // The store still works after the failed transaction.
  s->put("small", "ok");
  CHECK(s->get("small") == "ok");
}

TEST_CASE("lmdb store adopts a map grown by another process", "[store]") {
  TempDir dir;
  digue::LmdbOptions small;
  small.map_size = size_t{1} << 20;
  small.purge_interval = 0s;  // no maintenance thread: the fork below copies only this one
  auto s = digue::make_lmdb_store(dir.path, small);
  s->put("before", "1");
  CHECK(s->get("before") == "1");  // a pooled read transaction, renewed below
  // Another process (diguectl bayes train with a larger map_size) fills more than our map.
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int rc = 1;
    try {
      auto big = digue::make_lmdb_store(dir.path, size_t{16} << 20);
      std::string value(64 * 1024, 'x');
      for (int i = 0; i < 64; ++i) big->put("big:" + std::to_string(i), value);
      rc = 0;
    } catch (...) {
    }
    ::_exit(rc);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  // Without adopting the new size every transaction would fail with MDB_MAP_RESIZED.
  CHECK(s->get("big:63") == std::string(64 * 1024, 'x'));
  s->put("after", "2");
  CHECK(s->get("after") == "2");
  CHECK(s->get("before") == "1");
}

TEST_CASE("lmdb periodic sync mode works", "[store]") {
  TempDir dir;
  digue::LmdbOptions opt;
  opt.map_size = size_t{16} << 20;
  opt.sync = digue::LmdbSync::Periodic;
  opt.sync_interval = 50ms;
  {
    auto s = digue::make_lmdb_store(dir.path, opt);
    // Nothing written yet: no tick syncs (only writes make the store dirty).
    std::this_thread::sleep_for(3 * opt.sync_interval);
    CHECK(s->background_syncs() == 0);
    for (int i = 0; i < 50; ++i) s->incr("n", 1);
    // The background thread syncs the writes by itself, without a sync() call (bounded wait).
    auto end = std::chrono::steady_clock::now() + 10s;
    while (s->background_syncs() == 0 && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(10ms);
    CHECK(s->background_syncs() >= 1);
    // Once synced and idle, it stops syncing; the next write gets its own sync.
    auto idle = s->background_syncs();
    std::this_thread::sleep_for(3 * opt.sync_interval);
    CHECK(s->background_syncs() <= idle + 1);
    s->incr("n", 1);
    end = std::chrono::steady_clock::now() + 10s;
    auto synced = s->background_syncs();
    while (s->background_syncs() == synced && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(10ms);
    CHECK(s->background_syncs() > synced);
  }
  auto s = digue::make_lmdb_store(dir.path, opt);
  CHECK(s->get("n") == "51");
}

TEST_CASE("overlay store: reads see base and own writes, writes never reach base", "[store]") {
  auto base = digue::make_memory_store();
  base->put("a", "1");
  base->put("b", "2");
  base->put("n", "40");
  auto o = digue::make_overlay_store(*base);
  CHECK(o->get("a") == "1");
  o->put("a", "x");
  o->put("c", "3");
  CHECK(o->del("b"));
  CHECK(!o->del("missing"));
  CHECK(o->incr("n", 2) == 42);
  CHECK(o->incr("fresh", 5) == 5);
  o->update({"c"}, [](const std::vector<std::optional<std::string>>& v) {
    return std::vector<digue::Store::Op>{{digue::Store::Op::Kind::Put, "c", *v[0] + "3"}};
  });
  CHECK(o->get("a") == "x");
  CHECK(!o->get("b"));
  CHECK(o->get("c") == "33");
  CHECK(o->get("n") == "42");
  std::vector<std::string> seen;
  o->scan("", [&](std::string_view k, std::string_view v) {
    seen.push_back(std::string(k) + "=" + std::string(v));
    return true;
  });
  CHECK(seen == std::vector<std::string>{"a=x", "c=33", "fresh=5", "n=42"});
  o->put("b", "back");
  CHECK(o->get("b") == "back");
  // The base is untouched.
  CHECK(base->get("a") == "1");
  CHECK(base->get("b") == "2");
  CHECK(!base->get("c"));
  CHECK(base->get("n") == "40");
  CHECK(!base->get("fresh"));
}
