#include "filters/greylist.hpp"

#include <ctime>

#include "digue/config.hpp"
#include "digue/options.hpp"
#include "digue/store.hpp"
#include "digue/text.hpp"

namespace digue::filters {

std::string greylist_network(const net::Ip& ip, int v4_prefix, int v6_prefix) {
  net::Cidr c;
  c.base = ip;
  c.prefix = ip.v6 ? v6_prefix : v4_prefix;
  size_t len = ip.v6 ? 16 : 4;
  for (size_t i = 0; i < len; ++i) {
    int bits = c.prefix - static_cast<int>(i) * 8;
    uint8_t mask = bits >= 8 ? 0xff : bits <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits));
    c.base.bytes[i] &= mask;
  }
  return c.str();
}

namespace {

using text::lower;

struct Settings {
  int64_t delay = 300;
  std::chrono::seconds retry_window{172800};
  std::chrono::seconds triplet_ttl{35 * 86400};
  std::chrono::seconds auto_whitelist{30 * 86400};
  int v4_prefix = 24, v6_prefix = 64;
};

class Greylist final : public Filter {
 public:
  Greylist(Settings s, std::function<int64_t()> now) : s_(s), now_(std::move(now)) {}
  std::string_view name() const override { return "greylist"; }
  Phase phase() const override { return Phase::Rcpt; }
  bool per_domain() const override { return true; }

  boost::asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
    if (!ctx.policy.greylisting) co_return FilterResult::none();
    Store* store = ctx.services.store;
    if (!store) co_return FilterResult::error("greylist: no store");
    auto ip = net::Ip::parse(ctx.envelope.client_ip);
    if (!ip) co_return FilterResult::error("greylist: bad client IP");
    std::string net = greylist_network(*ip, s_.v4_prefix, s_.v6_prefix);
    const Address& from = ctx.envelope.mail_from;
    std::string sender = from.empty() ? "<>" : lower(from.str());
    try {
      co_return run(*store, net, sender, ctx);
    } catch (const StoreError& e) {
      co_return FilterResult::error(std::string("greylist: store: ") + e.what());
    }
  }

 private:
  FilterResult run(Store& store, const std::string& net, const std::string& sender,
                   FilterContext& ctx) const {
    std::string awl_key = "grey:awl:" + net;
    if (store.get(awl_key)) {
      return FilterResult::note("GREYLIST_WHITELISTED", 0.0, net + " is auto-whitelisted");
    }
    int64_t now = now_();
    bool passed_now = false;
    std::string passed;
    std::optional<FilterResult> greylisted;
    for (const Address* rp : ctx.recipients()) {
      const Address& rcpt = *rp;
      if (!text::iequals(rcpt.domain, ctx.domain)) continue;
      std::string triplet = net + " " + sender + " -> " + lower(rcpt.str());
      std::string key = "grey:t:" + net + "|" + sender + "|" + lower(rcpt.str());
      int64_t wait = 0;
      bool pending = false, first_sight = false, confirmed_here = false;
      Store::UpdateFn fn = [&](const std::vector<std::optional<std::string>>& v) {
        std::vector<Store::Op> ops;
        wait = 0;
        pending = first_sight = confirmed_here = false;
        int64_t first = 0;
        bool ok = false;
        if (v[0]) {
          size_t sp = v[0]->find(' ');
          std::string head = v[0]->substr(0, sp);
          if (!head.empty() && head.find_first_not_of("0123456789") == std::string::npos)
            first = std::stoll(head);
          ok = sp != std::string::npos && v[0]->substr(sp + 1) == "ok";
        }
        if (!v[0] || first == 0 || first > now) {
          // First sight (or an unreadable record, treated as one).
          ops.push_back({Store::Op::Kind::Put, key, std::to_string(now), 0, s_.retry_window});
          // Even with delay = 0 the first attempt is refused: the retry is the test.
          pending = first_sight = true;
          wait = s_.delay;
        } else if (ok) {
          // Renewed on use, so a regular correspondent is never delayed again.
          ops.push_back({Store::Op::Kind::Put, key, *v[0], 0, s_.triplet_ttl});
        } else if (now - first >= s_.delay) {
          ops.push_back({Store::Op::Kind::Put, key, std::to_string(first) + " ok", 0,
                         s_.triplet_ttl});
          confirmed_here = true;
        } else {
          pending = true;
          wait = s_.delay - (now - first);
        }
        return ops;
      };
      std::vector<std::string> keys{key};
      store.update(keys, fn);
      if (pending) {
        // The other recipients' triplets are still recorded, so that one retry passes all.
        if (!greylisted) greylisted = FilterResult::hit(
            "GREYLIST", 0.0,
            triplet + (first_sight ? ": first seen, retry after " : ": retry too early, ") +
                std::to_string(wait) + (first_sight ? " s" : " s left"),
            "greylisted, try again later");
        continue;
      }
      passed_now = passed_now || confirmed_here;
      passed += (passed.empty() ? "" : ", ") + lower(rcpt.str());
    }
    if (greylisted) return std::move(*greylisted);
    if (passed_now && s_.auto_whitelist.count() > 0)
      store.put(awl_key, std::to_string(now), s_.auto_whitelist);
    if (passed.empty()) return FilterResult::none();
    return FilterResult::note("GREYLIST_PASSED", 0.0, net + " " + sender + " -> " + passed);
  }

  Settings s_;
  std::function<int64_t()> now_;
};

}  // namespace

FilterPtr make_greylist(const FilterBuildContext& b, std::function<int64_t()> now) {
  OptionReader r(b.options, "filters.greylist");
  Settings s;
  s.delay = r.integer("delay", 300, 0, 86400);
  s.retry_window = std::chrono::seconds(r.integer("retry_window", 172800, 60, 30 * 86400));
  s.triplet_ttl = std::chrono::seconds(r.integer("triplet_ttl", 35 * 86400, 3600, 366 * 86400));
  s.auto_whitelist =
      std::chrono::seconds(86400 * r.integer("auto_whitelist_days", 30, 0, 366));
  s.v4_prefix = static_cast<int>(r.integer("ipv4_prefix", 24, 8, 32));
  s.v6_prefix = static_cast<int>(r.integer("ipv6_prefix", 64, 16, 128));
  r.finish();
  if (s.retry_window.count() <= s.delay) r.fail("retry_window", "must be longer than delay");
  return std::make_shared<Greylist>(s, std::move(now));
}

FilterPtr make_greylist(const FilterBuildContext& b) {
  return make_greylist(b, [] { return static_cast<int64_t>(std::time(nullptr)); });
}

}  // namespace digue::filters
