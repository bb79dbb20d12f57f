// Delivery: hands an accepted, spooled message to its next hop: a downstream SMTP server, an
// LMTP server, or a local Maildir.
//
// Contract:
// - deliver() returns exactly one RcptResult per recipient of the Job, in the Job's order.
//   It never throws for anything the network or the disk does: connection failures, timeouts,
//   TLS failures and disk errors become TempFail results whose text says why (recipients
//   the next hop already answered keep that answer). Only replies from the next hop (5xx) or
//   checks that can never succeed (message larger than the server's SIZE, SMTPUTF8 not
//   offered) give PermFail. The caller (the queue manager) decides on retries and on DSNs
//   (make_dsn); this layer never retries a transaction after DATA.
// - SMTP (RFC 5321): EHLO (HELO fallback), opportunistic STARTTLS (TLS >= 1.2, no peer
//   verification unless Options::tls_verify; a failed handshake is retried once in plain text
//   unless Options::tls_required), SIZE / 8BITMIME / SMTPUTF8 parameters when offered,
//   PIPELINING of MAIL+RCPT...+DATA when offered, dot-stuffing, a timeout on every command.
//   LMTP (RFC 2033): LHLO, one reply per accepted recipient after the final dot.
// - Connections are pooled per Target::key(): at most Options::max_connections per
//   destination (further deliveries wait in FIFO order, without polling, up to
//   Options::queue_wait); an idle connection is kept Options::idle_timeout, re-checked with
//   RSET before reuse (a dead one is replaced transparently), and closed with QUIT.
// - A destination whose connection attempt failed (refused, timed out, TLS required and not
//   given) is held unreachable for Options::dead_hold: deliveries to it during that time,
//   and those already waiting for one of its slots, TempFail at once ("4.4.1 ... held
//   unreachable") instead of each waiting out connect_timeout or queue_wait, so one dead
//   downstream does not occupy the queue's delivery slots (Postfix's dead destination).
//   The first attempt after the hold probes it again.
// - Maildir: one Maildir++ per recipient at <path>/<domain>/<local>/ (folder "Junk" ->
//   <...>/.Junk/). The file is written in tmp/, fsync'ed, renamed into new/ and the directory
//   fsync'ed before Delivered is reported. Line ends are stored as LF (Maildir convention);
//   Return-Path and Delivered-To are prepended. The blocking work runs on
//   Options::blocking_executor when one is given, else inline.
// - Deliverer is thread-safe; one per daemon. Each deliver() must be awaited on a
//   single-threaded executor or a strand. Call close_idle() before shutdown to QUIT politely.
// - Untrusted input: the next hop's replies (line length and reply size are bounded).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "digue/envelope.hpp"

namespace boost::asio::ssl {
class context;
}

namespace digue::delivery {

// TLS policy for one destination (Postfix's smtp_tls_security_level): none = never
// STARTTLS; may = STARTTLS when offered, plain text otherwise or after a failed handshake;
// encrypt = STARTTLS required (TempFail without it), certificate not checked; verify =
// STARTTLS required and the certificate chain and host name verified against the system CAs
// (or Options::tls_context). Default: what the Deliverer's Options say.
enum class TlsPolicy { Default, None, May, Encrypt, Verify };
std::optional<TlsPolicy> parse_tls_policy(std::string_view name);  // "none", "may", ...
const char* to_string(TlsPolicy p);

struct Target {
  enum class Kind { Smtp, Lmtp, Maildir };
  Kind kind = Kind::Smtp;
  std::string host;   // name or IP literal without brackets (Smtp, Lmtp)
  uint16_t port = 0;  // parse() defaults: 25 for Smtp, 24 for Lmtp (name it: few use 24)
  std::string path;   // Maildir root
  TlsPolicy tls = TlsPolicy::Default;  // Smtp, Lmtp; set by the caller, not by parse()

  // "host", "host:port", "[::1]:25", "::1", "1.2.3.4", "smtp:host:port", "lmtp:host:port",
  // "lmtp:[::1]:24", "maildir:/path", "maildir" (= maildir_root). nullopt when malformed.
  static std::optional<Target> parse(std::string_view spec, const std::string& maildir_root);
  // Destination key for pooling and caps: "smtp:host:port", "lmtp:host:port", "maildir:path";
  // "/tls=verify" etc. appended for a policy other than Default (pooled apart).
  std::string key() const;
};

struct Job {
  std::string queue_id;
  Address mail_from;  // empty() for the null sender
  std::vector<Address> rcpts;
  // The full message, CRLF line ends, our headers already prepended, NOT dot-stuffed.
  std::shared_ptr<const std::string> data;
  bool smtputf8 = false;
  bool body_8bit = false;
  std::string folder;  // Maildir++ sub-folder ("Junk"); "" = INBOX. See Options.
};

struct RcptResult {
  enum class Status { Delivered, TempFail, PermFail };
  Status status = Status::TempFail;
  int code = 0;          // the reply code, or 451/554 made up locally (e.g. connection lost)
  std::string enhanced;  // "2.0.0", "4.4.1"...
  std::string text;      // the next hop's reply text, or why we failed
};

struct Timeouts {  // RFC 5321 section 4.5.3.2 defaults
  std::chrono::milliseconds connect{std::chrono::seconds(30)};
  std::chrono::milliseconds greeting{std::chrono::minutes(5)};
  // EHLO, STARTTLS (and its handshake), RSET, MAIL, RCPT:
  std::chrono::milliseconds command{std::chrono::minutes(5)};
  std::chrono::milliseconds data_init{std::chrono::minutes(2)};
  std::chrono::milliseconds data_block{std::chrono::minutes(3)};  // per written chunk
  std::chrono::milliseconds data_term{std::chrono::minutes(10)};
  std::chrono::milliseconds rset{std::chrono::seconds(20)};  // probe of a pooled connection
  std::chrono::milliseconds quit{std::chrono::seconds(10)};
};

struct Options {
  std::string hostname = "localhost";  // EHLO/LHLO name; Maildir file names
  Timeouts timeouts;
  std::size_t max_connections = 10;                               // per destination key
  std::chrono::milliseconds queue_wait{std::chrono::minutes(5)};  // max wait for a slot
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds dead_hold{std::chrono::seconds(60)};  // 0: never hold
  std::size_t max_messages_per_connection = 100;
  bool starttls = true;       // use STARTTLS when offered
  bool tls_required = false;  // refuse (TempFail) a server without STARTTLS or bad handshake
  bool tls_verify = false;    // verify the certificate chain and host name
  // Client context; when null one is made (TLS >= 1.2, system CA paths when verifying).
  std::shared_ptr<boost::asio::ssl::context> tls_context;
  // LMTP folder: when non-empty and Job::folder is set, RCPT TO is sent as
  // local<delimiter>folder@domain (Dovecot: lmtp_save_to_detail_mailbox = yes).
  std::string lmtp_folder_delimiter;
  // Where blocking Maildir writes run (e.g. a thread_pool's executor); none = inline.
  std::optional<boost::asio::any_io_executor> blocking_executor;
};

// The options for a connection under policy p (starttls, tls_required, tls_verify); Default
// leaves o as it is.
Options with_tls_policy(Options o, TlsPolicy p);
// A TLS client context: TLS >= 1.2; the system CA paths loaded when verify.
std::shared_ptr<boost::asio::ssl::context> make_client_tls_context(bool verify);

struct Stats {
  uint64_t connections_opened = 0;
  uint64_t connections_reused = 0;
  uint64_t transactions = 0;
  uint64_t tls_connections = 0;  // connections opened that completed STARTTLS
  uint64_t held_unreachable = 0;  // deliveries failed at once: destination held unreachable
  std::size_t peak_active = 0;   // highest number of simultaneous connections to one key
};

class Deliverer {
 public:
  // ex runs pool housekeeping (idle timers); deliveries run on the caller's executor.
  Deliverer(boost::asio::any_io_executor ex, Options options);
  ~Deliverer();  // closes idle connections (without waiting for QUIT replies)
  Deliverer(const Deliverer&) = delete;
  Deliverer& operator=(const Deliverer&) = delete;

  // Target and Job are taken by value so that no reference outlives the caller's objects.
  // Await it from a coroutine on a single-threaded executor or a strand: a connection's
  // deadline timer runs on the awaiting coroutine's executor.
  boost::asio::awaitable<std::vector<RcptResult>> deliver(Target target, Job job);
  // Sends QUIT on every idle connection and closes it; later deliveries open new ones.
  boost::asio::awaitable<void> close_idle();
  Stats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Recipient verification (callout, Postfix's address verification): asks the first target
// of targets that answers whether it takes rcpt, with a fresh, unpooled connection: greeting,
// EHLO/LHLO, MAIL FROM:<>, RCPT TO:<rcpt>, then QUIT in the background (never DATA). STARTTLS
// as each target's TlsPolicy says over options (options.tls_context, or a context made for the
// probe; "may": a failed handshake is retried in plain text). Each step is bounded by
// options.timeouts; the caller
// bounds the whole. The result is the reply to RCPT: Delivered (2xx), PermFail (5xx),
// TempFail (4xx). A target that cannot be reached (refused, timeout, greeting or EHLO
// refused) is skipped for the next; none left: TempFail saying why. MAIL FROM:<> refused:
// TempFail (the answer says nothing about the recipient). A Maildir target reached first:
// Delivered (a local mailbox is made on delivery). MAIL FROM:<> SMTPUTF8 when rcpt has UTF-8
// and the target offers SMTPUTF8; when it does not, a UTF-8 domain is asked in A-labels and a
// UTF-8 local part is PermFail 553 5.6.7 (as its delivery would be).
boost::asio::awaitable<RcptResult> probe_recipient(std::vector<Target> targets, Address rcpt,
                                                   Options options);

// Dot-stuffs a message for DATA: a "." at the start of a line is doubled, bare LF becomes
// CRLF, and a final line without CRLF gets one. The terminating ".\r\n" is NOT appended.
std::string dot_stuff(std::string_view data);

// Lower-cases and makes one path component safe: no '/', NUL or control bytes, never "", "."
// or "..", no leading '.' (Maildir++ folders start with one).
std::string sanitize_path_component(std::string_view s);

// Writes one message into the Maildir of each recipient (see the contract above). Blocking.
std::vector<RcptResult> write_maildir(const std::string& root, const Job& job,
                                      const std::string& hostname);

struct DsnRecipient {
  Address rcpt;
  RcptResult result;       // TempFail -> Action: delayed; PermFail -> Action: failed
  std::string remote_mta;  // "dns; mx.example.net", or "" when unknown
};

struct DsnInput {
  std::string reporting_mta;  // our host name; also From: MAILER-DAEMON@reporting_mta
  Address sender;             // the original envelope sender (To: of the DSN)
  std::string queue_id;
  std::time_t arrival = 0;
  std::vector<DsnRecipient> rcpts;
  std::string_view original;  // the original message (only its header block is included)
  std::time_t now = 0;        // 0 = current time (tests pass a fixed one)
};

// Builds an RFC 3464 multipart/report; report-type=delivery-status message (CRLF), with a
// human-readable part, the message/delivery-status part and text/rfc822-headers.
std::string make_dsn(const DsnInput& in);

}  // namespace digue::delivery
