// rbl — DNS blocklists (DNSBL, RFC 5782): the client IP (IPv4 reversed octets, IPv6 reversed
// nibbles) is looked up in every configured IP zone and, optionally, the sender domain in
// every configured domain zone, all queries in parallel. The message is a hit when it is
// listed in at least `quorum` of the zones that answered (the vendor's "50% of the lists").
// Phase: connect; mail when domain_zones is set (the sender domain is known at MAIL).
// Symbols:
//   RBL_LISTED       (hit) evidence: "listed in zen.test (127.0.0.2), ...; 2/3 answered;
//                    timed out: x.test; refused: y.test"
//   RBL_BELOW_QUORUM (score 0) listed somewhere, but in fewer than the quorum
//   RBL_REFUSED      (score 0) "refused: zone zone": the zones that refused the query
//   RBL_FAIL         (score 0) "timed out or failed: zone(temperror) ...": no answer
// A zone's answer counts as a listing only when it is an A record in its accepted codes
// (`codes`, addresses or CIDRs; default: any 127.0.0.0/8 address). 127.0.0.1,
// 127.255.255.0/24 and 127.0.1.254/31 mean "query refused" (Spamhaus: open resolver, over
// quota; filters/dnsbl_zone.hpp). A zone that refused, timed out or gave a malformed answer
// did not answer: it is left out of the quorum and named (RBL_REFUSED, RBL_FAIL, always, and
// in the hit's evidence).
// Options ([filters.rbl]):
//   zones = ["zen.test", {zone = "b.test", codes = ["127.0.0.2", "127.0.0.4"]}]
//   domain_zones = [...]    same form; queried as "<sender domain>.<zone>"
//   quorum = 0.5            fraction (0, 1] of the answering zones
//   score = 5.0
// Dependencies: the resolver. Failure: no zone answered (all refused, timed out or failed):
// error result with the RBL_REFUSED / RBL_FAIL notes (the slot's on_error applies, the error
// counter counts it). Nothing configured: ConfigError.
// Untrusted input: the client IP (parsed), the sender domain (dns::normalize_name; a name
// too long once the zone is appended is simply not looked up), the answers (parsed as IPs).
#pragma once

#include "digue/filter_registry.hpp"

namespace digue::filters {

FilterPtr make_rbl(const FilterBuildContext& b);

}  // namespace digue::filters
