// empty_email — a message with no content: no visible text (whitespace only, HTML reduced to
// what a reader sees) and no attachment.
// Phase: data. Symbols: EMPTY_EMAIL (hit; evidence: what was found, e.g. "no text, no
// attachment, subject present"). Options ([filters.empty_email]): score = 2.0,
// min_chars = 1 (fewer non-space characters of text than this counts as no text),
// ignore_subject = true (false: a subject alone counts as content).
// Dependencies: none. Failure: cannot fail. Untrusted input: the parsed message facts.
#pragma once

#include "digue/filter_registry.hpp"

namespace digue::filters {

FilterPtr make_empty_email(const FilterBuildContext& b);

}  // namespace digue::filters
