#include "filters/rbl.hpp"

#include "digue/options.hpp"
#include "digue/resolver.hpp"
#include "filters/dnsbl_zone.hpp"

namespace asio = boost::asio;

namespace digue::filters {
namespace {

using dnsbl::Outcome;
using dnsbl::Zone;

struct Lookup {
  const Zone* zone;
  std::string qname;
  dns::Answer answer;
};

class Rbl final : public Filter {
 public:
  Rbl(std::vector<Zone> zones, double quorum, double score)
      : zones_(std::move(zones)), quorum_(quorum), score_(score) {
    for (const auto& z : zones_) has_domain_zones_ = has_domain_zones_ || z.domain;
  }
  std::string_view name() const override { return "rbl"; }
  Phase phase() const override { return has_domain_zones_ ? Phase::Mail : Phase::Connect; }

  asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
    if (!ctx.services.resolver) co_return FilterResult::error("rbl: no DNS resolver");
    auto ip = net::Ip::parse(ctx.envelope.client_ip);
    if (!ip) co_return FilterResult::error("rbl: bad client IP " + ctx.envelope.client_ip);
    std::string reversed = ip->reversed();
    std::string sender = ctx.envelope.mail_from.empty()
                             ? std::string()
                             : dns::normalize_name(ctx.envelope.mail_from.domain);

    std::vector<Lookup> lookups;
    for (const Zone& z : zones_) {
      if (z.domain && sender.empty()) continue;
      std::string qname = (z.domain ? sender : reversed) + "." + z.zone;
      if (dns::normalize_name(qname).empty()) continue;  // too long with the zone appended
      lookups.push_back({&z, std::move(qname), {}});
    }
    if (lookups.empty()) co_return FilterResult::none();
    // Every query is started before any is awaited, so the filter costs one round trip.
    std::vector<dns::Query> queries;
    for (const Lookup& l : lookups) queries.push_back({l.qname, dns::Type::A});
    // The awaitable is made first: no temporaries inside co_await (GCC 12 coroutine bug).
    auto batch = dns::query_all(*ctx.services.resolver, std::move(queries));
    std::vector<dns::Answer> answers = co_await std::move(batch);
    for (size_t i = 0; i < lookups.size(); ++i) lookups[i].answer = std::move(answers[i]);
    co_return tally(lookups);
  }

 private:
  FilterResult tally(const std::vector<Lookup>& lookups) const {
    std::string listed;
    dnsbl::Unanswered unanswered;
    size_t n_listed = 0, answered = 0;
    for (const Lookup& l : lookups) {
      std::string code;
      Outcome outcome = dnsbl::judge(*l.zone, l.answer, &code);
      unanswered.add(outcome, *l.zone, l.answer);
      if (outcome == Outcome::Listed)
        listed += (listed.empty() ? "" : ", ") + l.zone->zone + " (" + code + ")";
      n_listed += outcome == Outcome::Listed;
      // A refusal says nothing about the IP: out of the quorum, like a timeout.
      answered += outcome == Outcome::Listed || outcome == Outcome::NotListed;
    }
    FilterResult out;
    if (answered == 0) {
      out = FilterResult::error("rbl: no zone answered; " + unanswered.summary());
    } else if (n_listed > 0) {
      std::string evidence = "listed in " + listed + "; " + std::to_string(n_listed) + "/" +
                             std::to_string(answered) + " answered";
      if (!unanswered.summary().empty()) evidence += "; " + unanswered.summary();
      // The epsilon keeps 1 of 3 at a quorum of 0.333 a listing despite rounding.
      if (static_cast<double>(n_listed) >= quorum_ * static_cast<double>(answered) - 1e-9)
        out = FilterResult::hit("RBL_LISTED", score_, std::move(evidence),
                                "listed in DNS blocklists: " + listed);
      else
        out = FilterResult::note("RBL_BELOW_QUORUM", 0.0, std::move(evidence));
    }
    // Never silent: the zones that refused or failed are named even when nothing is listed.
    unanswered.annotate(out, "RBL");
    return out;
  }

  std::vector<Zone> zones_;
  double quorum_, score_;
  bool has_domain_zones_ = false;
};

}  // namespace

FilterPtr make_rbl(const FilterBuildContext& b) {
  OptionReader r(b.options, "filters.rbl");
  std::vector<Zone> zones;
  dnsbl::read_zones(r, "zones", false, false, &zones);
  dnsbl::read_zones(r, "domain_zones", true, false, &zones);
  double quorum = r.number("quorum", 0.5, 0.0, 1.0);
  if (quorum <= 0.0) r.fail("quorum", "must be greater than 0");
  double score = r.number("score", 5.0, -100, 100);
  r.finish();
  if (zones.empty()) r.fail("zones", "no DNSBL zone configured");
  return std::make_shared<Rbl>(std::move(zones), quorum, score);
}

}  // namespace digue::filters
