// invalid_mx — the MAIL FROM domain cannot receive mail: replies and bounces to it would be
// lost, which honest senders avoid and forged senders do not care about.
// Phase: mail. Symbols:
//   INVALID_MX     (hit) the domain does not exist (NXDOMAIN), has neither MX nor A/AAAA,
//                  publishes a null MX (RFC 7505: "MX 0 ."), or is not a DNS name at all
//   MX_A_FALLBACK  no MX but an A/AAAA record (RFC 5321 5.1 implicit MX): non-standard but
//                  deliverable; noted with score_a_fallback (0), a hit only when
//                  a_fallback_is_hit = true
//   MX_OK          (score 0) evidence: the MX hosts (first 5)
// The null sender (<>) gets no result: there is no domain to check.
// Options ([filters.invalid_mx]): score (3), score_a_fallback (0), a_fallback_is_hit (false).
// Dependencies: the resolver. Failure: a DNS timeout/SERVFAIL (TempError) or a malformed
// answer (PermError for a valid name) is an error result: the slot's on_error decides, never
// a guess that the domain is invalid.
// Untrusted input: the sender domain (lower-cased by the SMTP parser; checked with
// dns::normalize_name before it is used as a query name).
#pragma once

#include "digue/filter_registry.hpp"

namespace digue::filters {

FilterPtr make_invalid_mx(const FilterBuildContext& b);

}  // namespace digue::filters
