#include "filters/surbl.hpp"

#include <set>

#include "digue/message.hpp"
#include "digue/net.hpp"
#include "digue/options.hpp"
#include "digue/resolver.hpp"

namespace digue::filters {
namespace {

namespace asio = boost::asio;

bool listed(const dns::Answer& a) {
  if (!a.ok()) return false;
  for (const auto& r : a.records) {
    if (!r.starts_with("127.")) continue;
    if (r == "127.0.0.1" || r.starts_with("127.255.255.")) continue;
    return true;
  }
  return false;
}

class Surbl final : public Filter {
 public:
  Surbl(std::vector<std::string> zones, double quorum, size_t max_domains,
        std::set<std::string> skip, double score)
      : zones_(std::move(zones)),
        quorum_(quorum),
        max_domains_(max_domains),
        skip_(std::move(skip)),
        score_(score) {}

  std::string_view name() const override { return "surbl"; }
  Phase phase() const override { return Phase::Data; }

  asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
    if (!ctx.message) co_return FilterResult::error("surbl: no message");
    if (!ctx.services.resolver) co_return FilterResult::error("surbl: no resolver configured");
    // Distinct query labels, in message order, capped.
    std::vector<std::string> labels, shown;
    std::set<std::string> seen;
    for (const auto& u : ctx.message->facts().urls) {
      if (labels.size() >= max_domains_) break;
      if (u.registered_domain.empty()) continue;
      if (u.is_ip && u.registered_domain.find(':') != std::string::npos) continue;  // IPv6
      std::string label;
      if (u.is_ip) {
        // A bracketed literal that is no IPv4 address cannot be listed: not queried.
        auto ip = net::Ip::parse(u.registered_domain);
        if (!ip) continue;
        label = ip->reversed();
      } else {
        // As queried (a UTF-8 host in its A-label form): skip list and duplicates compare
        // the same form, whichever way the message and the config wrote the name.
        label = dns::normalize_name(u.registered_domain);
        if (label.empty() || skip_.count(label)) continue;
      }
      if (!seen.insert(label).second) continue;
      labels.push_back(std::move(label));
      shown.push_back(u.registered_domain);
    }
    if (labels.empty() || zones_.empty()) co_return FilterResult::none();

    std::vector<dns::Query> queries;
    for (const auto& l : labels)
      for (const auto& z : zones_) queries.push_back({l + "." + z, dns::Type::A});
    // The awaitable is made first: no temporaries inside co_await (GCC 12 coroutine bug).
    auto lookups = dns::query_all(*ctx.services.resolver, std::move(queries));
    std::vector<dns::Answer> answers = co_await std::move(lookups);

    std::string evidence;
    size_t failed = 0;
    for (size_t d = 0; d < labels.size(); ++d) {
      size_t answered = 0;
      std::vector<std::string> hits;
      for (size_t z = 0; z < zones_.size(); ++z) {
        const dns::Answer& a = answers[d * zones_.size() + z];
        if (a.failed()) {
          ++failed;  // no answer from this zone: out of the quorum, counted
          continue;
        }
        ++answered;
        if (listed(a)) hits.push_back(zones_[z]);
      }
      if (answered == 0 || hits.empty()) continue;
      if (static_cast<double>(hits.size()) < quorum_ * static_cast<double>(answered) - 1e-9)
        continue;
      if (!evidence.empty()) evidence += ", ";
      evidence += shown[d] + " (";
      for (size_t k = 0; k < hits.size(); ++k) evidence += (k ? ", " : "") + hits[k];
      evidence += ")";
    }
    FilterResult result;
    if (failed == labels.size() * zones_.size())
      co_return FilterResult::error("surbl: no zone answered (" + std::to_string(failed) +
                                    " queries failed)");
    if (!evidence.empty()) {
      result = FilterResult::hit("SURBL", score_, evidence, "URL domain blocklisted");
    }
    if (failed)
      result.symbols.push_back({"SURBL_TIMEOUT", 0.0, std::to_string(failed) + " queries unanswered"});
    co_return result;
  }

 private:
  std::vector<std::string> zones_;
  double quorum_;
  size_t max_domains_;
  std::set<std::string> skip_;
  double score_;
};

}  // namespace

FilterPtr make_surbl(const FilterBuildContext& b) {
  OptionReader r(b.options, "filters.surbl");
  auto zones = r.strings("zones", {"multi.surbl.org", "multi.uribl.com", "dbl.spamhaus.org"});
  for (auto& z : zones) {
    std::string n = dns::normalize_name(z);
    bool ok = !n.empty() && n.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-._") ==
                                std::string::npos;
    if (!ok) r.fail("zones", "'" + z + "' is not a DNS zone name");
    z = n;
  }
  double quorum = r.number("quorum", 0.5, 0.01, 1.0);
  auto max_domains = static_cast<size_t>(r.integer("max_domains", 20, 1, 200));
  std::set<std::string> skip;
  for (auto& s : r.strings("skip_domains")) skip.insert(dns::normalize_name(s));
  double score = r.number("score", 5.0, -100, 100);
  r.finish();
  return std::make_shared<Surbl>(std::move(zones), quorum, max_domains, std::move(skip), score);
}

}  // namespace digue::filters
