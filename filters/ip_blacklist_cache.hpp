// ip_blacklist_cache — the platform's short-term IP blacklist: a client IP recently found
// sending spam is refused for a while (the ban time), whatever the recipient domain.
// Phase: connect. Symbols: IP_BLACKLIST_CACHE (hit; evidence: the IP, when it was recorded
// and why). Options ([filters.ip_blacklist_cache]): score (10), ban_seconds (86400; 0 = do
// not record). Recording: after_verdict() bans the client IP of every message classed as
// spam (not whitelisted; loopback never).
// Store: key "ipbl:<ip>" (the IP as net::Ip::str() prints it, so every IPv6 spelling maps to
// one key), value "<unix time recorded> <reason>", TTL = the ban time: the ban lifts by
// itself when the key expires. The writer is this filter's after_verdict(), through
// record_spammer(); a later record renews the ban.
// Dependencies: the Store. Failure: no store, or a store error, is an error result (the
// slot's on_error applies): a failed read is not "not listed".
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
