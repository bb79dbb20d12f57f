// surbl — URL domain blocklists (SURBL, URIBL, Spamhaus DBL style): the registered domains of
// the URLs in headers, text and HTML links are looked up under each configured zone.
// Phase: data. Symbols: SURBL (hit: a domain is listed in at least `quorum` of the zones
// that answered for it; evidence "domain (zone, zone)"), SURBL_REFUSED (score 0: "refused:
// zone ...", the zones that answered a refusal code), SURBL_FAIL (score 0: "timed out or
// failed: zone(temperror) ..."); refused and failed zones are left out of the quorum.
// Queries: "<registered domain>.<zone>" A, all in parallel; IPv4 URLs as "<d>.<c>.<b>.<a>.<zone>",
// only in the zones with ip_hosts (DBL refuses IP queries: 127.0.1.255); IPv6 URLs are
// skipped (no list supports them). Listed = an A record in the zone's accepted `codes` (default:
// any 127.0.0.0/8 address), never a refusal code (127.0.0.1, 127.255.255.0/24,
// 127.0.1.254/31: see filters/dnsbl_zone.hpp).
// Options ([filters.surbl]): zones = ["multi.surbl.org", "multi.uribl.com",
//   "dbl.spamhaus.org"] (each a name or {zone = "...", codes = [...], ip_hosts = bool};
//   ip_hosts defaults to false for dbl.* zones, true otherwise), quorum = 0.5,
//   max_domains = 20 (the first distinct ones, in message order), skip_domains = [] (never
//   looked up, e.g. your own), score = 5.0.
// Dependencies: services.resolver. Failure: no resolver, or no query answered (every one
// refused, timed out or failed): an error result, with the SURBL_REFUSED / SURBL_FAIL notes
// (the slot's on_error applies). Untrusted input: URL hosts come from the message; only
// registered domains that parse as host names are queried.
#pragma once

#include "digue/filter_registry.hpp"

namespace digue::filters {

FilterPtr make_surbl(const FilterBuildContext& b);

}  // namespace digue::filters
