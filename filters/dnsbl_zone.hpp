// dnsbl_zone — what the rbl and surbl filters share: a blocklist zone as configured (its
// accepted answer codes; for surbl, whether IPv4 URL hosts are queried) and the reading of
// one zone's answer (listed, not listed, refused, failed), and the notes that name the zones
// that refused or failed.
// Refusal codes, never listings, in every zone: 127.0.0.1 (no list uses it as a listing;
// URIBL: query refused), 127.255.255.0/24 (Spamhaus: public or over-quota resolver, typo in
// the zone name), 127.0.1.254/31 (Spamhaus DBL: "IP queries prohibited" and its error range).
// Options, per zone: a zone name, or {zone = "...", codes = ["127.0.0.2", "127.0.1.0/24"],
// ip_hosts = bool (surbl only; default false for dbl.* zones, true otherwise)}.
// Untrusted input: the answers (parsed as IPs; anything else is not a listing).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "digue/filter.hpp"
#include "digue/net.hpp"
#include "digue/options.hpp"
#include "digue/resolver.hpp"

namespace digue::filters::dnsbl {

struct Zone {
  std::string zone;
  std::vector<net::Cidr> codes;  // empty: any 127.0.0.0/8 address
  bool domain = false;           // rbl: queried with the sender domain instead of the IP
  bool ip_hosts = true;          // surbl: IPv4 URL hosts are queried in this zone
};

enum class Outcome { Listed, NotListed, Refused, Failed };

// The outcome of one zone's answer; *code: the listing code, when listed.
Outcome judge(const Zone& z, const dns::Answer& a, std::string* code);

// ip_hosts key allowed (surbl) or not (rbl). Zone names are normalised; a bad element or
// code is a ConfigError naming the key.
void read_zones(OptionReader& r, const std::string& key, bool domain, bool ip_hosts_key,
                std::vector<Zone>* out);
// The default for a zone given without ip_hosts: DBL-style domain lists answer IP queries
// with an error code, so they are not asked.
bool default_ip_hosts(std::string_view zone);

// The zones that refused or gave no answer, each named once.
class Unanswered {
 public:
  // Records z when outcome is Refused or Failed.
  void add(Outcome outcome, const Zone& z, const dns::Answer& a);
  const std::string& refused() const { return refused_; }  // "a.test b.test"
  const std::string& failed() const { return failed_; }    // "a.test(temperror) ..."
  // "timed out or failed: ...; refused: ..." (either part only when not empty), or "".
  std::string summary() const;
  // Appends the notes <PREFIX>_REFUSED and <PREFIX>_FAIL (score 0, evidence: the zones).
  void annotate(FilterResult& r, std::string_view prefix) const;

 private:
  std::vector<std::string> seen_;
  std::string refused_, failed_;
};

}  // namespace digue::filters::dnsbl
