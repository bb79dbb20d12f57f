// Resolver: asynchronous DNS for filters. Implementation: c-ares driven by the io_context
// (no extra thread per query), TTL cache (positive and negative, clamped by config),
// identical in-flight queries shared, per-query timeout and retries.
// A timeout or SERVFAIL is TempError, never "not found".
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace digue::dns {

enum class Type : uint16_t { A = 1, NS = 2, CNAME = 5, PTR = 12, MX = 15, TXT = 16, AAAA = 28 };
enum class Status { Ok, NxDomain, NoData, TempError, PermError /* malformed answer, FORMERR */ };

struct Mx {
  uint16_t preference = 0;
  std::string host;  // lower-case, no trailing dot; "" for a null MX (RFC 7505: ".")
};

struct Answer {
  Status status = Status::TempError;
  // A/AAAA: textual addresses; PTR/CNAME/NS: names (lower-case, no trailing dot);
  // TXT: one string per record, its character-strings concatenated.
  std::vector<std::string> records;
  std::vector<Mx> mx;  // MX only, sorted by preference
  uint32_t ttl = 0;
  bool ok() const { return status == Status::Ok; }
};

const char* to_string(Status s);

class Resolver {
 public:
  virtual ~Resolver() = default;
  virtual boost::asio::awaitable<Answer> query(std::string name, Type type) = 0;
};

}  // namespace digue::dns
