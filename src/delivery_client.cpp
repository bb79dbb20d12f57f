// SMTP/LMTP client connection; see src/delivery_client.hpp.
#include "src/delivery_client.hpp"

#include <openssl/ssl.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "digue/net.hpp"

// GCC 12 reports a false -Wmismatched-new-delete on Asio's coroutine frames.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace digue::delivery::detail {

namespace asio = boost::asio;
using asio::ip::tcp;
using std::chrono::milliseconds;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {

std::string seconds_text(milliseconds d) {
  auto ms = d.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace

Connection::Connection(asio::any_io_executor ex, Target target, const Options& opts,
                       std::shared_ptr<asio::ssl::context> tls)
    : cur_ex_(ex),
      target_(std::move(target)),
      opts_(opts),
      tls_ctx_(std::move(tls)),
      sock_(ex),
      peer_(target_.host + ":" + std::to_string(target_.port)) {}

void Connection::arm(milliseconds timeout) {
  ++generation_;
  timed_out_ = false;
  deadline_ = std::make_shared<asio::steady_timer>(cur_ex_, timeout);
  deadline_->async_wait([weak = weak_from_this(), gen = generation_](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || self->generation_ != gen) return;
    self->timed_out_ = true;
    boost::system::error_code ignored;
    self->sock_.cancel(ignored);  // aborts the pending read/write, TLS included
  });
}

void Connection::disarm() {
  ++generation_;
  if (deadline_) deadline_->cancel();
  deadline_.reset();
}

void Connection::fail(std::string why) {
  if (!broken_) error_ = std::move(why);
  broken_ = true;
}

asio::awaitable<bool> Connection::write(std::string_view data, milliseconds timeout,
                                        const char* what) {
  if (broken_) co_return false;
  arm(timeout);
  boost::system::error_code ec;
  if (tls_) {
    std::tie(ec, std::ignore) = co_await asio::async_write(*tls_, asio::buffer(data), kTuple);
  } else {
    std::tie(ec, std::ignore) = co_await asio::async_write(sock_, asio::buffer(data), kTuple);
  }
  disarm();
  if (timed_out_) {
    fail("timeout after " + seconds_text(timeout) + " sending " + what + " to " + peer_);
  } else if (ec) {
    fail("lost connection with " + peer_ + " while sending " + what + ": " + ec.message());
  }
  co_return !broken_;
}

asio::awaitable<std::optional<Reply>> Connection::read_reply(milliseconds timeout,
                                                             const char* what) {
  if (broken_) co_return std::nullopt;
  char buf[4096];
  arm(timeout);
  while (true) {
    if (auto r = parser_.next()) {
      disarm();
      co_return r;
    }
    boost::system::error_code ec;
    std::size_t n = 0;
    if (tls_) {
      std::tie(ec, n) = co_await tls_->async_read_some(asio::buffer(buf), kTuple);
    } else {
      std::tie(ec, n) = co_await sock_.async_read_some(asio::buffer(buf), kTuple);
    }
    if (timed_out_) {
      disarm();
      fail("timeout after " + seconds_text(timeout) + " waiting for the reply to " + what +
           " from " + peer_);
      co_return std::nullopt;
    }
    if (ec) {
      disarm();
      fail("lost connection with " + peer_ + " while waiting for the reply to " + what + ": " +
           ec.message());
      co_return std::nullopt;
    }
    if (!parser_.feed(std::string_view(buf, n))) {
      disarm();
      fail("protocol error from " + peer_ + " after " + what + ": " + parser_.error());
      co_return std::nullopt;
    }
  }
}

asio::awaitable<std::optional<Reply>> Connection::command(std::string line, milliseconds timeout,
                                                          const char* what) {
  bool written = co_await write(line, timeout, what);
  if (!written) co_return std::nullopt;
  auto reply = co_await read_reply(timeout, what);
  co_return reply;
}

asio::awaitable<std::string> Connection::open(bool use_tls) {
  cur_ex_ = co_await asio::this_coro::executor;
  const auto& to = opts_.timeouts;
  tcp::resolver resolver(cur_ex_);
  std::vector<tcp::endpoint> endpoints;
  if (auto ip = net::Ip::parse(target_.host)) {
    endpoints.emplace_back(asio::ip::make_address(ip->str()), target_.port);
  } else {
    asio::steady_timer timer(cur_ex_, to.connect);
    timer.async_wait([&resolver](boost::system::error_code ec) {
      if (!ec) resolver.cancel();
    });
    auto [ec, results] =
        co_await resolver.async_resolve(target_.host, std::to_string(target_.port), kTuple);
    timer.cancel();
    if (ec) co_return "cannot resolve " + target_.host + ": " + ec.message();
    for (const auto& e : results) endpoints.push_back(e.endpoint());
  }
  std::string last_error = "no address";
  bool connected = false;
  for (const auto& ep : endpoints) {
    boost::system::error_code ignored;
    sock_.close(ignored);
    arm(to.connect);
    auto [ec] = co_await sock_.async_connect(ep, kTuple);
    disarm();
    if (!ec && !timed_out_) {
      connected = true;
      peer_ = target_.host + "[" + ep.address().to_string() + "]:" + std::to_string(ep.port());
      break;
    }
    last_error = timed_out_ ? "timeout after " + seconds_text(to.connect) : ec.message();
  }
  if (!connected) {
    broken_ = true;
    co_return "connect to " + peer_ + ": " + last_error;
  }
  boost::system::error_code ignored;
  sock_.set_option(tcp::no_delay(true), ignored);

  auto greeting = co_await read_reply(to.greeting, "the greeting");
  if (!greeting) co_return error_;
  if (greeting->code / 100 != 2) {
    fail(peer_ + " refused to talk to us: " + greeting->str());
    co_return error_;
  }
  auto err = co_await hello();
  if (!err.empty()) co_return err;
  if (use_tls && opts_.starttls && caps_.starttls && tls_ctx_) {
    if (!co_await starttls()) co_return error_;
    err = co_await hello();
    if (!err.empty()) co_return err;
  } else if (opts_.tls_required && !tls_) {
    fail(peer_ + " does not offer STARTTLS and TLS is required");
    co_return error_;
  }
  co_return std::string();
}

asio::awaitable<std::string> Connection::hello() {
  const auto& to = opts_.timeouts;
  std::string verb = lmtp() ? "LHLO " : "EHLO ";
  auto r = co_await command(verb + opts_.hostname + "\r\n", to.command, lmtp() ? "LHLO" : "EHLO");
  if (!r) co_return error_;
  if (r->code / 100 == 2) {
    caps_ = Capabilities::from_ehlo(*r);
    co_return std::string();
  }
  if (!lmtp() && r->code / 100 == 5) {  // an RFC 821 server: no extensions at all
    r = co_await command("HELO " + opts_.hostname + "\r\n", to.command, "HELO");
    if (!r) co_return error_;
    if (r->code / 100 == 2) {
      caps_ = Capabilities{};
      co_return std::string();
    }
  }
  fail(peer_ + " rejected our " + (lmtp() ? "LHLO" : "EHLO/HELO") + ": " + r->str());
  co_return error_;
}

asio::awaitable<bool> Connection::starttls() {
  const auto& to = opts_.timeouts;
  auto r = co_await command("STARTTLS\r\n", to.command, "STARTTLS");
  if (!r) co_return false;
  if (r->code != 220) {
    if (opts_.tls_required) {
      fail(peer_ + " refused STARTTLS: " + r->str());
      co_return false;
    }
    co_return true;  // opportunistic: carry on in plain text on the same connection
  }
  if (parser_.has_partial()) {  // bytes after 220 would be injected into the TLS session
    fail("protocol error from " + peer_ + ": data after the STARTTLS reply");
    co_return false;
  }
  tls_.emplace(sock_, *tls_ctx_);
  bool is_ip = net::Ip::parse(target_.host).has_value();
  if (!is_ip) SSL_set_tlsext_host_name(tls_->native_handle(), target_.host.c_str());
  if (opts_.tls_verify) {
    tls_->set_verify_mode(asio::ssl::verify_peer);
    tls_->set_verify_callback(asio::ssl::host_name_verification(target_.host));
  } else {
    tls_->set_verify_mode(asio::ssl::verify_none);
  }
  arm(to.command);
  auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::client, kTuple);
  disarm();
  if (timed_out_ || ec) {
    tls_handshake_failed_ = true;
    fail("TLS handshake with " + peer_ +
         " failed: " + (timed_out_ ? "timeout after " + seconds_text(to.command) : ec.message()));
    co_return false;
  }
  tls_version_ = SSL_get_version(tls_->native_handle());
  co_return true;
}

asio::awaitable<bool> Connection::reset() {
  cur_ex_ = co_await asio::this_coro::executor;
  auto r = co_await command("RSET\r\n", opts_.timeouts.rset, "RSET");
  if (r && r->code / 100 != 2) fail(peer_ + " rejected RSET: " + r->str());
  co_return !broken_;
}

asio::awaitable<void> Connection::quit() {
  cur_ex_ = co_await asio::this_coro::executor;
  if (!broken_) co_await command("QUIT\r\n", opts_.timeouts.quit, "QUIT");
  close();
}

void Connection::close() {
  broken_ = true;
  disarm();
  boost::system::error_code ignored;
  sock_.shutdown(tcp::socket::shutdown_both, ignored);
  sock_.close(ignored);
}

asio::awaitable<std::vector<RcptResult>> Connection::transaction(const Job& job) {
  cur_ex_ = co_await asio::this_coro::executor;
  const auto& to = opts_.timeouts;
  const std::size_t n = job.rcpts.size();
  std::vector<std::optional<RcptResult>> res(n);
  auto finish = [&](const RcptResult& rest) {
    std::vector<RcptResult> out;
    out.reserve(n);
    for (auto& r : res) out.push_back(r ? std::move(*r) : rest);
    return out;
  };
  auto all = [&](RcptResult r) { return std::vector<RcptResult>(n, r); };

  static const std::string kNoData;
  const std::string& data = job.data ? *job.data : kNoData;
  if (caps_.has_size && caps_.size_limit && data.size() > caps_.size_limit) {
    co_return all({RcptResult::Status::PermFail, 552, "5.3.4",
                   "message size " + std::to_string(data.size()) + " exceeds the limit of " +
                       peer_ + " (" + std::to_string(caps_.size_limit) + ")"});
  }
  if (job.smtputf8 && !caps_.smtputf8) {
    co_return all({RcptResult::Status::PermFail, 554, "5.6.7",
                   peer_ + " does not support SMTPUTF8, needed by this message"});
  }
  std::string stuffed = dot_stuff(data);
  stuffed += ".\r\n";
  std::string mail = mail_command(job, caps_, data.size());
  std::vector<std::string> rcpts;
  for (const auto& a : job.rcpts)
    rcpts.push_back(rcpt_command(a, job.folder, lmtp() ? opts_.lmtp_folder_delimiter : ""));
  auto lost = [&] { return local_temp_fail("4.4.2", error_); };

  std::optional<Reply> mail_reply, data_reply;
  std::vector<std::size_t> accepted;
  if (caps_.pipelining) {
    // RFC 2920: MAIL, every RCPT and DATA in one write, then the replies in order.
    std::string batch = mail;
    for (const auto& r : rcpts) batch += r;
    batch += "DATA\r\n";
    if (!co_await write(batch, to.command, "MAIL FROM")) co_return finish(lost());
    mail_reply = co_await read_reply(to.command, "MAIL FROM");
    if (!mail_reply) co_return finish(lost());
    for (std::size_t i = 0; i < n; ++i) {
      auto r = co_await read_reply(to.command, "RCPT TO");
      if (!r) co_return finish(lost());
      if (mail_reply->code / 100 != 2) continue;
      if (r->code / 100 == 2)
        accepted.push_back(i);
      else
        res[i] = result_of(*r);
    }
    data_reply = co_await read_reply(to.data_init, "DATA");
    if (!data_reply) co_return finish(lost());
    if (data_reply->code == 354 && (mail_reply->code / 100 != 2 || accepted.empty())) {
      // The server took DATA although nothing was accepted: end it with an empty message.
      auto r = co_await command(".\r\n", to.data_term, "end of data");
      if (!r) co_return finish(lost());
    }
  } else {
    mail_reply = co_await command(mail, to.command, "MAIL FROM");
    if (!mail_reply) co_return finish(lost());
    if (mail_reply->code / 100 == 2) {
      for (std::size_t i = 0; i < n; ++i) {
        auto r = co_await command(rcpts[i], to.command, "RCPT TO");
        if (!r) co_return finish(lost());
        if (r->code / 100 == 2)
          accepted.push_back(i);
        else
          res[i] = result_of(*r);
      }
      if (!accepted.empty()) {
        if (!co_await write("DATA\r\n", to.data_init, "DATA")) co_return finish(lost());
        data_reply = co_await read_reply(to.data_init, "DATA");
        if (!data_reply) co_return finish(lost());
      }
    }
  }
  if (mail_reply->code / 100 != 2) {
    auto r = result_of(*mail_reply);
    r.text = "MAIL FROM rejected by " + peer_ + ": " + r.text;
    co_return all(r);
  }
  if (accepted.empty()) co_return finish(RcptResult{});
  if (data_reply->code != 354) {
    auto r = result_of(*data_reply);
    if (r.status == RcptResult::Status::Delivered) r.status = RcptResult::Status::TempFail;
    r.text = "DATA rejected by " + peer_ + ": " + r.text;
    co_return finish(r);
  }
  constexpr std::size_t kChunk = 64 * 1024;
  for (std::size_t off = 0; off < stuffed.size(); off += kChunk) {
    std::string_view chunk(stuffed.data() + off, std::min(kChunk, stuffed.size() - off));
    if (!co_await write(chunk, to.data_block, "message content")) co_return finish(lost());
  }
  ++messages_;
  // SMTP: one reply for all accepted recipients. LMTP: one per accepted recipient, in order.
  std::size_t replies = lmtp() ? accepted.size() : 1;
  for (std::size_t k = 0; k < replies; ++k) {
    auto r = co_await read_reply(to.data_term, "end of data");
    if (!r) co_return finish(lost());
    auto result = result_of(*r);
    if (result.status == RcptResult::Status::Delivered) result.text = peer_ + " said: " + r->str();
    if (lmtp()) {
      res[accepted[k]] = result;
    } else {
      for (auto i : accepted) res[i] = result;
    }
  }
  co_return finish(RcptResult{});
}

}  // namespace digue::delivery::detail
