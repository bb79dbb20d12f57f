// empty_sender — the null reverse-path (MAIL FROM:<>).
// Phase: mail. Symbols: EMPTY_SENDER (hit). Options: score (default 3.0).
// Dependencies: none. Failure: cannot fail. Untrusted input: the envelope sender only.
// Bounces legitimately use the null sender, so the platform default action is "score":
// configure `action = "spam"` to class every bounce as spam.
#pragma once

#include "digue/filter_registry.hpp"

namespace digue::filters {

FilterPtr make_empty_sender(const FilterBuildContext& b);

}  // namespace digue::filters
