#include "filters/ip_blacklist_cache.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <set>
#include <vector>

#include "digue/filter_registry.hpp"
#include "digue/options.hpp"
#include "digue/pipeline.hpp"
#include "digue/store.hpp"

namespace digue::filters {

std::string ip_blacklist_key(const net::Ip& ip) { return "ipbl:" + ip.str(); }

void record_spammer(Store& store, const net::Ip& ip, std::chrono::seconds ttl,
                    std::string_view reason) {
  if (ttl.count() <= 0) ttl = std::chrono::seconds{1};
  // The reason is kept on one line: it is shown as evidence in headers and logs.
  std::string clean;
  for (char c : reason.substr(0, 200)) clean += (c == '\r' || c == '\n') ? ' ' : c;
  std::string value = std::to_string(static_cast<int64_t>(std::time(nullptr))) + " " + clean;
  store.put(ip_blacklist_key(ip), value, ttl);
}

namespace {

std::string format_time(int64_t t) {
  char buf[32];
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool listed(const std::vector<net::Cidr>& list, const net::Ip& ip) {
  return std::any_of(list.begin(), list.end(), [&](const net::Cidr& c) { return c.contains(ip); });
}

struct BanOptions {
  double score = 10.0;
  std::chrono::seconds ban = kDefaultSpammerBan;  // 0: never record
  int64_t ban_after = 3;
  std::chrono::seconds ban_window{3600};
  std::set<std::string, std::less<>> ban_on;
  std::vector<net::Cidr> exempt;  // exempt_ips: never banned, never refused
  // Every hosted domain's never_spam_ips and relay_ips, gathered at build: never banned.
  std::vector<net::Cidr> trusted;
};

class IpBlacklistCache final : public Filter {
 public:
  explicit IpBlacklistCache(BanOptions o) : o_(std::move(o)) {}
  std::string_view name() const override { return "ip_blacklist_cache"; }
  Phase phase() const override { return Phase::Connect; }
  // The domain's own whitelist and relays are never refused.
  bool per_domain() const override { return true; }

  boost::asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
    auto ip = net::Ip::parse(ctx.envelope.client_ip);
    if (!ip) co_return FilterResult::error("ip_blacklist_cache: bad client IP");
    if (listed(o_.exempt, *ip) || listed(ctx.policy.never_spam_ips, *ip) ||
        listed(ctx.policy.relay_ips, *ip))
      co_return FilterResult::none();
    if (!ctx.services.store) co_return FilterResult::error("ip_blacklist_cache: no store");
    std::optional<std::string> value;
    try {
      value = ctx.services.store->get(ip_blacklist_key(*ip));
    } catch (const StoreError& e) {
      co_return FilterResult::error(std::string("ip_blacklist_cache: store: ") + e.what());
    }
    if (!value) co_return FilterResult::none();
    std::string evidence = ip->str();
    size_t sp = value->find(' ');
    std::string when = value->substr(0, sp);
    int64_t t = 0;
    bool numeric = !when.empty() && when.find_first_not_of("0123456789") == std::string::npos;
    if (numeric) t = std::stoll(when);
    if (t > 0) evidence += " recorded " + format_time(t);
    if (sp != std::string::npos && sp + 1 < value->size()) evidence += ": " + value->substr(sp + 1);
    co_return FilterResult::hit("IP_BLACKLIST_CACHE", o_.score, std::move(evidence),
                                ip->str() + " recently sent spam");
  }

  // Counts the message once, whatever its number of recipient domains; the ban_after-th
  // count within ban_window bans the IP.
  void after_message(const FilterContext& ctx,
                     const std::vector<const Verdict*>& verdicts) const override {
    if (o_.ban.count() == 0 || !ctx.services.store) return;
    const Verdict* counted = nullptr;
    for (const Verdict* v : verdicts) {
      if (v->whitelisted) return;  // one domain trusts this message: it proves nothing
      bool refused = v->decision == Decision::Spam || v->decision == Decision::Reject;
      if (!counted && refused && o_.ban_on.count(v->deciding_filter)) counted = v;
    }
    if (!counted) return;
    auto ip = net::Ip::parse(ctx.envelope.client_ip);
    if (!ip || net::scope_of(*ip) == net::Scope::Loopback) return;
    if (listed(o_.exempt, *ip) || listed(o_.trusted, *ip)) {
      spdlog::debug("ip_blacklist_cache: {} exempt, not counted ({})", ip->str(),
                    counted->deciding_filter);
      return;
    }
    Store& store = *ctx.services.store;
    std::string hits_key = "ipblhits:" + ip->str();
    try {
      int64_t n = store.incr(hits_key, 1, o_.ban_window);
      if (n < o_.ban_after) return;
      record_spammer(store, *ip, o_.ban,
                     "spam: queue " + ctx.envelope.queue_id + " " + counted->deciding_filter +
                         " (" + std::to_string(n) + " in " + std::to_string(o_.ban_window.count()) +
                         " s)");
      store.del(hits_key);
      spdlog::info("ip_blacklist_cache: banned {} for {} s after {} spam verdicts", ip->str(),
                   o_.ban.count(), n);
    } catch (const StoreError& e) {
      spdlog::warn("ip_blacklist_cache: cannot record {}: {}", ip->str(), e.what());
    }
  }

 private:
  BanOptions o_;
};

}  // namespace

FilterPtr make_ip_blacklist_cache(const FilterBuildContext& b) {
  OptionReader r(b.options, "filters.ip_blacklist_cache");
  BanOptions o;
  o.score = r.number("score", o.score, -100, 100);
  // 0 turns recording off (the cache is then filled only by other nodes or tools).
  o.ban = std::chrono::seconds(r.integer("ban_seconds", o.ban.count(), 0, 30LL * 86400));
  o.ban_after = r.integer("ban_after", o.ban_after, 1, 1000);
  o.ban_window =
      std::chrono::seconds(r.integer("ban_window", o.ban_window.count(), 60, 30LL * 86400));
  for (const auto& f :
       r.strings("ban_on", {"honeypot", "rbl", "ip_complaints", "keywords", "bayes"})) {
    if (!find_filter(f)) r.fail("ban_on", "unknown filter '" + f + "'");
    // Its own refusals would renew a ban for ever.
    if (f == "ip_blacklist_cache") r.fail("ban_on", "the ban cannot count its own refusals");
    o.ban_on.insert(f);
  }
  o.exempt = r.cidrs("exempt_ips");
  r.finish();
  for (const auto& entry : b.config.domains) {
    const DomainPolicy& policy = entry.second;
    o.trusted.insert(o.trusted.end(), policy.never_spam_ips.begin(), policy.never_spam_ips.end());
    o.trusted.insert(o.trusted.end(), policy.relay_ips.begin(), policy.relay_ips.end());
    // One domain's trust is every domain's exemption from bans: a very wide range turns the
    // ban off for a large part of the internet (shorter than /8 for IPv4, /16 for IPv6).
    for (const auto* list : {&policy.never_spam_ips, &policy.relay_ips})
      for (const auto& c : *list)
        if (c.prefix < (c.base.v6 ? 16 : 8))
          spdlog::warn("ip_blacklist_cache: domain {} trusts {}: never banned, for every domain",
                       entry.first, c.str());
  }
  return std::make_shared<IpBlacklistCache>(std::move(o));
}

}  // namespace digue::filters
