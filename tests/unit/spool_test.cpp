#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "digue/spool.hpp"
#include "tests/unit/spool_test_support.hpp"

using namespace digue;

namespace {
// A fresh directory, removed when the test ends, also when an assertion aborts it.
struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "digue-spool-test-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};
}  // namespace

TEST_CASE("spool record round trip", "[spool]") {
  SpoolRecord r;
  r.id = "ABC";
  r.state = SpoolState::Deferred;
  r.envelope.client_ip = "2001:db8::1";
  r.envelope.helo = "weird helo with spaces%";
  r.envelope.mail_from = {"a b", "example.test"};
  r.envelope.tls = TlsInfo{"TLSv1.3", "TLS_AES_128_GCM_SHA256"};
  r.rcpts.push_back({{"u", "example.test"}, RcptState::Status::Pending, "tag", 2, "451 4.3.0 later\r\n"});
  r.headers["example.test"] = "X-A: 1\r\nX-B: 2\r\n";
  r.tags["example.test"] = "SPAM: ";
  r.next_try = 1234;
  auto back = SpoolRecord::parse(r.serialize());
  REQUIRE(back);
  CHECK(back->id == "ABC");
  CHECK(back->state == SpoolState::Deferred);
  CHECK(back->envelope.client_ip == "2001:db8::1");
  CHECK(back->envelope.helo == r.envelope.helo);
  CHECK(back->envelope.mail_from.local == "a b");
  CHECK(back->envelope.tls->cipher == "TLS_AES_128_GCM_SHA256");
  REQUIRE(back->rcpts.size() == 1);
  CHECK(back->rcpts[0].action == "tag");
  CHECK(back->rcpts[0].attempts == 2);
  CHECK(back->rcpts[0].last_error == "451 4.3.0 later\r\n");
  CHECK(back->headers["example.test"] == r.headers["example.test"]);
  CHECK(back->tags["example.test"] == "SPAM: ");
  CHECK(back->next_try == 1234);
  CHECK(!SpoolRecord::parse("digue-spool 1\nid X\n"));  // truncated: no "end"
}

TEST_CASE("spool wait_idle returns once every commit's handler is posted", "[spool]") {
  // The server waits for this before its io_contexts go: a handler posted later would reach a
  // destroyed io_context.
  TempDir tmp;
  SpoolConfig cfg;
  cfg.dir = tmp.path;
  Spool spool(cfg);
  boost::asio::io_context io;
  int done = 0;
  for (int i = 0; i < 20; ++i) {
    spool.async_commit(std::make_shared<std::string>("Subject: x\r\n\r\nbody\r\n"),
                       test::release_record(),
                       boost::asio::bind_executor(io, [&](boost::system::error_code ec) {
                         CHECK(!ec);
                         ++done;
                       }));
  }
  spool.wait_idle();
  io.poll();  // runs what is already posted, waits for nothing
  CHECK(done == 20);
  spool.wait_idle();  // idle: returns at once
}

TEST_CASE("spool commit, recover, orphans", "[spool]") {
  TempDir tmp;
  const std::string& dir = tmp.path;
  SpoolConfig cfg;
  cfg.dir = dir;
  std::vector<std::string> ids;
  {
    Spool spool(cfg);
    boost::asio::io_context io;
    int done = 0;
    for (int i = 0; i < 20; ++i) {
      SpoolRecord r;
      r.id = spool.new_id();
      ids.push_back(r.id);
      RcptState rs;
      rs.address = {"u", "example.test"};
      r.rcpts.push_back(rs);
      spool.async_commit(std::make_shared<std::string>("Subject: " + std::to_string(i) + "\r\n\r\nx\r\n"),
                         r, boost::asio::bind_executor(io, [&](boost::system::error_code ec) {
                           CHECK(!ec);
                           ++done;
                         }));
    }
    auto guard = boost::asio::make_work_guard(io);
    // Bounded: a commit that never completes fails the test instead of hanging it.
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (done < 20 && std::chrono::steady_clock::now() < end)
      io.run_one_for(std::chrono::milliseconds(50));
    REQUIRE(done == 20);
    CHECK(spool.commits() == 20);
    CHECK(spool.batches() <= 20);
    // The writer thread may still be inside the last post() to io (its handler already ran):
    // io, declared after the spool, goes first. As Server's destructor does, wait for it.
    spool.wait_idle();
  }
  std::set<std::string> unique(ids.begin(), ids.end());
  CHECK(unique.size() == ids.size());
  // A file cut short (a crash before its sync) was never acknowledged: recovery removes it.
  std::FILE* f = std::fopen((dir + "/queue/CUTSHORT").c_str(), "w");
  std::fputs("digue-spool 2 500 1000\ndigue-spool 1\nid CUTSHORT\n", f);
  std::fclose(f);
  // A complete file whose record cannot be read is kept aside, never deleted.
  f = std::fopen((dir + "/queue/GARBLED").c_str(), "w");
  std::fputs("digue-spool 2 4 2\nxxxxyy", f);
  std::fclose(f);
  // No parseable header (an older format, a foreign or damaged file): possibly acknowledged,
  // so kept aside too, never taken for a torn write.
  f = std::fopen((dir + "/queue/OLDFORMAT").c_str(), "w");
  std::fputs("digue-spool 1\nid OLDFORMAT\nend\n", f);
  std::fclose(f);
  f = std::fopen((dir + "/queue/NOHEADER").c_str(), "w");
  std::fputs("garbage", f);
  std::fclose(f);
  Spool again(cfg);
  auto recs = again.recover();
  CHECK(recs.size() == 20);
  CHECK(!std::filesystem::exists(dir + "/queue/CUTSHORT"));
  CHECK(std::filesystem::exists(dir + "/corrupt/GARBLED"));
  CHECK(std::filesystem::exists(dir + "/corrupt/OLDFORMAT"));
  CHECK(std::filesystem::exists(dir + "/corrupt/NOHEADER"));
  // A deferral rewrites the record and keeps the message.
  recs[0].attempts = 3;
  REQUIRE(again.update(recs[0]));
  auto reread = Spool::read_path(dir + "/queue/" + recs[0].id, true);
  REQUIRE(reread);
  CHECK(reread->record.attempts == 3);
  CHECK(reread->message->rfind("Subject: ", 0) == 0);
  auto msg = again.load_message(recs[0].id);
  REQUIRE(msg);
  CHECK(msg->rfind("Subject: ", 0) == 0);
}

TEST_CASE("spool: one process per spool directory", "[spool]") {
  TempDir tmp;
  SpoolConfig cfg;
  cfg.dir = tmp.path;
  {
    Spool first(cfg);
    // A second daemon on the same spool would wipe the first's tmp/ in recover().
    CHECK_THROWS_WITH(Spool(cfg), Catch::Contains(tmp.path) && Catch::Contains("in use"));
  }
  Spool after(cfg);  // released with the first
  CHECK(std::filesystem::exists(tmp.path + "/lock"));
}

TEST_CASE("spool: a pickup file written by root belongs to the spool's owner", "[spool]") {
  if (::geteuid() != 0) {
    WARN("not run: needs root to change a file's owner");
    return;
  }
  TempDir tmp;
  SpoolConfig cfg;
  cfg.dir = tmp.path;
  { Spool init(cfg); }  // creates pickup/ and tmp/
  // The daemon's user owns the spool (here: nobody); `sudo diguectl quarantine release`
  // writes into it as root.
  const uid_t nobody = 65534;
  const gid_t nogroup = 65534;
  REQUIRE(::chown((tmp.path + "/pickup").c_str(), nobody, nogroup) == 0);
  SpoolRecord rec = digue::test::release_record();
  REQUIRE(Spool::write_pickup(tmp.path, rec, "Subject: x\r\n\r\nhi\r\n"));
  struct stat st {};
  REQUIRE(::stat((tmp.path + "/pickup/" + rec.id).c_str(), &st) == 0);
  CHECK(st.st_uid == nobody);
  CHECK(st.st_gid == nogroup);
  CHECK(Spool::read_path(tmp.path + "/pickup/" + rec.id, true));
}

TEST_CASE("spool: read_path tells an I/O failure from a file that is no spool file", "[spool]") {
  TempDir tmp;
  int e = -1;
  CHECK(!Spool::read_path(tmp.path + "/missing", true, &e));
  CHECK(e == ENOENT);
  e = -1;
  CHECK(!Spool::read_path(tmp.path, true, &e));  // a directory: reading it fails (EISDIR)
  CHECK(e != 0);
  {
    std::ofstream out(tmp.path + "/junk");
    out << "hello\n";
  }
  e = -1;
  CHECK(!Spool::read_path(tmp.path + "/junk", true, &e));
  CHECK(e == 0);  // readable, just not a spool file: the caller may set it aside
}
