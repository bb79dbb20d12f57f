// ip_lists — the recipient domain's own IP lists: "never spam" IPs (a whitelist) and
// "always spam" IPs (a blacklist). Two registry names, one file pair: they read the same kind
// of list but sit at different places in the vendor's order (whitelist 4th, blacklist 8th).
// Phase: connect (the input is the client IP), decided per recipient domain.
// Symbols:
//   never_spam_ips:  NEVER_SPAM_IP (whitelist pass: the chain stops; evidence
//                    "Whitelisted IP <ip> (<cidr>)", which becomes the whitelist reason).
//   always_spam_ips: ALWAYS_SPAM_IP (hit; evidence "<ip> in <cidr>").
// Options ([filters.always_spam_ips]): score (10). never_spam_ips has no options.
// Domain policy: domains."x".never_spam_ips, domains."x".always_spam_ips (CIDR lists).
// Dependencies: none. Failure: cannot fail; an unparsable client IP matches no list.
// Untrusted input: the client IP text (parsed, never echoed unparsed).
#pragma once

#include "digue/filter_registry.hpp"

namespace digue::filters {

FilterPtr make_never_spam_ips(const FilterBuildContext& b);
FilterPtr make_always_spam_ips(const FilterBuildContext& b);

}  // namespace digue::filters
