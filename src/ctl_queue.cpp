// diguectl queue list: the spooled messages with their state and per-recipient status
// (like `postqueue -p`). Reads the spool directly; safe while the daemon runs.
#include <filesystem>
#include <iostream>

#include "digue/ctl.hpp"
#include "digue/spool.hpp"
#include "digue/text.hpp"

namespace digue::ctl {

int queue(const Config& config, const Args& args) {
  if (args.empty() || args[0] != "list") {
    std::cerr << "usage: diguectl --config FILE queue list\n";
    return 2;
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  int n = 0;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(config.spool.dir + "/queue", ec))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& p : files) {
    auto loaded = Spool::read_path(p.string(), false);
    if (!loaded) {
      std::cout << p.filename().string() << " (being written, or unreadable)\n";
      continue;
    }
    const SpoolRecord* rec = &loaded->record;
    ++n;
    std::cout << rec->id << " " << to_string(rec->state) << " created=" << rec->created
              << " next_try=" << rec->next_try << " attempts=" << rec->attempts << " from=<"
              << rec->envelope.mail_from.str() << ">\n";
    for (const auto& r : rec->rcpts) {
      const char* st = r.status == RcptState::Status::Pending     ? "pending"
                       : r.status == RcptState::Status::Delivered ? "delivered"
                                                                  : "failed";
      std::cout << "    <" << r.address.str() << "> " << r.action << " " << st
                << (r.last_error.empty() ? "" : " (" + r.last_error + ")") << "\n";
    }
  }
  std::cout << "-- " << n << " message(s) in the queue\n";
  return ec ? 1 : 0;
}

}  // namespace digue::ctl
