// Maildir++ writer: durable, one file per recipient; see include/digue/delivery.hpp.
// Blocking (open/write/fsync/rename): the Deliverer runs it on its blocking executor.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "digue/delivery.hpp"
#include "digue/files.hpp"

namespace digue::delivery {

namespace {

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

std::string sys_error(const std::string& what, const std::string& path, int err) {
  return "maildir: " + what + " " + path + ": " + std::strerror(err);
}

bool sync_dir(const std::string& dir, std::string& err) {
  if (auto e = files::sync_dir(dir)) {
    err = "maildir: " + e.message();
    return false;
  }
  return true;
}

// mkdir -p, syncing the parent of every directory it creates.
bool ensure_dir(const std::string& path, std::string& err) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return true;
    err = sys_error("not a directory:", path, ENOTDIR);
    return false;
  }
  auto slash = path.find_last_of('/');
  std::string parent =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  if (parent != path && !ensure_dir(parent, err)) return false;
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    err = sys_error("mkdir", path, errno);
    return false;
  }
  return sync_dir(parent, err);
}

bool ensure_maildir(const std::string& dir, bool plus_folder, std::string& err) {
  for (const char* sub : {"/tmp", "/new", "/cur"})
    if (!ensure_dir(dir + sub, err)) return false;
  if (plus_folder) {
    // Maildir++: marks the directory as a folder for IMAP servers (Courier, Dovecot).
    std::string marker = dir + "/maildirfolder";
    Fd fd(::open(marker.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    if (fd.fd < 0) {
      err = sys_error("create", marker, errno);
      return false;
    }
  }
  return true;
}

// "Junk" -> ".Junk"; "Archive/2024" -> ".Archive.2024". Case is kept: folder names are shown.
std::string folder_dir(std::string_view folder) {
  std::string out = ".";
  for (char c : folder) {
    auto u = static_cast<unsigned char>(c);
    if (c == '/' || c == '.') {
      if (out.back() != '.') out += '.';
    } else if (u < 0x20 || u == 0x7f || c == '\\') {
      out += '_';
    } else {
      out += c;
    }
  }
  while (out.size() > 1 && out.back() == '.') out.pop_back();
  return out == "." ? std::string() : out;
}

// The Maildir spec: time.MusecPpidQcounter.host, with '/' and ':' in host escaped.
std::string unique_name(const std::string& hostname, std::size_t size) {
  static std::atomic<uint64_t> counter{0};
  struct timeval tv {};
  ::gettimeofday(&tv, nullptr);
  std::string host;
  for (char c : hostname) {
    if (c == '/')
      host += "\\057";
    else if (c == ':')
      host += "\\072";
    else
      host += c;
  }
  return std::to_string(tv.tv_sec) + ".M" + std::to_string(tv.tv_usec) + "P" +
         std::to_string(::getpid()) + "Q" + std::to_string(++counter) + "." +
         (host.empty() ? "localhost" : host) + ",S=" + std::to_string(size);
}

std::string to_lf(std::string_view data) {
  std::string out;
  out.reserve(data.size());
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (data[i] == '\r' && i + 1 < data.size() && data[i + 1] == '\n') continue;
    out += data[i];
  }
  if (!out.empty() && out.back() != '\n') out += '\n';
  return out;
}

RcptResult temp_fail(std::string text) {
  return {RcptResult::Status::TempFail, 451, "4.3.0", std::move(text)};
}

RcptResult deliver_one(const std::string& root, const Job& job, const Address& rcpt,
                       const std::string& body, const std::string& hostname) {
  std::string dir =
      root + "/" + sanitize_path_component(rcpt.domain) + "/" + sanitize_path_component(rcpt.local);
  std::string err;
  if (!ensure_maildir(dir, false, err)) return temp_fail(err);
  std::string sub = folder_dir(job.folder);
  if (!sub.empty()) {
    dir += "/" + sub;
    if (!ensure_maildir(dir, true, err)) return temp_fail(err);
  }
  std::string content =
      "Return-Path: <" + job.mail_from.str() + ">\nDelivered-To: " + rcpt.str() + "\n" + body;
  std::string name = unique_name(hostname, content.size());
  std::string tmp = dir + "/tmp/" + name;
  std::string fin = dir + "/new/" + name;
  if (auto e = files::write_durably(tmp, fin, {content}, 0600, /*exclusive=*/true))
    return temp_fail("maildir: " + e.message());
  return {RcptResult::Status::Delivered, 250, "2.0.0", "delivered to maildir " + fin};
}

}  // namespace

std::vector<RcptResult> write_maildir(const std::string& root, const Job& job,
                                      const std::string& hostname) {
  std::string body = job.data ? to_lf(*job.data) : std::string();
  std::vector<RcptResult> out;
  out.reserve(job.rcpts.size());
  for (const auto& rcpt : job.rcpts) out.push_back(deliver_one(root, job, rcpt, body, hostname));
  return out;
}

}  // namespace digue::delivery
