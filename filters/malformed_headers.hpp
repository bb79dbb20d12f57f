// malformed_headers — header defects typical of spamware and hand-rolled mailers.
// Phase: data. Symbols (one per kind of defect found, evidence names the headers):
//   MISSING_HEADER (Date, From or Message-ID absent), DUPLICATE_HEADER (a header RFC 5322
//   allows once appears more: Date, From, Sender, Reply-To, To, Cc, Bcc, Message-ID,
//   In-Reply-To, References, Subject), BAD_HEADER_SYNTAX (From without an address, Message-ID
//   not <left@right>, Date not RFC 5322-like, a line in the header block that is not a
//   header), HEADER_8BIT (raw 8-bit bytes in a header without SMTPUTF8 in the envelope),
//   LONG_HEADER_LINE (a header line over max_line_length bytes).
// Options ([filters.malformed_headers]): score_missing = 1.0, score_duplicate = 1.5,
//   score_syntax = 1.0, score_8bit = 1.0, score_long_line = 0.5, max_line_length = 998.
// Dependencies: none. Failure: cannot fail. Untrusted input: the raw header block (scanned
// once, bounded by the message size) and the parsed headers.
#pragma once

#include "digue/filter_registry.hpp"

namespace digue::filters {

FilterPtr make_malformed_headers(const FilterBuildContext& b);

}  // namespace digue::filters
