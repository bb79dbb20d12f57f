// Resolver: asynchronous DNS for filters. Implementation: c-ares driven by the io_context
// (no extra thread per query), TTL cache (positive and negative, clamped by config),
// identical in-flight queries shared, per-query timeout and retries.
// A timeout or SERVFAIL is TempError, never "not found".
// Threading: make_resolver's Resolver may be shared by every io_context thread: its cache,
// in-flight table and c-ares channel live on one strand; each waiter is resumed on its own
// coroutine's executor. Destroy it only after the threads that use it have stopped.
// Untrusted input: names come from mail (SPF macros, HELO); a name that cannot be put in a
// query (empty or >63-byte label, >253 bytes) gives PermError without touching the network.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace digue {
struct DnsConfig;
}
namespace digue::net {
struct Ip;
}

namespace digue::dns {

enum class Type : uint16_t { A = 1, NS = 2, CNAME = 5, PTR = 12, MX = 15, TXT = 16, AAAA = 28 };
enum class Status { Ok, NxDomain, NoData, TempError, PermError /* malformed answer, FORMERR */ };

struct Mx {
  uint16_t preference = 0;
  std::string host;  // lower-case, no trailing dot; "" for a null MX (RFC 7505: ".")
};

struct Answer {
  Status status = Status::TempError;
  // A/AAAA: textual addresses; PTR/CNAME/NS: names (lower-case, no trailing dot);
  // TXT: one string per record, its character-strings concatenated.
  std::vector<std::string> records;
  std::vector<Mx> mx;  // MX only, sorted by preference
  uint32_t ttl = 0;
  bool ok() const { return status == Status::Ok; }
  // No usable answer (timeout, SERVFAIL, malformed): unlike NXDOMAIN or no data, this says
  // nothing about the name.
  bool failed() const { return status == Status::TempError || status == Status::PermError; }
};

const char* to_string(Status s);
const char* to_string(Type t);

// Counters, for logs and tests: network queries started, answers served from the cache,
// waiters that joined an identical query already in flight.
struct ResolverStats {
  uint64_t queries = 0;
  uint64_t cache_hits = 0;
  uint64_t joined = 0;
};

class Resolver {
 public:
  virtual ~Resolver() = default;
  virtual boost::asio::awaitable<Answer> query(std::string name, Type type) = 0;
  virtual ResolverStats stats() const { return {}; }
};

// The c-ares resolver. Servers: config.servers ("IP:port"), else /etc/resolv.conf.
// Throws std::runtime_error when c-ares cannot be set up (bad server address, no resolv.conf).
std::unique_ptr<Resolver> make_resolver(boost::asio::any_io_executor executor,
                                        const DnsConfig& config);

// Parses one raw DNS response (the answer records of `type`, with their TTLs) exactly as the
// resolver does; exposed for the fuzz target. Untrusted input; never throws.
Answer parse_response(Type type, const unsigned char* abuf, int alen);

// A query name as sent: lower-case, no trailing dot, non-ASCII labels in their A-label
// (punycode) form via libidn2; empty when it cannot be a DNS name.
std::string normalize_name(std::string_view name);
// A name with non-ASCII labels (an SMTPUTF8 sender domain, a URL host written in UTF-8) in
// its A-label form, as registries publish it: IDNA2008 (non-transitional), then UTS #46
// transitional mapping as browsers do. ASCII names, and names neither accepts (bytes that
// are no UTF-8), come back unchanged. No length or syntax check: see normalize_name.
std::string a_labels(std::string_view name);

// The PTR query name of ip: "4.3.2.1.in-addr.arpa", or the 32 nibbles + ".ip6.arpa".
std::string ptr_name(const net::Ip& ip);

// Bounds the names followed from one PTR RRset: a hostile one could list hundreds (the limit
// RFC 7208 4.6.4 sets for "ptr").
inline constexpr size_t kMaxPtrNames = 10;

struct ConfirmedNames {
  Answer ptr;                      // the PTR answer itself: callers judge its status
  std::vector<std::string> names;  // forward-confirmed names, in PTR order
  // PTR names whose forward lookup failed (timeout, SERVFAIL, malformed answer): neither
  // confirmed nor refuted. SPF "ptr" skips them (RFC 7208 5.5); a check that reports "not
  // forward-confirmed" must not when nothing was confirmed and one of these is not empty.
  std::vector<std::string> unverified;
};

struct Query {
  std::string name;
  Type type;
};
// Starts every query at once and waits for all of them: one round trip for the lot (RBL-style
// fan-outs, the addresses of several MX hosts). Answers in the order of `queries`; a query
// that threw comes back as TempError.
boost::asio::awaitable<std::vector<Answer>> query_all(Resolver& resolver,
                                                      std::vector<Query> queries);

// Forward-confirmed reverse DNS (RFC 7208 5.5): queries ip's PTR, then, for each of its first
// max_names names, A (IPv4) or AAAA (IPv6); a name is confirmed when that lookup gives ip
// back. A failed forward lookup skips its name (listed in `unverified`). Stops after
// max_confirmed names.
boost::asio::awaitable<ConfirmedNames> forward_confirmed(Resolver& resolver, net::Ip ip,
                                                         size_t max_names = kMaxPtrNames,
                                                         size_t max_confirmed = SIZE_MAX);

}  // namespace digue::dns
