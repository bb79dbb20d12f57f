#include "filters/spf.hpp"

#include <algorithm>
#include <set>

#include "digue/options.hpp"
#include "digue/spf.hpp"

namespace digue::filters {
namespace {

constexpr spf::Result kAllResults[] = {
    spf::Result::None,     spf::Result::Neutral,   spf::Result::Pass,     spf::Result::Fail,
    spf::Result::SoftFail, spf::Result::TempError, spf::Result::PermError};

std::string symbol_of(spf::Result r) {
  std::string s = "SPF_";
  for (const char* p = spf::to_string(r); *p; ++p) s += char(std::toupper(*p));
  return s;
}

class SpfFilter final : public Filter {
 public:
  SpfFilter(std::set<spf::Result> hits, double score, std::string hostname)
      : hits_(std::move(hits)), score_(score), hostname_(std::move(hostname)) {}
  std::string_view name() const override { return "spf"; }
  Phase phase() const override { return Phase::Mail; }

  boost::asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
    if (!ctx.services.resolver) co_return FilterResult::error("spf: no DNS resolver");
    auto ip = net::Ip::parse(ctx.envelope.client_ip);
    if (!ip) co_return FilterResult::error("spf: bad client IP " + ctx.envelope.client_ip);
    std::string receiver = ctx.services.hostname.empty() ? hostname_ : ctx.services.hostname;
    spf::CheckOptions opts;
    opts.receiver = receiver;
    std::string mail_from = ctx.envelope.mail_from.str();
    std::string identity;
    spf::SpfResult r = co_await spf::check_sender(*ctx.services.resolver, *ip, mail_from,
                                                  ctx.envelope.helo, opts, &identity);
    std::string header =
        spf::received_spf_header(r, *ip, mail_from, ctx.envelope.helo, receiver, identity);
    bool hit = hits_.count(r.result) > 0;
    std::string sender = mail_from.empty() ? "postmaster@" + ctx.envelope.helo : mail_from;
    FilterResult out;
    out.verdict = hit ? FilterResult::Verdict::Hit : FilterResult::Verdict::None;
    out.symbols.push_back({symbol_of(r.result), hit ? score_ : 0.0, header});
    // The message carries the result as its Received-SPF trace header (RFC 7208 9.1).
    constexpr std::string_view kField = "Received-SPF: ";
    out.trace_field = "Received-SPF";
    out.trace = header.starts_with(kField) ? header.substr(kField.size()) : header;
    // A DNS outage is no verdict on the sender: the check could not be made, so the slot's
    // on_error applies (and the error counter counts it), unless the operator made
    // temperror a hit.
    if (r.result == spf::Result::TempError && !hit) {
      out.status = FilterResult::Status::Error;
      out.reason = "spf: " + spf::describe(r, *ip, sender);
      co_return out;
    }
    if (hit) {
      // The SMTP reply text on a reject: the publisher's explanation when it gave one.
      out.reason = r.explanation.empty()
                       ? "SPF " + std::string(spf::to_string(r.result)) + ": " +
                             spf::describe(r, *ip, sender)
                       : r.explanation;
    }
    co_return out;
  }

 private:
  std::set<spf::Result> hits_;
  double score_;
  std::string hostname_;
};

}  // namespace

FilterPtr make_spf(const FilterBuildContext& b) {
  OptionReader r(b.options, "filters.spf");
  std::set<spf::Result> hits;
  for (const auto& word : r.strings("hits", {"fail"})) {
    auto it = std::find_if(std::begin(kAllResults), std::end(kAllResults),
                           [&](spf::Result x) { return word == spf::to_string(x); });
    if (it == std::end(kAllResults))
      r.fail("hits", "unknown SPF result \"" + word +
                         "\" (pass, fail, softfail, neutral, none, temperror, permerror)");
    hits.insert(*it);
  }
  double score = r.number("score", 5.0, -100, 100);
  r.finish();
  return std::make_shared<SpfFilter>(std::move(hits), score, b.config.server.hostname);
}

}  // namespace digue::filters
