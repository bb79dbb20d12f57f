// diguectl quarantine: list, show, delete and release quarantined messages.
// The quarantine is spool/quarantine/<ID>.<domain>.eml (the copy as it would have been
// delivered, our trace headers included) plus an index entry "quar:<domain>:<ID>" in the
// store (see digue/quarantine.hpp; the file's path is derived from the key, never read from
// the entry). Release writes a spool file into spool/pickup/, which the running daemon
// delivers to the domain's downstream within seconds; then the quarantined copy and its
// index entry are removed. Reindex rebuilds missing index entries from the copies' own trace
// headers (X-Digue-Envelope-From/-To, X-Digue-Filter), e.g. after the store was lost.
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "digue/ctl.hpp"
#include "digue/headers.hpp"
#include "digue/mime.hpp"
#include "digue/quarantine.hpp"
#include "digue/smtp_protocol.hpp"
#include "digue/spool.hpp"
#include "digue/store.hpp"
#include "digue/text.hpp"

namespace digue::ctl {

namespace {

struct Entry {
  std::string domain, id, file;
  quarantine::IndexEntry index;
};

std::vector<Entry> entries(Store& store, const Config& config, const std::string& domain) {
  std::vector<Entry> out;
  std::string prefix = "quar:" + (domain.empty() ? std::string() : text::lower(domain) + ":");
  store.scan(prefix, [&](std::string_view key, std::string_view value) {
    Entry e;
    std::string_view rest = key.substr(5);
    size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) return true;
    e.domain = std::string(rest.substr(0, colon));
    e.id = std::string(rest.substr(colon + 1));
    if (!quarantine::valid_id(e.id)) return true;
    e.file = quarantine::file_path(config.spool.dir, e.id, e.domain);
    e.index = quarantine::decode(value);
    out.push_back(std::move(e));
    return true;
  });
  return out;
}

std::vector<Entry> find(Store& store, const Config& config, const std::string& id) {
  std::vector<Entry> out;
  for (auto& e : entries(store, config, ""))
    if (e.id == id) out.push_back(std::move(e));
  return out;
}

Address parse_address(const std::string& s) {
  std::string err;
  auto p = smtp::parse_path_and_params("<" + s + ">", true, &err);
  return p ? p->address : Address{};
}

int usage() {
  std::cerr << "usage: diguectl [--config FILE] quarantine list [DOMAIN] | show ID | "
               "delete ID | release ID | reindex\n";
  return 2;
}

std::string without_angles(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '<')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '>')) s.remove_suffix(1);
  return std::string(s);
}

bool has_8bit(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return (c & 0x80) != 0; });
}

// An index entry for each quarantined copy that has none, from the copy's trace headers; its
// TTL is what is left of quarantine_days. Returns how many were added.
size_t reindex(Store& store, const Config& config) {
  namespace fs = std::filesystem;
  size_t added = 0;
  std::error_code ec;
  for (fs::directory_iterator it(config.spool.dir + "/quarantine", ec), end; !ec && it != end;
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    size_t dot = name.find('.');
    if (dot == std::string::npos || !name.ends_with(".eml") || dot + 5 > name.size()) continue;
    std::string id = name.substr(0, dot);
    std::string domain = name.substr(dot + 1, name.size() - dot - 5);
    if (!quarantine::valid_id(id) || store.get(quarantine::index_key(domain, id))) continue;
    auto body = text::read_file(it->path().string());
    struct stat st {};
    if (!body || ::stat(it->path().c_str(), &st) != 0) continue;
    size_t end_of_headers = body->find("\r\n\r\n");
    auto parsed = mime::parse(std::string_view(*body).substr(0, end_of_headers));
    auto value = [&](std::string_view field) {
      const mime::Header* h = parsed.header(field);
      return h ? h->raw_value : std::string();
    };
    quarantine::IndexEntry e;
    e.from = without_angles(value("X-Digue-Envelope-From"));
    std::string to = value("X-Digue-Envelope-To");
    for (size_t start = 0; start < to.size();) {
      size_t comma = std::min(to.find(',', start), to.size());
      std::string one = without_angles(std::string_view(to).substr(start, comma - start));
      if (!one.empty()) e.rcpts += (e.rcpts.empty() ? "" : ",") + one;
      start = comma + 1;
    }
    e.created = st.st_mtime;
    e.filter = value("X-Digue-Filter");
    e.subject = value("Subject");
    e.smtputf8 = has_8bit(e.from) || has_8bit(e.rcpts);
    e.body_8bit = has_8bit(*body);
    if (e.rcpts.empty()) {
      std::cerr << "diguectl: " << name << ": no X-Digue-Envelope-To, not indexed\n";
      continue;
    }
    auto age = std::time(nullptr) - st.st_mtime;
    auto ttl = std::max<int64_t>(1, config.delivery.quarantine_days.count() - age);
    store.put(quarantine::index_key(domain, id), quarantine::encode(e), std::chrono::seconds(ttl));
    std::cout << "indexed " << id << " (" << domain << ")\n";
    added++;
  }
  return added;
}

}  // namespace

int quarantine(const Config& config, const Args& args) {
  if (args.empty()) return usage();
  auto store = make_lmdb_store(config.store.dir, config.store.map_size);
  const std::string& cmd = args[0];
  if (cmd == "list") {
    auto list = entries(*store, config, args.size() > 1 ? args[1] : "");
    for (const auto& e : list)
      std::cout << fmt::format("{}  {}  {}  from=<{}>  to={}  filter={}  subject=\"{}\"\n", e.id,
                               e.domain, headers::rfc5322_date(e.index.created), e.index.from,
                               e.index.rcpts, e.index.filter, e.index.subject);
    std::cout << "-- " << list.size() << " quarantined message(s)\n";
    return 0;
  }
  if (cmd == "reindex") {
    size_t added = reindex(*store, config);
    std::cout << "-- " << added << " index entr(y/ies) rebuilt\n";
    return 0;
  }
  if (args.size() != 2) return usage();
  auto found = find(*store, config, args[1]);
  if (found.empty()) {
    std::cerr << "diguectl: no quarantined message " << args[1] << "\n";
    return 1;
  }
  if (cmd == "show") {
    for (const auto& e : found) {
      auto body = text::read_file(e.file);
      if (!body) {
        std::cerr << "diguectl: cannot read " << e.file << "\n";
        return 1;
      }
      std::cout << *body;
    }
    return 0;
  }
  if (cmd == "delete" || cmd == "release") {
    for (const auto& e : found) {
      if (cmd == "release") {
        auto body = text::read_file(e.file);
        if (!body) {
          std::cerr << "diguectl: cannot read " << e.file << "\n";
          return 1;
        }
        SpoolRecord rec;
        rec.id = Spool::new_id();
        rec.state = SpoolState::Queued;
        rec.created = static_cast<int64_t>(std::time(nullptr));
        rec.envelope.queue_id = rec.id;
        rec.envelope.received_at = rec.created;
        rec.envelope.client_ip = "127.0.0.1";
        rec.envelope.helo = config.server.hostname;
        rec.envelope.mail_from = parse_address(e.index.from);
        rec.envelope.smtputf8 = e.index.smtputf8;
        rec.envelope.body_8bit = e.index.body_8bit;
        const std::string& r = e.index.rcpts;
        size_t start = 0;
        while (start <= r.size()) {
          size_t comma = r.find(',', start);
          std::string one =
              r.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
          if (!one.empty()) {
            RcptState rs;
            rs.address = parse_address(one);
            rs.action = "release";
            rec.envelope.rcpts.push_back(rs.address);
            rec.rcpts.push_back(rs);
          }
          if (comma == std::string::npos) break;
          start = comma + 1;
        }
        rec.summary = "released from quarantine " + e.id;
        if (rec.rcpts.empty() || !Spool::write_pickup(config.spool.dir, rec, *body)) {
          std::cerr << "diguectl: could not queue " << e.id << " for release\n";
          return 1;
        }
        std::cout << "released " << e.id << " (" << e.domain << ") as " << rec.id << "\n";
      } else {
        std::cout << "deleted " << e.id << " (" << e.domain << ")\n";
      }
      std::error_code ec;
      std::filesystem::remove(e.file, ec);
      store->del(quarantine::index_key(e.domain, e.id));
    }
    return 0;
  }
  return usage();
}

}  // namespace digue::ctl
