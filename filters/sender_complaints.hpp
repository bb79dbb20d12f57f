// sender_complaints — senders reported by recipients' complaints or official lists, from an
// operator file. Cannot be disabled per domain except by whitelisting (a whitelist slot placed
// before it stops the chain).
// Phase: data (mail when check_from_header = false). Symbols: SENDER_COMPLAINTS (hit;
// evidence "address (envelope|header) matches entry").
// File: one entry per line: "user@domain" (that address), "*@domain" or "domain" (the whole
// domain), "*@.domain" (the domain's subdomains too); case-insensitive; '#' comments.
// Options ([filters.sender_complaints]): file = "rules/sender_complaints.txt",
//   check_from_header = true (also the From: header addresses), score = 10.0.
// Dependencies: none. Failure: an unreadable file or bad entry is a ConfigError at load.
// Untrusted input: the envelope sender and the From header.
#pragma once

#include "digue/filter_registry.hpp"

namespace digue::filters {

FilterPtr make_sender_complaints(const FilterBuildContext& b);

}  // namespace digue::filters
