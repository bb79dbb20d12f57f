#include "filters/relay_ips.hpp"

#include "digue/options.hpp"

namespace digue::filters {
namespace {

class RelayIps final : public Filter {
 public:
  explicit RelayIps(double score) : score_(score) {}
  std::string_view name() const override { return "relay_ips"; }
  Phase phase() const override { return Phase::Connect; }
  bool per_domain() const override { return true; }
  boost::asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
    if (ctx.policy.relay_ips.empty()) co_return FilterResult::none();
    auto ip = net::Ip::parse(ctx.envelope.client_ip);
    if (ip) {
      for (const auto& c : ctx.policy.relay_ips)
        if (c.contains(*ip)) co_return FilterResult::none();
    }
    co_return FilterResult::hit("RELAY_IP_NOT_ALLOWED", score_, ctx.envelope.client_ip,
                                "client not allowed to relay to " + ctx.domain);
  }

 private:
  double score_;
};

}  // namespace

FilterPtr make_relay_ips(const FilterBuildContext& b) {
  OptionReader r(b.options, "filters.relay_ips");
  double score = r.number("score", 10.0, -100, 100);
  r.finish();
  return std::make_shared<RelayIps>(score);
}

}  // namespace digue::filters
