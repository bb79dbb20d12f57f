// SMTP server protocol state machine and DATA decoder; see include/digue/smtp_protocol.hpp.
#include "digue/smtp_protocol.hpp"
#include "digue/text.hpp"

#include <algorithm>
#include <cstring>

namespace digue::smtp {

namespace {

std::string upper(std::string_view s) {
  std::string o(s);
  for (char& c : o) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return o;
}
using text::lower;
bool iprefix(std::string_view s, std::string_view p) {
  if (s.size() < p.size()) return false;
  for (size_t i = 0; i < p.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(s[i])) != p[i]) return false;
  return true;
}
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool atext(unsigned char c, bool utf8) {
  if (c >= 0x80) return utf8;
  return std::isalnum(c) || std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr;
}

// RFC 5321 Domain (sub-domains of let-dig [ldh-str]) or address-literal "[...]".
bool valid_domain(std::string_view d, bool utf8) {
  if (d.empty() || d.size() > 255) return false;
  if (d.front() == '[') {
    if (d.back() != ']' || d.size() < 3) return false;
    for (char c : d.substr(1, d.size() - 2))
      if (c <= 32 || c == '[' || c == ']' || c == '\\' || static_cast<unsigned char>(c) >= 127)
        return false;
    return true;
  }
  size_t label = 0;
  char prev = '.';
  for (char ch : d) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c == '.') {
      if (label == 0 || prev == '-') return false;
      label = 0;
    } else if (std::isalnum(c) || (c >= 0x80 && utf8) || c == '_') {
      if (++label > 63) return false;
    } else if (c == '-') {
      if (label == 0) return false;
      ++label;
    } else {
      return false;
    }
    prev = static_cast<char>(c);
  }
  return label > 0 && prev != '-';
}

}  // namespace

std::string Reply::wire() const {
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    out += std::to_string(code);
    out += (i + 1 < lines.size()) ? '-' : ' ';
    if (!enhanced.empty()) {
      out += enhanced;
      out += ' ';
    }
    out += lines[i];
    out += "\r\n";
  }
  return out;
}

bool risky_local_part(std::string_view local) {
  return local.find_first_of("%!@") != std::string_view::npos;
}

std::optional<PathResult> parse_path_and_params(std::string_view text, bool allow_empty,
                                                std::string* err, bool utf8_transaction) {
  PathResult r;
  text = trim(text);
  std::string_view path, rest;
  if (!text.empty() && text.front() == '<') {
    // Find the closing '>' outside a quoted string.
    bool quoted = false;
    size_t close = std::string_view::npos;
    for (size_t i = 1; i < text.size(); ++i) {
      char c = text[i];
      if (quoted && c == '\\') {
        ++i;
        continue;
      }
      if (c == '"') quoted = !quoted;
      if (!quoted && c == '>') {
        close = i;
        break;
      }
    }
    if (close == std::string_view::npos) {
      *err = "missing '>'";
      return std::nullopt;
    }
    path = text.substr(1, close - 1);
    rest = text.substr(close + 1);
  } else {
    // Lenient: "MAIL FROM: user@example.com" without brackets (widely sent by scripts).
    auto sp = text.find(' ');
    path = text.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view() : text.substr(sp);
    if (path.empty()) {
      *err = "missing address";
      return std::nullopt;
    }
  }
  // ESMTP parameters.
  rest = trim(rest);
  while (!rest.empty()) {
    auto sp = rest.find(' ');
    std::string_view p = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view() : trim(rest.substr(sp));
    auto eq = p.find('=');
    std::string key = upper(p.substr(0, eq));
    std::string val = eq == std::string_view::npos ? std::string() : std::string(p.substr(eq + 1));
    if (key.empty() || !std::all_of(key.begin(), key.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
        })) {
      *err = "bad parameter syntax";
      return std::nullopt;
    }
    r.params.emplace_back(std::move(key), std::move(val));
  }
  bool utf8 = utf8_transaction || std::any_of(r.params.begin(), r.params.end(), [](const auto& kv) {
                return kv.first == "SMTPUTF8";
              });
  if (path.empty()) {
    if (!allow_empty) {
      *err = "empty path not allowed here";
      return std::nullopt;
    }
    return r;
  }
  // Source route "@a,@b:" is obsolete: RFC 5321 says to accept and ignore it.
  if (path.front() == '@') {
    auto colon = path.find(':');
    if (colon == std::string_view::npos) {
      *err = "bad source route";
      return std::nullopt;
    }
    path = path.substr(colon + 1);
  }
  // Split local@domain at the last '@' outside quotes.
  size_t at = std::string_view::npos;
  bool quoted = false;
  for (size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (quoted && c == '\\') {
      ++i;
      continue;
    }
    if (c == '"') quoted = !quoted;
    else if (!quoted && c == '@') at = i;
  }
  if (quoted || at == std::string_view::npos || at == 0) {
    *err = "address must be local@domain";
    return std::nullopt;
  }
  std::string_view local = path.substr(0, at), domain = path.substr(at + 1);
  if (local.size() > 64) {
    *err = "local part too long";
    return std::nullopt;
  }
  if (local.front() == '"') {
    if (local.size() < 2 || local.back() != '"') {
      *err = "bad quoted local part";
      return std::nullopt;
    }
    for (size_t i = 1; i + 1 < local.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(local[i]);
      if (c < 32 || c == 127 || (c >= 0x80 && !utf8)) {
        *err = "bad character in local part";
        return std::nullopt;
      }
    }
  } else {
    char prev = '.';
    for (char ch : local) {
      unsigned char c = static_cast<unsigned char>(ch);
      if (c == '.') {
        if (prev == '.') {
          *err = "bad dot-string local part";
          return std::nullopt;
        }
      } else if (!atext(c, utf8)) {
        *err = "bad character in local part";
        return std::nullopt;
      }
      prev = static_cast<char>(c);
    }
    if (prev == '.') {
      *err = "bad dot-string local part";
      return std::nullopt;
    }
  }
  if (!valid_domain(domain, utf8)) {
    *err = "bad domain";
    return std::nullopt;
  }
  // RFC 6531 3.3: UTF-8, not any byte above 127 (the address ends up in headers, logs and
  // Maildir paths).
  if (utf8 && !text::valid_utf8(path)) {
    *err = "address is not valid UTF-8";
    return std::nullopt;
  }
  r.address.local = std::string(local);
  r.address.domain = lower(domain);
  return r;
}

Protocol::Protocol(Settings settings) : settings_(std::move(settings)) {}

Reply Protocol::greeting() const {
  return Reply(220, "", settings_.hostname + " ESMTP digue");
}

void Protocol::reset_transaction() {
  env_.mail_from = {};
  env_.rcpts.clear();
  env_.smtputf8 = false;
  env_.body_8bit = false;
  env_.queue_id.clear();
  if (state_ != State::Closed) state_ = State::Ready;
}

// Counts one more command against a limit: past `allowed`, 421 and close instead of `r`.
Step Protocol::counted(int& count, int allowed, const char* why, Reply r) {
  Step s;
  if (++count > allowed) return closing("4.7.0", why);
  s.reply = std::move(r);
  return s;
}

Step Protocol::closing(const char* enhanced, const char* why) {
  Step s;
  s.reply = Reply(421, enhanced, settings_.hostname + " " + why + ", closing connection", true);
  state_ = State::Closed;
  return s;
}

Step Protocol::bad(Reply r) {
  return counted(bad_commands_, settings_.max_bad_commands - 1, "too many errors", std::move(r));
}

Step Protocol::junk(Reply r) {
  return counted(junk_commands_, settings_.max_junk_commands, "too many commands", std::move(r));
}

Step Protocol::on_session_expired() { return closing("4.4.2", "session time limit"); }

Step Protocol::on_overlong_line() { return bad(Reply(500, "5.5.2", "Line too long")); }

Step Protocol::on_line(std::string_view line) {
  Step s;
  if (state_ == State::Closed) {
    s.reply = Reply(421, "4.7.0", "Closing connection", true);
    return s;
  }
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.find('\0') != std::string_view::npos)
    return bad(Reply(500, "5.5.2", "NUL character in command"));
  if (line.size() > settings_.max_command_line) return on_overlong_line();
  auto sp = line.find(' ');
  std::string verb = upper(line.substr(0, sp));
  std::string_view arg = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);

  if (verb == "EHLO") return on_helo(arg, true);
  if (verb == "HELO") return on_helo(arg, false);
  if (verb == "MAIL") return on_mail(arg);
  if (verb == "RCPT") return on_rcpt(arg);
  if (verb == "DATA") {
    if (!trim(arg).empty()) return bad(Reply(501, "5.5.4", "DATA takes no arguments"));
    if (state_ == State::Mail) return bad(Reply(554, "5.5.1", "No valid recipients"));
    if (state_ != State::Rcpt) return bad(Reply(503, "5.5.1", "Bad sequence of commands"));
    state_ = State::Data;
    s.kind = Step::Kind::Data;
    s.reply = Reply(354, "", "End data with <CR><LF>.<CR><LF>");
    return s;
  }
  if (verb == "RSET") {
    if (!trim(arg).empty()) return bad(Reply(501, "5.5.4", "RSET takes no arguments"));
    reset_transaction();
    return junk(Reply(250, "2.0.0", "OK"));
  }
  if (verb == "NOOP") return junk(Reply(250, "2.0.0", "OK"));
  if (verb == "QUIT") {
    state_ = State::Closed;
    s.reply = Reply(221, "2.0.0", settings_.hostname + " closing connection", true);
    return s;
  }
  if (verb == "HELP")
    return junk(Reply(214, "2.0.0", "See RFC 5321: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY"));
  if (verb == "VRFY") {
    if (trim(arg).empty()) return bad(Reply(501, "5.5.4", "VRFY needs an argument"));
    return junk(
        Reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"));
  }
  if (verb == "EXPN") return junk(Reply(502, "5.5.1", "EXPN not available"));
  if (verb == "STARTTLS") {
    if (!settings_.tls_available || settings_.tls_active)
      return bad(Reply(502, "5.5.1", settings_.tls_active ? "Already in TLS" : "STARTTLS not available"));
    if (!trim(arg).empty()) return bad(Reply(501, "5.5.4", "STARTTLS takes no arguments"));
    if (state_ != State::Ready) return bad(Reply(503, "5.5.1", "STARTTLS not allowed in a transaction"));
    s.kind = Step::Kind::StartTls;
    s.reply = Reply(220, "2.0.0", "Ready to start TLS");
    return s;
  }
  if (verb == "BDAT" || verb == "AUTH" || verb == "ETRN" || verb == "TURN")
    return bad(Reply(502, "5.5.1", "Command not implemented"));
  return bad(Reply(500, "5.5.2", "Command unrecognized"));
}

Step Protocol::on_helo(std::string_view arg, bool esmtp) {
  Step s;
  arg = trim(arg);
  if (arg.empty()) return bad(Reply(501, "5.5.4", std::string(esmtp ? "EHLO" : "HELO") + " requires a domain"));
  auto sp = arg.find(' ');
  std::string_view name = arg.substr(0, sp);
  // A repeated EHLO advances nothing either; the reply itself is built below.
  if (Step over = junk(Reply()); over.reply.close) return over;
  reset_transaction();
  env_.helo = std::string(name);
  env_.esmtp = esmtp;
  seen_helo_ = true;
  s.kind = Step::Kind::Helo;
  if (!esmtp) {
    s.reply = Reply(250, "", settings_.hostname);
    return s;
  }
  s.reply.code = 250;
  s.reply.lines = {settings_.hostname, "PIPELINING",
                   "SIZE " + std::to_string(settings_.max_message_size), "8BITMIME",
                   "ENHANCEDSTATUSCODES", "SMTPUTF8"};
  if (settings_.tls_available && !settings_.tls_active) s.reply.lines.push_back("STARTTLS");
  s.reply.lines.push_back("HELP");
  return s;
}

Step Protocol::on_mail(std::string_view arg) {
  Step s;
  if (!seen_helo_) return bad(Reply(503, "5.5.1", "Send EHLO/HELO first"));
  if (state_ != State::Ready) return bad(Reply(503, "5.5.1", "Nested MAIL command"));
  if (!iprefix(arg, "FROM:")) return bad(Reply(501, "5.5.4", "Syntax: MAIL FROM:<address>"));
  std::string err;
  auto p = parse_path_and_params(arg.substr(5), true, &err);
  if (!p) return bad(Reply(501, "5.1.7", "Bad sender address syntax: " + err));
  bool utf8 = false, eight = false;
  size_t size = 0;
  for (const auto& [k, v] : p->params) {
    if (k == "SIZE") {
      if (v.empty() || v.size() > 15 ||
          !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return bad(Reply(501, "5.5.4", "Bad SIZE value"));
      size = std::stoull(v);
      if (size > settings_.max_message_size)
        return bad(Reply(552, "5.3.4", "Message size exceeds fixed maximum message size"));
    } else if (k == "BODY") {
      std::string b = upper(v);
      if (b == "8BITMIME") eight = true;
      else if (b != "7BIT") return bad(Reply(501, "5.5.4", "Bad BODY value"));
    } else if (k == "SMTPUTF8") {
      if (!v.empty()) return bad(Reply(501, "5.5.4", "SMTPUTF8 takes no value"));
      utf8 = true;
    } else if (k == "AUTH") {
      // AUTH=<> from a client that authenticated elsewhere; we do not offer AUTH: ignore.
    } else {
      return bad(Reply(555, "5.5.4", "Unsupported MAIL parameter " + k));
    }
  }
  if (!env_.esmtp && !p->params.empty())
    return bad(Reply(555, "5.5.4", "Parameters need EHLO"));
  env_.mail_from = p->address;
  env_.smtputf8 = utf8;
  env_.body_8bit = eight;
  s.kind = Step::Kind::Mail;
  s.reply = Reply(250, "2.1.0", "Sender OK");
  return s;
}

void Protocol::mail_accepted() { state_ = State::Mail; }

Step Protocol::on_rcpt(std::string_view arg) {
  Step s;
  if (state_ != State::Mail && state_ != State::Rcpt)
    return bad(Reply(503, "5.5.1", "Need MAIL before RCPT"));
  if (!iprefix(arg, "TO:")) return bad(Reply(501, "5.5.4", "Syntax: RCPT TO:<address>"));
  std::string err;
  std::string_view path = trim(arg.substr(3));
  std::optional<PathResult> p;
  if (path.size() == 12 && iprefix(path, "<POSTMASTER>")) {
    // RFC 5321 4.5.1: "postmaster" without a domain must be accepted. We relay only for
    // hosted domains, so it goes to the postmaster of the first one.
    if (settings_.postmaster_domain.empty())
      return bad(Reply(550, "5.1.1", "No postmaster here: this relay hosts no domain"));
    p.emplace();
    const std::string& domain = env_.smtputf8 || settings_.postmaster_domain_ascii.empty()
                                    ? settings_.postmaster_domain
                                    : settings_.postmaster_domain_ascii;
    p->address = Address{"postmaster", lower(domain)};
  } else {
    // UTF-8 addresses are allowed for the whole transaction once MAIL carried SMTPUTF8
    // (RFC 6531 3.4), not only in the path that names it.
    p = parse_path_and_params(path, false, &err, env_.smtputf8);
    if (!p) return bad(Reply(501, "5.1.3", "Bad recipient address syntax: " + err));
  }
  if (!p->params.empty()) return bad(Reply(555, "5.5.4", "Unsupported RCPT parameter " + p->params[0].first));
  const Address& a = p->address;
  bool ours = settings_.accepts_domain && settings_.accepts_domain(a.domain);
  if (!ours || risky_local_part(a.local)) {
    // Counted as a bad command: dictionary and relay probing should not go on for ever.
    return bad(Reply(550, "5.7.1", "Relaying denied"));
  }
  if (has_rcpt(a)) {
    // Accepted already: a second copy would be delivered twice.
    s.reply = Reply(250, "2.1.5", "Recipient OK (duplicate ignored)");
    return s;
  }
  if (env_.rcpts.size() >= settings_.max_recipients) {
    s.reply = Reply(452, "4.5.3", "Too many recipients");
    return s;
  }
  s.kind = Step::Kind::Rcpt;
  s.rcpt = a;
  s.reply = Reply(250, "2.1.5", "Recipient OK");
  return s;
}

bool Protocol::has_rcpt(const Address& a) const {
  // The local part is case-sensitive (RFC 5321 2.4); domains are kept lower-cased.
  return std::any_of(env_.rcpts.begin(), env_.rcpts.end(), [&](const Address& r) {
    return r.local == a.local && text::iequals(r.domain, a.domain);
  });
}

void Protocol::rcpt_accepted(const Address& rcpt) {
  if (!has_rcpt(rcpt)) env_.rcpts.push_back(rcpt);
  state_ = State::Rcpt;
}

void Protocol::data_done() {
  reset_transaction();
  junk_commands_ = 0;
}

void Protocol::tls_started() {
  settings_.tls_active = true;
  seen_helo_ = false;
  env_.helo.clear();
  reset_transaction();
}

// ---- DATA decoder ----

DataDecoder::DataDecoder(size_t max_size, size_t max_line)
    : max_size_(max_size), max_line_(max_line) {}

size_t DataDecoder::capacity_for(size_t n) const {
  // The first read of a small message takes a page or so, not a few bytes at a time.
  constexpr size_t kMinCapacity = 4096;
  size_t cap = out_.capacity();
  size_t need = out_.size() + 2 * n + 4;  // + a pending CR or stuffing dot: a space
  if (need <= cap) return cap;
  return std::min(std::max({need, 2 * cap, kMinCapacity}), std::max(max_size_, cap));
}

void DataDecoder::reserve(size_t capacity) {
  if (capacity <= out_.capacity()) return;
  // std::string::reserve may round a growth up to twice the old capacity; a new string
  // reserves what it is asked (one copy either way).
  std::string bigger;
  bigger.reserve(capacity);
  bigger.append(out_);
  out_.swap(bigger);
}

size_t feed_counted(DataDecoder& dec, MemoryBudget::Hold& hold, std::string_view chunk) {
  if (dec.storing()) {
    size_t want = dec.capacity_for(chunk.size());
    if (want > dec.capacity()) {
      if (hold.resize(want))
        dec.reserve(want);
      else
        dec.discard();
    }
  }
  size_t used = dec.feed(chunk);
  // Exact again after a discard or the size limit freed the buffer.
  hold.resize(dec.capacity());
  return used;
}

void DataDecoder::put(std::string_view s) {
  size_ += s.size();
  if (too_big_) return;
  if (size_ > max_size_) {
    too_big_ = true;
    out_.clear();
    out_.shrink_to_fit();
    return;
  }
  if (!discarded_) out_.append(s);
}

void DataDecoder::discard() {
  discarded_ = true;
  out_.clear();
  out_.shrink_to_fit();
}

// RFC 5321 2.3.8: CR and LF occur only together, as a line end. A bare CR is not content we
// may pass on as is: a downstream that takes it for a line end would see "x<CR>.<CRLF>" as
// the end of data and run what follows as commands (SMTP smuggling). It is replaced by a
// space: turning it into CRLF could itself make a "." line, rejecting the message would
// bounce mail from sloppy but honest clients, and DATA carries no binary content (we offer
// neither BDAT nor BINARYMIME), so a space damages nothing a reader relies on.
void DataDecoder::put_content(std::string_view s) {
  if (std::memchr(s.data(), '\r', s.size()) == nullptr) return put(s);
  std::string clean(s);
  std::replace(clean.begin(), clean.end(), '\r', ' ');
  put(clean);
}

void DataDecoder::end_line(bool crlf_on_wire) {
  put("\r\n");
  prev_crlf_ = crlf_on_wire;
  s_ = S::LineStart;
}

size_t DataDecoder::feed(std::string_view data) {
  size_t i = 0;
  const size_t n = data.size();
  while (i < n && !done_) {
    switch (s_) {
      case S::LineStart:
        if (data[i] == '.') {
          s_ = S::Dot;
          ++i;
          continue;
        }
        s_ = S::InLine;
        line_len_ = 0;
        break;
      case S::Dot:
        if (data[i] == '\r') {
          s_ = S::DotCr;
          ++i;
          continue;
        }
        // A leading dot was stuffing: drop it and go on with the line.
        s_ = S::InLine;
        line_len_ = 0;
        break;
      case S::DotCr:
        if (data[i] == '\n') {
          if (prev_crlf_) {
            done_ = true;
            return i + 1;
          }
          // <LF>.<CRLF> is not the end of data (SMTP smuggling: a receiver that took it for
          // one would run what follows as commands); the "." line is content, kept as is.
          put(".\r\n");
          prev_crlf_ = true;
          ++i;
          s_ = S::LineStart;
          continue;
        }
        // ".\r" followed by something else: the dot was stuffing, the CR is a bare CR.
        put(" ");
        line_len_ = 1;
        s_ = S::InLine;
        break;
      case S::InLine: {
        if (pending_cr_) {
          // The previous read ended with a CR: a CRLF split across reads, or a bare CR.
          pending_cr_ = false;
          if (data[i] == '\n') {
            end_line(true);
            ++i;
            continue;
          }
          put(" ");
        }
        const char* start = data.data() + i;
        const void* nl = std::memchr(start, '\n', n - i);
        size_t len = nl ? static_cast<const char*>(nl) - start : n - i;
        if (!has_8bit_)
          for (size_t k = 0; k < len; ++k)
            if (static_cast<unsigned char>(start[k]) >= 0x80) {
              has_8bit_ = true;
              break;
            }
        line_len_ += len;
        if (line_len_ > max_line_) line_too_long_ = true;
        // A CR right before the LF ends the line; at the end of the read it may still be one.
        bool cr_last = len > 0 && start[len - 1] == '\r';
        put_content(std::string_view(start, cr_last ? len - 1 : len));
        i += len;
        if (!nl) {
          pending_cr_ = cr_last;
          continue;
        }
        end_line(cr_last);  // a bare LF line end is stored as CRLF too
        ++i;
        break;
      }
    }
  }
  return i;
}

}  // namespace digue::smtp
