// Quarantine index format; see include/digue/quarantine.hpp.
#include "digue/quarantine.hpp"

#include <cstdlib>
#include <vector>

#include "digue/delivery.hpp"

namespace digue::quarantine {

namespace {

constexpr std::string_view kVersion = "2";

// Splits at the first max_fields - 1 tabs: the last field keeps any tabs it has.
std::vector<std::string_view> split_tabs(std::string_view v, size_t max_fields) {
  std::vector<std::string_view> out;
  while (out.size() + 1 < max_fields) {
    size_t tab = v.find('\t');
    if (tab == std::string_view::npos) break;
    out.push_back(v.substr(0, tab));
    v.remove_prefix(tab + 1);
  }
  out.push_back(v);
  return out;
}

std::string one_line(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c == '\t' || c == '\r' || c == '\n') c = ' ';
  return out;
}

int64_t to_int(std::string_view s) { return std::atoll(std::string(s).c_str()); }

}  // namespace

std::string index_key(std::string_view domain, std::string_view id) {
  return "quar:" + std::string(domain) + ":" + std::string(id);
}

std::string encode(const IndexEntry& e) {
  std::string v(kVersion);
  for (std::string_view f : {std::string_view(e.from), std::string_view(e.rcpts)}) {
    v += '\t';
    v += one_line(f);
  }
  v += '\t' + std::to_string(e.created) + '\t' + one_line(e.filter) + '\t' + one_line(e.subject);
  return v;
}

IndexEntry decode(std::string_view value) {
  IndexEntry e;
  if (value.substr(0, kVersion.size() + 1) == std::string(kVersion) + '\t') {
    auto f = split_tabs(value.substr(kVersion.size() + 1), 5);
    if (f.size() == 5) {
      e.from = f[0];
      e.rcpts = f[1];
      e.created = to_int(f[2]);
      e.filter = f[3];
      e.subject = one_line(f[4]);
    }
    return e;
  }
  // First format: from, rcpts, subject, created, filter, path; a TAB in the subject made
  // more fields, so created and filter are counted from the end.
  auto f = split_tabs(value, std::string_view::npos);
  if (f.size() < 6) return e;
  size_t n = f.size();
  e.from = f[0];
  e.rcpts = f[1];
  const char* start = f[2].data();
  e.subject = one_line(std::string_view(start, f[n - 3].data() - 1 - start));
  e.created = to_int(f[n - 3]);
  e.filter = f[n - 2];
  return e;
}

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
      return false;
  return true;
}

std::string file_path(const std::string& spool_dir, std::string_view id,
                      std::string_view domain) {
  return spool_dir + "/quarantine/" + std::string(id) + "." +
         delivery::sanitize_path_component(domain) + ".eml";
}

}  // namespace digue::quarantine
