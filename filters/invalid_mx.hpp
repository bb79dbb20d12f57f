// invalid_mx — the MAIL FROM domain cannot receive mail: replies and bounces to it would be
// lost, which honest senders avoid and forged senders do not care about.
// Phase: mail. Symbols:
//   INVALID_MX     (hit) the domain does not exist (NXDOMAIN), has neither MX nor A/AAAA,
//                  publishes a null MX (RFC 7505: "MX 0 ."), or is not a DNS name at all;
//                  or no MX host can receive mail (RFC 5321 5.1: "none of them are usable"):
//                  each MX host (at most 10, by preference) does not exist, has no A/AAAA,
//                  is an IP literal, or resolves only to addresses no Internet host can
//                  reach ("bogus MX": loopback, RFC 1918/unique local, CGNAT, link-local,
//                  unspecified, multicast, reserved; net::scope_of); evidence: each host
//                  and why. The same address check applies to the A fallback.
//   MX_A_FALLBACK  no MX but a usable A/AAAA (RFC 5321 5.1 implicit MX): non-standard but
//                  deliverable; noted with score_a_fallback (0), a hit only when
//                  a_fallback_is_hit = true
//   MX_OK          (score 0) at least one of the first 10 MX hosts has a usable address;
//                  evidence: those hosts, then "; unusable: " and why for the others
//   MX_UNVERIFIED  (score 0) more than 10 distinct MX hosts and the first 10 are unusable: the
//                  others were not looked up and one may work, so no verdict
// The null sender (<>) gets no result: there is no domain to check.
// Options ([filters.invalid_mx]): score (3), score_a_fallback (0), a_fallback_is_hit (false),
// allow_private (false: true accepts RFC 1918, fc00::/7 and 100.64/10 addresses as usable,
// for internal mail and test labs; loopback and the other ranges stay bogus).
// Dependencies: the resolver; the hosts' A and AAAA queries run in parallel. Failure: a DNS
// timeout/SERVFAIL (TempError) or a malformed answer (PermError for a valid name) is an
// error result: the slot's on_error decides, never a guess that the domain is invalid.
// That includes a failed address lookup of an MX host when no other host is usable.
// Untrusted input: the sender domain (lower-cased by the SMTP parser; checked with
// dns::normalize_name before it is used as a query name) and the MX host names.
#pragma once

#include "digue/filter_registry.hpp"

namespace digue::filters {

FilterPtr make_invalid_mx(const FilterBuildContext& b);

}  // namespace digue::filters
