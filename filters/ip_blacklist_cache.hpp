// ip_blacklist_cache — the platform's short-term IP blacklist: a client IP recently found
// sending spam again and again is refused for a while (the ban time).
// Phase: connect, decided per recipient domain: an IP in the domain's own never_spam_ips or
// relay_ips, or in exempt_ips, is never refused by a ban (the ban is checked at RCPT, before
// the domain's whitelist slot may run: a ban caused by mail to other domains must not
// override the whitelist of the domain that trusts the IP).
// Symbols: IP_BLACKLIST_CACHE (hit; evidence: the IP, when it was banned and why).
// Options ([filters.ip_blacklist_cache]): score (10); ban_seconds (86400; 0 = never record,
// the cache is then only read); ban_after (3) spam verdicts within ban_window (3600 s) ban
// the IP; ban_on (["honeypot", "rbl", "ip_complaints", "keywords", "bayes"]): the filters
// whose verdicts count — the message's deciding filter (X-Digue-Filter: the slot whose
// action classed it spam or refused it, or for a score total the filter with the strongest
// hit) must be one of them; exempt_ips (CIDR list): never banned, never refused.
// Recording: after_message() counts a message once (whatever its number of recipient
// domains) when a domain's verdict is spam or reject from a ban_on filter and no domain
// whitelisted it. Never counted: loopback, exempt_ips, and every hosted domain's
// never_spam_ips and relay_ips (a shared outbound IP that one customer trusts — a Gmail or
// Office 365 relay — is not banned for another customer's spam).
// Why these defaults: one spam from a shared outbound IP is common and says little; three
// strong verdicts within an hour is a spam run (the honeypot's bulk ban uses the same 3 in
// one hour). ban_on keeps the evidence about the IP (traps, DNSBLs, the complaints list) and
// the strong content classifiers; it leaves out checksum (bulk: newsletters), surbl and spf
// (forwarded and relayed mail), always_spam_ips (one domain's own list must not ban the IP
// for every domain) and sender_complaints (about the sender address, not the IP).
// Store: "ipbl:<ip>" (the IP as net::Ip::str() prints it, so every IPv6 spelling maps to
// one key), value "<unix time recorded> <reason>", TTL = the ban time: the ban lifts by
// itself. "ipblhits:<ip>": the verdicts counted, a fixed window (expires ban_window after
// the first), removed when the ban is written. A later ban renews the earlier one.
// Dependencies: the Store. Failure: no store, or a store error, is an error result (the
// slot's on_error applies): a failed read is not "not listed". Recording failures are
// logged as warnings.
// Untrusted input: the client IP text (parsed first; an unparsable IP is an error result).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "digue/filter_registry.hpp"
#include "digue/net.hpp"

namespace digue {
class Store;
}

namespace digue::filters {

// The ban a caller should use when it has no configured one: one day.
inline constexpr std::chrono::seconds kDefaultSpammerBan{24 * 3600};

// The Store key of an IP's ban.
std::string ip_blacklist_key(const net::Ip& ip);

// Bans ip for ttl (replacing any earlier ban). reason: short text kept as evidence, e.g.
// "spam: queue 4f2a... bayes". Throws StoreError like Store::put; ttl must be > 0 (a zero
// ttl would ban forever, which is the operator's always_spam_ips list's job): it is raised
// to one second.
void record_spammer(Store& store, const net::Ip& ip, std::chrono::seconds ttl,
                    std::string_view reason);

FilterPtr make_ip_blacklist_cache(const FilterBuildContext& b);

}  // namespace digue::filters
