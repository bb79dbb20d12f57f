#include "filters/ip_blacklist_cache.hpp"

#include <spdlog/spdlog.h>

#include <ctime>

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

class IpBlacklistCache final : public Filter {
 public:
  IpBlacklistCache(double score, std::chrono::seconds ban) : score_(score), ban_(ban) {}
  std::string_view name() const override { return "ip_blacklist_cache"; }
  Phase phase() const override { return Phase::Connect; }

  boost::asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
    if (!ctx.services.store) co_return FilterResult::error("ip_blacklist_cache: no store");
    auto ip = net::Ip::parse(ctx.envelope.client_ip);
    if (!ip) co_return FilterResult::error("ip_blacklist_cache: bad client IP");
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
    co_return FilterResult::hit("IP_BLACKLIST_CACHE", score_, std::move(evidence),
                                ip->str() + " recently sent spam");
  }

  // A message classed as spam (not merely scored, not whitelisted) bans its client IP.
  void after_verdict(const FilterContext& ctx, const Verdict& v) const override {
    if (ban_.count() == 0 || v.whitelisted || v.decision != Decision::Spam) return;
    if (!ctx.services.store) return;
    auto ip = net::Ip::parse(ctx.envelope.client_ip);
    if (!ip || (!ip->v6 && ip->bytes[0] == 127) || ctx.envelope.client_ip == "::1") return;
    try {
      record_spammer(*ctx.services.store, *ip, ban_,
                     "spam: queue " + ctx.envelope.queue_id + " " + v.deciding_filter);
    } catch (const StoreError& e) {
      spdlog::warn("ip_blacklist_cache: cannot record {}: {}", ip->str(), e.what());
    }
  }

 private:
  double score_;
  std::chrono::seconds ban_;
};

}  // namespace

FilterPtr make_ip_blacklist_cache(const FilterBuildContext& b) {
  OptionReader r(b.options, "filters.ip_blacklist_cache");
  double score = r.number("score", 10.0, -100, 100);
  // 0 turns recording off (the cache is then filled only by other nodes or tools).
  auto ban = std::chrono::seconds(r.integer("ban_seconds", kDefaultSpammerBan.count(), 0,
                                            30LL * 86400));
  r.finish();
  return std::make_shared<IpBlacklistCache>(score, ban);
}

}  // namespace digue::filters
