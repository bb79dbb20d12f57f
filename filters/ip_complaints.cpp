#include "filters/ip_complaints.hpp"

#include <algorithm>

#include "digue/options.hpp"
#include "digue/rule_file.hpp"

namespace digue::filters {
namespace {

struct Entry {
  net::Cidr cidr;
  int line = 0;
  std::string reason;
};

std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

class IpComplaints final : public Filter {
 public:
  IpComplaints(std::string file, std::vector<Entry> entries, double score)
      : file_(std::move(file)), entries_(std::move(entries)), score_(score) {}
  std::string_view name() const override { return "ip_complaints"; }
  Phase phase() const override { return Phase::Connect; }

  boost::asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
    auto ip = net::Ip::parse(ctx.envelope.client_ip);
    if (!ip) co_return FilterResult::none();
    for (const Entry& e : entries_) {
      if (!e.cidr.contains(*ip)) continue;
      std::string evidence = ip->str() + " in " + e.cidr.str() + " (" + file_ + ":" +
                             std::to_string(e.line) + ")";
      if (!e.reason.empty()) evidence += " " + e.reason;
      co_return FilterResult::hit("IP_COMPLAINT", score_, std::move(evidence),
                                  ip->str() + " is listed after complaints");
    }
    co_return FilterResult::none();
  }

 private:
  std::string file_;
  std::vector<Entry> entries_;
  double score_;
};

}  // namespace

FilterPtr make_ip_complaints(const FilterBuildContext& b) {
  OptionReader r(b.options, "filters.ip_complaints");
  std::string file = r.str("file", "rules/ip_complaints.txt");
  double score = r.number("score", 10.0, -100, 100);
  r.finish();
  // The key's line in messages, or the table's when the default file is used.
  const toml::node* at = b.options.get("file") ? b.options.get("file") : &b.options;
  std::string path = resolve_config_path(b.config, file);
  std::vector<Entry> entries;
  for (const RuleLine& l : read_rule_lines(path, r.path("file"), at)) {
    size_t hash = l.text.find('#');
    std::string body = trim(std::string_view(l.text).substr(0, hash));
    auto cidr = net::Cidr::parse(body);
    if (!cidr)
      r.fail("file", path + ":" + std::to_string(l.number) + ": not an address or CIDR: " + body);
    std::string reason = hash == std::string::npos ? "" : trim(l.text.substr(hash + 1));
    entries.push_back({*cidr, l.number, std::move(reason)});
  }
  // The widest ranges first: an address in a listed /16 and a listed /32 reports the /16,
  // whatever the file's order, so the evidence does not depend on editing history.
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.cidr.prefix < b.cidr.prefix; });
  return std::make_shared<IpComplaints>(path, std::move(entries), score);
}

}  // namespace digue::filters
