#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <filesystem>
#include <fstream>

#include "digue/config.hpp"
#include "digue/ctl.hpp"
#include "digue/quarantine.hpp"
#include "digue/spool.hpp"
#include "digue/store.hpp"
#include "tests/unit/delivery_test_support.hpp"

using namespace digue::quarantine;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

IndexEntry sample() {
  IndexEntry e;
  e.from = "a@example.org";
  e.rcpts = "u@example.test,v@example.test";
  e.created = 1764064800;
  e.filter = "empty_sender";
  e.subject = "evil\t0\tx\t/etc/passwd\r\nX: y";
  return e;
}

}  // namespace

TEST_CASE("quarantine index: fields never shift", "[quarantine]") {
  IndexEntry e = sample();
  IndexEntry d = decode(encode(e));
  CHECK(d.from == e.from);
  CHECK(d.rcpts == e.rcpts);
  CHECK(d.created == e.created);
  CHECK(d.filter == e.filter);
  CHECK(d.subject == "evil 0 x /etc/passwd  X: y");
  CHECK(encode(e).find('\n') == std::string::npos);

  e.from.clear();  // the null sender
  e.subject.clear();
  d = decode(encode(e));
  CHECK(d.from.empty());
  CHECK(d.subject.empty());
  CHECK(d.filter == "empty_sender");

  // A TAB stored in the subject field by hand still stays in the subject.
  d = decode("2\ta@x.test\tu@example.test\t5\tbayes\tone\ttwo");
  CHECK(d.filter == "bayes");
  CHECK(d.created == 5);
  CHECK(d.subject == "one two");
}

TEST_CASE("quarantine index: first format still read", "[quarantine]") {
  IndexEntry d =
      decode("a@x.test\tu@example.test\thello\t7\tbayes\t/s/quarantine/ID.example.test.eml");
  CHECK(d.from == "a@x.test");
  CHECK(d.rcpts == "u@example.test");
  CHECK(d.subject == "hello");
  CHECK(d.created == 7);
  CHECK(d.filter == "bayes");
  // A TAB in the subject made more fields: created and filter are counted from the end.
  d = decode("\tu@example.test\tevil\t0\tx\t/etc/passwd\t7\tbayes\t/s/quarantine/ID.d.eml");
  CHECK(d.from.empty());
  CHECK(d.subject == "evil 0 x /etc/passwd");
  CHECK(d.created == 7);
  CHECK(d.filter == "bayes");
  // Garbage decodes to an empty entry, it does not throw.
  CHECK(decode("").filter.empty());
  CHECK(decode("a\tb").filter.empty());
}

TEST_CASE("quarantine file path is derived, not stored", "[quarantine]") {
  CHECK(file_path("/s", "0ABC", "Example.Test") == "/s/quarantine/0ABC.example.test.eml");
  CHECK(file_path("/s", "0ABC", "a/../b") == "/s/quarantine/0ABC.a_.._b.eml");
  CHECK(index_key("example.test", "0ABC") == "quar:example.test:0ABC");
  CHECK(valid_id("0KQ3ZJ5W8F1A2B3C4D5E"));
  CHECK(!valid_id(""));
  CHECK(!valid_id("../x"));
  CHECK(!valid_id("a/b"));
  CHECK(!valid_id("a.b"));
}

TEST_CASE("quarantine index: envelope flags kept, format 2 still read", "[quarantine]") {
  IndexEntry e = sample();
  for (auto [utf8, bit8] : {std::pair{false, false}, {true, false}, {false, true}, {true, true}}) {
    e.smtputf8 = utf8;
    e.body_8bit = bit8;
    IndexEntry d = decode(encode(e));
    CHECK(d.smtputf8 == utf8);
    CHECK(d.body_8bit == bit8);
    CHECK(d.filter == "empty_sender");
    CHECK(d.subject == "evil 0 x /etc/passwd  X: y");
  }
  IndexEntry d = decode("2\ta@x.test\tu@example.test\t5\tbayes\t8U");
  CHECK(d.subject == "8U");
  CHECK(!d.smtputf8);
  CHECK(!d.body_8bit);
}

TEST_CASE("quarantine retention sweep: old copies, crash leftovers, bounded", "[quarantine]") {
  digue::test::TempDir dir;
  std::string spool = dir.path.string();
  fs::create_directory(dir.path / "quarantine");
  auto store = digue::make_memory_store();
  auto now = fs::file_time_type::clock::now();
  auto make = [&](const std::string& name, fs::file_time_type when) {
    std::ofstream(dir.path / "quarantine" / name) << "x";
    fs::last_write_time(dir.path / "quarantine" / name, when);
  };
  make("0OLD1.example.test.eml", now - 48h);
  make("0OLD2.example.test.eml", now - 48h);
  make("0NEW.example.test.eml", now - 1h);
  make("0CRASH.example.test.eml.tmp", now - 2h);
  make("0BUSY.example.test.eml.tmp", now);
  for (auto id : {"0OLD1", "0OLD2", "0NEW"}) store->put(index_key("example.test", id), "x");
  CHECK(sweep(spool, 24h, store.get(), 1) == 1);
  CHECK(sweep(spool, 24h, store.get(), 100) == 2);
  CHECK(sweep(spool, 24h, store.get(), 100) == 0);
  auto left = digue::test::files_in(dir.path / "quarantine");
  REQUIRE(left.size() == 2);
  CHECK(left[0].filename() == "0BUSY.example.test.eml.tmp");
  CHECK(left[1].filename() == "0NEW.example.test.eml");
  CHECK(!store->get(index_key("example.test", "0OLD1")));
  CHECK(!store->get(index_key("example.test", "0OLD2")));
  CHECK(store->get(index_key("example.test", "0NEW")));
  CHECK(sweep(spool + "/missing", 24h, nullptr, 10) == 0);
}

namespace {

std::shared_ptr<const digue::Config> ctl_config(const fs::path& dir) {
  return digue::parse_config(fmt::format(R"([server]
hostname = "mx.test"
[spool]
dir = "{0}/spool"
[store]
dir = "{0}/store"
[pipeline]
order = []
[domains."example.test"]
downstream = ["maildir"]
)", dir.string()), "quarantine_test.toml");
}

}  // namespace

TEST_CASE("quarantine release keeps SMTPUTF8 and 8BITMIME", "[quarantine]") {
  digue::test::TempDir dir;
  auto config = ctl_config(dir.path);
  digue::Spool spool(config->spool);
  std::string id = digue::Spool::new_id();
  IndexEntry e;
  e.from = "s@example.org";
  e.rcpts = "u@example.test";
  e.smtputf8 = true;
  e.body_8bit = true;
  {
    auto store = digue::make_lmdb_store(config->store.dir, config->store.map_size);
    store->put(index_key("example.test", id), encode(e));
  }
  std::ofstream(file_path(config->spool.dir, id, "example.test")) << "Subject: x\r\n\r\nhi\r\n";
  REQUIRE(digue::ctl::quarantine(*config, {"release", id}) == 0);
  auto picked = digue::test::files_in(fs::path(config->spool.dir) / "pickup");
  REQUIRE(picked.size() == 1);
  auto loaded = digue::Spool::read_path(picked[0].string(), false);
  REQUIRE(loaded);
  CHECK(loaded->record.envelope.smtputf8);
  CHECK(loaded->record.envelope.body_8bit);
  CHECK(loaded->record.rcpts.at(0).action == "release");
}

TEST_CASE("quarantine reindex rebuilds missing entries from the copies", "[quarantine]") {
  digue::test::TempDir dir;
  auto config = ctl_config(dir.path);
  digue::Spool spool(config->spool);
  std::string id = digue::Spool::new_id();
  std::ofstream(file_path(config->spool.dir, id, "example.test"))
      << "Received: from a.example (a.example [192.0.2.1])\r\n"
         "X-Digue-Envelope-From: <s@example.org>\r\n"
         "X-Digue-Envelope-To: <u@example.test>,\r\n <v@example.test>\r\n"
         "X-Digue-Filter: bayes\r\n"
         "Subject: cheap \xe2\x82\xac\r\n\r\nbody\r\n";
  REQUIRE(digue::ctl::quarantine(*config, {"reindex"}) == 0);
  auto store = digue::make_lmdb_store(config->store.dir, config->store.map_size);
  auto v = store->get(index_key("example.test", id));
  REQUIRE(v);
  IndexEntry e = decode(*v);
  CHECK(e.from == "s@example.org");
  CHECK(e.rcpts == "u@example.test,v@example.test");
  CHECK(e.filter == "bayes");
  CHECK(e.subject == "cheap \xe2\x82\xac");
  CHECK(e.body_8bit);
  CHECK(!e.smtputf8);
  CHECK(e.created > 0);
}
