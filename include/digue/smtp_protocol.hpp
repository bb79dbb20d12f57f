// SMTP server protocol: command parsing, the session state machine (RFC 5321 + PIPELINING,
// SIZE, 8BITMIME, ENHANCEDSTATUSCODES, SMTPUTF8, STARTTLS) and the DATA decoder.
// Contract: no I/O and no clock. The Asio session feeds it lines and bytes and performs the
// actions it returns; decisions that need filters (MAIL, RCPT, end of DATA) are handed back
// to the session, which reports the outcome. Untrusted input: every byte; this is fuzzed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "digue/envelope.hpp"
#include "digue/memory_budget.hpp"

namespace digue::smtp {

struct Reply {
  int code = 250;
  std::string enhanced;            // "2.1.0"; empty for 220/221 greeting-style replies
  std::vector<std::string> lines;  // at least one
  bool close = false;              // close the connection after sending

  Reply() = default;
  Reply(int c, std::string enh, std::string text, bool cl = false)
      : code(c), enhanced(std::move(enh)), lines{std::move(text)}, close(cl) {}
  std::string wire() const;  // "250-...\r\n250 ...\r\n"
};

// Parses a reverse- or forward-path: "<local@domain>", "<@route:local@domain>", "<>".
// Returns nullopt with *err set on a syntax error. Never accepts a bare address without <>
// except when lenient (some clients send MAIL FROM:user@x; RFC says no, Postfix accepts).
// UTF-8 in the address is allowed when the path carries SMTPUTF8 or `utf8_transaction` is
// set (a RCPT in a transaction whose MAIL carried SMTPUTF8).
struct PathResult {
  Address address;
  std::vector<std::pair<std::string, std::string>> params;  // ESMTP "KEY=VALUE", keys upper
};
std::optional<PathResult> parse_path_and_params(std::string_view text, bool allow_empty,
                                                std::string* err, bool utf8_transaction = false);

// Local parts that could make a downstream server relay further ("user%other",
// "user!other", quoted "@"): refused for our own domains.
bool risky_local_part(std::string_view local);

enum class State : uint8_t { Greeting, Ready, Mail, Rcpt, Data, Closed };

struct Settings {
  std::string hostname = "localhost";
  size_t max_message_size = 50u << 20;
  size_t max_recipients = 100;
  size_t max_command_line = 4096;
  int max_bad_commands = 10;
  // Commands that do not advance a transaction (NOOP, RSET, HELP, VRFY, EXPN, HELO/EHLO),
  // like Postfix's smtpd_junk_command_limit: past it, 421 and close. A finished message
  // (DATA answered) starts the count again, so a busy client is never cut for its RSETs.
  int max_junk_commands = 100;
  bool tls_available = false;  // STARTTLS may be offered
  bool tls_active = false;
  // Called with the domain ASCII-lower-cased, U-labels byte for byte as sent.
  std::function<bool(const std::string& domain)> accepts_domain;
  // Where "RCPT TO:<postmaster>" (no domain) goes; empty: refused. The A-label spelling is
  // used in a transaction without SMTPUTF8 (a U-label domain could not be delivered in it).
  std::string postmaster_domain;
  std::string postmaster_domain_ascii;
};

// What the session must do after a command line.
struct Step {
  enum class Kind : uint8_t {
    Reply,     // send `reply`
    Helo,      // run helo-phase filters, then send `reply` (or a refusal)
    Mail,      // run mail-phase filters for envelope().mail_from, then mail_accepted()
    Rcpt,      // run rcpt-phase filters for `rcpt`, then rcpt_accepted() or refuse
    Data,      // send `reply` (354), then read the message with a DataDecoder
    StartTls,  // send `reply` (220), discard buffered input, handshake, then tls_started()
  };
  Kind kind = Kind::Reply;
  Reply reply;
  Address rcpt;  // Kind::Rcpt
};

class Protocol {
 public:
  explicit Protocol(Settings settings);

  Reply greeting() const;
  // One command line without its CRLF (bare LF tolerated by the caller's line splitter).
  Step on_line(std::string_view line);
  // The line exceeded max_command_line (the caller discarded it up to its end).
  Step on_overlong_line();
  // The session outlived max_session_time (the caller's clock): the answer to the command
  // that came next (421, close). Never called inside DATA: only at a command boundary.
  Step on_session_expired();

  void mail_accepted();             // 250 sent for MAIL
  void rcpt_accepted(const Address& rcpt);
  void data_done();                 // the message was answered (250/4xx/5xx): new transaction
  void tls_started();               // handshake done: state reset, EHLO needed again

  State state() const { return state_; }
  const Envelope& envelope() const { return env_; }
  Envelope& envelope() { return env_; }
  const Settings& settings() const { return settings_; }
  void set_tls_active(bool v) { settings_.tls_active = v; }
  bool closed() const { return state_ == State::Closed; }

 private:
  Step counted(int& count, int allowed, const char* why, Reply r);
  Step closing(const char* enhanced, const char* why);  // 421, state Closed
  Step bad(Reply r);
  Step junk(Reply r);
  Step on_helo(std::string_view arg, bool esmtp);
  Step on_mail(std::string_view arg);
  Step on_rcpt(std::string_view arg);
  void reset_transaction();
  bool has_rcpt(const Address& a) const;

  Settings settings_;
  State state_ = State::Ready;
  Envelope env_;
  int bad_commands_ = 0;
  int junk_commands_ = 0;
  bool seen_helo_ = false;
};

// DATA decoder: dot-unstuffing and end-of-data detection across reads. Only <CRLF>.<CRLF>
// ends the message, and only when the line before it also ended with CRLF: <LF>.<CRLF>,
// <LF>.<LF>, <CR>.<CR><LF> are content (the SMTP smuggling class). Bare LF line ends are
// stored as CRLF and a bare CR (not followed by LF) is replaced by a space, so that what we
// pass downstream has one unambiguous line ending; a "." line after a bare LF is kept as
// content (the delivery side dot-stuffs it again).
class DataDecoder {
 public:
  DataDecoder(size_t max_size, size_t max_line);
  // Consumes bytes; returns how many were used (less than data.size() only when the end of
  // data was found: the rest is pipelined input after the message).
  size_t feed(std::string_view data);
  // From now on the message is read to its end but not kept (no memory for it: the caller
  // answers 4xx); what was kept so far is freed.
  void discard();
  bool discarded() const { return discarded_; }
  // Bytes fed from now on are kept (neither discarded nor past the size limit).
  bool storing() const { return !discarded_ && !too_big_; }
  bool done() const { return done_; }
  bool too_big() const { return too_big_; }
  bool line_too_long() const { return line_too_long_; }
  bool has_8bit() const { return has_8bit_; }
  size_t size() const { return size_; }  // decoded size, counted even past the limit
  std::string& message() { return out_; }

  // Memory: what the message really holds is its buffer's capacity (a string grown by
  // appends can hold up to twice its size). A caller that counts it grows the buffer itself,
  // before each read, with these two; feed() then never reallocates behind its back.
  size_t capacity() const { return out_.capacity(); }
  // The capacity needed before `n` more wire bytes are fed (each can decode to two: a bare
  // LF becomes CRLF): the current one when it suffices, else at least twice it (geometric
  // growth, not a reallocation per read), never more than max_size (the most ever kept).
  size_t capacity_for(size_t n) const;
  // Grows the buffer to exactly `capacity` bytes (not the library's growth factor, which may
  // double it), so that the count is exact.
  void reserve(size_t capacity);

 private:
  enum class S : uint8_t { LineStart, Dot, DotCr, InLine };
  void put(std::string_view s);
  void put_content(std::string_view s);  // line content: bare CRs become spaces
  void end_line(bool crlf_on_wire);       // stores CRLF, the next byte starts a line
  S s_ = S::LineStart;
  std::string out_;
  size_t max_size_, max_line_;
  size_t size_ = 0, line_len_ = 0;
  bool done_ = false, too_big_ = false, line_too_long_ = false, has_8bit_ = false;
  bool discarded_ = false;
  bool pending_cr_ = false;  // the last read ended with a CR inside a line
  // The previous line ended with CRLF on the wire (not a bare LF): only then does "." + CRLF
  // end the data. The start of DATA counts as a CRLF line end.
  bool prev_crlf_ = true;
};

// Feeds one read of DATA, the message's memory counted in `hold` ([server] max_data_memory):
// the buffer is grown first, when the budget allows it (else the message is discarded: read
// to its end, not kept), and afterwards the hold equals the buffer's capacity.
size_t feed_counted(DataDecoder& dec, MemoryBudget::Hold& hold, std::string_view chunk);

}  // namespace digue::smtp
