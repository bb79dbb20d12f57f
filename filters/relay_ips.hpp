// relay_ips — "only these IPs may relay to us": a recipient domain that lists relay_ips
// accepts mail only from those client addresses (CIDR, IPv4 and IPv6). The SaaS case: the
// customer's own server refuses everything that did not come through digue, and digue's
// own front node refuses what did not come from the customer's allowed relays.
// Phase: connect (the input is the client IP), decided per recipient domain.
// Symbols: RELAY_IP_NOT_ALLOWED (hit; evidence: the client IP). Options: score (default 10).
// Domain policy: domains."x".relay_ips (empty list: anyone may send).
// Failure: cannot fail; an unparsable client IP counts as not allowed.
// Platform default action: "reject" (550 5.7.1 at RCPT time).
#pragma once

#include "digue/filter_registry.hpp"

namespace digue::filters {

FilterPtr make_relay_ips(const FilterBuildContext& b);

}  // namespace digue::filters
