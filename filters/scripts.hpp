// scripts — Cyrillic and CJK (Han, kana, Hangul) mail: the share of those scripts' letters
// among all letters of the subject, the From display name and the body text.
// Phase: data. Symbols: CYRILLIC_SUBJECT, CYRILLIC_FROM, CYRILLIC_BODY, CJK_SUBJECT,
// CJK_FROM, CJK_BODY (evidence: "share=0.83 letters=120"). A hit when any part reaches its
// script's threshold with at least its minimum number of letters.
// Options ([filters.scripts]): cyrillic = true, cjk = true (which scripts to detect),
//   cyrillic_threshold = 0.3, cjk_threshold = 0.3, min_letters_header = 3,
//   min_letters_body = 20, max_body_bytes = 65536 (the body's share is taken on its start),
//   score = 3.0 (per symbol).
// Dependencies: none. Failure: cannot fail. Untrusted input: decoded UTF-8 text (valid UTF-8
// is guaranteed by the MIME parser; stray bytes are skipped anyway).
#pragma once

#include "digue/filter_registry.hpp"

namespace digue::filters {

FilterPtr make_scripts(const FilterBuildContext& b);

struct ScriptCounts {
  size_t letters = 0, cyrillic = 0, cjk = 0;
};
// Counts letters in UTF-8 text, for tests and diguectl.
ScriptCounts count_scripts(std::string_view utf8);

}  // namespace digue::filters
