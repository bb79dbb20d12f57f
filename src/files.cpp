// Durable file writes; see include/digue/files.hpp.
#include "digue/files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace digue::files {

std::string Error::message() const { return step + " " + path + ": " + std::strerror(code); }

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

Error sync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return {errno, "fsync", dir};
  Error e;
  if (::fsync(fd) != 0) e = {errno, "fsync", dir};
  ::close(fd);
  return e;
}

Error write_durably(const std::string& tmp, const std::string& dst,
                    std::initializer_list<std::string_view> parts, mode_t mode, bool exclusive,
                    const Owner* owner) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC);
  int fd = ::open(tmp.c_str(), flags, mode);
  if (fd < 0) return {errno, "create", tmp};
  Error e;
  if (owner && ::fchown(fd, owner->uid, owner->gid) != 0) e = {errno, "chown", tmp};
  for (std::string_view p : parts)
    if (!e && !write_all(fd, p)) {
      e = {errno ? errno : EIO, "write", tmp};
      break;
    }
  if (!e && ::fsync(fd) != 0) e = {errno, "fsync", tmp};
  if (::close(fd) != 0 && !e) e = {errno, "write", tmp};  // NFS reports write errors at close
  if (!e && ::rename(tmp.c_str(), dst.c_str()) != 0) e = {errno, "rename", dst};
  if (e) {
    ::unlink(tmp.c_str());
    return e;
  }
  auto slash = dst.rfind('/');
  return sync_dir(slash == std::string::npos ? std::string(".") : dst.substr(0, slash));
}

}  // namespace digue::files
