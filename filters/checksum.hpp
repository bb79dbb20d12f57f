// checksum — bulk detection by message checksum: the same content sent to many recipients
// within a short time (one spam run, sent as separate transactions) is bulk mail.
// Phase: data. Symbols: CHECKSUM_BULK (hit; evidence: digest, distinct recipients, window).
// Digest: SHA-1 over what does not vary per recipient or per copy: the From header (decoded,
// whitespace collapsed), the decoded Subject, the decoded text of every text part
// (whitespace collapsed) and the SHA-256 of every attachment. MIME boundaries, transfer
// encodings, Message-ID, Date, To and Received are left out on purpose: they differ per copy.
// Counting: each (digest, recipient) pair is counted once per window (a marker key with the
// window as TTL), into per-slice counters (window/6 slices, `incr` with TTL) summed over the
// window, so a retried delivery is not counted twice and the cost is O(recipients).
// Keys: "cksum:<digest>:r:<recipient hash>" and "cksum:<digest>:t:<slice>".
// Options ([filters.checksum]): threshold = 20 (distinct recipients), window = 600 (s),
//   score = 5.0.
// Dependencies: services.store (LMDB or Redis share the counts between nodes).
// Failure: no store, or a StoreError, gives an error result (the slot's on_error applies).
// Untrusted input: the message content only goes into a hash.
#pragma once

#include "digue/filter_registry.hpp"
#include "digue/mime.hpp"

namespace digue::filters {

FilterPtr make_checksum(const FilterBuildContext& b);

// The digest of a message's recipient-independent content (hex SHA-1); exposed for tests and
// for diguectl.
std::string message_checksum(const mime::Parsed& facts);

}  // namespace digue::filters
