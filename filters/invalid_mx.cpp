#include "filters/invalid_mx.hpp"

#include <algorithm>

#include "digue/net.hpp"
#include "digue/options.hpp"
#include "digue/resolver.hpp"

namespace asio = boost::asio;

namespace digue::filters {
namespace {

// MX hosts whose addresses are looked up (and shown), by preference: a sender tries a few
// and gives up; a hostile domain could list hundreds.
constexpr size_t kMaxHosts = 10;

struct Addresses {
  dns::Answer a, aaaa;  // TempError until answered
};

// The A and AAAA answers of every name, all queries in flight at once: one round trip.
asio::awaitable<std::vector<Addresses>> resolve_all(dns::Resolver& res,
                                                    const std::vector<std::string>& names) {
  std::vector<dns::Query> queries;
  for (const auto& n : names) {
    queries.push_back({n, dns::Type::A});
    queries.push_back({n, dns::Type::AAAA});
  }
  // The awaitable is made first: no temporaries inside co_await (GCC 12 coroutine bug).
  auto lookups = dns::query_all(res, std::move(queries));
  std::vector<dns::Answer> answers = co_await std::move(lookups);
  std::vector<Addresses> out(names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    out[i].a = std::move(answers[2 * i]);
    out[i].aaaa = std::move(answers[2 * i + 1]);
  }
  co_return out;
}

// Whether mail sent to one host (an MX host, or the domain itself without MX) could arrive.
enum class Reach { Usable, Bogus, NoAddress, Failed };

struct Judged {
  Reach reach;
  std::string detail;  // Usable: the address; otherwise why, as "<host> <detail>"
};

Judged judge(const Addresses& x, bool allow_private) {
  std::string bogus, failed;
  bool nxdomain = true;
  for (const dns::Answer* ans : {&x.a, &x.aaaa}) {
    if (ans->failed()) {
      failed = dns::to_string(ans->status);
      continue;
    }
    nxdomain = nxdomain && ans->status == dns::Status::NxDomain;
    if (!ans->ok()) continue;
    for (const auto& r : ans->records) {
      auto ip = net::Ip::parse(r);
      if (!ip) continue;
      net::Scope s = net::scope_of(*ip);
      if (s == net::Scope::Public ||
          (allow_private && (s == net::Scope::Private || s == net::Scope::Shared)))
        return {Reach::Usable, ip->str()};
      if (bogus.empty()) bogus = ip->str() + " (" + net::to_string(s) + ")";
    }
  }
  // A failed lookup could have held a usable address: it outweighs a bogus one.
  if (!failed.empty()) return {Reach::Failed, "lookup failed (" + failed + ")"};
  if (!bogus.empty()) return {Reach::Bogus, "resolves only to " + bogus};
  return {Reach::NoAddress, nxdomain ? "does not exist" : "has no A/AAAA"};
}

class InvalidMx final : public Filter {
 public:
  InvalidMx(double score, double score_a, bool a_is_hit, bool allow_private)
      : score_(score), score_a_(score_a), a_is_hit_(a_is_hit), allow_private_(allow_private) {}
  std::string_view name() const override { return "invalid_mx"; }
  Phase phase() const override { return Phase::Mail; }

  asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
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
      std::vector<std::string> hosts;  // by preference, each name once
      for (const auto& m : mx.mx)
        if (!m.host.empty() && std::find(hosts.begin(), hosts.end(), m.host) == hosts.end())
          hosts.push_back(m.host);
      // RFC 7505 3: a null MX is the domain's only MX; one mixed with real hosts is a
      // configuration slip, and the real hosts still receive mail.
      if (hosts.empty()) co_return invalid(domain + " publishes a null MX (RFC 7505)");
      FilterResult r = co_await check_hosts(ctx, res, domain, hosts);
      co_return r;
    }
    // No MX (NODATA): RFC 5321 5.1 falls back to the domain's own address.
    std::vector<std::string> self{domain};
    std::vector<Addresses> own = co_await resolve_all(res, self);
    Judged j = judge(own[0], allow_private_);
    switch (j.reach) {
      case Reach::Usable: {
        std::string evidence = domain + " has no MX, only " + j.detail;
        if (a_is_hit_)
          co_return FilterResult::hit("MX_A_FALLBACK", score_a_, std::move(evidence),
                                      "sender domain has no MX");
        co_return FilterResult::note("MX_A_FALLBACK", score_a_, std::move(evidence));
      }
      case Reach::Failed:
        co_return FilterResult::error("invalid_mx: address lookup for " + domain + ": " + j.detail);
      case Reach::Bogus: co_return invalid(domain + " has no MX and " + j.detail);
      case Reach::NoAddress: break;
    }
    co_return invalid(domain + " has no MX and no A/AAAA");
  }

 private:
  // The first kMaxHosts hosts' addresses: one usable address anywhere is enough. An IP
  // literal as MX host is invalid and is not looked up: RFC 5321 5.1 wants a domain name
  // that returns address records, and a host name never has the dotted-decimal form (RFC
  // 1123 2.1).
  asio::awaitable<FilterResult> check_hosts(FilterContext& ctx, dns::Resolver& res,
                                            const std::string& domain,
                                            const std::vector<std::string>& hosts) const {
    size_t n = std::min(hosts.size(), kMaxHosts);
    std::vector<Judged> judged(n, Judged{Reach::Bogus, "is an IP literal"});
    std::vector<std::string> names;
    std::vector<size_t> named;  // names[k] is hosts[named[k]]
    for (size_t i = 0; i < n; ++i) {
      if (net::Ip::parse(hosts[i])) continue;
      names.push_back(hosts[i]);
      named.push_back(i);
    }
    std::vector<Addresses> addrs = co_await resolve_all(res, names);
    for (size_t k = 0; k < names.size(); ++k) judged[named[k]] = judge(addrs[k], allow_private_);

    std::string shown, unusable;
    bool usable = false, failed = false;
    for (size_t i = 0; i < n; ++i) {
      shown += (i ? " " : "") + hosts[i];
      usable = usable || judged[i].reach == Reach::Usable;
      failed = failed || judged[i].reach == Reach::Failed;
      if (judged[i].reach != Reach::Usable)
        unusable += (unusable.empty() ? "" : "; ") + hosts[i] + " " + judged[i].detail;
    }
    if (usable) {
      std::string evidence = domain + " MX " + shown;
      if (!unusable.empty()) evidence += "; unusable: " + unusable;
      co_return FilterResult::note("MX_OK", 0.0, std::move(evidence));
    }
    // A host whose lookup failed may be the one that works: no verdict.
    if (failed)
      co_return FilterResult::error("invalid_mx: no MX host of " + domain +
                                    " has a usable address: " + unusable);
    // Hosts beyond the first kMaxHosts were not looked up: one of them may work (a sender
    // would go on trying), so no verdict, only a note.
    if (hosts.size() > n)
      co_return FilterResult::note("MX_UNVERIFIED", 0.0,
                                   domain + ": the first " + std::to_string(n) + " of " +
                                       std::to_string(hosts.size()) +
                                       " MX hosts cannot receive mail: " + unusable);
    co_return invalid(domain + ": no MX host can receive mail: " + unusable);
  }

  FilterResult invalid(std::string evidence) const {
    return FilterResult::hit("INVALID_MX", score_, std::move(evidence),
                             "sender domain cannot receive mail");
  }

  double score_, score_a_;
  bool a_is_hit_, allow_private_;
};

}  // namespace

FilterPtr make_invalid_mx(const FilterBuildContext& b) {
  OptionReader r(b.options, "filters.invalid_mx");
  double score = r.number("score", 3.0, -100, 100);
  double score_a = r.number("score_a_fallback", 0.0, -100, 100);
  bool a_hit = r.boolean("a_fallback_is_hit", false);
  bool allow_private = r.boolean("allow_private", false);
  r.finish();
  return std::make_shared<InvalidMx>(score, score_a, a_hit, allow_private);
}

}  // namespace digue::filters
