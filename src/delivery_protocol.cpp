// SMTP/LMTP client protocol without I/O; see src/delivery_protocol.hpp.
#include "src/delivery_protocol.hpp"

#include <cctype>

namespace digue::delivery::detail {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Length of an RFC 3463 code ("2.1.5") at the start of s, or 0.
std::size_t enhanced_len(std::string_view s) {
  if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return 0;
  std::size_t i = 2;
  for (int part = 0; part < 2; ++part) {
    std::size_t start = i;
    while (i < s.size() && is_digit(s[i]) && i - start < 3) ++i;
    if (i == start) return 0;
    if (part == 0) {
      if (i >= s.size() || s[i] != '.') return 0;
      ++i;
    }
  }
  if (i < s.size() && s[i] != ' ') return 0;
  return i;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string Reply::enhanced() const {
  if (lines.empty()) return {};
  return lines.front().substr(0, enhanced_len(lines.front()));
}

std::string Reply::text() const {
  std::string out;
  for (const auto& l : lines) {
    std::string_view v = l;
    auto n = enhanced_len(v);
    if (n) {
      v.remove_prefix(n);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    }
    if (!out.empty()) out += ' ';
    out.append(v);
  }
  return out;
}

bool ReplyParser::feed(std::string_view bytes) {
  if (!error_.empty()) return false;
  buf_.append(bytes);
  std::size_t pos = 0;
  while (true) {
    auto nl = buf_.find('\n', pos);
    if (nl == std::string::npos) break;
    std::string_view l(buf_.data() + pos, nl - pos);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    pos = nl + 1;
    if (!line(l)) {
      buf_.clear();
      return false;
    }
  }
  buf_.erase(0, pos);
  if (buf_.size() > kMaxLine) {
    error_ = "reply line too long";
    return false;
  }
  return true;
}

bool ReplyParser::line(std::string_view l) {
  if (l.size() > kMaxLine) {
    error_ = "reply line too long";
    return false;
  }
  if (l.size() < 3 || !is_digit(l[0]) || !is_digit(l[1]) || !is_digit(l[2]) ||
      (l.size() > 3 && l[3] != ' ' && l[3] != '-')) {
    error_ = "malformed reply: " + std::string(l.substr(0, 80));
    return false;
  }
  int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
  if (code < 200 || code > 599) {
    error_ = "reply code out of range: " + std::string(l.substr(0, 3));
    return false;
  }
  if (!partial_.lines.empty() && partial_.code != code) {
    error_ = "inconsistent codes in a multi-line reply";
    return false;
  }
  if (partial_.lines.size() >= kMaxReplyLines) {
    error_ = "reply has too many lines";
    return false;
  }
  partial_.code = code;
  partial_.lines.emplace_back(l.size() > 4 ? l.substr(4) : std::string_view());
  if (l.size() == 3 || l[3] == ' ') {
    done_.push_back(std::move(partial_));
    partial_ = Reply{};
  }
  return true;
}

std::optional<Reply> ReplyParser::next() {
  if (done_.empty()) return std::nullopt;
  Reply r = std::move(done_.front());
  done_.pop_front();
  return r;
}

Capabilities Capabilities::from_ehlo(const Reply& r) {
  Capabilities c;
  c.esmtp = r.code / 100 == 2;
  if (!c.esmtp) return c;
  for (std::size_t i = 1; i < r.lines.size(); ++i) {  // the first line is the greeting
    std::string l = upper(r.lines[i]);
    auto sp = l.find(' ');
    std::string kw = l.substr(0, sp);
    if (kw == "PIPELINING")
      c.pipelining = true;
    else if (kw == "STARTTLS")
      c.starttls = true;
    else if (kw == "8BITMIME")
      c.eightbitmime = true;
    else if (kw == "SMTPUTF8")
      c.smtputf8 = true;
    else if (kw == "SIZE") {
      c.has_size = true;
      if (sp != std::string::npos) {
        uint64_t v = 0;
        bool ok = true;
        for (char ch : l.substr(sp + 1)) {
          if (!is_digit(ch) || v > (UINT64_MAX - 9) / 10) {
            ok = false;
            break;
          }
          v = v * 10 + uint64_t(ch - '0');
        }
        c.size_limit = ok ? v : 0;
      }
    }
  }
  return c;
}

std::string mail_command(const Job& job, const Capabilities& caps, std::size_t size) {
  std::string cmd = "MAIL FROM:<" + job.mail_from.str() + ">";
  if (caps.has_size) cmd += " SIZE=" + std::to_string(size);
  if (job.body_8bit && caps.eightbitmime) cmd += " BODY=8BITMIME";
  if (job.smtputf8 && caps.smtputf8) cmd += " SMTPUTF8";
  return cmd + "\r\n";
}

std::string rcpt_command(const Address& rcpt, const std::string& folder,
                         const std::string& folder_delim) {
  if (!folder.empty() && !folder_delim.empty() && !rcpt.domain.empty())
    return "RCPT TO:<" + rcpt.local + folder_delim + folder + "@" + rcpt.domain + ">\r\n";
  return "RCPT TO:<" + rcpt.str() + ">\r\n";
}

RcptResult result_of(const Reply& r) {
  RcptResult out;
  out.status = r.code / 100 == 2   ? RcptResult::Status::Delivered
               : r.code / 100 == 4 ? RcptResult::Status::TempFail
                                   : RcptResult::Status::PermFail;
  out.code = r.code;
  out.enhanced = r.enhanced();
  out.text = r.text();
  return out;
}

RcptResult local_temp_fail(std::string enhanced, std::string text) {
  return {RcptResult::Status::TempFail, 451, std::move(enhanced), std::move(text)};
}

}  // namespace digue::delivery::detail
