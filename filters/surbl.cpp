#include "filters/surbl.hpp"

#include <set>

#include "digue/message.hpp"
#include "digue/net.hpp"
#include "digue/options.hpp"
#include "digue/resolver.hpp"
#include "filters/dnsbl_zone.hpp"

namespace digue::filters {
namespace {

namespace asio = boost::asio;

using dnsbl::Outcome;
using dnsbl::Zone;

class Surbl final : public Filter {
 public:
  Surbl(std::vector<Zone> zones, double quorum, size_t max_domains, std::set<std::string> skip,
        double score)
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
    std::vector<bool> is_ip;
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
      is_ip.push_back(u.is_ip);
    }
    if (labels.empty() || zones_.empty()) co_return FilterResult::none();

    // One query per (domain, zone); IP hosts only in the zones that take them.
    std::vector<dns::Query> queries;
    std::vector<std::pair<size_t, const Zone*>> asked;
    for (size_t d = 0; d < labels.size(); ++d)
      for (const Zone& z : zones_) {
        if (is_ip[d] && !z.ip_hosts) continue;
        queries.push_back({labels[d] + "." + z.zone, dns::Type::A});
        asked.emplace_back(d, &z);
      }
    if (queries.empty()) co_return FilterResult::none();
    // The awaitable is made first: no temporaries inside co_await (GCC 12 coroutine bug).
    auto lookups = dns::query_all(*ctx.services.resolver, std::move(queries));
    std::vector<dns::Answer> answers = co_await std::move(lookups);

    std::string evidence;
    dnsbl::Unanswered unanswered;
    size_t answered_any = 0;
    std::vector<size_t> answered(labels.size(), 0);
    std::vector<std::vector<std::string>> hits(labels.size());
    for (size_t q = 0; q < asked.size(); ++q) {
      size_t d = asked[q].first;
      const Zone* zone = asked[q].second;
      std::string code;
      Outcome outcome = dnsbl::judge(*zone, answers[q], &code);
      // A zone that refused or gave no answer is out of the quorum, and named.
      unanswered.add(outcome, *zone, answers[q]);
      if (outcome == Outcome::Listed) hits[d].push_back(zone->zone);
      if (outcome == Outcome::Listed || outcome == Outcome::NotListed) ++answered[d];
    }
    for (size_t d = 0; d < labels.size(); ++d) {
      answered_any += answered[d];
      if (answered[d] == 0 || hits[d].empty()) continue;
      if (static_cast<double>(hits[d].size()) < quorum_ * static_cast<double>(answered[d]) - 1e-9)
        continue;
      if (!evidence.empty()) evidence += ", ";
      evidence += shown[d] + " (";
      for (size_t k = 0; k < hits[d].size(); ++k) evidence += (k ? ", " : "") + hits[d][k];
      evidence += ")";
    }
    FilterResult result;
    if (answered_any == 0) {
      result = FilterResult::error("surbl: no zone answered; " + unanswered.summary());
    } else if (!evidence.empty()) {
      result = FilterResult::hit("SURBL", score_, evidence, "URL domain blocklisted");
    }
    unanswered.annotate(result, "SURBL");
    co_return result;
  }

 private:
  std::vector<Zone> zones_;
  double quorum_;
  size_t max_domains_;
  std::set<std::string> skip_;
  double score_;
};

}  // namespace

FilterPtr make_surbl(const FilterBuildContext& b) {
  OptionReader r(b.options, "filters.surbl");
  std::vector<Zone> zones;
  dnsbl::read_zones(r, "zones", false, true, &zones);
  if (!r.array("zones")) {
    for (const char* name : {"multi.surbl.org", "multi.uribl.com", "dbl.spamhaus.org"}) {
      Zone z;
      z.zone = name;
      z.ip_hosts = dnsbl::default_ip_hosts(z.zone);
      zones.push_back(std::move(z));
    }
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
