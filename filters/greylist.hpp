// greylist — greylisting (the "triplet" method): a (client network, sender, recipient)
// triplet seen for the first time is answered "try again later"; a real MTA retries, a
// fire-and-forget spam run does not. After `delay` seconds the retry passes; the client
// network is then auto-whitelisted for auto_whitelist_days (no more delays for it).
// Phase: rcpt, per recipient domain, only for domains with greylisting = true.
// Default action: "tempfail" (451 4.7.1 at RCPT); see conf/filters/greylist.toml. With
// "spam" or "score" a greylisted message would be accepted, and never retried.
// Symbols: GREYLIST (hit; evidence "<net> <sender> -> <rcpt>: first seen, retry after N s"
// or "retry too early, N s left"), GREYLIST_PASSED (score 0: the delay has passed for every
// recipient of the domain), GREYLIST_WHITELISTED (score 0: the network is auto-whitelisted).
// All recipients of the domain in the envelope are checked (a refused one is not kept).
// Options ([filters.greylist]): delay (300 s), retry_window (172800 s: an unconfirmed triplet
// is forgotten after this), triplet_ttl (35 days: a confirmed triplet is remembered this long
// after its last use), auto_whitelist_days (30; 0 = never), ipv4_prefix (24), ipv6_prefix
// (64): the client network (senders' MTA farms retry from other addresses of the same net).
// Store: "grey:t:<net>|<sender>|<rcpt>" = "<first seen unix>" or "<first seen> ok";
// "grey:awl:<net>" = "<unix time>". Each triplet is read-modified-written in one update().
// Dependencies: the Store. Failure: no store or a store error is an error result (on_error:
// continue lets the mail in ungreylisted; tempfail asks the sender to come back).
// Untrusted input: sender and recipient addresses (lower-cased into keys; '|' cannot occur
// unquoted in an address domain, and the key is only compared, never parsed back).
#pragma once

#include <cstdint>
#include <functional>

#include "digue/filter_registry.hpp"

namespace digue::filters {

FilterPtr make_greylist(const FilterBuildContext& b);
// The same with a clock (unix seconds), for tests of the delay.
FilterPtr make_greylist(const FilterBuildContext& b, std::function<int64_t()> now);

// The network a client IP is greylisted by: "192.0.2.0/24", "2001:db8:1:2::/64".
std::string greylist_network(const net::Ip& ip, int v4_prefix, int v6_prefix);

}  // namespace digue::filters
