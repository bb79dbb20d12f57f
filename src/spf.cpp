// SPF check_host() evaluation (RFC 7208 4-6) and the Received-SPF header; see digue/spf.hpp.
#include "digue/spf.hpp"

#include <algorithm>
#include <boost/asio/use_awaitable.hpp>
#include <ctime>

namespace asio = boost::asio;

namespace digue::spf {

const char* to_string(Result r) {
  switch (r) {
    case Result::None: return "none";
    case Result::Neutral: return "neutral";
    case Result::Pass: return "pass";
    case Result::Fail: return "fail";
    case Result::SoftFail: return "softfail";
    case Result::TempError: return "temperror";
    case Result::PermError: return "permerror";
  }
  return "?";
}

namespace {

// Each include/redirect recurses once; the 10-lookup limit ends loops long before this.
constexpr int kMaxDepth = 20;
// RFC 7208 4.6.4: MX names per "mx", PTR names per "ptr" / %{p}.
constexpr size_t kMaxMxNames = 10;
constexpr size_t kMaxPtrNames = 10;

enum class Match { No, Yes, Temp, Perm };

Result qualifier_result(char q) {
  switch (q) {
    case '-': return Result::Fail;
    case '~': return Result::SoftFail;
    case '?': return Result::Neutral;
    default: return Result::Pass;
  }
}

// RFC 7208 4.3: a domain that is not a multi-label FQDN gives "none" without any lookup.
bool checkable_domain(std::string_view domain) {
  if (domain.empty() || domain.front() == '[') return false;
  std::string n = dns::normalize_name(domain);
  return !n.empty() && n.find('.') != std::string::npos;
}

bool ends_with_domain(std::string_view name, std::string_view domain) {
  if (name == domain) return true;
  return name.size() > domain.size() && name.ends_with(domain) &&
         name[name.size() - domain.size() - 1] == '.';
}

class Evaluator {
 public:
  Evaluator(dns::Resolver& resolver, const net::Ip& ip, std::string sender, std::string helo,
            const CheckOptions& options)
      : resolver_(resolver), ip_(ip), options_(options) {
    ctx_.ip = ip;
    ctx_.helo = std::move(helo);
    ctx_.receiver = options.receiver;
    ctx_.timestamp = options.timestamp ? options.timestamp : int64_t(std::time(nullptr));
    auto at = sender.rfind('@');
    ctx_.local = at == std::string::npos ? std::string() : sender.substr(0, at);
    ctx_.sender_domain = at == std::string::npos ? sender : sender.substr(at + 1);
    if (ctx_.local.empty()) ctx_.local = "postmaster";  // RFC 7208 4.3
    ctx_.sender = ctx_.local + "@" + ctx_.sender_domain;
  }

  asio::awaitable<SpfResult> run(std::string domain) {
    SpfResult r = co_await check(std::move(domain), 0, true);
    r.dns_lookups = dns_mechanisms_;
    r.void_lookups = voids_;
    co_return r;
  }

 private:
  asio::awaitable<SpfResult> check(std::string domain, int depth, bool want_exp) {
    SpfResult r;
    r.domain = domain;
    if (!checkable_domain(domain)) {
      r.problem = "not a domain name: " + domain;
      co_return r;  // none
    }
    domain = dns::normalize_name(domain);
    if (depth > kMaxDepth) co_return error(r, Result::PermError, "include/redirect too deep");

    dns::Answer txt = co_await resolver_.query(domain, dns::Type::TXT);
    if (txt.failed())
      co_return error(r, Result::TempError, std::string("DNS ") + dns::to_string(txt.status) +
                                                " for TXT " + domain);
    std::vector<std::string_view> records;
    for (const auto& t : txt.records)
      if (is_spf_record(t)) records.push_back(t);
    if (records.empty()) {
      r.problem = "no SPF record for " + domain;
      co_return r;  // none
    }
    if (records.size() > 1)
      co_return error(r, Result::PermError, "several SPF records for " + domain);
    std::string syntax;
    auto record = parse_record(records[0], syntax);
    if (!record) co_return error(r, Result::PermError, syntax + " (" + domain + ")");

    for (const auto& m : record->mechanisms) {
      if (m.kind != Mech::All && m.kind != Mech::Ip4 && m.kind != Mech::Ip6 &&
          ++dns_mechanisms_ > options_.max_dns_mechanisms)
        co_return error(r, Result::PermError, "more than 10 DNS lookups");
      std::string problem;
      Match match = co_await evaluate(m, domain, depth, problem);
      if (match == Match::No) continue;
      if (match == Match::Temp) co_return error(r, Result::TempError, problem);
      if (match == Match::Perm) co_return error(r, Result::PermError, problem);
      r.result = qualifier_result(m.qualifier);
      r.mechanism = m.text;
      if (r.result == Result::Fail && want_exp && record->exp)
        r.explanation = co_await explanation(*record->exp, domain);
      co_return r;
    }
    if (record->redirect) {
      if (++dns_mechanisms_ > options_.max_dns_mechanisms)
        co_return error(r, Result::PermError, "more than 10 DNS lookups");
      auto target = co_await expand_domain(*record->redirect, domain);
      if (target.empty())
        co_return error(r, Result::PermError, "bad redirect target: " + *record->redirect);
      // The target's result, explanation included, replaces ours (RFC 7208 6.1).
      SpfResult inner = co_await check(target, depth + 1, want_exp);
      if (inner.result == Result::None)
        co_return error(r, Result::PermError, "redirect to " + target + ": no SPF record");
      inner.domain = r.domain;
      co_return inner;
    }
    r.result = Result::Neutral;
    r.mechanism = "default";
    co_return r;
  }

  static SpfResult error(SpfResult r, Result result, std::string problem) {
    r.result = result;
    r.problem = std::move(problem);
    return r;
  }

  // Expands a domain-spec (or uses the current domain when empty) into a query name; empty
  // when it cannot be queried (RFC 7208 4.8: such a name matches nothing).
  asio::awaitable<std::string> expand_domain(const std::string& spec, const std::string& domain) {
    if (spec.empty()) co_return domain;
    ctx_.domain = domain;
    if (uses_p_macro(spec)) ctx_.validated = co_await validated_name(domain);
    auto expanded = expand(spec, ctx_, false);
    co_return expanded ? target_name(*expanded) : std::string();
  }

  bool count_void(const dns::Answer& a) {
    return (a.status == dns::Status::NxDomain || a.status == dns::Status::NoData) &&
           ++voids_ > options_.max_void_lookups;
  }

  dns::Type address_type() const { return ip_.v6 ? dns::Type::AAAA : dns::Type::A; }

  asio::awaitable<Match> evaluate(const Mechanism& m, const std::string& domain, int depth,
                                  std::string& problem) {
    int prefix = ip_.v6 ? m.cidr6 : m.cidr4;
    switch (m.kind) {
      case Mech::All: co_return Match::Yes;
      case Mech::Ip4:
      case Mech::Ip6:
        co_return (m.network.v6 == ip_.v6 && net::Cidr{m.network, prefix}.contains(ip_))
            ? Match::Yes : Match::No;
      default: break;
    }
    std::string target = co_await expand_domain(m.domain_spec, domain);
    if (target.empty()) co_return Match::No;
    switch (m.kind) {
      case Mech::Include: {
        SpfResult inner = co_await check(target, depth + 1, false);
        switch (inner.result) {
          case Result::Pass: co_return Match::Yes;
          case Result::Fail:
          case Result::SoftFail:
          case Result::Neutral: co_return Match::No;
          case Result::TempError: problem = inner.problem; co_return Match::Temp;
          case Result::None:
            problem = "include:" + target + ": no SPF record";
            co_return Match::Perm;
          case Result::PermError: problem = inner.problem; co_return Match::Perm;
        }
        co_return Match::Perm;
      }
      case Mech::A:
      case Mech::Exists: {
        auto type = m.kind == Mech::Exists ? dns::Type::A : address_type();
        dns::Answer a = co_await resolver_.query(target, type);
        if (!a.ok() && !lookup_ok(a, target, problem)) co_return Match::Temp;
        if (count_void(a)) co_return void_error(problem);
        if (!a.ok()) co_return Match::No;
        if (m.kind == Mech::Exists) co_return Match::Yes;
        for (const auto& addr : a.records)
          if (in_network(addr, prefix)) co_return Match::Yes;
        co_return Match::No;
      }
      case Mech::Mx: {
        dns::Answer mx = co_await resolver_.query(target, dns::Type::MX);
        if (!mx.ok() && !lookup_ok(mx, target, problem)) co_return Match::Temp;
        if (count_void(mx)) co_return void_error(problem);
        if (!mx.ok()) co_return Match::No;
        if (mx.mx.size() > kMaxMxNames) {
          problem = "more than 10 MX names for " + target;
          co_return Match::Perm;
        }
        for (const auto& host : mx.mx) {
          if (host.host.empty()) continue;  // null MX (RFC 7505): no host
          dns::Answer a = co_await resolver_.query(host.host, address_type());
          if (!a.ok() && !lookup_ok(a, host.host, problem)) co_return Match::Temp;
          for (const auto& addr : a.records)
            if (in_network(addr, prefix)) co_return Match::Yes;
        }
        co_return Match::No;
      }
      case Mech::Ptr: {
        auto names = co_await validated_names(&voids_);
        if (voids_ > options_.max_void_lookups) co_return void_error(problem);
        for (const auto& n : names)
          if (ends_with_domain(n, target)) co_return Match::Yes;
        co_return Match::No;
      }
      default: co_return Match::No;
    }
  }

  // True for NXDOMAIN/no-data (not an error); false (with `problem`) for a DNS error.
  static bool lookup_ok(const dns::Answer& a, const std::string& name, std::string& problem) {
    if (a.status == dns::Status::NxDomain || a.status == dns::Status::NoData) return true;
    problem = std::string("DNS ") + dns::to_string(a.status) + " for " + name;
    return false;
  }

  Match void_error(std::string& problem) const {
    problem = "more than " + std::to_string(options_.max_void_lookups) + " void lookups";
    return Match::Perm;
  }

  bool in_network(const std::string& address, int prefix) const {
    auto a = net::Ip::parse(address);
    if (!a || a->v6 != ip_.v6) return false;
    return net::Cidr{*a, prefix}.contains(ip_);
  }

  // The client's PTR names whose forward lookup gives the client address back (RFC 7208
  // 5.5). A DNS error skips the name (or, for the PTR query, yields no name).
  asio::awaitable<std::vector<std::string>> validated_names(int* voids) {
    net::Ip ip = ip_;
    dns::ConfirmedNames c = co_await dns::forward_confirmed(resolver_, ip, kMaxPtrNames);
    if (voids && (c.ptr.status == dns::Status::NxDomain || c.ptr.status == dns::Status::NoData))
      ++*voids;
    co_return std::move(c.names);
  }

  // %{p}: the validated name equal to the domain, else one under it, else any (7.3).
  asio::awaitable<std::string> validated_name(const std::string& domain) {
    auto names = co_await validated_names(nullptr);
    for (const auto& n : names)
      if (n == domain) co_return n;
    for (const auto& n : names)
      if (ends_with_domain(n, domain)) co_return n;
    co_return names.empty() ? std::string("unknown") : names.front();
  }

  // RFC 7208 6.2: any problem fetching or expanding the explanation means "no exp=".
  asio::awaitable<std::string> explanation(const std::string& spec, const std::string& domain) {
    std::string target = co_await expand_domain(spec, domain);
    if (target.empty()) co_return std::string();
    dns::Answer txt = co_await resolver_.query(target, dns::Type::TXT);
    if (!txt.ok() || txt.records.size() != 1) co_return std::string();
    ctx_.domain = domain;
    if (uses_p_macro(txt.records[0])) ctx_.validated = co_await validated_name(domain);
    auto text = expand(txt.records[0], ctx_, true);
    co_return text ? *text : std::string();
  }

  dns::Resolver& resolver_;
  net::Ip ip_;
  CheckOptions options_;
  MacroContext ctx_;
  int dns_mechanisms_ = 0;
  int voids_ = 0;
};

// Header parameter values come from strangers: keep printable ASCII only, quoted.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c < 0x20 || c > 0x7e) {
      out += '?';
    } else {
      if (c == '"' || c == '\\') out += '\\';
      out += char(c);
    }
  }
  return out + "\"";
}

std::string printable(std::string_view s) {
  std::string q = quoted(s);
  return q.substr(1, q.size() - 2);
}

}  // namespace

asio::awaitable<SpfResult> check_host(dns::Resolver& resolver, const net::Ip& ip,
                                      std::string domain, std::string sender, std::string helo,
                                      CheckOptions options) {
  Evaluator e(resolver, ip, std::move(sender), std::move(helo), options);
  co_return co_await e.run(std::move(domain));
}

asio::awaitable<SpfResult> check_sender(dns::Resolver& resolver, const net::Ip& ip,
                                        std::string mail_from, std::string helo,
                                        CheckOptions options, std::string* identity) {
  std::string sender, domain;
  if (mail_from.empty()) {
    sender = "postmaster@" + helo;
    domain = helo;
    if (identity) *identity = "helo";
  } else {
    auto at = mail_from.rfind('@');
    domain = at == std::string::npos ? mail_from : mail_from.substr(at + 1);
    sender = mail_from;
    if (identity) *identity = "mailfrom";
  }
  co_return co_await check_host(resolver, ip, std::move(domain), std::move(sender),
                                std::move(helo), std::move(options));
}

std::string describe(const SpfResult& r, const net::Ip& ip, std::string_view sender) {
  std::string who = "domain of " + printable(sender);
  std::string addr = ip.str();
  switch (r.result) {
    case Result::Pass: return who + " designates " + addr + " as permitted sender";
    case Result::Fail: return who + " does not designate " + addr + " as permitted sender";
    case Result::SoftFail:
      return who + " does not designate " + addr + " as permitted sender (softfail)";
    case Result::Neutral: return addr + " is neither permitted nor denied by " + who;
    case Result::None: return who + " does not publish SPF";
    case Result::TempError: return "temporary error checking " + who + ": " + printable(r.problem);
    case Result::PermError: return "error in the SPF policy of " + who + ": " + printable(r.problem);
  }
  return {};
}

std::string received_spf_header(const SpfResult& r, const net::Ip& ip,
                                std::string_view mail_from, std::string_view helo,
                                std::string_view receiver, std::string_view identity) {
  std::string sender = mail_from.empty() ? "postmaster@" + std::string(helo)
                                         : std::string(mail_from);
  std::string h = "Received-SPF: ";
  h += to_string(r.result);
  std::string comment = printable(receiver) + ": " + describe(r, ip, sender);
  // A comment cannot hold unbalanced parentheses, and the problem text is the publisher's.
  std::replace(comment.begin(), comment.end(), '(', '[');
  std::replace(comment.begin(), comment.end(), ')', ']');
  h += " (" + comment + ")";
  // An IPv6 address (its ':') is not a dot-atom: quoted (RFC 7208 §9.1's key-value-pair).
  h += " client-ip=" + (ip.v6 ? quoted(ip.str()) : ip.str()) + ";";
  h += " envelope-from=" + quoted(mail_from) + ";";
  h += " helo=" + quoted(helo) + ";";
  h += " receiver=" + quoted(receiver) + ";";
  h += " identity=" + std::string(identity) + ";";
  if (!r.mechanism.empty()) h += " mechanism=" + quoted(r.mechanism) + ";";
  if (!r.problem.empty() &&
      (r.result == Result::TempError || r.result == Result::PermError))
    h += " problem=" + quoted(r.problem) + ";";
  return h;
}

}  // namespace digue::spf
