#include "filters/rdns.hpp"

#include "digue/net.hpp"
#include "digue/options.hpp"
#include "digue/resolver.hpp"
#include "digue/text.hpp"

namespace digue::filters {
namespace {

class Rdns final : public Filter {
 public:
  Rdns(double score_none, double score_unconfirmed, bool unconfirmed_is_hit)
      : score_none_(score_none),
        score_unconfirmed_(score_unconfirmed),
        unconfirmed_is_hit_(unconfirmed_is_hit) {}
  std::string_view name() const override { return "rdns"; }
  Phase phase() const override { return Phase::Connect; }

  boost::asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
    if (!ctx.services.resolver) co_return FilterResult::error("rdns: no DNS resolver");
    auto ip = net::Ip::parse(ctx.envelope.client_ip);
    if (!ip) co_return FilterResult::error("rdns: bad client IP " + ctx.envelope.client_ip);
    dns::Resolver& resolver = *ctx.services.resolver;
    // The first confirmed name is enough: stop there.
    net::Ip client = *ip;
    dns::ConfirmedNames confirmed =
        co_await dns::forward_confirmed(resolver, client, dns::kMaxPtrNames, 1);
    const dns::Answer& ptr = confirmed.ptr;
    // A lookup that failed (timeout, SERVFAIL, malformed answer) is neither "no PTR" nor
    // "not forward-confirmed".
    if (ptr.failed())
      co_return FilterResult::error("rdns: PTR lookup for " + ip->str() + ": " +
                                    dns::to_string(ptr.status));
    if (!ptr.ok())
      co_return FilterResult::hit("RDNS_NONE", score_none_, ip->str() + " has no PTR",
                                  "no reverse DNS for " + ip->str());
    if (!confirmed.names.empty())
      co_return FilterResult::note("RDNS_OK", 0.0, confirmed.names.front());
    if (!confirmed.unverified.empty())
      co_return FilterResult::error("rdns: forward lookup failed for " +
                                    text::join(confirmed.unverified, " ") + " (PTR of " + ip->str() + ")");
    size_t n = std::min(ptr.records.size(), dns::kMaxPtrNames);
    std::vector<std::string> shown(ptr.records.begin(), ptr.records.begin() + n);
    std::string evidence = ip->str() + " PTR " + text::join(shown, " ") + ": none resolves back";
    if (!unconfirmed_is_hit_) co_return FilterResult::note("RDNS_UNCONFIRMED", 0.0, evidence);
    co_return FilterResult::hit("RDNS_UNCONFIRMED", score_unconfirmed_, evidence,
                                "reverse DNS of " + ip->str() + " is not forward-confirmed");
  }

 private:
  double score_none_, score_unconfirmed_;
  bool unconfirmed_is_hit_;
};

}  // namespace

FilterPtr make_rdns(const FilterBuildContext& b) {
  OptionReader r(b.options, "filters.rdns");
  double none = r.number("score_none", 3.0, -100, 100);
  double unconfirmed = r.number("score_unconfirmed", 1.5, -100, 100);
  bool hit = r.boolean("unconfirmed_is_hit", true);
  r.finish();
  return std::make_shared<Rdns>(none, unconfirmed, hit);
}

}  // namespace digue::filters
