// Envelope: what the SMTP session learned about one message before its content.
// Contract: plain data, no I/O. Addresses are stored as received (after <> stripping) and as
// parsed parts; the domain is lower-cased ASCII (or UTF-8 when SMTPUTF8 was used).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace digue {

struct Address {
  std::string local;   // local part as written (quotes kept)
  std::string domain;  // lower-cased; empty for the null sender
  bool empty() const { return local.empty() && domain.empty(); }
  std::string str() const { return empty() ? std::string() : local + "@" + domain; }
};

struct TlsInfo {
  std::string version;  // "TLSv1.3"
  std::string cipher;   // "TLS_AES_256_GCM_SHA384"
};

struct Envelope {
  std::string session_id;
  std::string queue_id;
  std::string client_ip;    // textual, no brackets, no port
  uint16_t client_port = 0;
  std::string client_ptr;   // verified reverse name, empty when unknown
  std::string helo;         // as given in EHLO/HELO
  bool esmtp = false;
  std::optional<TlsInfo> tls;
  Address mail_from;        // empty() for the null sender <>
  bool smtputf8 = false;
  bool body_8bit = false;
  std::vector<Address> rcpts;
  int64_t received_at = 0;  // unix seconds
};

}  // namespace digue
