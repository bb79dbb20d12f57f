// Recipient verification at RCPT time; see include/digue/rcpt_verify.hpp.
#include "digue/rcpt_verify.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <vector>

#include "digue/delivery.hpp"
#include "digue/recipient_list.hpp"
#include "digue/store.hpp"
#include "digue/text.hpp"

// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frames.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace digue {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {

using Channel = asio::experimental::concurrent_channel<void(boost::system::error_code)>;
// Longer cache keys are not cached (LMDB refuses keys over 511 bytes): only local parts far
// beyond RFC 5321's 64 octets get there, and they are not worth a warning per RCPT.
constexpr size_t kMaxKey = 400;
using Status = VerifyResult::Status;
using Source = VerifyResult::Source;

VerifyResult result(Status status, Source source, std::string text = {}) {
  VerifyResult r;
  r.status = status;
  r.source = source;
  r.text = std::move(text);
  return r;
}

}  // namespace

// One callout in progress; the sessions asking for the same address meanwhile wait on it.
struct RecipientVerifier::InFlight {
  std::optional<VerifyResult> result;             // under mu_
  std::vector<std::shared_ptr<Channel>> waiters;  // under mu_
};

const char* to_string(VerifyResult::Status s) {
  switch (s) {
    case Status::Accepted: return "accepted";
    case Status::Rejected: return "rejected";
    case Status::TempFail: return "tempfail";
  }
  return "?";
}

const char* to_string(VerifyResult::Source s) {
  switch (s) {
    case Source::Off: return "off";
    case Source::Postmaster: return "postmaster";
    case Source::List: return "list";
    case Source::Cache: return "cache";
    case Source::Callout: return "callout";
    case Source::Limit: return "limit";
  }
  return "?";
}

std::string sanitize_reply_text(std::string_view text, size_t max) {
  std::string out;
  for (char c : text) {
    if (out.size() >= max) break;
    unsigned char u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? c : '?';
  }
  return out;
}

std::optional<smtp::Reply> verify_reply(const RecipientVerification& v, const Address& rcpt,
                                        const VerifyResult& r) {
  std::string who = sanitize_reply_text("<" + rcpt.str() + ">: ", 300);
  switch (r.status) {
    case Status::Accepted: return std::nullopt;
    case Status::Rejected:
      return smtp::Reply(550, "5.1.1", who + "Recipient address rejected: " +
                                           (r.text.empty() ? "User unknown" : r.text));
    case Status::TempFail:
      if (r.source == Source::Limit)  // never accepted unverified: that is the point
        return smtp::Reply(450, "4.7.1",
                           who + "Too many recipients to verify in one session, try again later");
      // Why it failed names our downstream: it goes to the log, not to the client.
      if (v.tempfail_accept) return std::nullopt;
      return smtp::Reply(450, "4.1.1",
                         who + "Recipient address rejected: unverified address, try again later");
  }
  return std::nullopt;
}

std::string verify_cache_key(std::string_view domain, std::string_view local) {
  return std::string(kVerifyCachePrefix) + text::lower(domain) + ":" + text::lower(local);
}

std::optional<VerifyResult> RecipientVerifier::cached(const std::string& key) {
  if (!store_ || key.size() > kMaxKey) return std::nullopt;
  std::optional<std::string> v;
  try {
    v = store_->get(key);
  } catch (const StoreError& e) {
    stats_.store_errors++;
    spdlog::warn("rcpt-verify cache read failed key={}: {}", key, e.what());
    return std::nullopt;
  }
  if (!v || v->empty()) return std::nullopt;
  if ((*v)[0] == '1') return result(Status::Accepted, Source::Cache);
  return result(Status::Rejected, Source::Cache, v->size() > 2 ? v->substr(2) : std::string());
}

void RecipientVerifier::remember(const std::string& key, const RecipientVerification& v,
                                 const VerifyResult& r) {
  if (!store_ || key.size() > kMaxKey || r.status == Status::TempFail) return;
  bool ok = r.status == Status::Accepted;
  try {
    store_->put(key, ok ? std::string("1") : "0 " + r.text, ok ? v.positive_ttl : v.negative_ttl);
  } catch (const StoreError& e) {
    stats_.store_errors++;
    spdlog::warn("rcpt-verify cache write failed key={}: {}", key, e.what());
  }
}

std::shared_ptr<asio::ssl::context> RecipientVerifier::tls_context(bool verify) {
  std::lock_guard lock(mu_);
  auto& ctx = verify ? verify_tls_ : plain_tls_;
  if (!ctx) ctx = delivery::make_client_tls_context(verify);
  return ctx;
}

asio::awaitable<VerifyResult> RecipientVerifier::callout(const Config& config,
                                                         const DomainPolicy& policy,
                                                         const Address& rcpt) {
  const RecipientVerification& v = policy.verify;
  // The delivery's TLS policy: the domain's own `tls`, else [delivery] tls.
  auto tls = delivery::parse_tls_policy(policy.tls.empty() ? config.delivery.tls : policy.tls)
                 .value_or(delivery::TlsPolicy::May);
  std::vector<delivery::Target> targets;
  for (const auto& ds : policy.downstream) {
    if (auto t = delivery::Target::parse(ds, "maildir")) {
      t->tls = tls;
      targets.push_back(*t);
    }
  }
  // Held per downstream list: domains that share a dead downstream share its hold, and a
  // reload that changes the list asks the new one at once.
  std::string dest;
  for (const auto& ds : policy.downstream) dest += ds + " ";
  {
    std::lock_guard lock(mu_);
    auto it = dead_until_.find(dest);
    if (it != dead_until_.end() && std::chrono::steady_clock::now() < it->second) {
      stats_.held++;
      co_return result(Status::TempFail, Source::Callout,
                       "downstream unreachable (held after a failed callout)");
    }
  }
  delivery::Options o;
  o.hostname = config.server.hostname;
  o.tls_context = tls_context(tls == delivery::TlsPolicy::Verify);
  o.timeouts.connect = o.timeouts.greeting = o.timeouts.command = v.timeout;
  o.timeouts.rset = o.timeouts.quit = v.timeout;
  stats_.callouts++;
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex, v.timeout);
  auto probe = delivery::probe_recipient(std::move(targets), rcpt, std::move(o));
  auto done = co_await (std::move(probe) || timer.async_wait(kTuple));
  // No downstream reached (every target refused or timed out, "4.4.1") or no answer in time:
  // held like the queue's dead destination, min(retry_min, 60 s). Any answer lifts the hold.
  bool unreachable = done.index() == 1 || (std::get<0>(done).status ==
                                               delivery::RcptResult::Status::TempFail &&
                                           std::get<0>(done).enhanced == "4.4.1");
  {
    std::lock_guard lock(mu_);
    if (unreachable)
      dead_until_[dest] =
          std::chrono::steady_clock::now() + std::min<std::chrono::steady_clock::duration>(config.delivery.retry_min,
                                                              std::chrono::seconds(60));
    else
      dead_until_.erase(dest);
  }
  if (done.index() == 1)
    co_return result(Status::TempFail, Source::Callout,
                     "no answer within " + std::to_string(v.timeout.count()) + "s");
  const delivery::RcptResult& rr = std::get<0>(done);
  std::string text = sanitize_reply_text(rr.text);
  switch (rr.status) {
    case delivery::RcptResult::Status::Delivered:
      co_return result(Status::Accepted, Source::Callout, text);
    case delivery::RcptResult::Status::PermFail:
      co_return result(Status::Rejected, Source::Callout, text);
    case delivery::RcptResult::Status::TempFail: break;
  }
  co_return result(Status::TempFail, Source::Callout, std::to_string(rr.code) + " " + text);
}

asio::awaitable<VerifyResult> RecipientVerifier::shared_callout(const Config& config,
                                                                const DomainPolicy& policy,
                                                                const Address& rcpt,
                                                                const std::string& key) {
  auto ex = co_await asio::this_coro::executor;
  std::shared_ptr<InFlight> flight;
  std::shared_ptr<Channel> wake;
  {
    std::lock_guard lock(mu_);
    auto& slot = in_flight_[key];
    if (!slot) {
      slot = std::make_shared<InFlight>();
    } else {
      wake = std::make_shared<Channel>(ex, 1);
      slot->waiters.push_back(wake);
    }
    flight = slot;
  }
  if (wake) {
    // The leader's callout is bounded by the same timeout; a second more covers its wake-up.
    asio::steady_timer timer(ex, policy.verify.timeout + std::chrono::seconds(1));
    co_await (wake->async_receive(kTuple) || timer.async_wait(kTuple));
    std::lock_guard lock(mu_);
    if (flight->result) co_return *flight->result;
    co_return result(Status::TempFail, Source::Callout, "the shared callout did not finish");
  }
  // Whatever ends the leader publishes its result and frees the slot. Only an answered
  // callout wakes the waiters: when the leader's frame is destroyed at shutdown (or unwinds),
  // a waiter may sit on another worker whose io_context is already gone, so waking it would
  // post to freed memory; waiters then end by their own timer (timeout + 1 s).
  VerifyResult r = result(Status::TempFail, Source::Callout, "callout abandoned");
  struct Finish {
    RecipientVerifier& self;
    const std::string& key;
    std::shared_ptr<InFlight>& flight;
    VerifyResult& r;
    bool answered = false;
    ~Finish() {
      std::lock_guard lock(self.mu_);
      flight->result = r;
      auto it = self.in_flight_.find(key);
      if (it != self.in_flight_.end() && it->second == flight) self.in_flight_.erase(it);
      if (answered)
        for (auto& w : flight->waiters) w->try_send(boost::system::error_code{});
      flight->waiters.clear();
    }
  } finish{*this, key, flight, r};
  r = co_await callout(config, policy, rcpt);
  finish.answered = true;
  remember(key, policy.verify, r);
  co_return VerifyResult(r);  // a copy: `co_return r` would move r out before finish reads it
}

// One window per client over all domains; the recipient's domain sets the limit, and the
// window lasts the longest callout_window of the domains it counted for (a domain with a
// short window must not renew what another domain's longer window still bounds).
bool RecipientVerifier::take_client_callout(const std::string& client,
                                            const RecipientVerification& v) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  if (per_client_.size() > 10000)
    std::erase_if(per_client_, [&](const auto& e) { return now - e.second.began >= e.second.span; });
  auto& w = per_client_[client];
  if (w.callouts == 0 || now - w.began >= w.span)
    w = {0, now, v.callout_window};
  else
    w.span = std::max(w.span, v.callout_window);
  if (w.callouts >= v.max_callouts_per_client) return false;
  ++w.callouts;
  return true;
}

asio::awaitable<VerifyResult> RecipientVerifier::check(const Config& config,
                                                       const DomainPolicy& policy,
                                                       const Address& rcpt,
                                                       std::string session,
                                                       int* session_callouts,
                                                       std::string client) {
  const RecipientVerification& v = policy.verify;
  // postmaster (RFC 5321 §4.5.1), also as postmaster+tag when the domain has a delimiter.
  auto base = strip_extension(rcpt.local, v.delimiter);
  if (text::lower(rcpt.local) == "postmaster" || (base && text::lower(*base) == "postmaster"))
    co_return result(Status::Accepted, Source::Postmaster);
  VerifyResult r;
  if (v.list && !v.list->contains(rcpt, v.delimiter)) {
    r = result(Status::Rejected, Source::List, "User unknown in recipient list");
  } else if (v.mode == RecipientVerification::Mode::Off) {
    if (!v.list) co_return result(Status::Accepted, Source::Off);
    r = result(Status::Accepted, Source::List);
  } else {
    const std::string key = verify_cache_key(policy.name, rcpt.local);
    // Postfix's order: the address as given, then without its extension ("user" answers for
    // "user+tag"). Only a known "user" answers for it: a refused "user" says nothing of a
    // mailbox "user-eu" (with "-" or "." as delimiter, a real one). The callout probes the
    // address as given (the downstream knows its own delimiter) and is cached under that.
    auto hit = cached(key);
    if (!hit)
      if (base)
        if (auto b = cached(verify_cache_key(policy.name, *base)); b && b->status == Status::Accepted)
          hit = std::move(b);
    if (hit) {
      stats_.cache_hits++;
      r = std::move(*hit);
    } else if (session_callouts && *session_callouts >= v.max_callouts_per_session) {
      stats_.limited++;
      r = result(Status::TempFail, Source::Limit, "callouts for this session used up");
    } else if (!client.empty() && !take_client_callout(client, v)) {
      stats_.limited++;
      r = result(Status::TempFail, Source::Limit, "callouts for this client used up");
    } else {
      if (session_callouts) ++*session_callouts;
      r = co_await shared_callout(config, policy, rcpt, key);
    }
  }
  switch (r.status) {
    case Status::Accepted: stats_.verified++; break;
    case Status::Rejected: stats_.rejected++; break;
    case Status::TempFail: stats_.tempfailed++; break;
  }
  if (r.status == Status::TempFail) {
    spdlog::warn("session={} rcpt-verify to=<{}> result=tempfail action={} reason=\"{}\"", session,
                 rcpt.str(), v.tempfail_accept ? "accept" : "defer", r.text);
  } else if (r.status == Status::Rejected || r.source == Source::Callout) {
    spdlog::info("session={} rcpt-verify to=<{}> result={} source={} reply=\"{}\"", session,
                 rcpt.str(), to_string(r.status), to_string(r.source), r.text);
  } else {
    spdlog::debug("session={} rcpt-verify to=<{}> result={} source={}", session, rcpt.str(),
                  to_string(r.status), to_string(r.source));
  }
  co_return r;
}

}  // namespace digue
