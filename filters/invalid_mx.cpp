#include "filters/invalid_mx.hpp"

#include "digue/options.hpp"
#include "digue/resolver.hpp"

namespace digue::filters {
namespace {

constexpr size_t kMaxEvidenceHosts = 5;

class InvalidMx final : public Filter {
 public:
  InvalidMx(double score, double score_a, bool a_is_hit)
      : score_(score), score_a_(score_a), a_is_hit_(a_is_hit) {}
  std::string_view name() const override { return "invalid_mx"; }
  Phase phase() const override { return Phase::Mail; }

  boost::asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
    const Address& from = ctx.envelope.mail_from;
    if (from.empty()) co_return FilterResult::none();
    std::string domain = dns::normalize_name(from.domain);
    if (domain.empty() || domain.find('.') == std::string::npos)
      co_return invalid(from.domain.substr(0, 100) + " is not a DNS domain name");
    if (!ctx.services.resolver) co_return FilterResult::error("invalid_mx: no DNS resolver");
    dns::Resolver& res = *ctx.services.resolver;
    dns::Answer mx = co_await res.query(domain, dns::Type::MX);
    if (mx.failed())
      co_return FilterResult::error("invalid_mx: MX lookup for " + domain + ": " +
                                    dns::to_string(mx.status));
    if (mx.status == dns::Status::NxDomain) co_return invalid(domain + " does not exist");
    if (mx.ok() && !mx.mx.empty()) {
      std::vector<const dns::Mx*> real;
      for (const auto& m : mx.mx)
        if (!m.host.empty()) real.push_back(&m);
      // RFC 7505 3: a null MX is the domain's only MX; one mixed with real hosts is a
      // configuration slip, and the real hosts still receive mail.
      if (real.empty()) co_return invalid(domain + " publishes a null MX (RFC 7505)");
      std::string hosts;
      for (size_t i = 0; i < real.size() && i < kMaxEvidenceHosts; ++i)
        hosts += (i ? " " : "") + real[i]->host;
      co_return FilterResult::note("MX_OK", 0.0, domain + " MX " + hosts);
    }
    // No MX (NODATA): RFC 5321 5.1 falls back to the domain's own address.
    dns::Answer a = co_await res.query(domain, dns::Type::A);
    dns::Answer aaaa = co_await res.query(domain, dns::Type::AAAA);
    bool has_a = (a.ok() && !a.records.empty()) || (aaaa.ok() && !aaaa.records.empty());
    if (has_a) {
      std::string evidence = domain + " has no MX, only " +
                             (a.ok() && !a.records.empty() ? a.records[0] : aaaa.records[0]);
      if (a_is_hit_)
        co_return FilterResult::hit("MX_A_FALLBACK", score_a_, std::move(evidence),
                                    "sender domain has no MX");
      co_return FilterResult::note("MX_A_FALLBACK", score_a_, std::move(evidence));
    }
    for (const dns::Answer* x : {&a, &aaaa})
      if (x->failed())
        co_return FilterResult::error("invalid_mx: address lookup for " + domain + ": " +
                                      dns::to_string(x->status));
    co_return invalid(domain + " has no MX and no A/AAAA");
  }

 private:
  FilterResult invalid(std::string evidence) const {
    return FilterResult::hit("INVALID_MX", score_, std::move(evidence),
                             "sender domain cannot receive mail");
  }

  double score_, score_a_;
  bool a_is_hit_;
};

}  // namespace

FilterPtr make_invalid_mx(const FilterBuildContext& b) {
  OptionReader r(b.options, "filters.invalid_mx");
  double score = r.number("score", 3.0, -100, 100);
  double score_a = r.number("score_a_fallback", 0.0, -100, 100);
  bool a_hit = r.boolean("a_fallback_is_hit", false);
  r.finish();
  return std::make_shared<InvalidMx>(score, score_a, a_hit);
}

}  // namespace digue::filters
