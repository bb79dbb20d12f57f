// rdns — reverse DNS of the client IP: no PTR name at all, or no PTR name that resolves back
// to the client IP (not forward-confirmed, RFC 8601's "iprev" rule).
// Phase: connect. Symbols: RDNS_NONE (hit: no PTR), RDNS_UNCONFIRMED (hit unless
// unconfirmed_is_hit = false; evidence: the PTR names), RDNS_OK (score 0, evidence: the
// confirmed name).
// Options ([filters.rdns]): score_none (3.0), score_unconfirmed (1.5),
// unconfirmed_is_hit (true). Looks at the first 10 PTR names only.
// Dependencies: the DNS resolver. Failure: a DNS timeout/SERVFAIL/malformed answer on the PTR
// query, or on the forward lookup of a PTR name when no name was confirmed, is an error
// result (the slot's on_error applies): a lookup that failed is not "no PTR" nor "not
// forward-confirmed".
// Untrusted input: the PTR names (lower-cased, used only as query names and evidence).
#pragma once

#include "digue/filter_registry.hpp"

namespace digue::filters {

FilterPtr make_rdns(const FilterBuildContext& b);

}  // namespace digue::filters
