// same_sender_rcpt — the envelope sender equals the recipient (a classic forgery: spammers
// send "from" the victim's own address).
// Phase: rcpt, per recipient domain (only that domain's recipients are compared).
// Symbols: SAME_SENDER_RCPT (hit; evidence: the address). Options: score (default 4.0).
// Dependencies: none. Failure: cannot fail. Untrusted input: envelope addresses, compared
// case-insensitively (local parts too: mailbox case-sensitivity is not relied on by spammers).
#pragma once

#include "digue/filter_registry.hpp"

namespace digue::filters {

FilterPtr make_same_sender_rcpt(const FilterBuildContext& b);

}  // namespace digue::filters
