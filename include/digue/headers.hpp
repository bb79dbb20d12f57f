// Trace headers digue adds, and the edits it makes to a message's header block.
// Names (documented in README.md "Headers added"):
//   Received:                 RFC 5321 4.4 trace line (with TLS version/cipher when used)
//   X-Digue-Envelope-From:    the MAIL FROM address (<> for the null sender)
//   X-Digue-HELO:             the HELO/EHLO name
//   X-Digue-Client-IP:        the client address
//   X-Digue-Envelope-To:      the envelope recipients of this delivery group
//   X-Digue-Queue-ID:         the queue ID (as in the 250 reply and the logs)
//   X-Spam-Status:            "Yes|No, score=S required=R tests=SYM1,SYM2"
//   X-Digue-Filter:           the deciding filter, when one decided
//   X-Digue-Whitelist:        the whitelist reason, when one applied
//   X-Spam-Flag: YES          on spam delivered as tag or junk
// Incoming copies of these (spoofing our verdict) are removed from the message.
// Contract: pure string functions, no I/O.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "digue/envelope.hpp"
#include "digue/pipeline.hpp"

namespace digue::headers {

// RFC 5322 date-time for `unix_seconds` in local time (in UTC when `utc`), independent of the
// locale, e.g. "Wed, 25 Nov 2026 16:05:01 +0000".
std::string rfc5322_date(int64_t unix_seconds, bool utc = false);

std::string received(const Envelope& env, const std::string& hostname,
                     const std::vector<Address>& rcpts);

// The whole block to prepend for one recipient domain (CRLF line ends, folded at 78).
std::string trace_block(const Envelope& env, const std::string& hostname,
                        const std::vector<Address>& rcpts, const Verdict& verdict, bool spam);

// True for header names digue owns (X-Spam-Status, X-Spam-Flag, X-Digue-*).
bool owned_header(std::string_view name);

// The message with owned headers removed from its top-level header block, and with the
// Subject prefixed by `subject_prefix` when non-empty (a Subject is added if missing).
std::string rewrite(std::string_view raw, std::string_view subject_prefix);

}  // namespace digue::headers
