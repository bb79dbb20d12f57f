// RecipientVerifier: refuses at RCPT time the recipients a hosted domain does not have, so
// that mail for them is never accepted and then bounced to a (forgeable) envelope sender:
// backscatter (Postfix's reject_unverified_recipient / address verification).
// Contract:
// - The session asks after the rcpt-phase filters, only for recipients they did not refuse.
// - check() decides for one recipient of a hosted domain, from its policy's `verify`:
//   1. "postmaster" is always accepted (RFC 5321 4.5.1).
//   2. The static list (`recipients = "/path"`), when given, is authoritative for refusal: a
//      recipient not on it gets 550 5.1.1 at once, without a callout.
//   3. verify_recipients = "callout": the cache in the Store (keys "rcptv:<domain>:<local>",
//      then, with recipient_delimiter, the key of the local part without its extension),
//      else a callout of the address as given, cached under it (delivery::probe_recipient),
//      to the domain's first reachable downstream, bounded as a whole by verify_timeout,
//      with STARTTLS as the domain's downstream `tls` policy says (the delivery's own).
//      Maildir downstreams accept.
//   4. "off" (default): accepted (after the list, if any).
// - Callout answers: 2xx -> accepted, cached verify_positive_ttl; 5xx -> 550 5.1.1 with the
//   downstream's text (printable ASCII, truncated), cached verify_negative_ttl; anything else
//   (4xx, refused, timeout, MAIL FROM:<> refused) is never cached: 450 4.1.1, or, with
//   verify_tempfail = "accept", accepted with a warning (counted in tempfailed).
// - Callouts are bounded per session (max_callouts_per_session) and per client over all its
//   sessions (max_callouts_per_client per callout_window), each by the recipient domain's
//   keys: past them a recipient the cache cannot answer gets 450 (Source::Limit). Bounds what
//   a dictionary attack costs the downstream (one probe connection per new address).
// - Concurrent callouts for one address share one probe (the others wait for its answer).
// - A Store error is logged, counted and read as a cache miss: it never refuses anyone.
// - Thread-safe; one per daemon, shared by every worker. check() runs on the session's
//   executor; it awaits the network and blocks only for the Store's get/put.
// - Untrusted input: the downstream's reply text (sanitised before it reaches our client).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "digue/config.hpp"
#include "digue/envelope.hpp"
#include "digue/smtp_protocol.hpp"

namespace boost::asio::ssl {
class context;
}

namespace digue {

class Store;

struct VerifyResult {
  enum class Status : uint8_t { Accepted, Rejected, TempFail };
  // Limit: not verified because the session used up its callouts (always 450).
  enum class Source : uint8_t { Off, Postmaster, List, Cache, Callout, Limit };
  Status status = Status::Accepted;
  Source source = Source::Off;
  std::string text;  // the downstream's reply or why verification failed; sanitised
};
const char* to_string(VerifyResult::Status s);
const char* to_string(VerifyResult::Source s);

// The Store's cache of callout answers: key "rcptv:<domain>:<local>" (both lower-case, the
// domain as the config names it), value "1" (accepted) or "0 <reply text>" (refused).
inline constexpr std::string_view kVerifyCachePrefix = "rcptv:";
std::string verify_cache_key(std::string_view domain, std::string_view local);

// The reply to give the client: nullopt to go on (the rcpt-phase filters decide next).
std::optional<smtp::Reply> verify_reply(const RecipientVerification& v, const Address& rcpt,
                                        const VerifyResult& r);
// Printable ASCII only, at most max bytes: the downstream's words in our reply.
std::string sanitize_reply_text(std::string_view text, size_t max = 200);

struct VerifyStats {
  std::atomic<uint64_t> verified{0};    // accepted after a callout or a cached acceptance
  std::atomic<uint64_t> rejected{0};    // refused: not on the list, downstream 5xx, cached
  std::atomic<uint64_t> tempfailed{0};  // callouts without an answer (450 or accepted)
  std::atomic<uint64_t> cache_hits{0};  // answers from the cache
  std::atomic<uint64_t> callouts{0};    // probes sent to a downstream
  std::atomic<uint64_t> store_errors{0};
  std::atomic<uint64_t> limited{0};     // 450 without a callout: the session's callouts used up
  std::atomic<uint64_t> held{0};        // no callout: the domain's downstream is held unreachable
};

class RecipientVerifier {
 public:
  explicit RecipientVerifier(Store* store) : store_(store) {}
  RecipientVerifier(const RecipientVerifier&) = delete;
  RecipientVerifier& operator=(const RecipientVerifier&) = delete;

  // policy is rcpt's domain's in config; both must outlive the call. session: the client
  // session's id, for the log. session_callouts (optional): the session's callouts so far,
  // incremented by each one; at the policy's max_callouts_per_session a recipient the cache
  // cannot answer is a Limit TempFail. client (optional, net::client_key): counted against
  // the policy's max_callouts_per_client per callout_window the same way.
  boost::asio::awaitable<VerifyResult> check(const Config& config, const DomainPolicy& policy,
                                             const Address& rcpt, std::string session,
                                             int* session_callouts = nullptr,
                                             std::string client = {});
  const VerifyStats& stats() const { return stats_; }

 private:
  struct InFlight;
  boost::asio::awaitable<VerifyResult> callout(const Config& config, const DomainPolicy& policy,
                                               const Address& rcpt);
  boost::asio::awaitable<VerifyResult> shared_callout(const Config& config,
                                                      const DomainPolicy& policy,
                                                      const Address& rcpt,
                                                      const std::string& key);
  // The TLS client context for a callout (made once: loading the system CAs is not free).
  std::shared_ptr<boost::asio::ssl::context> tls_context(bool verify);
  std::optional<VerifyResult> cached(const std::string& key);
  void remember(const std::string& key, const RecipientVerification& v, const VerifyResult& r);

  Store* store_;
  VerifyStats stats_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<InFlight>> in_flight_;  // key -> the probe running
  // Downstream list -> until when it is held unreachable: after a callout that reached no
  // downstream (refused, timed out) it is not asked again before then, so that a dead
  // downstream does not make every RCPT wait out verify_timeout (under mu_).
  std::map<std::string, std::chrono::steady_clock::time_point> dead_until_;
  // Client key -> callouts in its current window, when that window began and how long it
  // lasts: the longest callout_window of the domains it was counted for, so that a domain
  // with a short window cannot renew the allowance that a longer window still bounds (under
  // mu_; expired windows are swept when the map grows past 10,000 clients).
  struct ClientWindow {
    int callouts = 0;
    std::chrono::steady_clock::time_point began;
    std::chrono::seconds span{0};
  };
  std::map<std::string, ClientWindow> per_client_;
  bool take_client_callout(const std::string& client, const RecipientVerification& v);
  std::shared_ptr<boost::asio::ssl::context> plain_tls_, verify_tls_;  // under mu_
};

}  // namespace digue
