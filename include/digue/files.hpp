// Durable file writes shared by the spool, the quarantine and Maildir delivery: the sequence
// that makes a file survive a crash once the call returns (write to a temporary name, fsync,
// close, rename into place, fsync the directory). Blocking: call it off the I/O threads or
// where a blocking write is the point (the spool writer).
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace digue::files {

struct Error {
  int code = 0;      // errno; 0 = success
  std::string step;  // "create", "write", "rename", "fsync"
  std::string path;
  explicit operator bool() const { return code != 0; }
  std::string message() const;  // "write /path: No space left on device"
};

// Writes all of data, retrying on EINTR and short writes.
bool write_all(int fd, std::string_view data);

// fsync a directory so that a name created or renamed in it survives a crash.
Error sync_dir(const std::string& dir);

// A file's owner to set before it appears under its final name.
struct Owner {
  uid_t uid;
  gid_t gid;
};

// Writes the parts to tmp (exclusive create when `exclusive`), fsyncs and closes it, renames it
// to dst and fsyncs dst's directory. On any failure tmp is removed and dst is untouched. With
// `owner`, the file is chowned before the rename (a root tool writing for the daemon's user).
Error write_durably(const std::string& tmp, const std::string& dst,
                    std::initializer_list<std::string_view> parts, mode_t mode = 0640,
                    bool exclusive = false, const Owner* owner = nullptr);

}  // namespace digue::files
