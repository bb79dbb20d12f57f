// RFC 3464 delivery status notifications; see include/digue/delivery.hpp.
// The caller decides whether a DSN is due (never to the null sender, never for spam).
#include "digue/delivery.hpp"
#include "digue/headers.hpp"

namespace digue::delivery {

namespace {

// One header-safe line: CR, LF and other controls become spaces; bounded length.
std::string one_line(std::string_view s, std::size_t max = 900) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) break;
    auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? ' ' : c;
  }
  return out;
}

// The original's header block with CRLF line ends (up to, not including, the empty line).
std::string header_block(std::string_view msg) {
  std::string out;
  std::size_t pos = 0;
  while (pos < msg.size()) {
    auto nl = msg.find('\n', pos);
    auto end = nl == std::string_view::npos ? msg.size() : nl;
    auto line = msg.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    out.append(line);
    out += "\r\n";
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return out;
}

std::string status_of(const RcptResult& r) {
  if (!r.enhanced.empty()) return r.enhanced;
  return r.status == RcptResult::Status::TempFail ? "4.0.0" : "5.0.0";
}

}  // namespace

std::string make_dsn(const DsnInput& in) {
  std::time_t now = in.now ? in.now : std::time(nullptr);
  std::string headers = header_block(in.original);
  std::string boundary = "digue-dsn-" + one_line(in.queue_id, 64) + "-" + std::to_string(now);
  for (int i = 0; headers.find(boundary) != std::string::npos; ++i)
    boundary += "-" + std::to_string(i);

  bool any_failed = false;
  for (const auto& r : in.rcpts) any_failed |= r.result.status != RcptResult::Status::TempFail;
  const std::string mta = one_line(in.reporting_mta, 255);

  std::string m;
  m += "From: Mail Delivery System <MAILER-DAEMON@" + mta + ">\r\n";
  m += "To: <" + one_line(in.sender.str(), 512) + ">\r\n";
  m += any_failed ? "Subject: Undelivered Mail Returned to Sender\r\n"
                  : "Subject: Delayed Mail (still being retried)\r\n";
  m += "Date: " + headers::rfc5322_date(now, /*utc=*/true) + "\r\n";
  m += "Message-ID: <" + std::to_string(now) + "." + one_line(in.queue_id, 64) + ".dsn@" + mta +
       ">\r\n";
  m += "Auto-Submitted: auto-replied\r\n";
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: multipart/report; report-type=delivery-status;\r\n";
  m += "\tboundary=\"" + boundary + "\"\r\n";
  m += "\r\nThis is a MIME-encapsulated message.\r\n\r\n";

  m += "--" + boundary + "\r\n";
  m += "Content-Description: Notification\r\n";
  m += "Content-Type: text/plain; charset=utf-8\r\n\r\n";
  m += "This is the mail system at host " + mta + ".\r\n\r\n";
  m += any_failed ? "I'm sorry to have to inform you that your message could not\r\n"
                    "be delivered to one or more recipients. It's attached below.\r\n"
                  : "Your message could not be delivered yet to one or more recipients.\r\n"
                    "Delivery will be retried; you do not need to send it again.\r\n";
  m += "\r\n";
  for (const auto& r : in.rcpts) {
    m += "<" + one_line(r.rcpt.str(), 512) + ">: ";
    if (r.result.code) m += std::to_string(r.result.code) + " ";
    m += one_line(r.result.text) + "\r\n";
  }
  m += "\r\n";

  m += "--" + boundary + "\r\n";
  m += "Content-Description: Delivery report\r\n";
  m += "Content-Type: message/delivery-status\r\n\r\n";
  m += "Reporting-MTA: dns; " + mta + "\r\n";
  if (!in.queue_id.empty()) m += "X-Digue-Queue-ID: " + one_line(in.queue_id, 64) + "\r\n";
  if (in.arrival)
    m += "Arrival-Date: " + headers::rfc5322_date(in.arrival, /*utc=*/true) + "\r\n";
  for (const auto& r : in.rcpts) {
    bool temp = r.result.status == RcptResult::Status::TempFail;
    m += "\r\n";
    m += "Final-Recipient: rfc822; " + one_line(r.rcpt.str(), 512) + "\r\n";
    m += std::string("Action: ") + (temp ? "delayed" : "failed") + "\r\n";
    m += "Status: " + one_line(status_of(r.result), 16) + "\r\n";
    if (!r.remote_mta.empty()) m += "Remote-MTA: " + one_line(r.remote_mta, 255) + "\r\n";
    m += "Diagnostic-Code: smtp; ";
    if (r.result.code) m += std::to_string(r.result.code) + " ";
    if (!r.result.enhanced.empty()) m += one_line(r.result.enhanced, 16) + " ";
    m += one_line(r.result.text) + "\r\n";
    if (!temp) m += "Last-Attempt-Date: " + headers::rfc5322_date(now, /*utc=*/true) + "\r\n";
  }
  m += "\r\n";

  m += "--" + boundary + "\r\n";
  m += "Content-Description: Undelivered Message Headers\r\n";
  m += "Content-Type: text/rfc822-headers\r\n\r\n";
  m += headers;
  m += "\r\n--" + boundary + "--\r\n";
  return m;
}

}  // namespace digue::delivery
