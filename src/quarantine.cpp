// Quarantine index format; see include/digue/quarantine.hpp.
#include "digue/quarantine.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "digue/delivery.hpp"
#include "digue/store.hpp"

namespace digue::quarantine {

namespace {

constexpr std::string_view kVersion = "3";
constexpr std::string_view kVersion2 = "2";

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
  std::string flags = std::string(e.smtputf8 ? "U" : "") + (e.body_8bit ? "8" : "");
  v += '\t' + std::to_string(e.created) + '\t' + one_line(e.filter) + '\t' +
       (flags.empty() ? "-" : flags) + '\t' + one_line(e.subject);
  return v;
}

IndexEntry decode(std::string_view value) {
  IndexEntry e;
  for (std::string_view version : {kVersion, kVersion2}) {
    if (value.substr(0, version.size() + 1) != std::string(version) + '\t') continue;
    bool flags = version == kVersion;
    auto f = split_tabs(value.substr(version.size() + 1), flags ? 6 : 5);
    if (f.size() != (flags ? 6u : 5u)) return e;
    e.from = f[0];
    e.rcpts = f[1];
    e.created = to_int(f[2]);
    e.filter = f[3];
    if (flags) {
      e.smtputf8 = f[4].find('U') != std::string_view::npos;
      e.body_8bit = f[4].find('8') != std::string_view::npos;
    }
    e.subject = one_line(f.back());
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

size_t sweep(const std::string& spool_dir, std::chrono::seconds keep, Store* store,
             size_t max_removals) {
  namespace fs = std::filesystem;
  const auto now = fs::file_time_type::clock::now();
  size_t removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(spool_dir + "/quarantine", ec), end;
       !ec && it != end && removed < max_removals; it.increment(ec)) {
    std::string name = it->path().filename().string();
    std::error_code fec;
    auto mtime = it->last_write_time(fec);
    if (fec || !it->is_regular_file(fec)) continue;
    bool tmp = name.ends_with(".tmp");
    if (!tmp && !name.ends_with(".eml")) continue;
    if (now - mtime < (tmp ? std::chrono::seconds(3600) : keep)) continue;
    if (!fs::remove(it->path(), fec)) {
      spdlog::warn("quarantine: cannot remove {}: {}", it->path().string(), fec.message());
      continue;
    }
    removed++;
    spdlog::info("quarantine: expired {}", name);
    // <id>.<domain>.eml: the entry usually expired with its TTL already; this catches the
    // rest (quarantine_days lowered since).
    size_t dot = name.find('.');
    if (tmp || !store || dot == std::string::npos) continue;
    std::string id = name.substr(0, dot);
    std::string domain = name.substr(dot + 1, name.size() - dot - 1 - 4);
    try {
      store->del(index_key(domain, id));
    } catch (const std::exception& e) {
      spdlog::warn("quarantine: cannot remove the index entry of {}: {}", name, e.what());
    }
  }
  if (ec && ec != std::errc::no_such_file_or_directory)
    spdlog::warn("quarantine: cannot read {}/quarantine: {}", spool_dir, ec.message());
  return removed;
}

}  // namespace digue::quarantine
