// Quarantine index: shared by the queue (writes) and diguectl quarantine (reads).
// A quarantined copy is the file spool/quarantine/<ID>.<domain>.eml (domain made safe for a
// file name) plus a store entry "quar:<domain>:<ID>" whose value is
// "2 TAB from TAB rcpts TAB created TAB filter TAB subject". The Subject is untrusted: it comes
// last, is split off after the fourth field only, and its TAB, CR and LF are written as
// spaces, so no field can shift. The file path is never stored: it is derived from the key,
// so a malformed or tampered entry cannot make `delete` remove another file.
// Entries of the first format ("from TAB rcpts TAB subject TAB created TAB filter TAB path")
// are still read: the fields are taken from both ends and the stored path is ignored.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace digue::quarantine {

struct IndexEntry {
  std::string from;     // MAIL FROM, "" for the null sender
  std::string rcpts;    // this domain's recipients, comma-separated
  int64_t created = 0;  // arrival (Unix seconds)
  std::string filter;   // the deciding filter
  std::string subject;  // first line of the Subject, TAB/CR/LF as spaces
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

}  // namespace digue::quarantine
