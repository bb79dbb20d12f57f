#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <signal.h>
#include <sys/resource.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "digue/config.hpp"
#include "digue/quarantine.hpp"
#include "digue/queue.hpp"
#include "digue/spool.hpp"
#include "digue/store.hpp"
#include "tests/filters/counting_store.hpp"
#include "tests/unit/delivery_test_support.hpp"
#include "tests/unit/spool_test_support.hpp"

using namespace digue;
using namespace std::chrono_literals;

namespace {

std::string temp_dir() {
  auto p = std::filesystem::temp_directory_path() /
           ("digue-queue-test-" + std::to_string(::getpid()) + "-" + std::to_string(rand()));
  std::filesystem::create_directories(p);
  return p.string();
}

// A loopback port nothing listens on: connections are refused at once.
unsigned short closed_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(
      io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// A record from s@example.org to each (address, action), committed to the spool.
SpoolRecord spool_record(Spool& spool,
                         const std::vector<std::pair<std::string, std::string>>& rcpts,
                         std::shared_ptr<const std::string> msg) {
  SpoolRecord rec;
  rec.id = Spool::new_id();
  rec.state = SpoolState::Queued;
  rec.created = static_cast<int64_t>(std::time(nullptr));
  rec.envelope.queue_id = rec.id;
  rec.envelope.mail_from = {"s", "example.org"};
  for (const auto& [address, action] : rcpts) {
    RcptState rs;
    auto at = address.find('@');
    rs.address = {address.substr(0, at), address.substr(at + 1)};
    rs.action = action;
    rec.envelope.rcpts.push_back(rs.address);
    rec.rcpts.push_back(rs);
  }
  std::promise<boost::system::error_code> committed;
  spool.async_commit(msg, rec, [&](boost::system::error_code ec) { committed.set_value(ec); });
  REQUIRE(!committed.get_future().get());
  return rec;
}

void spool_and_submit(Spool& spool, Queue& queue, const std::string& domain) {
  auto msg = std::make_shared<const std::string>("Subject: to " + domain + "\r\n\r\nhi\r\n");
  queue.submit(spool_record(spool, {{"u@" + domain, "deliver"}}, msg), msg);
}

// Spool, store and Maildirs under dir, no filters; `delivery` goes into the [delivery] table,
// `rest` (the domains, other tables) after it.
std::shared_ptr<const Config> queue_config(const std::string& dir, const std::string& delivery,
                                           const std::string& rest,
                                           const std::string& hostname = "mx.test") {
  return parse_config(fmt::format(R"([server]
hostname = "{3}"
[spool]
dir = "{0}/spool"
fsync = false
[store]
dir = "{0}/store"
[delivery]
maildir_root = "{0}/mail"
connect_timeout = 2
{1}
[pipeline]
order = []
{2}
)", dir, delivery, rest, hostname), "queue_test.toml");
}

// Quick retries; example.test and other.test deliver to a Maildir, fail.test to `fail_port`
// (an smtp-sink that answers 550 to RCPT); DSNs go to the Maildir too (mail/example.org/s).
std::shared_ptr<const Config> retry_config(const std::string& dir, uint16_t fail_port = 1,
                                          const std::string& bounce_relay = "maildir",
                                          const std::string& more = "") {
  return queue_config(dir,
                      fmt::format("bounce_relay = \"{}\"\nretry_min = 1\nretry_max = 1",
                                  bounce_relay),
                      fmt::format(R"([domains."example.test"]
downstream = ["maildir"]
[domains."other.test"]
downstream = ["maildir"]
[domains."fail.test"]
downstream = ["127.0.0.1:{}"]
{})", fail_port, more));
}

// A DNS server on loopback answering NXDOMAIN to every query.
class NxDomainServer {
 public:
  NxDomainServer() {
    fd_ = digue::test::loopback_socket(SOCK_DGRAM, port_);
    timeval tv{0, 100000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    thread_ = std::thread([this] {
      char buf[1500];
      while (!stop_) {
        sockaddr_in peer{};
        socklen_t plen = sizeof peer;
        auto n = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &plen);
        if (n < 12) continue;
        buf[2] = char(0x85);  // QR AA RD
        buf[3] = char(0x83);  // RA, NXDOMAIN
        ::sendto(fd_, buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&peer), plen);
      }
    });
  }
  ~NxDomainServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

size_t files_under(const std::string& dir) { return digue::test::files_in(dir).size(); }

// A queue over a new spool in a temporary directory (retry_config), removed at the end.
struct Rig {
  std::string dir = temp_dir();
  std::shared_ptr<const Config> config;
  Spool spool;
  Queue queue;
  explicit Rig(Store* store, uint16_t fail_port = 1, const std::string& bounce_relay = "maildir",
               const std::string& more = "")
      : config(retry_config(dir, fail_port, bounce_relay, more)),
        spool(config->spool),
        queue(config, spool, store) {}
  ~Rig() {
    queue.stop();
    std::filesystem::remove_all(dir);
  }
  std::string file(const SpoolRecord& rec) const { return dir + "/spool/queue/" + rec.id; }
  bool done(const SpoolRecord& rec) const {
    return wait_until([&] { return !std::filesystem::exists(file(rec)); }, 10s);
  }
  size_t dsns() const { return files_under(dir + "/mail/example.org/s/new"); }
};

}  // namespace

TEST_CASE("a deferred message does not hold a delivery slot", "[queue]") {
  std::string dir = temp_dir();
  // One slot; the dead domain's downstream refuses connections, so its message is deferred
  // for a minute. Mail for the live domain must not wait for that minute.
  auto config = queue_config(dir, "retry_min = 60\nretry_max = 60\nmax_attempts_in_flight = 1",
                             fmt::format(R"([domains."dead.test"]
downstream = ["127.0.0.1:{}"]
[domains."example.test"]
downstream = ["maildir"])", closed_port()));
  Spool spool(config->spool);
  {
    Queue queue(config, spool, nullptr);
    queue.start();
    spool_and_submit(spool, queue, "dead.test");
    REQUIRE(wait_until([&] { return queue.stats().deferred.load() == 1; },
                       std::chrono::seconds(10)));
    spool_and_submit(spool, queue, "example.test");
    CHECK(wait_until([&] { return queue.stats().delivered.load() == 1; },
                     std::chrono::seconds(10)));
    CHECK(std::filesystem::exists(dir + "/mail/example.test/u/new"));
    // The deferred message waits outside the limit and stays in the spool.
    CHECK(wait_until([&] { return queue.active() == 0; }, std::chrono::seconds(5)));
    CHECK(queue.stats().deferred.load() == 1);
    auto start = std::chrono::steady_clock::now();
    queue.stop();
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  }
  CHECK(spool.recover().size() == 1);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a failed quarantine index write is retried and leaves no orphan file", "[queue]") {
  digue::test::CountingStore store;
  store.fail_puts = true;
  Rig rig(&store);
  rig.queue.start();
  auto msg = std::make_shared<const std::string>("Subject: spam\r\n\r\nhi\r\n");
  auto rec = spool_record(rig.spool, {{"u@example.test", "quarantine"}}, msg);
  rig.queue.submit(rec, msg);
  REQUIRE(wait_until([&] { return rig.queue.stats().deferred.load() >= 1; }, 10s));
  CHECK(rig.queue.stats().quarantined.load() == 0);
  CHECK(files_under(rig.dir + "/spool/quarantine") == 0);
  CHECK(std::filesystem::exists(rig.file(rec)));
  store.fail_puts = false;
  REQUIRE(wait_until([&] { return rig.queue.stats().quarantined.load() == 1; }, 10s));
  CHECK(store.get(quarantine::index_key("example.test", rec.id)));
  CHECK(std::filesystem::exists(quarantine::file_path(rig.dir + "/spool", rec.id, "example.test")));
  CHECK(rig.done(rec));
}

TEST_CASE("a DSN is decided per failed recipient, released mail included", "[queue]") {
  digue::test::Sink sink({"-f", "RCPT"});
  auto store = make_memory_store();
  Rig rig(store.get(), sink.port);
  rig.queue.start();
  auto msg = std::make_shared<const std::string>("Subject: hello\r\n\r\nhi\r\n");
  std::vector<SpoolRecord> recs;
  // Another domain's quarantine says nothing about a@fail.test's mail; released mail is
  // legitimate; junk gets no DSN (backscatter).
  for (auto rcpts : {std::vector<std::pair<std::string, std::string>>{
                         {"a@fail.test", "deliver"}, {"b@other.test", "quarantine"}},
                     {{"c@fail.test", "release"}},
                     {{"d@fail.test", "junk"}, {"e@example.test", "deliver"}}}) {
    recs.push_back(spool_record(rig.spool, rcpts, msg));
    rig.queue.submit(recs.back(), msg);
  }
  for (const auto& rec : recs) CHECK(rig.done(rec));
  CHECK(wait_until([&] { return rig.dsns() == 2; }, 10s));
  CHECK(rig.queue.stats().dsn_sent.load() == 2);
}

TEST_CASE("a DSN that cannot be spooled is retried, the record kept", "[queue]") {
  digue::test::Sink sink({"-f", "RCPT"});
  Rig rig(nullptr, sink.port);
  // The DSN carries the original's header block, so it is larger than the original's spool
  // file: a file size limit just above that makes the DSN's spool write fail (EFBIG).
  auto msg = std::make_shared<const std::string>("Subject: " + std::string(3000, 'x') +
                                                 "\r\n\r\nhi\r\n");
  // Started first: a record already in the spool at start() would be resumed by recovery
  // before the file size limit below is set (and its submit() refused as a duplicate).
  rig.queue.start();
  auto rec = spool_record(rig.spool, {{"a@fail.test", "deliver"}}, msg);
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  rlimit old_limit{};
  ::getrlimit(RLIMIT_FSIZE, &old_limit);
  rlimit limit = old_limit;
  limit.rlim_cur = std::filesystem::file_size(rig.file(rec)) + 400;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &limit) == 0);
  rig.queue.submit(rec, msg);
  bool deferred = wait_until([&] { return rig.queue.stats().deferred.load() >= 1; }, 10s);
  CHECK(rig.queue.stats().dsn_sent.load() == 0);
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  ::signal(SIGXFSZ, old_handler);
  REQUIRE(deferred);
  CHECK(std::filesystem::exists(rig.file(rec)));
  CHECK(wait_until([&] { return rig.dsns() == 1; }, 10s));
  CHECK(rig.queue.stats().dsn_sent.load() == 1);
  CHECK(rig.done(rec));
}

TEST_CASE("a record the queue already holds is not taken twice", "[queue]") {
  auto msg = std::make_shared<const std::string>("Subject: twice\r\n\r\nhi\r\n");
  SECTION("resumed at start, then handed over") {
    digue::test::Sink sink({"-f", "RCPT"});
    Rig rig(nullptr, sink.port);
    // Spooled before start(): recovery resumes it. Handing it over as well must not deliver
    // u@example.test twice, nor bounce a@fail.test twice.
    auto rec =
        spool_record(rig.spool, {{"u@example.test", "deliver"}, {"a@fail.test", "deliver"}}, msg);
    rig.queue.start();
    rig.queue.submit(rec, msg);
    CHECK(rig.queue.stats().duplicates.load() == 1);
    CHECK(rig.done(rec));
    CHECK(wait_until([&] { return rig.dsns() == 1; }, 10s));
    CHECK_FALSE(
        wait_until([&] { return rig.queue.stats().delivered.load() > 2 || rig.dsns() > 1; }, 2s));
    CHECK(files_under(rig.dir + "/mail/example.test/u/new") == 1);
    CHECK(rig.queue.stats().dsn_sent.load() == 1);
  }
  SECTION("deferred, waiting for its retry") {
    Rig rig(nullptr, closed_port());
    rig.queue.start();
    auto rec = spool_record(rig.spool, {{"a@fail.test", "deliver"}}, msg);
    rig.queue.submit(rec, msg);
    REQUIRE(wait_until([&] { return rig.queue.stats().deferred.load() >= 1; }, 10s));
    rig.queue.submit(rec, msg);
    CHECK(rig.queue.stats().duplicates.load() == 1);
    CHECK(rig.queue.stats().submitted.load() == 1);
    // A pickup file of that id waits in pickup/ (moved in, it would replace the queued
    // record's file), reported once however many passes see it.
    REQUIRE(Spool::write_pickup(rig.dir + "/spool", rec, *msg));
    CHECK(wait_until([&] { return rig.queue.stats().duplicates.load() == 2; }, 10s));
    CHECK_FALSE(wait_until([&] { return rig.queue.stats().duplicates.load() > 2; }, 5s));
    CHECK(std::filesystem::exists(rig.dir + "/spool/pickup/" + rec.id));
    CHECK(rig.queue.stats().submitted.load() == 1);
  }
}

TEST_CASE("an unreadable message file is retried", "[queue]") {
  Rig rig(nullptr);
  rig.queue.start();
  auto msg = std::make_shared<const std::string>("Subject: hi\r\n\r\nhi\r\n");
  auto rec = spool_record(rig.spool, {{"u@example.test", "deliver"}}, msg);
  // A directory in the file's place: reading fails (EISDIR) while the name exists.
  std::filesystem::rename(rig.file(rec), rig.dir + "/aside");
  std::filesystem::create_directory(rig.file(rec));
  rig.queue.submit(rec, nullptr);
  REQUIRE(wait_until([&] { return rig.queue.stats().deferred.load() >= 1; }, 10s));
  std::filesystem::remove(rig.file(rec));
  std::filesystem::rename(rig.dir + "/aside", rig.file(rec));
  CHECK(wait_until([&] { return rig.queue.stats().delivered.load() == 1; }, 10s));
}

TEST_CASE("the queue enforces quarantine retention", "[queue]") {
  auto store = make_memory_store();
  Rig rig(store.get());
  std::string old_file = quarantine::file_path(rig.dir + "/spool", "0OLD", "example.test");
  std::string new_file = quarantine::file_path(rig.dir + "/spool", "0NEW", "example.test");
  for (const auto& f : {old_file, new_file}) std::ofstream(f) << "Subject: x\r\n\r\n";
  auto now = std::filesystem::file_time_type::clock::now();
  std::filesystem::last_write_time(old_file, now - rig.config->delivery.quarantine_days - 1h);
  store->put(quarantine::index_key("example.test", "0OLD"), "x");
  rig.queue.start();
  CHECK(wait_until([&] { return !std::filesystem::exists(old_file); }, 10s));
  CHECK(std::filesystem::exists(new_file));
  CHECK(!store->get(quarantine::index_key("example.test", "0OLD")));
}

TEST_CASE("a DSN to a domain that takes no mail fails at once", "[queue]") {
  NxDomainServer dns;
  Rig rig(nullptr, 1, "", fmt::format("[dns]\nservers = [\"127.0.0.1:{}\"]", dns.port()));
  rig.queue.start();
  auto msg = std::make_shared<const std::string>("Subject: dsn\r\n\r\nhi\r\n");
  auto rec = spool_record(rig.spool, {{"s@nx.example", "bounce"}}, msg);
  rec.envelope.mail_from = {};
  rig.queue.submit(rec, msg);
  CHECK(rig.done(rec));
  CHECK(rig.queue.stats().deferred.load() == 0);
  CHECK(rig.queue.stats().dsn_sent.load() == 0);
}

TEST_CASE("a reload applies the delivery settings to the next delivery", "[queue]") {
  digue::test::Sink sink;
  std::string dir = temp_dir();
  auto domains = fmt::format("[domains.\"example.test\"]\ndownstream = [\"127.0.0.1:{}\"]",
                             sink.port);
  auto config = queue_config(dir, "", domains, "before.test");
  Spool spool(config->spool);
  {
    Queue queue(config, spool, nullptr);
    queue.start();
    spool_and_submit(spool, queue, "example.test");
    REQUIRE(wait_until([&] { return queue.stats().delivered.load() == 1; }, 10s));
    queue.reload(queue_config(dir, "", domains, "after.test"));
    spool_and_submit(spool, queue, "example.test");
    REQUIRE(wait_until([&] { return queue.stats().delivered.load() == 2; }, 10s));
    queue.stop();
  }
  // The EHLO name is a delivery setting: the second session greets with the reloaded one.
  REQUIRE(wait_until([&] { return sink.mails().size() == 2; }, 10s));
  std::string both;
  for (const auto& m : sink.mails()) both += digue::test::slurp(m);
  CHECK(both.find("X-Helo-Args: before.test") != std::string::npos);
  CHECK(both.find("X-Helo-Args: after.test") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a malformed pickup file is set aside in corrupt/, never deleted", "[queue]") {
  Rig rig(nullptr);
  rig.queue.start();
  const std::string junk = rig.dir + "/spool/pickup/not-a-spool-file";
  {
    std::ofstream out(junk);
    out << "hello\n";
  }
  CHECK(wait_until([&] { return std::filesystem::exists(rig.dir + "/spool/corrupt/not-a-spool-file"); },
                   10s));
  CHECK(!std::filesystem::exists(junk));
  // The pickup loop goes on: a real release after it is delivered.
  auto msg = std::make_shared<const std::string>("Subject: hi\r\n\r\nhi\r\n");
  SpoolRecord rec = digue::test::release_record();
  REQUIRE(Spool::write_pickup(rig.dir + "/spool", rec, *msg));
  CHECK(wait_until([&] { return rig.queue.stats().delivered.load() == 1; }, 10s));
}

TEST_CASE("deliveries in flight are bounded by their message bytes too", "[queue]") {
  std::string dir = temp_dir();
  // 1 MB for all deliveries together; each 400 kB message counts three times (its rewritten
  // copy): one at a time, never two, and every one delivered (one always runs).
  auto config = queue_config(dir, "max_bytes_in_flight = 1",
                             "[domains.\"example.test\"]\ndownstream = [\"maildir\"]");
  Spool spool(config->spool);
  {
    Queue queue(config, spool, nullptr);
    queue.start();
    auto msg = std::make_shared<const std::string>("Subject: big\r\n\r\n" +
                                                   std::string(400000, 'x') + "\r\n");
    for (int i = 0; i < 5; ++i)
      queue.submit(spool_record(spool, {{"u@example.test", "deliver"}}, msg), msg);
    CHECK(wait_until([&] { return queue.stats().delivered.load() == 5; }, 30s));
    CHECK(queue.stats().peak_bytes_in_flight.load() > 0);
    CHECK(queue.stats().peak_bytes_in_flight.load() < 2 * 3 * msg->size());
    CHECK(queue.stats().bytes_in_flight.load() == 0);
    queue.stop();
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("a quarantine that keeps failing is delivered tagged, never dropped", "[queue]") {
  digue::test::CountingStore store;
  store.fail_puts = true;  // every quarantine index write fails (a full or broken store)
  std::string dir = temp_dir();
  // Ages set on the records, not waited for: the outcome does not depend on how fast a
  // loaded machine gets to each attempt (no retry comes within the test).
  auto config = queue_config(dir, "retry_min = 60\nretry_max = 60\nquarantine_fallback_after = 3600",
                             "[domains.\"example.test\"]\ndownstream = [\"maildir\"]\n"
                             "tag_prefix = \"[spam] \"");
  Spool spool(config->spool);
  {
    Queue queue(config, spool, &store);
    queue.start();
    auto msg = std::make_shared<const std::string>("Subject: offer\r\n\r\nhi\r\n");
    auto submit = [&](const char* rcpt, const char* action, int64_t age) {
      auto rec = spool_record(spool, {{rcpt, action}}, msg);
      rec.created -= age;
      rec.headers["example.test"] =
          "X-Spam-Status: Yes, score=9.0 required=7.5 tests=X\r\n"
          "X-Spam-Flag: YES\r\n";
      queue.submit(rec, msg);
      return rec;
    };
    // Before quarantine_fallback_after the quarantine is retried, nothing is delivered.
    submit("fresh@example.test", "quarantine", 0);
    // Past it, the recipient gets the domain's "tag" outcome.
    auto old = submit("old@example.test", "quarantine", 7200);
    // A copy the domain refused (other domains took the message) is never delivered.
    submit("refused@example.test", "quarantine-refused", 7200);
    REQUIRE(wait_until([&] { return queue.stats().delivered.load() == 1; }, 10s));
    REQUIRE(wait_until([&] { return queue.stats().deferred.load() == 2; }, 10s));
    CHECK(queue.stats().quarantine_fallbacks.load() == 1);
    CHECK(queue.stats().quarantined.load() == 0);
    CHECK(files_under(dir + "/spool/quarantine") == 0);
    CHECK(!std::filesystem::exists(dir + "/mail/example.test/fresh"));
    CHECK(!std::filesystem::exists(dir + "/mail/example.test/refused"));
    auto mails = digue::test::files_in(dir + "/mail/example.test/old/new");
    REQUIRE(mails.size() == 1);
    std::string got = digue::test::slurp(mails.front());
    INFO(got);  // a Maildir file has LF line ends
    CHECK(got.find("\nSubject: [spam] offer\n") != std::string::npos);
    CHECK(got.find("\nX-Spam-Flag: YES\n") != std::string::npos);
    CHECK(got.find("X-Spam-Status: Yes") != std::string::npos);
    CHECK(
        wait_until([&] { return !std::filesystem::exists(dir + "/spool/queue/" + old.id); }, 10s));
    queue.stop();
  }
  CHECK(spool.recover().size() == 2);  // fresh and refused wait for their next try
  std::filesystem::remove_all(dir);
}

TEST_CASE("a quarantine fallback is kept in the spool record: its retries stay tagged", "[queue]") {
  digue::test::CountingStore store;
  store.fail_puts = true;
  std::string dir = temp_dir();
  auto config = queue_config(
      dir, "retry_min = 60\nretry_max = 60\nquarantine_fallback_after = 5",
      fmt::format("[domains.\"dead.test\"]\ndownstream = [\"127.0.0.1:{}\"]", closed_port()));
  Spool spool(config->spool);
  {
    Queue queue(config, spool, &store);
    queue.start();
    auto msg = std::make_shared<const std::string>("Subject: offer\r\n\r\nhi\r\n");
    auto rec = spool_record(spool, {{"u@dead.test", "quarantine"}}, msg);
    rec.created -= 10;  // accepted 10 s ago: past quarantine_fallback_after
    queue.submit(rec, msg);
    REQUIRE(wait_until([&] { return queue.stats().deferred.load() == 1; }, 10s));
    CHECK(queue.stats().quarantine_fallbacks.load() == 1);
    queue.stop();
  }
  // The tagged delivery was deferred (the downstream refuses connections): the next attempt
  // delivers it tagged again, it does not try the quarantine a second time.
  auto records = spool.recover();
  REQUIRE(records.size() == 1);
  REQUIRE(records.front().rcpts.size() == 1);
  CHECK(records.front().rcpts.front().action == "tag");
  CHECK(records.front().rcpts.front().status == RcptState::Status::Pending);
  CHECK(records.front().tags["dead.test"] == "SPAM: ");
  CHECK(files_under(dir + "/spool/quarantine") == 0);
  std::filesystem::remove_all(dir);
}
