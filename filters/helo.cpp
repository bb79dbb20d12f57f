#include "filters/helo.hpp"

#include <algorithm>
#include <cctype>

#include "digue/mime.hpp"
#include "digue/net.hpp"
#include "digue/options.hpp"
#include "digue/resolver.hpp"
#include "digue/text.hpp"

namespace digue::filters {

bool is_rfc5321_domain(std::string_view s) {
  if (s.empty() || s.size() > 255) return false;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    std::string_view label = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (label.empty() || label.size() > 63) return false;  // also rejects a trailing dot
    for (char c : label)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-')) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

namespace {

constexpr size_t kMaxEvidence = 100;

using text::lower;

// The HELO as evidence: it is attacker text bound for headers and logs.
std::string printable(std::string_view s) {
  std::string out;
  static const char* kHex = "0123456789abcdef";
  for (unsigned char c : s.substr(0, kMaxEvidence)) {
    if (c >= 0x21 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > kMaxEvidence) out += "...";
  return out;
}

// An IPv4 client seen on a dual-stack socket arrives as ::ffff:a.b.c.d; compare it as IPv4.
net::Ip unmapped(net::Ip ip) {
  static const uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (ip.v6 && std::equal(kPrefix, kPrefix + 12, ip.bytes.begin())) {
    net::Ip v4;
    std::copy(ip.bytes.begin() + 12, ip.bytes.end(), v4.bytes.begin());
    return v4;
  }
  return ip;
}

struct Scores {
  double invalid = 3.0, bare_ip = 2.0, ip_mismatch = 3.0, ours = 5.0, not_resolving = 1.5,
         mismatch_ptr = 1.0;
};

class Helo final : public Filter {
 public:
  Helo(bool require_fqdn, bool strict, Scores scores, std::vector<std::string> ours)
      : require_fqdn_(require_fqdn), strict_(strict), s_(scores), ours_(std::move(ours)) {}
  std::string_view name() const override { return "helo"; }
  Phase phase() const override { return Phase::Helo; }

  boost::asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
    const std::string& helo = ctx.envelope.helo;
    auto client = net::Ip::parse(ctx.envelope.client_ip);
    if (helo.size() >= 2 && helo.front() == '[' && helo.back() == ']') {
      co_return check_literal(std::string_view(helo).substr(1, helo.size() - 2), client);
    }
    if (net::Ip::parse(helo))
      co_return FilterResult::hit("HELO_BARE_IP", s_.bare_ip, printable(helo),
                                  "HELO is an IP address without brackets");
    if (!is_rfc5321_domain(helo))
      co_return FilterResult::hit("HELO_INVALID", s_.invalid, "'" + printable(helo) + "'",
                                  "HELO is not a valid host name");
    if (require_fqdn_ && helo.find('.') == std::string::npos)
      co_return FilterResult::hit("HELO_INVALID", s_.invalid,
                                  "'" + helo + "' is not a fully-qualified name",
                                  "HELO is not a fully-qualified host name");
    std::string name = lower(helo);
    // Compared without case, not lower-cased: no copy of our hostname per message.
    if (text::iequals(name, ctx.services.hostname) ||
        std::find(ours_.begin(), ours_.end(), name) != ours_.end())
      co_return FilterResult::hit("HELO_OURS", s_.ours, name, "HELO claims to be us");
    if (!strict_) co_return FilterResult::none();
    if (!client) co_return FilterResult::error("helo: bad client IP " + ctx.envelope.client_ip);
    // Named locals: GCC 12 may destroy temporaries in a co_await expression twice.
    net::Ip ip = unmapped(*client);
    FilterResult out = co_await check_dns(ctx, name, ip);
    co_return out;
  }

 private:
  FilterResult check_literal(std::string_view inner, const std::optional<net::Ip>& client) const {
    std::optional<net::Ip> lit;
    std::string_view tag = inner.substr(0, 5);
    if (tag.size() == 5 && lower(tag) == "ipv6:") {
      lit = net::Ip::parse(inner.substr(5));
      if (lit && !lit->v6) lit.reset();
    } else {
      lit = net::Ip::parse(inner);
      if (lit && lit->v6) lit.reset();  // RFC 5321 4.1.3: IPv6 needs the "IPv6:" tag
    }
    std::string shown = "[" + printable(inner) + "]";
    if (!lit)
      return FilterResult::hit("HELO_INVALID", s_.invalid, shown,
                               "HELO is not a valid address literal");
    if (!client || unmapped(*lit) != unmapped(*client))
      return FilterResult::hit("HELO_IP_MISMATCH", s_.ip_mismatch,
                               shown + " but the client is " + printable(
                                   client ? client->str() : std::string("unknown")),
                               "HELO address literal is not the client's address");
    return FilterResult::none();
  }

  static bool has(const dns::Answer& a, const net::Ip& ip) {
    for (const auto& r : a.records) {
      auto x = net::Ip::parse(r);
      if (x && unmapped(*x) == ip) return true;
    }
    return false;
  }

  boost::asio::awaitable<FilterResult> check_dns(FilterContext& ctx, std::string name,
                                                 net::Ip client) const {
    if (!ctx.services.resolver) co_return FilterResult::error("helo: no DNS resolver");
    dns::Resolver& res = *ctx.services.resolver;
    dns::Answer a = co_await res.query(name, dns::Type::A);
    dns::Answer aaaa = co_await res.query(name, dns::Type::AAAA);
    if (has(a, client) || has(aaaa, client)) co_return FilterResult::none();
    for (const dns::Answer* x : {&a, &aaaa}) {
      if (x->failed())
        co_return FilterResult::error("helo: address lookup for " + name + ": " +
                                      dns::to_string(x->status));
    }
    bool resolves = (a.ok() && !a.records.empty()) || (aaaa.ok() && !aaaa.records.empty());

    std::vector<std::string> verified;
    if (!ctx.envelope.client_ptr.empty()) {
      verified.push_back(lower(ctx.envelope.client_ptr));
    } else {
      dns::ConfirmedNames confirmed = co_await dns::forward_confirmed(res, client);
      if (confirmed.ptr.failed())
        co_return FilterResult::error("helo: PTR lookup for " + client.str() + ": " +
                                      dns::to_string(confirmed.ptr.status));
      // A PTR name whose forward lookup failed might have been the verified one.
      if (confirmed.names.empty() && !confirmed.unverified.empty())
        co_return FilterResult::error("helo: forward lookup of " + confirmed.unverified.front() +
                                      " (PTR of " + client.str() + ") failed");
      verified = std::move(confirmed.names);
    }
    std::string helo_domain = mime::registered_domain(name);
    std::string ptrs;
    for (const auto& p : verified) {
      if (!helo_domain.empty() && mime::registered_domain(p) == helo_domain) {
        co_return FilterResult::note("HELO_PTR_DOMAIN", 0.0, name + " ~ " + p);
      }
      ptrs += (ptrs.empty() ? "" : " ") + p;
    }
    if (ptrs.empty()) ptrs = "none";
    if (!resolves)
      co_return FilterResult::hit("HELO_NOT_RESOLVING", s_.not_resolving,
                                  name + " has no A/AAAA; verified PTR: " + ptrs,
                                  "HELO name does not resolve");
    std::string addrs;
    for (const dns::Answer* x : {&a, &aaaa})
      for (const auto& r : x->records) addrs += (addrs.empty() ? "" : " ") + r;
    co_return FilterResult::hit("HELO_MISMATCH_PTR", s_.mismatch_ptr,
                                name + " is " + addrs + ", not " + client.str() +
                                    "; verified PTR: " + ptrs,
                                "HELO name does not match the client");
  }

  bool require_fqdn_, strict_;
  Scores s_;
  std::vector<std::string> ours_;  // accepted domains, lower-case
};

}  // namespace

FilterPtr make_helo(const FilterBuildContext& b) {
  OptionReader r(b.options, "filters.helo");
  bool fqdn = r.boolean("require_fqdn", true);
  bool strict = r.boolean("strict", false);
  Scores s;
  s.invalid = r.number("score_invalid", s.invalid, -100, 100);
  s.bare_ip = r.number("score_bare_ip", s.bare_ip, -100, 100);
  s.ip_mismatch = r.number("score_ip_mismatch", s.ip_mismatch, -100, 100);
  s.ours = r.number("score_ours", s.ours, -100, 100);
  s.not_resolving = r.number("score_not_resolving", s.not_resolving, -100, 100);
  s.mismatch_ptr = r.number("score_mismatch_ptr", s.mismatch_ptr, -100, 100);
  r.finish();
  std::vector<std::string> ours;
  for (const auto& [name, policy] : b.config.domains) ours.push_back(name);
  return std::make_shared<Helo>(fqdn, strict, s, std::move(ours));
}

}  // namespace digue::filters
