// Durable spool with group commit; see include/digue/spool.hpp.
#include "digue/spool.hpp"

#include "digue/files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <latch>
#include <optional>
#include <random>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace digue {

const char* to_string(SpoolState s) {
  switch (s) {
    case SpoolState::Received: return "received";
    case SpoolState::Queued: return "queued";
    case SpoolState::Deferred: return "deferred";
    case SpoolState::Held: return "held";
    case SpoolState::Quarantined: return "quarantined";
    case SpoolState::Done: return "done";
  }
  return "?";
}

namespace {

// Values are percent-encoded so that each record field is one line of printable ASCII.
std::string enc(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string o;
  o.reserve(s.size());
  for (unsigned char c : s) {
    if (c <= 0x20 || c == '%' || c >= 0x7f) {
      o += '%';
      o += kHex[c >> 4];
      o += kHex[c & 15];
    } else {
      o += static_cast<char>(c);
    }
  }
  return o.empty() ? "%" : o;  // a lone '%' stands for the empty string
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string dec(std::string_view s) {
  if (s == "%") return {};
  std::string o;
  o.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int a = hex_digit(s[i + 1]), b = hex_digit(s[i + 2]);
      if (a >= 0 && b >= 0) {
        o += static_cast<char>(a * 16 + b);
        i += 2;
        continue;
      }
    }
    o += s[i];
  }
  return o;
}

std::string addr_enc(const Address& a) { return enc(a.local) + " " + enc(a.domain); }

const char* status_name(RcptState::Status s) {
  switch (s) {
    case RcptState::Status::Pending: return "pending";
    case RcptState::Status::Delivered: return "delivered";
    case RcptState::Status::Failed: return "failed";
  }
  return "pending";
}

using files::write_all;

// Writes a whole file and returns its open descriptor (>= 0) or -errno. Not synced here.
int write_file_fd(const std::string& path, std::string_view a, std::string_view b = {}) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return -errno;
  if (!write_all(fd, a) || !write_all(fd, b)) {
    int err = errno ? errno : EIO;
    ::close(fd);
    ::unlink(path.c_str());
    return -err;
  }
  return fd;
}

}  // namespace

std::string SpoolRecord::serialize() const {
  std::ostringstream o;
  o << "digue-spool 1\n";
  o << "id " << enc(id) << "\n";
  o << "state " << to_string(state) << "\n";
  o << "created " << created << "\nnext_try " << next_try << "\nattempts " << attempts << "\n";
  const Envelope& e = envelope;
  o << "session " << enc(e.session_id) << "\n";
  o << "client " << enc(e.client_ip) << " " << e.client_port << " " << enc(e.client_ptr) << "\n";
  o << "helo " << enc(e.helo) << " " << (e.esmtp ? 1 : 0) << "\n";
  if (e.tls) o << "tls " << enc(e.tls->version) << " " << enc(e.tls->cipher) << "\n";
  o << "from " << addr_enc(e.mail_from) << "\n";
  o << "flags " << (e.smtputf8 ? 1 : 0) << " " << (e.body_8bit ? 1 : 0) << "\n";
  o << "received_at " << e.received_at << "\n";
  for (const auto& r : rcpts)
    o << "rcpt " << addr_enc(r.address) << " " << status_name(r.status) << " " << enc(r.action)
      << " " << r.attempts << " " << enc(r.last_error) << "\n";
  for (const auto& [d, h] : headers) o << "headers " << enc(d) << " " << enc(h) << "\n";
  for (const auto& [d, t] : tags) o << "tag " << enc(d) << " " << enc(t) << "\n";
  o << "decided " << enc(deciding_filter) << "\n";
  o << "summary " << enc(summary) << "\n";
  o << "end\n";
  return o.str();
}

std::optional<SpoolRecord> SpoolRecord::parse(std::string_view text) {
  SpoolRecord r;
  std::istringstream in{std::string(text)};
  std::string line;
  bool header = false, end = false;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string key;
    ls >> key;
    auto next = [&]() {
      std::string v;
      ls >> v;
      return dec(v);
    };
    if (key == "digue-spool") {
      header = true;
    } else if (key == "id") {
      r.id = next();
    } else if (key == "state") {
      std::string s = next();
      for (auto st : {SpoolState::Received, SpoolState::Queued, SpoolState::Deferred,
                      SpoolState::Held, SpoolState::Quarantined, SpoolState::Done})
        if (s == to_string(st)) r.state = st;
    } else if (key == "created") {
      ls >> r.created;
    } else if (key == "next_try") {
      ls >> r.next_try;
    } else if (key == "attempts") {
      ls >> r.attempts;
    } else if (key == "session") {
      r.envelope.session_id = next();
    } else if (key == "client") {
      r.envelope.client_ip = next();
      ls >> r.envelope.client_port;
      r.envelope.client_ptr = next();
    } else if (key == "helo") {
      r.envelope.helo = next();
      int esmtp = 0;
      ls >> esmtp;
      r.envelope.esmtp = esmtp != 0;
    } else if (key == "tls") {
      TlsInfo t;
      t.version = next();
      t.cipher = next();
      r.envelope.tls = t;
    } else if (key == "from") {
      r.envelope.mail_from.local = next();
      r.envelope.mail_from.domain = next();
    } else if (key == "flags") {
      int a = 0, b = 0;
      ls >> a >> b;
      r.envelope.smtputf8 = a != 0;
      r.envelope.body_8bit = b != 0;
    } else if (key == "received_at") {
      ls >> r.envelope.received_at;
    } else if (key == "rcpt") {
      RcptState rs;
      rs.address.local = next();
      rs.address.domain = next();
      std::string st = next();
      rs.status = st == "delivered" ? RcptState::Status::Delivered
                  : st == "failed"  ? RcptState::Status::Failed
                                    : RcptState::Status::Pending;
      rs.action = next();
      ls >> rs.attempts;
      rs.last_error = next();
      r.envelope.rcpts.push_back(rs.address);
      r.rcpts.push_back(std::move(rs));
    } else if (key == "headers") {
      std::string d = next();
      r.headers[d] = next();
    } else if (key == "tag") {
      std::string d = next();
      r.tags[d] = next();
    } else if (key == "decided") {
      r.deciding_filter = next();
    } else if (key == "summary") {
      r.summary = next();
    } else if (key == "end") {
      end = true;
    }
  }
  if (!header || !end || r.id.empty()) return std::nullopt;
  r.envelope.queue_id = r.id;
  return r;
}

Spool::Spool(const SpoolConfig& config) : dir_(config.dir), fsync_(config.fsync) {
  for (const char* sub : {"", "/tmp", "/queue", "/quarantine", "/pickup"}) {
    std::error_code ec;
    fs::create_directories(dir_ + sub, ec);
    if (ec) throw std::runtime_error("spool: cannot create " + dir_ + sub + ": " + ec.message());
  }
  // One daemon per spool: a second one (SO_REUSEPORT lets it bind the same port) would wipe
  // the first's tmp/ in recover() and deliver its queue twice. The lock goes with the process,
  // so a crashed daemon never leaves a stale one.
  lock_fd_ = ::open((dir_ + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (lock_fd_ < 0)
    throw std::runtime_error("spool: cannot open " + dir_ + "/lock: " + std::strerror(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    ::close(lock_fd_);
    lock_fd_ = -1;
    throw std::runtime_error(err == EWOULDBLOCK
                                 ? "spool: " + dir_ + " is in use by another digued (" + dir_ +
                                       "/lock is locked)"
                                 : "spool: cannot lock " + dir_ + "/lock: " + std::strerror(err));
  }
  queue_fd_ = ::open((dir_ + "/queue").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (queue_fd_ < 0) {
    ::close(lock_fd_);
    throw std::runtime_error("spool: cannot open " + dir_ + "/queue");
  }
  writer_ = std::thread([this] { writer_loop(); });
}

Spool::~Spool() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (queue_fd_ >= 0) ::close(queue_fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

std::string Spool::new_id() {
  // Sortable by time, unique across restarts (random node part) and threads (counter).
  static const char kAlphabet[] = "0123456789ABCDEFGHJKLMNPQRSTVWXYZ";
  static const uint64_t kNode = std::random_device{}() & 0xfffff;
  uint64_t us = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  static std::atomic<uint64_t> counter{0};
  uint64_t c = counter++;
  auto b32 = [&](uint64_t v, int digits) {
    std::string s(digits, '0');
    for (int i = digits - 1; i >= 0; --i) {
      s[i] = kAlphabet[v % 32];
      v /= 32;
    }
    return s;
  };
  return b32(us, 11) + b32(kNode, 4) + b32(c & 0xfffff, 4);
}

void Spool::enqueue(Job job) {
  {
    std::lock_guard lk(mu_);
    pending_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void Spool::writer_loop() {
  for (;;) {
    std::vector<Job> batch;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !pending_.empty(); });
      if (pending_.empty() && stop_) return;
      while (!pending_.empty() && batch.size() < 256) {
        batch.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
      writing_ = true;
    }
    boost::system::error_code ec = write_batch(batch);
    batches_++;
    for (auto& j : batch) {
      if (!ec) commits_++;
      j.done(ec);
    }
    batch.clear();  // the handlers' last references go before a waiter is told
    {
      std::lock_guard lk(mu_);
      writing_ = false;
    }
    idle_.notify_all();
  }
}

void Spool::wait_idle() {
  std::unique_lock lk(mu_);
  idle_.wait(lk, [&] { return pending_.empty() && !writing_; });
}

std::string Spool::file_header(size_t record_len, size_t message_len) {
  return fmt::format("digue-spool 2 {} {}\n", record_len, message_len);
}

std::optional<Spool::Loaded> Spool::read_path(const std::string& path, bool with_message,
                                              int* io_error) {
  if (io_error) *io_error = 0;
  auto failed_io = [&](int e) -> std::optional<Loaded> {
    if (io_error) *io_error = e ? e : EIO;
    return std::nullopt;
  };
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) return failed_io(errno);
  std::string header;
  if (!std::getline(in, header)) return in.bad() ? failed_io(EIO) : std::nullopt;
  unsigned long long rlen = 0, mlen = 0;
  if (std::sscanf(header.c_str(), "digue-spool 2 %llu %llu", &rlen, &mlen) != 2)
    return std::nullopt;
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec) return failed_io(ec.value());
  if (size != header.size() + 1 + rlen + mlen) return std::nullopt;  // incomplete
  std::string record(rlen, '\0');
  if (!in.read(record.data(), static_cast<std::streamsize>(rlen))) return failed_io(EIO);
  auto rec = SpoolRecord::parse(record);
  if (!rec) return std::nullopt;
  Loaded l;
  l.record = std::move(*rec);
  if (with_message) {
    auto msg = std::make_shared<std::string>(mlen, '\0');
    if (!in.read(msg->data(), static_cast<std::streamsize>(mlen))) return failed_io(EIO);
    l.message = std::move(msg);
  }
  return l;
}

boost::system::error_code Spool::write_batch(std::vector<Job>& jobs) {
  using boost::system::error_code;
  std::vector<std::string> written;
  std::vector<int> fds;
  auto close_all = [&] {
    for (int fd : fds) ::close(fd);
    fds.clear();
  };
  auto fail = [&](int err) {
    close_all();
    for (const auto& p : written) ::unlink(p.c_str());
    spdlog::error("spool: write failed: {}", std::strerror(err));
    return error_code(err, boost::system::system_category());
  };
  // One file per message, written in place: its header carries both lengths, so a file cut
  // short by a crash is recognised (and was never acknowledged: the 250 waits for the sync).
  // Fewer file-system operations per message than tmp + rename pairs: on the data path they
  // cost more kernel CPU than anything else digue does.
  for (auto& j : jobs) {
    const std::string path = dir_ + "/queue/" + j.record.id;
    std::string record = j.record.serialize();
    std::string head = file_header(record.size(), j.message->size());
    int fd = write_file_fd(path, head + record, *j.message);
    if (fd < 0) return fail(-fd);
    fds.push_back(fd);
    written.push_back(path);
  }
  if (fsync_ && fds.size() <= 1) {
    for (int fd : fds)
      if (::fdatasync(fd) != 0) return fail(errno);
  } else if (fsync_) {
    // fdatasync every file of the batch concurrently: the kernel folds concurrent syncs into
    // shared journal commits, and unlike syncfs() this never waits for unrelated dirty data
    // on the same file system (other programs' writes, the store, Maildirs).
    std::atomic<int> first_error{0};
    std::latch done(static_cast<std::ptrdiff_t>(fds.size()));
    for (int fd : fds) {
      boost::asio::post(sync_pool_, [fd, &first_error, &done] {
        if (::fdatasync(fd) != 0) {
          int zero = 0;
          first_error.compare_exchange_strong(zero, errno);
        }
        done.count_down();
      });
    }
    done.wait();
    if (first_error) return fail(first_error);
  }
  close_all();
  // The directory entries of the whole batch: one fsync.
  if (fsync_ && ::fsync(queue_fd_) != 0) return fail(errno);
  return {};
}

bool Spool::write_pickup(const std::string& spool_dir, const SpoolRecord& record,
                         const std::string& message) {
  std::error_code ec;
  fs::create_directories(spool_dir + "/pickup", ec);
  fs::create_directories(spool_dir + "/tmp", ec);
  std::string rec = record.serialize();
  // Run by root (sudo diguectl ...), the file would be root's and unreadable to the daemon's
  // user: it belongs to whoever owns the spool.
  struct stat st {};
  std::optional<files::Owner> owner;
  if (::geteuid() == 0 && ::stat((spool_dir + "/pickup").c_str(), &st) == 0 && st.st_uid != 0)
    owner = files::Owner{st.st_uid, st.st_gid};
  auto e = files::write_durably(spool_dir + "/tmp/" + record.id + ".pickup",
                                spool_dir + "/pickup/" + record.id,
                                {file_header(rec.size(), message.size()), rec, message}, 0640,
                                false, owner ? &*owner : nullptr);
  if (e) spdlog::error("spool: pickup {}", e.message());
  return !e;
}

bool Spool::update(const SpoolRecord& record, const std::string* message) {
  std::shared_ptr<std::string> loaded;
  if (!message) {
    auto l = read_path(dir_ + "/queue/" + record.id, true);
    if (!l) return false;
    loaded = l->message;
    message = loaded.get();
  }
  std::string tmp = dir_ + "/tmp/" + record.id + ".new";
  std::string dst = dir_ + "/queue/" + record.id;
  std::string rec = record.serialize();
  // Synced before the rename: the file replaced is the durable copy of an acknowledged
  // message, and a rename of unsynced data can leave an empty or short file after a crash,
  // which recover() would take for a never-acknowledged one and delete.
  auto e =
      files::write_durably(tmp, dst, {file_header(rec.size(), message->size()), rec, *message});
  if (e) spdlog::warn("spool: update {}", e.message());
  return !e;
}

void Spool::remove(const std::string& id) { ::unlink((dir_ + "/queue/" + id).c_str()); }

bool Spool::move_to(const std::string& id, const std::string& subdir) {
  std::error_code ec;
  fs::create_directories(dir_ + "/" + subdir, ec);
  std::string from = dir_ + "/queue/" + id;
  std::string to = dir_ + "/" + subdir + "/" + id;
  if (::rename(from.c_str(), to.c_str()) != 0) return false;
  if (fsync_) {
    files::sync_dir(dir_ + "/" + subdir);
    ::fsync(queue_fd_);
  }
  return true;
}

std::shared_ptr<std::string> Spool::load_message(const std::string& id) const {
  auto l = read_path(dir_ + "/queue/" + id, true);
  return l ? l->message : nullptr;
}

std::vector<SpoolRecord> Spool::recover() {
  std::vector<SpoolRecord> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_ + "/tmp", ec)) fs::remove(e.path(), ec);
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir_ + "/queue", ec))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    std::string id = path.filename().string();
    auto l = read_path(path.string(), false);
    if (l) {
      out.push_back(std::move(l->record));
      continue;
    }
    // Only a framed file shorter than its own header says was cut short by a crash before
    // its sync: never acknowledged (the client got no 250 and sends it again), so removed.
    // Everything else we cannot read (no or unknown header, e.g. an older spool format, a
    // garbled record) may be an acknowledged message: kept aside for the postmaster.
    std::ifstream in(path, std::ios::binary);
    std::string header;
    bool got_header = static_cast<bool>(std::getline(in, header)) && !in.eof();
    unsigned long long rlen = 0, mlen = 0;
    bool framed =
        got_header && std::sscanf(header.c_str(), "digue-spool 2 %llu %llu", &rlen, &mlen) == 2;
    auto size = fs::file_size(path, ec);
    if (framed && !ec && size < header.size() + 1 + rlen + mlen) {
      spdlog::info("spool: removing unacknowledged {} (cut short)", id);
      fs::remove(path, ec);
    } else if (move_to(id, "corrupt")) {
      spdlog::error("spool: unreadable queue file {}, moved to {}/corrupt", id, dir_);
    } else {
      spdlog::error("spool: unreadable queue file {}, left in {}/queue: cannot move to corrupt",
                    id, dir_);
    }
  }
  return out;
}

}  // namespace digue
