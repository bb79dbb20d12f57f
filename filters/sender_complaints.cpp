#include "filters/sender_complaints.hpp"

#include <cctype>
#include <unordered_set>

#include "digue/message.hpp"
#include "digue/options.hpp"
#include "digue/rule_file.hpp"
#include "digue/text.hpp"

namespace digue::filters {
namespace {

using text::lower;

// Addresses in a From header value: the parts around each '@', bounded by separators.
std::vector<std::string> header_addresses(std::string_view v) {
  std::vector<std::string> out;
  for (size_t at = v.find('@'); at != std::string_view::npos && out.size() < 10;
       at = v.find('@', at + 1)) {
    auto stop = [](char c) {
      return c == '<' || c == '>' || c == ' ' || c == '\t' || c == ',' || c == ';' || c == '"' ||
             c == '(' || c == ')' || c == ':';
    };
    size_t b = at, e = at + 1;
    while (b > 0 && !stop(v[b - 1])) --b;
    while (e < v.size() && !stop(v[e])) ++e;
    if (b < at && e > at + 1) out.push_back(lower(v.substr(b, e - b)));
  }
  return out;
}

class SenderComplaints final : public Filter {
 public:
  SenderComplaints(std::unordered_set<std::string> addresses, std::unordered_set<std::string> domains,
                   std::unordered_set<std::string> trees, bool from_header, double score)
      : addresses_(std::move(addresses)),
        domains_(std::move(domains)),
        trees_(std::move(trees)),
        from_header_(from_header),
        score_(score) {}
  std::string_view name() const override { return "sender_complaints"; }
  Phase phase() const override { return from_header_ ? Phase::Data : Phase::Mail; }

  boost::asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
    std::vector<std::pair<std::string, const char*>> candidates;
    if (!ctx.envelope.mail_from.empty())
      candidates.emplace_back(lower(ctx.envelope.mail_from.str()), "envelope");
    if (from_header_ && ctx.message) {
      if (const mime::Header* h = ctx.message->facts().header("from"))
        for (auto& a : header_addresses(h->value)) candidates.emplace_back(std::move(a), "header");
    }
    for (const auto& [addr, where] : candidates) {
      std::string entry = match(addr);
      if (!entry.empty())
        co_return FilterResult::hit("SENDER_COMPLAINTS", score_,
                                    addr + " (" + where + ") matches " + entry,
                                    "sender on the complaints list");
    }
    co_return FilterResult::none();
  }

 private:
  std::string match(const std::string& addr) const {
    if (addresses_.count(addr)) return addr;
    size_t at = addr.rfind('@');
    if (at == std::string::npos) return {};
    std::string_view domain = std::string_view(addr).substr(at + 1);
    if (domains_.count(std::string(domain))) return "*@" + std::string(domain);
    for (std::string_view d = domain;;) {
      if (trees_.count(std::string(d))) return "*@." + std::string(d);
      size_t dot = d.find('.');
      if (dot == std::string_view::npos) break;
      d.remove_prefix(dot + 1);
    }
    return {};
  }

  std::unordered_set<std::string> addresses_, domains_, trees_;
  bool from_header_;
  double score_;
};

}  // namespace

FilterPtr make_sender_complaints(const FilterBuildContext& b) {
  OptionReader r(b.options, "filters.sender_complaints");
  std::string file = r.str("file", "rules/sender_complaints.txt");
  bool from_header = r.boolean("check_from_header", true);
  double score = r.number("score", 10.0, -100, 100);
  const toml::node* at = b.options.get("file");
  std::string path = resolve_config_path(b.config, file);
  std::unordered_set<std::string> addresses, domains, trees;
  for (const RuleLine& l : read_rule_lines(path, r.path("file"), at)) {
    std::string e = lower(l.text);
    auto bad = [&] { config_fail(r.path("file"), at, path + ":" + std::to_string(l.number) +
                                                          ": bad entry '" + l.text + "'"); };
    if (e.find_first_of(" \t<>,;\"") != std::string::npos) bad();
    if (e.starts_with("*@.")) {
      if (e.size() <= 3) bad();
      trees.insert(e.substr(3));
    } else if (e.starts_with("*@")) {
      if (e.size() <= 2) bad();
      domains.insert(e.substr(2));
    } else if (size_t at_pos = e.find('@'); at_pos != std::string::npos) {
      if (at_pos == 0 || at_pos + 1 == e.size()) bad();
      addresses.insert(e);
    } else {
      domains.insert(e);
    }
  }
  r.finish();
  return std::make_shared<SenderComplaints>(std::move(addresses), std::move(domains),
                                            std::move(trees), from_header, score);
}

}  // namespace digue::filters
