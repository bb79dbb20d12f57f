// spf — RFC 7208 check of the envelope sender (MAIL FROM's domain; the HELO name for the
// null sender) against the client IP.
// Phase: mail. Symbols: exactly one of SPF_PASS, SPF_FAIL, SPF_SOFTFAIL, SPF_NEUTRAL,
// SPF_NONE, SPF_TEMPERROR, SPF_PERMERROR; its evidence is the complete "Received-SPF: ..."
// header line, and the result is the message's Received-SPF trace header (FilterResult::
// trace_field; written above our Received: line), so it is recorded even when not a hit.
// Options ([filters.spf]): hits (results that are hits, default ["fail"]), score (score of a
// hit symbol, default 5.0); other symbols score 0.
// Dependencies: the DNS resolver (error result without one). Failure: DNS trouble is the SPF
// result "temperror": an error result that keeps its SPF_TEMPERROR symbol and trace header
// (the slot's on_error applies: "tempfail" answers 4xx), or a hit when listed in hits.
// "permerror" (a broken published policy, RFC 7208 8.7) is a result, not an error.
// Untrusted input: sender, HELO and the published records; see digue/spf.hpp.
#pragma once

#include "digue/filter_registry.hpp"

namespace digue::filters {

FilterPtr make_spf(const FilterBuildContext& b);

}  // namespace digue::filters
