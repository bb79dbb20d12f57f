// Quarantine index: shared by the queue (writes) and diguectl quarantine (reads).
// A quarantined copy is the file spool/quarantine/<ID>.<domain>.eml (domain made safe for a
// file name) plus a store entry "quar:<domain>:<ID>" whose value is
// "3 TAB from TAB rcpts TAB created TAB filter TAB flags TAB subject" (flags: "U" SMTPUTF8,
// "8" 8-bit body, "-" neither). The Subject is untrusted: it comes last, is split off after
// the fifth field only, and its TAB, CR and LF are written as spaces, so no field can shift.
// Entries of format 2 (no flags field) are still read. The file path is never stored: it is derived from the key,
// so a malformed or tampered entry cannot make `delete` remove another file.
// Entries of the first format ("from TAB rcpts TAB subject TAB created TAB filter TAB path")
// are still read: the fields are taken from both ends and the stored path is ignored.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace digue {
class Store;
}

namespace digue::quarantine {

struct IndexEntry {
  std::string from;     // MAIL FROM, "" for the null sender
  std::string rcpts;    // this domain's recipients, comma-separated
  int64_t created = 0;  // arrival (Unix seconds)
  std::string filter;   // the deciding filter
  std::string subject;  // first line of the Subject, TAB/CR/LF as spaces
  bool smtputf8 = false;   // the envelope's, restored on release
  bool body_8bit = false;
};

std::string index_key(std::string_view domain, std::string_view id);
std::string encode(const IndexEntry& e);
IndexEntry decode(std::string_view value);

// A queue ID as Spool::new_id makes them (letters and digits only): anything else read from
// the store is not used to build a path.
bool valid_id(std::string_view id);
// spool_dir/quarantine/<id>.<domain>.eml
std::string file_path(const std::string& spool_dir, std::string_view id,
                      std::string_view domain);

// Retention: removes the quarantined copies (spool_dir/quarantine/*.eml) last written more
// than keep ago with their index entries (store may be null), and temporary files a crash
// left behind (*.tmp older than an hour). Removes at most max_removals files per call (bounded
// work; call again later for the rest) and returns how many it removed. Never throws.
size_t sweep(const std::string& spool_dir, std::chrono::seconds keep, Store* store,
             size_t max_removals);

}  // namespace digue::quarantine
