// spf — RFC 7208 check of the envelope sender (MAIL FROM's domain; the HELO name for the
// null sender) against the client IP.
// Phase: mail. Symbols: exactly one of SPF_PASS, SPF_FAIL, SPF_SOFTFAIL, SPF_NEUTRAL,
// SPF_NONE, SPF_TEMPERROR, SPF_PERMERROR; its evidence is the complete "Received-SPF: ..."
// header line (the pipeline adds it to the message), so the result is recorded even when
// it is not a hit.
// Options ([filters.spf]): hits (results that are hits, default ["fail"]), score (score of a
// hit symbol, default 5.0); other symbols score 0.
// Dependencies: the DNS resolver (error result without one). Failure: DNS trouble is the SPF
// result "temperror" (a symbol, a hit only if listed in hits), never an exception.
// Untrusted input: sender, HELO and the published records; see digue/spf.hpp.
#pragma once

#include "digue/filter_registry.hpp"

namespace digue::filters {

FilterPtr make_spf(const FilterBuildContext& b);

}  // namespace digue::filters
