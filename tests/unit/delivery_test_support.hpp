// Test support for tests that start real servers: temporary directories, free loopback
// ports, child processes stopped by RAII, a bounded run of a coroutine on an io_context, and
// the real downstreams: smtp-sink and Dovecot LMTP.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "digue/delivery.hpp"

extern char** environ;

namespace digue::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "digue-dlv-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); ++it)
    if (it->is_regular_file()) out.push_back(it->path());
  std::sort(out.begin(), out.end());
  return out;
}

// A socket of `type` (SOCK_STREAM, SOCK_DGRAM) bound to a free loopback port, stored in port.
inline int loopback_socket(int type, uint16_t& port) {
  int fd = ::socket(AF_INET, type, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

inline uint16_t free_port() {
  uint16_t port = 0;
  ::close(loopback_socket(SOCK_STREAM, port));
  return port;
}

inline bool port_open(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// A child process with stdout+stderr in a log file; killed (TERM, then KILL) on destruction.
struct Process {
  pid_t pid = -1;
  fs::path log;
  int status = 0;
  Process(std::vector<std::string> argv, fs::path log_path) : log(std::move(log_path)) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    REQUIRE(rc == 0);
  }
  // True when the process ended by itself within the limit.
  bool wait_exit(std::chrono::milliseconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (pid < 0) return true;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        return true;
      }
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  void stop() {
    if (pid < 0) return;
    ::kill(pid, SIGTERM);
    if (!wait_exit(5s)) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      pid = -1;
    }
  }
  ~Process() { stop(); }
};

inline void wait_listening(uint16_t port, Process& p) {
  auto end = std::chrono::steady_clock::now() + 10s;
  while (!port_open(port)) {
    INFO(slurp(p.log));
    REQUIRE(std::chrono::steady_clock::now() < end);
    REQUIRE(!p.wait_exit(0ms));
    std::this_thread::sleep_for(20ms);
  }
}

// smtp-sink on 127.0.0.1:port dumping each transaction into dir (world-writable: it runs as
// nobody); extra options are smtp-sink's (-r/-f/-Q/-W/-w/-n...).
struct Sink {
  TempDir dir;
  uint16_t port = free_port();
  std::unique_ptr<Process> proc;
  explicit Sink(std::vector<std::string> extra = {}) {
    fs::permissions(dir.path, fs::perms::all);
    std::vector<std::string> argv = {
        "/usr/sbin/smtp-sink", "-u", "nobody", "-c", "-d", (dir.path / "mail" / "%M.").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("127.0.0.1:" + std::to_string(port));
    argv.push_back("100");
    fs::create_directory(dir.path / "mail");
    fs::permissions(dir.path / "mail", fs::perms::all);
    proc = std::make_unique<Process>(argv, dir.path / "sink.log");
    wait_listening(port, *proc);
  }
  digue::delivery::Target target() const {
    return *digue::delivery::Target::parse("127.0.0.1:" + std::to_string(port), "");
  }
  std::vector<fs::path> mails() const { return files_in(dir.path / "mail"); }
  // smtp-sink -c prints "sess=N quit=N mesg=N" counters; the last one printed.
  std::string counters() const {
    auto log = slurp(proc->log);
    auto pos = log.rfind("sess=");
    return pos == std::string::npos ? "" : log.substr(pos, log.find_first_of("\r\n", pos) - pos);
  }
};

template <typename T>
T run(boost::asio::io_context& io, boost::asio::awaitable<T> a, std::chrono::seconds limit = 30s) {
  auto fut = boost::asio::co_spawn(io, std::move(a), boost::asio::use_future);
  auto end = std::chrono::steady_clock::now() + limit;
  io.restart();
  while (fut.wait_for(0s) != std::future_status::ready && std::chrono::steady_clock::now() < end)
    io.run_one_for(50ms);
  REQUIRE(fut.wait_for(0s) == std::future_status::ready);
  return fut.get();
}

inline std::shared_ptr<const std::string> msg(std::string s) {
  return std::make_shared<const std::string>(std::move(s));
}

inline digue::delivery::Job make_job(std::vector<std::string> rcpts, std::string data) {
  digue::delivery::Job j;
  j.queue_id = "Q1";
  j.mail_from = {"sender", "example.org"};
  for (auto& r : rcpts) {
    auto at = r.find('@');
    j.rcpts.push_back({r.substr(0, at), r.substr(at + 1)});
  }
  j.data = msg(std::move(data));
  return j;
}

inline digue::delivery::Options quick_options() {
  digue::delivery::Options o;
  o.hostname = "relay.test";
  o.timeouts.connect = 3s;
  o.timeouts.greeting = o.timeouts.command = o.timeouts.data_init = 5s;
  o.timeouts.data_block = o.timeouts.data_term = 5s;
  o.timeouts.quit = 2s;
  o.queue_wait = 20s;
  return o;
}

// Dovecot 2.3 serving only LMTP, as root with its own base/state dirs; users alice and bob
// (any other recipient is unknown); mail in <dir>/mail/<user>/ as the nobody user.
struct Dovecot {
  TempDir dir;
  uint16_t port = free_port();
  std::unique_ptr<Process> proc;
  explicit Dovecot(bool tls) {
    auto d = dir.path.string();
    fs::permissions(dir.path,
                    fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    for (auto sub : {"mail", "run", "state"}) fs::create_directory(dir.path / sub);
    fs::permissions(dir.path / "mail", fs::perms::all);
    auto* pw = ::getpwnam("nobody");
    REQUIRE(pw);
    std::string ids = std::to_string(pw->pw_uid) + ":" + std::to_string(pw->pw_gid);
    {
      std::ofstream users(dir.path / "users");
      for (auto u : {"alice", "bob"})
        users << u << ":{PLAIN}secret:" << ids << "::" << d << "/mail/" << u << "::\n";
    }
    if (tls) {
      std::string cmd =
          "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost"
          " -keyout " +
          d + "/key.pem -out " + d + "/cert.pem >/dev/null 2>&1";
      REQUIRE(std::system(cmd.c_str()) == 0);
    }
    std::ofstream conf(dir.path / "dovecot.conf");
    conf << "protocols = lmtp\n"
         << "listen = 127.0.0.1\n"
         << "base_dir = " << d << "/run\n"
         << "state_dir = " << d << "/state\n"
         << "instance_name = digue-dlv-" << port << "\n"
         << "log_path = " << d << "/dovecot.log\n"
         << "default_internal_user = dovecot\n"
         << "default_login_user = dovenull\n"
         << "first_valid_uid = 1\n"
         << "mail_location = maildir:" << d << "/mail/%n\n"
         << "auth_username_format = %Ln\n"
         << "recipient_delimiter = +\n"
         << "lmtp_save_to_detail_mailbox = yes\n"
         << "lda_mailbox_autocreate = yes\n"
         << "ssl = " << (tls ? "yes" : "no") << "\n";
    if (tls) {
      conf << "ssl_cert = <" << d << "/cert.pem\n"
           << "ssl_key = <" << d << "/key.pem\n"
           << "ssl_min_protocol = TLSv1.2\n";
    }
    conf << "passdb {\n  driver = passwd-file\n  args = " << d << "/users\n}\n"
         << "userdb {\n  driver = passwd-file\n  args = " << d << "/users\n}\n"
         << "service lmtp {\n  inet_listener lmtp {\n    address = 127.0.0.1\n"
         << "    port = " << port << "\n  }\n}\n";
    conf.close();
    proc = std::make_unique<Process>(
        std::vector<std::string>{"/usr/sbin/dovecot", "-F", "-c", d + "/dovecot.conf"},
        dir.path / "stdout.log");
    wait_listening(port, *proc);
  }
  digue::delivery::Target target() const {
    return *digue::delivery::Target::parse("lmtp:127.0.0.1:" + std::to_string(port), "");
  }
  std::vector<fs::path> mails(const std::string& user, const std::string& folder = "") const {
    return files_in(dir.path / "mail" / user / folder / "new");
  }
  std::string log() const { return slurp(dir.path / "dovecot.log") + slurp(proc->log); }
};

inline const char* kMessage =
    "From: <sender@example.org>\r\nTo: <a@example.test>\r\nSubject: hello\r\n\r\n"
    ".leading dot\r\n..two dots\r\nbody\r\n";

}  // namespace digue::test
