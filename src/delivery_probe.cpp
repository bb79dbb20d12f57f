// Recipient verification probes over the delivery client; see probe_recipient in
// include/digue/delivery.hpp.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "digue/delivery.hpp"
#include "digue/resolver.hpp"
#include "src/delivery_client.hpp"

// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frames.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace digue::delivery {

namespace asio = boost::asio;

namespace detail {

asio::awaitable<RcptResult> Connection::probe(const Address& rcpt) {
  cur_ex_ = co_await asio::this_coro::executor;
  const auto& to = opts_.timeouts;
  // The null sender; SMTPUTF8 when the address needs it (local part or domain) and the
  // downstream offers it. Without it a UTF-8 domain is asked in its A-label form (RFC 6531's
  // downgrade of the domain, which is the same domain), and a UTF-8 local part cannot be
  // asked at all (a delivery to it would fail the same way).
  auto utf8 = [](const std::string& s) {
    return std::any_of(s.begin(), s.end(),
                       [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
  };
  Address asked = rcpt;
  Job job;
  job.smtputf8 = utf8(rcpt.local) || utf8(rcpt.domain);
  if (job.smtputf8 && !caps_.smtputf8) {
    // As a delivery to it would end (a bounce): refused at RCPT. The text reaches the client:
    // it does not name our downstream.
    if (utf8(rcpt.local))
      co_return RcptResult{RcptResult::Status::PermFail, 553, "5.6.7",
                           "the mailbox server does not support SMTPUTF8, needed by this address"};
    asked.domain = dns::a_labels(rcpt.domain);
    job.smtputf8 = false;
  }
  Capabilities caps = caps_;
  caps.has_size = false;
  auto mail = co_await command(mail_command(job, caps, 0), to.command, "MAIL FROM");
  if (!mail) co_return local_temp_fail("4.4.2", error_);
  if (mail->code / 100 != 2)
    co_return local_temp_fail("4.4.0", "MAIL FROM:<> refused by " + peer_ + ": " + mail->str());
  auto r = co_await command(rcpt_command(asked, "", ""), to.command, "RCPT TO");
  if (!r) co_return local_temp_fail("4.4.2", error_);
  co_return result_of(*r);
}

}  // namespace detail

asio::awaitable<RcptResult> probe_recipient(std::vector<Target> targets, Address rcpt,
                                            Options options) {
  auto ex = co_await asio::this_coro::executor;
  std::string why = "no downstream to ask";
  for (const auto& target : targets) {
    if (target.kind == Target::Kind::Maildir)
      co_return RcptResult{RcptResult::Status::Delivered, 250, "2.1.5", "local mailbox"};
    Options o = with_tls_policy(options, target.tls);
    auto ctx = o.tls_context;
    if (o.starttls && !ctx) ctx = make_client_tls_context(o.tls_verify);
    auto conn = std::make_shared<detail::Connection>(ex, target, o, ctx);
    std::string err = co_await conn->open(o.starttls);
    if (!err.empty() && conn->tls_handshake_failed() && !o.tls_required) {
      conn->close();
      conn = std::make_shared<detail::Connection>(ex, target, o, ctx);
      err = co_await conn->open(false);
    }
    if (!err.empty()) {
      why = err;
      conn->close();
      continue;
    }
    RcptResult result = co_await conn->probe(rcpt);
    // QUIT without making the client wait for its reply.
    asio::co_spawn(ex, [conn]() -> asio::awaitable<void> { co_await conn->quit(); },
                   asio::detached);
    co_return result;
  }
  co_return detail::local_temp_fail("4.4.1", why);
}

}  // namespace digue::delivery
