// SPF (RFC 7208): check_host() over the DNS Resolver, record parsing, macro expansion and the
// Received-SPF header.
// Contract:
// - check_host never throws on data from the network: every DNS or syntax problem is a
//   result (temperror/permerror) with a short `problem` text.
// - Limits (RFC 7208 4.6.4): at most 10 mechanisms/modifiers that query DNS per check
//   (include, a, mx, ptr, exists, redirect), more is permerror; at most 2 "void" lookups
//   (NXDOMAIN or no answer), more is permerror; an "mx" with more than 10 MX names is
//   permerror; "ptr" and %{p} look at the first 10 PTR names only.
// - The explanation (exp=) is fetched only for a final "fail" of the checked domain (never
//   for an include's), and any problem with it is ignored (RFC 7208 6.2).
// - Untrusted input: records, sender, HELO and DNS answers all come from strangers; strings
//   put into the Received-SPF header are sanitised (no CR/LF, no non-ASCII, quoted).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "digue/net.hpp"
#include "digue/resolver.hpp"

namespace digue::spf {

enum class Result : uint8_t { None, Neutral, Pass, Fail, SoftFail, TempError, PermError };
const char* to_string(Result r);  // "none", "neutral", "pass", ... (the RFC words)

struct SpfResult {
  Result result = Result::None;
  std::string domain;       // the domain checked (the identity's domain)
  std::string mechanism;    // the mechanism that decided, e.g. "-all", "ip4:192.0.2.0/24"
  std::string explanation;  // fail only, from exp=; empty when none was usable
  std::string problem;      // temperror/permerror: what went wrong
  int dns_lookups = 0;      // DNS-querying mechanisms and modifiers evaluated
  int void_lookups = 0;
};

struct CheckOptions {
  std::string receiver = "unknown";  // %{r}: our host name
  int64_t timestamp = 0;             // %{t}; 0: now
  int max_dns_mechanisms = 10;
  int max_void_lookups = 2;
};

// check_host(<ip>, <domain>, <sender>) with the HELO name for %{h}.
boost::asio::awaitable<SpfResult> check_host(dns::Resolver& resolver, const net::Ip& ip,
                                             std::string domain, std::string sender,
                                             std::string helo, CheckOptions options = {});

// The identity an SMTP receiver checks: MAIL FROM's domain, or, for the null sender,
// the HELO name (sender "postmaster@HELO"). A MAIL FROM without a local part uses
// "postmaster". `identity` is set to "mailfrom" or "helo".
boost::asio::awaitable<SpfResult> check_sender(dns::Resolver& resolver, const net::Ip& ip,
                                               std::string mail_from, std::string helo,
                                               CheckOptions options = {},
                                               std::string* identity = nullptr);

// The RFC 7208 9.1 header line, without the trailing CRLF:
// "Received-SPF: fail (mx.example.net: domain of a@b.example does not designate 192.0.2.1 as
//  permitted sender) client-ip=192.0.2.1; envelope-from="a@b.example"; helo=h.example;
//  receiver=mx.example.net; identity=mailfrom; mechanism="-all""
std::string received_spf_header(const SpfResult& r, const net::Ip& ip,
                                std::string_view mail_from, std::string_view helo,
                                std::string_view receiver, std::string_view identity);

// A human sentence for the result (the comment in the header, diguectl's detail line).
std::string describe(const SpfResult& r, const net::Ip& ip, std::string_view sender);

// ---- Record syntax (exposed for tests) ------------------------------------------------

enum class Mech : uint8_t { All, Include, A, Mx, Ptr, Ip4, Ip6, Exists };

struct Mechanism {
  char qualifier = '+';    // + - ~ ?
  Mech kind = Mech::All;
  std::string domain_spec;  // include/a/mx/ptr/exists; empty: the current domain
  net::Ip network;          // ip4/ip6 (an ip6 network is never mapped to IPv4)
  int cidr4 = 32;           // a, mx, ip4
  int cidr6 = 128;          // a, mx, ip6
  std::string text;         // the term as written
};

struct Record {
  std::vector<Mechanism> mechanisms;
  std::optional<std::string> redirect;  // domain-spec
  std::optional<std::string> exp;       // domain-spec
};

// True when `txt` is an SPF version 1 record ("v=spf1" alone or followed by a space).
bool is_spf_record(std::string_view txt);
// Parses a whole record (all terms, before any evaluation: RFC 7208 4.6). On a syntax error,
// returns nullopt and sets `error`.
std::optional<Record> parse_record(std::string_view txt, std::string& error);

// ---- Macros (RFC 7208 7) ----------------------------------------------------------------

struct MacroContext {
  std::string sender;         // s
  std::string local;          // l
  std::string sender_domain;  // o
  std::string domain;         // d
  net::Ip ip;                 // i, c, v
  std::string validated;      // p ("unknown" when none)
  std::string helo;           // h
  std::string receiver;       // r (explanations only)
  int64_t timestamp = 0;      // t (explanations only)
};

// Syntax check of a macro-string (exp_text: an explanation, where spaces and c/r/t are
// allowed).
bool valid_macro_string(std::string_view text, bool exp_text);
// Syntax check of a domain-spec: a macro-string ending in a macro or in "." toplabel.
bool valid_domain_spec(std::string_view text);
// True when the string uses %{p} (expanding it needs DNS lookups first).
bool uses_p_macro(std::string_view text);
// Expands; nullopt on a syntax error.
std::optional<std::string> expand(std::string_view text, const MacroContext& ctx,
                                  bool exp_text);
// An expanded domain-spec made ready for a query (RFC 7208 7.3: cut leftmost labels past
// 253 characters, drop a trailing dot); empty when it cannot be queried.
std::string target_name(std::string_view expanded);

}  // namespace digue::spf
