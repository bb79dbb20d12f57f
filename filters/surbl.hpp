// surbl — URL domain blocklists (SURBL, URIBL, Spamhaus DBL style): the registered domains of
// the URLs in headers, text and HTML links are looked up under each configured zone.
// Phase: data. Symbols: SURBL (hit: a domain is listed in at least `quorum` of the zones
// that answered for it; evidence "domain (zone, zone)"), SURBL_TIMEOUT (score 0: zones that
// gave no answer, excluded from the quorum and counted).
// Queries: "<registered domain>.<zone>" A, all in parallel; IPv4 URLs as "<d>.<c>.<b>.<a>.<zone>";
// IPv6 URLs are skipped (no list supports them). Listed = an A record in 127.0.0.0/8 other
// than 127.0.0.1 and 127.255.255.0/24 (the lists' "query refused / error" codes).
// Options ([filters.surbl]): zones = ["multi.surbl.org", "multi.uribl.com",
//   "dbl.spamhaus.org"], quorum = 0.5, max_domains = 20 (the first distinct ones, in message
//   order), skip_domains = [] (never looked up, e.g. your own), score = 5.0.
// Dependencies: services.resolver. Failure: no resolver, or every query timed out: an error
// result (the slot's on_error applies). Untrusted input: URL hosts come from the message; only
// registered domains that parse as host names are queried.
#pragma once

#include "digue/filter_registry.hpp"

namespace digue::filters {

FilterPtr make_surbl(const FilterBuildContext& b);

}  // namespace digue::filters
