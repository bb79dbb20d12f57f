#include "filters/dnsbl_zone.hpp"

#include <algorithm>

namespace digue::filters::dnsbl {
namespace {

const net::Cidr& loopback8() {
  static const net::Cidr c = *net::Cidr::parse("127.0.0.0/8");
  return c;
}

bool refused_code(const net::Ip& ip) {
  static const net::Cidr kRefused[] = {*net::Cidr::parse("127.0.0.1/32"),
                                       *net::Cidr::parse("127.255.255.0/24"),
                                       *net::Cidr::parse("127.0.1.254/31")};
  return std::any_of(std::begin(kRefused), std::end(kRefused),
                     [&](const net::Cidr& c) { return c.contains(ip); });
}

}  // namespace

Outcome judge(const Zone& z, const dns::Answer& a, std::string* code) {
  if (a.failed()) return Outcome::Failed;
  if (!a.ok()) return Outcome::NotListed;
  bool refused = false;
  for (const auto& r : a.records) {
    auto ip = net::Ip::parse(r);
    if (!ip || ip->v6) continue;
    if (refused_code(*ip)) {
      refused = true;
      continue;
    }
    bool accepted = false;
    if (z.codes.empty()) {
      accepted = loopback8().contains(*ip);
    } else {
      for (const auto& c : z.codes) accepted = accepted || c.contains(*ip);
    }
    if (accepted) {
      *code = ip->str();
      return Outcome::Listed;
    }
  }
  return refused ? Outcome::Refused : Outcome::NotListed;
}

bool default_ip_hosts(std::string_view zone) { return !zone.starts_with("dbl."); }

void read_zones(OptionReader& r, const std::string& key, bool domain, bool ip_hosts_key,
                std::vector<Zone>* out) {
  const toml::array* arr = r.array(key);
  if (!arr) return;
  std::string where = r.path(key);
  for (const toml::node& e : *arr) {
    Zone z;
    z.domain = domain;
    bool ip_hosts_set = false;
    if (auto s = e.value<std::string>(); s && e.is_string()) {
      z.zone = *s;
    } else if (const toml::table* t = e.as_table()) {
      OptionReader zr(*t, where);
      z.zone = zr.str("zone", "");
      for (const auto& code : zr.strings("codes")) {
        auto c = net::Cidr::parse(code);
        if (!c || c->base.v6) zr.fail("codes", "not an IPv4 address or range: " + code);
        z.codes.push_back(*c);
      }
      if (ip_hosts_key && t->contains("ip_hosts")) {
        z.ip_hosts = zr.boolean("ip_hosts", true);
        ip_hosts_set = true;
      }
      zr.finish();
    } else {
      config_fail(where, &e,
                  ip_hosts_key
                      ? "expected a zone name or {zone = ..., codes = [...], ip_hosts = ...}"
                      : "expected a zone name or {zone = ..., codes = [...]}");
    }
    z.zone = dns::normalize_name(z.zone);
    bool ok =
        !z.zone.empty() &&
        z.zone.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-._") == std::string::npos;
    if (!ok) config_fail(where, &e, "not a DNS zone name");
    if (!ip_hosts_set) z.ip_hosts = default_ip_hosts(z.zone);
    out->push_back(std::move(z));
  }
}

void Unanswered::add(Outcome outcome, const Zone& z, const dns::Answer& a) {
  if (outcome != Outcome::Refused && outcome != Outcome::Failed) return;
  if (std::find(seen_.begin(), seen_.end(), z.zone) != seen_.end()) return;
  seen_.push_back(z.zone);
  if (outcome == Outcome::Refused) {
    refused_ += (refused_.empty() ? "" : " ") + z.zone;
  } else {
    failed_ += (failed_.empty() ? "" : " ") + z.zone + "(" + dns::to_string(a.status) + ")";
  }
}

std::string Unanswered::summary() const {
  std::string out;
  if (!failed_.empty()) out = "timed out or failed: " + failed_;
  if (!refused_.empty()) out += (out.empty() ? "" : "; ") + std::string("refused: ") + refused_;
  return out;
}

void Unanswered::annotate(FilterResult& r, std::string_view prefix) const {
  if (!refused_.empty())
    r.symbols.push_back({std::string(prefix) + "_REFUSED", 0.0, "refused: " + refused_});
  if (!failed_.empty())
    r.symbols.push_back({std::string(prefix) + "_FAIL", 0.0, "timed out or failed: " + failed_});
}

}  // namespace digue::filters::dnsbl
