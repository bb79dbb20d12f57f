#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include "digue/config.hpp"
#include "digue/queue.hpp"
#include "digue/spool.hpp"

using namespace digue;

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

void spool_and_submit(Spool& spool, Queue& queue, const std::string& domain) {
  SpoolRecord rec;
  rec.id = Spool::new_id();
  rec.state = SpoolState::Queued;
  rec.created = static_cast<int64_t>(std::time(nullptr));
  rec.envelope.queue_id = rec.id;
  rec.envelope.mail_from = {"s", "example.org"};
  RcptState rs;
  rs.address = {"u", domain};
  rec.envelope.rcpts.push_back(rs.address);
  rec.rcpts.push_back(rs);
  auto msg = std::make_shared<const std::string>("Subject: to " + domain + "\r\n\r\nhi\r\n");
  std::promise<boost::system::error_code> committed;
  spool.async_commit(msg, rec, [&](boost::system::error_code ec) { committed.set_value(ec); });
  REQUIRE(!committed.get_future().get());
  queue.submit(std::move(rec), msg);
}

}  // namespace

TEST_CASE("a deferred message does not hold a delivery slot", "[queue]") {
  std::string dir = temp_dir();
  // One slot; the dead domain's downstream refuses connections, so its message is deferred
  // for a minute. Mail for the live domain must not wait for that minute.
  auto config = parse_config(fmt::format(R"([server]
hostname = "mx.test"
[spool]
dir = "{0}/spool"
fsync = false
[store]
dir = "{0}/store"
[delivery]
maildir_root = "{0}/mail"
retry_min = 60
retry_max = 60
connect_timeout = 2
max_attempts_in_flight = 1
[pipeline]
order = []
[domains."dead.test"]
downstream = ["127.0.0.1:{1}"]
[domains."example.test"]
downstream = ["maildir"]
)", dir, closed_port()), "queue_test.toml");
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
