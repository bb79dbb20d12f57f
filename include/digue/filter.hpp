// Filter: the seam every check plugs into.
// A filter *detects*: it returns symbols (name, score, evidence) and a verdict of its own
// (nothing found, hit, or a whitelist pass). What a hit does (spam, reject, tempfail, only
// add its score) is decided by the slot's config and the recipient domain's policy, in the
// Pipeline, never by the filter.
// A Filter object is built once from config, immutable, and shared by all sessions and
// threads; per-message state lives in the FilterContext.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "digue/envelope.hpp"

namespace boost::asio {
class thread_pool;
}

namespace digue {

class Message;
class Store;
struct DomainPolicy;
struct Verdict;
namespace dns {
class Resolver;
}

// SMTP phases, in order. A filter runs at the earliest phase at which its inputs are known.
enum class Phase : uint8_t { Connect = 0, Helo = 1, Mail = 2, Rcpt = 3, Data = 4 };
const char* to_string(Phase p);

struct Symbol {
  std::string name;      // UPPER_SNAKE, e.g. "RDNS_NONE"
  double score = 0.0;    // contribution to the message score
  std::string evidence;  // what was seen, for logs, headers and `diguectl scan`
};

struct FilterResult {
  enum class Status : uint8_t { Ok, Error, Timeout };
  enum class Verdict : uint8_t {
    None,  // nothing found (symbols may still carry information, with score 0)
    Hit,   // the filter found what it looks for; the slot's action applies
    Pass,  // a whitelist matched: the message is not spam and the chain stops
  };
  Status status = Status::Ok;
  Verdict verdict = Verdict::None;
  std::vector<Symbol> symbols;
  std::string reason;  // short human text: SMTP reply text on reject, log reason
  // A line for the message's "X-Digue-<Filter>" trace header (Bayes: its score and strongest
  // tokens); empty: no header. Any text: the header writer keeps it on one line, printable,
  // and RFC 2047-encodes words that are not ASCII.
  std::string trace;
  // The trace header's field name when it is a standard one ("Received-SPF", RFC 7208 9.1:
  // written above our Received: line); empty: "X-Digue-<Filter>".
  std::string trace_field;

  static FilterResult none() { return {}; }
  static FilterResult hit(std::string symbol, double score, std::string evidence,
                          std::string reason = {}) {
    FilterResult r;
    r.verdict = Verdict::Hit;
    r.symbols.push_back({std::move(symbol), score, std::move(evidence)});
    r.reason = std::move(reason);
    return r;
  }
  // Information without a hit: one symbol (its score, if any, still adds to the message's).
  static FilterResult note(std::string symbol, double score, std::string evidence) {
    FilterResult r;
    r.symbols.push_back({std::move(symbol), score, std::move(evidence)});
    return r;
  }
  static FilterResult pass(std::string symbol, std::string evidence) {
    FilterResult r;
    r.verdict = Verdict::Pass;
    r.symbols.push_back({std::move(symbol), 0.0, std::move(evidence)});
    return r;
  }
  // An error may carry symbols (what failed: the zones that refused, SPF_TEMPERROR): the
  // pipeline records them, scoring 0, instead of its generic NAME_FAIL.
  static FilterResult error(std::string why) {
    FilterResult r;
    r.status = Status::Error;
    r.reason = std::move(why);
    return r;
  }
};

// What a filter may use while it runs. Services are owned by the daemon (or by diguectl);
// a pointer may be null when the service is not configured, and a filter that needs it
// returns an error result then.
struct Services {
  Store* store = nullptr;
  dns::Resolver* resolver = nullptr;
  boost::asio::thread_pool* workers = nullptr;  // CPU-heavy work goes here
  std::string hostname;                         // our own name (banner, HELO checks)
};

struct FilterContext {
  const Envelope& envelope;
  const Message* message;       // null before DATA
  const std::string& domain;    // the recipient domain this run decides for
  const DomainPolicy& policy;   // that domain's policy
  Services& services;
  boost::asio::any_io_executor executor;
  // Rcpt-phase filters: the one recipient this run decides for. The pipeline runs each
  // rcpt-phase filter once per recipient, on its RCPT, and merges the results of a domain's
  // recipients (a hit of any one is the domain's hit). Null outside a pipeline (unit tests,
  // other phases): then recipients() is every recipient of the envelope.
  const Address* rcpt = nullptr;

  std::vector<const Address*> recipients() const {
    std::vector<const Address*> out;
    if (rcpt) {
      out.push_back(rcpt);
    } else {
      for (const Address& a : envelope.rcpts) out.push_back(&a);
    }
    return out;
  }
};

class Filter {
 public:
  virtual ~Filter() = default;
  virtual std::string_view name() const = 0;
  // The phase at which the filter's inputs are all known; it runs then (or later).
  virtual Phase phase() const = 0;
  // True when the result depends on the recipient domain (its lists, thresholds); the
  // pipeline then runs it once per domain instead of once per message.
  virtual bool per_domain() const { return false; }
  virtual boost::asio::awaitable<FilterResult> check(FilterContext& ctx) const = 0;
  // Called once per recipient domain after the final verdict of an accepted message (also
  // for slots that did not run because the chain stopped earlier), for filters that learn
  // from one domain's outcome. Must be quick and must not throw.
  virtual void after_verdict(const FilterContext& ctx, const Verdict& verdict) const {}
  // Called once per accepted message, after every domain's after_verdict, with each recipient
  // domain's final verdict (ctx names the first domain): for filters that learn from the
  // message as a whole (Bayes autolearn must not learn as ham what one domain found spam;
  // the IP blacklist cache counts a message once). Must be quick and must not throw.
  virtual void after_message(const FilterContext& ctx,
                             const std::vector<const Verdict*>& verdicts) const {}
};

using FilterPtr = std::shared_ptr<const Filter>;

}  // namespace digue
