// One SMTP or LMTP client connection: connect, greeting, EHLO/LHLO, STARTTLS, transactions,
// RSET, QUIT. Every read and write has a deadline; on any I/O error, timeout or protocol
// error the connection is marked broken and must be closed. Private to src/delivery_*.cpp.
// Threading: one coroutine uses a Connection at a time, on a single-threaded executor or a
// strand (the deadline timer runs on the coroutine's executor).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "digue/delivery.hpp"
#include "src/delivery_protocol.hpp"

namespace digue::delivery::detail {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(boost::asio::any_io_executor ex, Target target, const Options& opts,
             std::shared_ptr<boost::asio::ssl::context> tls);

  // Connects and says hello (STARTTLS included). "" on success, else why it failed.
  // use_tls=false skips STARTTLS (the retry after a failed handshake).
  boost::asio::awaitable<std::string> open(bool use_tls);
  // True when open() failed in the TLS handshake and a plain-text retry is allowed.
  bool tls_handshake_failed() const { return tls_handshake_failed_; }

  // One transaction; one result per rcpt of the job. Never throws for network errors.
  boost::asio::awaitable<std::vector<RcptResult>> transaction(const Job& job);
  // Recipient verification: MAIL FROM:<> and RCPT TO:<rcpt>, never DATA (src/delivery_probe.cpp).
  // The reply to RCPT; TempFail when MAIL was refused or the connection failed.
  boost::asio::awaitable<RcptResult> probe(const Address& rcpt);
  // RSET before reuse; false when the connection is dead (it is then broken).
  boost::asio::awaitable<bool> reset();
  // QUIT (waiting briefly for the reply) and close.
  boost::asio::awaitable<void> quit();
  void close();

  bool broken() const { return broken_; }
  std::size_t messages() const { return messages_; }
  const std::string& tls_version() const { return tls_version_; }
  const std::string& peer() const { return peer_; }

 private:
  using Clock = std::chrono::steady_clock;
  boost::asio::awaitable<std::optional<Reply>> read_reply(std::chrono::milliseconds timeout,
                                                          const char* what);
  boost::asio::awaitable<bool> write(std::string_view data, std::chrono::milliseconds timeout,
                                     const char* what);
  boost::asio::awaitable<std::optional<Reply>> command(std::string line,
                                                       std::chrono::milliseconds timeout,
                                                       const char* what);
  boost::asio::awaitable<std::string> hello();
  boost::asio::awaitable<bool> starttls();
  void arm(std::chrono::milliseconds timeout);  // deadline for the next I/O operation
  void disarm();
  void fail(std::string why);
  bool lmtp() const { return target_.kind == Target::Kind::Lmtp; }

  boost::asio::any_io_executor cur_ex_;  // the executor of the coroutine using us now
  Target target_;
  Options opts_;  // a copy: a pooled connection may outlive its Deliverer's QUIT
  std::shared_ptr<boost::asio::ssl::context> tls_ctx_;
  boost::asio::ip::tcp::socket sock_;
  std::optional<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> tls_;
  std::shared_ptr<boost::asio::steady_timer> deadline_;
  uint64_t generation_ = 0;  // invalidates a deadline that fires after its operation ended
  bool timed_out_ = false;
  ReplyParser parser_;
  Capabilities caps_;
  bool broken_ = false;
  bool tls_handshake_failed_ = false;
  std::string error_;  // why the connection broke
  std::string peer_;   // "host[ip]:port" for messages
  std::string tls_version_;
  std::size_t messages_ = 0;
};

}  // namespace digue::delivery::detail
