// libFuzzer target: the SMTP protocol state machine and DATA decoder, driven as the session
// drives them (lines until DATA, then the decoder until the final dot, then lines again).
// Invariants: never an open relay; DATA ends only at <CRLF>.<CRLF>; no bare LF is stored.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "digue/smtp_protocol.hpp"

using namespace digue::smtp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Settings s;
  s.hostname = "fuzz.test";
  s.max_message_size = 4096;
  s.max_recipients = 5;
  s.max_command_line = 512;
  s.max_bad_commands = 1000;
  s.tls_available = true;
  s.accepts_domain = [](const std::string& d) { return d == "example.test"; };
  Protocol p(s);
  std::string_view in(reinterpret_cast<const char*>(data), size);
  while (!in.empty() && !p.closed()) {
    size_t nl = in.find('\n');
    std::string_view line = in.substr(0, nl);
    in = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
    Step st = line.size() > s.max_command_line ? p.on_overlong_line() : p.on_line(line);
    (void)st.reply.wire();
    switch (st.kind) {
      case Step::Kind::Mail: p.mail_accepted(); break;
      case Step::Kind::Rcpt:
        if (st.rcpt.domain != "example.test") __builtin_trap();  // never an open relay
        p.rcpt_accepted(st.rcpt);
        break;
      case Step::Kind::StartTls: p.tls_started(); break;
      case Step::Kind::Data: {
        DataDecoder d(s.max_message_size, 1000);
        size_t used = d.feed(in);
        if (d.done()) {
          // Only <CRLF>.<CRLF> ends DATA (or "." CRLF right after the 354): never a bare-LF
          // or bare-CR variant (SMTP smuggling).
          std::string_view ended = in.substr(0, used);
          if (ended != ".\r\n" && !ended.ends_with("\r\n.\r\n")) __builtin_trap();
        } else if (used != in.size()) {
          __builtin_trap();  // input is left over only after the end of data
        }
        // Every stored line ends with CRLF.
        const std::string& m = d.message();
        for (size_t k = 0; k < m.size(); ++k)
          if (m[k] == '\n' && (k == 0 || m[k - 1] != '\r')) __builtin_trap();
        in = in.substr(used);
        p.data_done();
        break;
      }
      default: break;
    }
  }
  return 0;
}
