// honeypot — hidden trap addresses that no person uses: mail to one comes from a harvester or
// a spam run. A trap recipient is always a hit; the client IP is also recorded, and an IP
// that mails traps bulk_threshold times within `window` seconds is refused for ban_seconds,
// whatever the recipient.
// Phase: rcpt (runs for each RCPT and looks at every recipient so far, so a trap followed by
// a normal recipient stays a hit; a trap counts once per session, so the re-runs the pipeline
// makes do not count one trap twice).
// Symbols: HONEYPOT_TRAP (hit; evidence: the trap addresses, in RCPT order), HONEYPOT_BANNED
// (hit; evidence: the IP and its trap count).
// Options ([filters.honeypot]): traps (list of addresses, compared case-insensitively;
// required), bulk_threshold (3), window (3600 s), ban_seconds (86400), score (10).
// Store: "honeypot:hits:<ip>" counter (expires `window` after the first trap hit: a fixed
// window), "honeypot:seen:<session>|<trap>" (TTL window), "honeypot:ban:<ip>" (ban_seconds).
// Dependencies: the Store. Failure: no store or a store error: the trap hit itself is still
// reported (it needs no store); otherwise an error result.
// Untrusted input: recipient addresses (compared only), the client IP (parsed).
#pragma once

#include "digue/filter_registry.hpp"

namespace digue::filters {

FilterPtr make_honeypot(const FilterBuildContext& b);

}  // namespace digue::filters
