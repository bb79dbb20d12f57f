// Spool: the durable queue. One file per message, `queue/<id>`: a header line with both
// lengths ("digue-spool 2 RECORD_LEN MESSAGE_LEN"), the record (envelope, per-recipient
// state, the trace headers to prepend), then the message bytes as received (CRLF,
// dot-unstuffed).
// Contract: commit() completes only when the file and its directory entry are on disk
// (written in place, fdatasync, fsync of the directory): a 250 is sent only after it.
// Commits from all sessions are batched by one writer thread (group commit: the batch's
// files are fdatasync'ed concurrently, then one directory fsync; no commit completes before
// its own file is durable). A file cut short by a crash is recognised by its lengths. A write error (disk full, EIO) completes the commit with an error: the
// session answers 452 4.3.1 and nothing is acknowledged.
// States: received (spooled, not yet filtered), queued (filtered, to deliver), deferred
// (retry at next_try), held (attachment-hash hold), quarantined, done (removed).
// On start, recover() returns every record so that nothing acknowledged is lost: it deletes only
// a file whose header parses and which is shorter than its lengths (never synced, so never
// acknowledged) and moves any other unreadable file to corrupt/. One process per spool directory
// (an flock on <dir>/lock, taken by the constructor). A crash may at worst deliver a message
// twice (a delivery that succeeded just before the crash is not recorded yet). update() replaces
// the file durably (tmp, fsync, rename), so a crash never leaves an acknowledged message's file
// empty or short.
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/system/error_code.hpp>
#include <atomic>
#include <optional>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "digue/config.hpp"
#include "digue/envelope.hpp"

namespace digue {

enum class SpoolState : uint8_t { Received, Queued, Deferred, Held, Quarantined, Done };
const char* to_string(SpoolState s);

struct RcptState {
  enum class Status : uint8_t { Pending, Delivered, Failed };
  Address address;
  Status status = Status::Pending;
  std::string action = "deliver";  // deliver | tag | junk | quarantine
  int attempts = 0;
  std::string last_error;         // last downstream reply or failure
};

struct SpoolRecord {
  std::string id;
  SpoolState state = SpoolState::Received;
  Envelope envelope;
  std::vector<RcptState> rcpts;
  std::map<std::string, std::string> headers;  // per recipient domain: trace headers (CRLF)
  std::map<std::string, std::string> tags;     // per recipient domain subject prefix
  int64_t created = 0;                         // unix seconds
  int64_t next_try = 0;
  int attempts = 0;
  std::string deciding_filter;
  std::string summary;                          // verdict summary for logs and quarantine

  std::string serialize() const;
  static std::optional<SpoolRecord> parse(std::string_view text);
};

class Spool {
 public:
  // Takes an exclusive lock on <dir>/lock (held until destruction); throws when another
  // process holds it.
  explicit Spool(const SpoolConfig& config);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // A new queue ID: sortable by time, unique across threads (a counter) and processes (a
  // random node part). Static: tools (diguectl quarantine release) need one without a spool.
  static std::string new_id();
  const std::string& dir() const { return dir_; }

  // Durably stores message and record; the handler gets an error_code (0 = durable).
  template <typename Token>
  auto async_commit(std::shared_ptr<const std::string> message, SpoolRecord record,
                    Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [this](auto handler, std::shared_ptr<const std::string> msg, SpoolRecord rec) {
          auto h = std::make_shared<decltype(handler)>(std::move(handler));
          Job job;
          job.message = std::move(msg);
          job.record = std::move(rec);
          job.done = [h](boost::system::error_code ec) {
            auto ex = boost::asio::get_associated_executor(*h);
            boost::asio::post(ex, [h, ec]() { (*h)(ec); });
          };
          enqueue(std::move(job));
        },
        token, std::move(message), std::move(record));
  }

  // Rewrites the record (tmp, fsync, atomic rename, fsync dir: the queue file never goes
  // missing or short after a crash). `message`: the message bytes when the caller has them,
  // else they are read from the spool. Blocking.
  bool update(const SpoolRecord& record, const std::string* message = nullptr);
  // Removes a finished message.
  void remove(const std::string& id);

  struct Loaded {
    SpoolRecord record;
    std::shared_ptr<std::string> message;  // null unless asked for
  };
  // Writes a complete spool file into <spool dir>/pickup/ (tmp, fsync, rename, fsync dir):
  // the daemon's queue moves it into the queue within seconds. For tools (diguectl
  // quarantine release) that run beside the daemon. Returns false on any write error.
  static bool write_pickup(const std::string& spool_dir, const SpoolRecord& record,
                           const std::string& message);

  // Reads one spool file; nullopt when it is cut short or unreadable. With io_error, an
  // I/O failure (open or read: EMFILE, EACCES, EIO...) sets *io_error to the errno, telling
  // it apart from a file that is not (or not yet wholly) a spool file (*io_error left 0).
  static std::optional<Loaded> read_path(const std::string& path, bool with_message,
                                         int* io_error = nullptr);
  std::shared_ptr<std::string> load_message(const std::string& id) const;
  // Every record on disk (orphan and temporary files are cleaned up).
  std::vector<SpoolRecord> recover();
  // Moves a message's files to another spool sub-directory (e.g. "quarantine").
  bool move_to(const std::string& id, const std::string& subdir);

  // Returns once every commit asked for so far is written and its handler posted. The
  // handlers post to the committers' executors: a server waits for this before its
  // io_contexts go (at shutdown a session may still await a commit its io_context will
  // never run).
  void wait_idle();

  uint64_t commits() const { return commits_; }
  uint64_t batches() const { return batches_; }

 private:
  struct Job {
    std::shared_ptr<const std::string> message;
    SpoolRecord record;
    std::function<void(boost::system::error_code)> done;
  };
  void enqueue(Job job);
  void writer_loop();
  boost::system::error_code write_batch(std::vector<Job>& jobs);
  static std::string file_header(size_t record_len, size_t message_len);

  std::string dir_;
  bool fsync_;
  int queue_fd_ = -1;
  int lock_fd_ = -1;  // flock'ed for the spool's lifetime: one daemon per spool directory
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> pending_;
  bool stop_ = false;
  bool writing_ = false;          // a batch taken from pending_ is being written (under mu_)
  std::condition_variable idle_;  // writing_ went false
  boost::asio::thread_pool sync_pool_{8};  // concurrent fdatasync of one batch
  std::thread writer_;
  std::atomic<uint64_t> commits_{0}, batches_{0};
};

}  // namespace digue
