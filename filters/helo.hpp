// helo — the HELO/EHLO name must be a valid name (RFC 5321 4.1.4: a domain or an address
// literal), consistent with the client (RFC 5321 4.1.4 / 2821 "HELO/reverse check").
// Phase: helo. Checks, in order; the first that fails is the hit:
//   HELO_INVALID       not an RFC 5321 Domain nor address literal (empty, bad characters,
//                      label > 63, name > 255, trailing dot) or, with require_fqdn, one label
//   HELO_BARE_IP       an IP address without the [brackets] of an address literal
//   HELO_IP_MISMATCH   an address literal ([192.0.2.1], [IPv6:...]) that is not the client IP
//   HELO_OURS          our own host name (server.hostname) or one of our accepted domains:
//                      only we may say that, so a client that does is forging
//   strict = true only (DNS):
//   HELO_NOT_RESOLVING the name has no A nor AAAA record
//   HELO_MISMATCH_PTR  the name resolves, not to the client IP, and the client's verified
//                      (forward-confirmed) PTR name is not in the same registered domain
//                      (eTLD+1, Public Suffix List) as the HELO name
//   A name that resolves to the client IP, or matches the verified PTR's registered domain,
//   passes (symbol HELO_PTR_DOMAIN, score 0, in the latter case).
// Options ([filters.helo]): require_fqdn (true), strict (false), score_invalid (3),
//   score_bare_ip (2), score_ip_mismatch (3), score_ours (5), score_not_resolving (1.5),
//   score_mismatch_ptr (1).
// Dependencies: the resolver (strict mode only; the PTR is taken from the envelope when the
// session verified it, else looked up here: the resolver's cache shares it with rdns).
// Failure: strict mode only: a DNS timeout/SERVFAIL/malformed answer on the HELO or PTR
// lookups, or on the forward lookup of a PTR name when none was confirmed, is an error
// result (a lookup that failed is not "does not resolve" nor "not verified").
// Untrusted input: the HELO text (any bytes; validated before it is used as a query name,
// and evidence is the validated name or a printable-escaped copy, at most 100 bytes).
#pragma once

#include <string_view>

#include "digue/filter_registry.hpp"

namespace digue::filters {

// RFC 5321 4.1.2 Domain: sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str];
// labels <= 63 octets, name <= 255. Exposed for the tests and for other checks of names.
bool is_rfc5321_domain(std::string_view s);

FilterPtr make_helo(const FilterBuildContext& b);

}  // namespace digue::filters
