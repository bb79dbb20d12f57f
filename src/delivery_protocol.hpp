// SMTP/LMTP client protocol pieces that do no I/O: reply parsing, EHLO capabilities, command
// text and the mapping of replies to per-recipient results. Private to src/delivery_*.cpp.
// Untrusted input: replies are bounded (kMaxLine per line, kMaxReplyLines per reply).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "digue/delivery.hpp"

namespace digue::delivery::detail {

struct Reply {
  int code = 0;
  std::vector<std::string> lines;  // the text after "250-" / "250 "
  // "2.1.5" when the first line starts with an RFC 3463 code, else "".
  std::string enhanced() const;
  // The lines joined by spaces, with the enhanced code of the first line removed.
  std::string text() const;
  std::string str() const { return std::to_string(code) + " " + text(); }
};

// Bytes in, complete replies out.
class ReplyParser {
 public:
  static constexpr std::size_t kMaxLine = 4096;
  static constexpr std::size_t kMaxReplyLines = 200;
  // false on a malformed reply; error() says why and the parser stays failed.
  bool feed(std::string_view bytes);
  std::optional<Reply> next();
  const std::string& error() const { return error_; }
  bool has_partial() const { return !buf_.empty() || !partial_.lines.empty(); }

 private:
  bool line(std::string_view l);
  std::string buf_;
  Reply partial_;
  std::deque<Reply> done_;
  std::string error_;
};

struct Capabilities {
  bool esmtp = false;
  bool pipelining = false;
  bool starttls = false;
  bool eightbitmime = false;
  bool smtputf8 = false;
  bool has_size = false;
  uint64_t size_limit = 0;  // 0 with has_size: no fixed limit
  static Capabilities from_ehlo(const Reply& r);
};

// "MAIL FROM:<a@b> SIZE=n BODY=8BITMIME SMTPUTF8\r\n" with only what the server offered.
std::string mail_command(const Job& job, const Capabilities& caps, std::size_t size);
// "RCPT TO:<a@b>\r\n"; folder_delim non-empty with a folder: <local+folder@domain>.
std::string rcpt_command(const Address& rcpt, const std::string& folder,
                         const std::string& folder_delim);

// 2xx Delivered, 4xx TempFail, anything else PermFail; keeps the code and text.
RcptResult result_of(const Reply& r);
RcptResult local_temp_fail(std::string enhanced, std::string text);

}  // namespace digue::delivery::detail
