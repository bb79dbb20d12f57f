#include "filters/honeypot.hpp"

#include <algorithm>
#include <set>

#include "digue/options.hpp"
#include "digue/store.hpp"
#include "digue/text.hpp"

namespace digue::filters {
namespace {

using text::lower;

struct Settings {
  std::set<std::string> traps;
  int64_t bulk_threshold = 3;
  std::chrono::seconds window{3600};
  std::chrono::seconds ban{86400};
  double score = 10.0;
};

class Honeypot final : public Filter {
 public:
  explicit Honeypot(Settings s) : s_(std::move(s)) {}
  std::string_view name() const override { return "honeypot"; }
  Phase phase() const override { return Phase::Rcpt; }

  boost::asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
    const Envelope& env = ctx.envelope;
    auto ip = net::Ip::parse(env.client_ip);
    // The pipeline checks one recipient per run (and merges a domain's results, so a trap
    // followed by a normal recipient is still a hit); outside it, every recipient.
    std::vector<std::string> traps;
    for (const Address* rcpt : ctx.recipients()) {
      std::string a = lower(rcpt->str());
      if (s_.traps.count(a) && std::find(traps.begin(), traps.end(), a) == traps.end())
        traps.push_back(std::move(a));
    }
    std::string trap;
    for (const auto& t : traps) trap += (trap.empty() ? "" : ", ") + t;
    Store* store = ctx.services.store;
    if (!store || !ip) {
      if (!trap.empty()) co_return trap_hit(trap, "");
      co_return FilterResult::error(store ? "honeypot: bad client IP" : "honeypot: no store");
    }
    std::string ban_key = "honeypot:ban:" + ip->str();
    try {
      if (!traps.empty()) {
        int64_t n = 0;
        for (const auto& t : traps) n = count(*store, *ip, env.session_id + "|" + t);
        if (n >= s_.bulk_threshold) {
          store->put(ban_key, std::to_string(n), s_.ban);
          co_return trap_hit(trap, "; " + ip->str() + " banned after " + std::to_string(n) +
                                       " trap hits");
        }
        co_return trap_hit(trap, "; " + ip->str() + " trap hit " + std::to_string(n));
      }
      auto banned = store->get(ban_key);
      if (banned)
        co_return FilterResult::hit("HONEYPOT_BANNED", s_.score,
                                    ip->str() + " mailed " + *banned + " trap addresses",
                                    "client mailed spam traps");
    } catch (const StoreError& e) {
      if (!trap.empty()) co_return trap_hit(trap, "; store: " + std::string(e.what()));
      co_return FilterResult::error(std::string("honeypot: store: ") + e.what());
    }
    co_return FilterResult::none();
  }

 private:
  // Counts one trap hit for ip, once per session and trap address, and returns the IP's count:
  // a client may name the same trap in several transactions of one session.
  int64_t count(Store& store, const net::Ip& ip, const std::string& seen_id) const {
    std::string hits_key = "honeypot:hits:" + ip.str();
    std::string seen_key = "honeypot:seen:" + seen_id;
    int64_t n = 0;
    std::vector<std::string> keys{seen_key, hits_key};
    Store::UpdateFn fn = [&](const std::vector<std::optional<std::string>>& v) {
      std::vector<Store::Op> ops;
      n = 0;
      if (v[1]) {
        const std::string& t = *v[1];
        if (!t.empty() && t.find_first_not_of("0123456789") == std::string::npos)
          n = std::stoll(t);
      }
      if (v[0]) return ops;
      ++n;
      ops.push_back({Store::Op::Kind::Put, seen_key, "1", 0, s_.window});
      ops.push_back({Store::Op::Kind::Incr, hits_key, "", 1, s_.window});
      return ops;
    };
    store.update(keys, fn);
    return n;
  }

  FilterResult trap_hit(const std::string& trap, const std::string& more) const {
    return FilterResult::hit("HONEYPOT_TRAP", s_.score, trap + more, "spam trap recipient");
  }

  Settings s_;
};

}  // namespace

FilterPtr make_honeypot(const FilterBuildContext& b) {
  OptionReader r(b.options, "filters.honeypot");
  Settings s;
  for (const auto& t : r.strings("traps")) {
    if (t.find('@') == std::string::npos || t.front() == '@' || t.back() == '@')
      r.fail("traps", "not an address: " + t);
    s.traps.insert(lower(t));
  }
  s.bulk_threshold = r.integer("bulk_threshold", 3, 1, 1000000);
  s.window = std::chrono::seconds(r.integer("window", 3600, 1, 365 * 86400));
  s.ban = std::chrono::seconds(r.integer("ban_seconds", 86400, 1, 365 * 86400));
  s.score = r.number("score", 10.0, -100, 100);
  r.finish();
  if (s.traps.empty()) r.fail("traps", "at least one trap address is needed");
  return std::make_shared<Honeypot>(std::move(s));
}

}  // namespace digue::filters
