// keywords — PCRE2 regular expressions over headers and body text.
// Phase: data. Symbols: KEYWORDS (a platform rule matched), KEYWORDS_DOMAIN (a rule of the
// recipient domain's own list matched), KEYWORDS_LIMIT (score 0: a rule hit the PCRE2 match or
// depth limit on this message and was skipped). Evidence: "rule_id (target)".
// Rule files: one rule per line, `id target /regex/flags`; target is header:NAME (each
// top-level header of that name, decoded), headers (all top-level headers, "Name: value"
// lines), subject, body (the visible text of every text part), raw (the message bytes, up to
// raw_max_bytes); flags i (caseless), m (multiline), s (dot matches newline), x (extended),
// u (Unicode classes for \w, \d, \b). Text is UTF-8; '#' starts a comment line.
// Options ([filters.keywords]): rules = ["rules/keywords.rules"] (platform files),
//   score = 5.0, domain_score = 5.0, all_matches = false (report every matching rule instead
//   of stopping at the first), match_limit = 100000, depth_limit = 10000,
//   raw_max_bytes = 1048576, [filters.keywords.domains] "example.test" = "path" (per domain).
// Relative paths: next to the config file first, then the working directory.
// Dependencies: libpcre2-8 (JIT when available). Failure: a bad pattern or unreadable file
// is a ConfigError naming the file and line at load; at run time nothing can fail.
// Untrusted input: the message; every match runs under PCRE2 match and depth limits.
#pragma once

#include "digue/filter_registry.hpp"

namespace digue::filters {

FilterPtr make_keywords(const FilterBuildContext& b);

}  // namespace digue::filters
