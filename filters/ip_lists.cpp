#include "filters/ip_lists.hpp"

#include "digue/options.hpp"

namespace digue::filters {
namespace {

const net::Cidr* find(const std::vector<net::Cidr>& list, const std::string& ip_text) {
  auto ip = net::Ip::parse(ip_text);
  if (!ip) return nullptr;
  for (const auto& c : list)
    if (c.contains(*ip)) return &c;
  return nullptr;
}

class NeverSpamIps final : public Filter {
 public:
  std::string_view name() const override { return "never_spam_ips"; }
  Phase phase() const override { return Phase::Connect; }
  bool per_domain() const override { return true; }
  boost::asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
    const net::Cidr* c = find(ctx.policy.never_spam_ips, ctx.envelope.client_ip);
    if (!c) co_return FilterResult::none();
    co_return FilterResult::pass("NEVER_SPAM_IP",
                                 "Whitelisted IP " + ctx.envelope.client_ip + " (" + c->str() + ")");
  }
};

class AlwaysSpamIps final : public Filter {
 public:
  explicit AlwaysSpamIps(double score) : score_(score) {}
  std::string_view name() const override { return "always_spam_ips"; }
  Phase phase() const override { return Phase::Connect; }
  bool per_domain() const override { return true; }
  boost::asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
    const net::Cidr* c = find(ctx.policy.always_spam_ips, ctx.envelope.client_ip);
    if (!c) co_return FilterResult::none();
    co_return FilterResult::hit("ALWAYS_SPAM_IP", score_,
                                ctx.envelope.client_ip + " in " + c->str(),
                                "client IP blacklisted by " + ctx.domain);
  }

 private:
  double score_;
};

}  // namespace

FilterPtr make_never_spam_ips(const FilterBuildContext& b) {
  OptionReader r(b.options, "filters.never_spam_ips");
  r.finish();
  return std::make_shared<NeverSpamIps>();
}

FilterPtr make_always_spam_ips(const FilterBuildContext& b) {
  OptionReader r(b.options, "filters.always_spam_ips");
  double score = r.number("score", 10.0, -100, 100);
  r.finish();
  return std::make_shared<AlwaysSpamIps>(score);
}

}  // namespace digue::filters
