// diguectl spf: an offline SPF check with the daemon's resolver; see digue/ctl.hpp.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "digue/ctl.hpp"
#include "digue/resolver.hpp"
#include "digue/spawn.hpp"
#include "digue/spf.hpp"
#include "digue/text.hpp"

namespace asio = boost::asio;

namespace digue::ctl {
namespace {

struct Check {
  std::string ip, mail_from, helo;
};

// Bytes, not UTF-8: DNS and SMTP data may be any octets; \u00XX keeps them lossless.
std::string json_string(std::string_view s) {
  return "\"" + text::json_escape(s, text::NonAscii::Escape) + "\"";
}

std::string strip_brackets(std::string s) {
  if (s.size() >= 2 && s.front() == '<' && s.back() == '>') s = s.substr(1, s.size() - 2);
  return s;
}

struct Outcome {
  spf::SpfResult result;
  std::string identity;
  std::string header;
  std::string detail;
};

asio::awaitable<Outcome> run_one(dns::Resolver& resolver, const Config& config,
                                 const Check& c, const net::Ip& ip) {
  spf::CheckOptions opts;
  opts.receiver = config.server.hostname;
  Outcome o;
  std::string mail_from = strip_brackets(c.mail_from);
  o.result = co_await spf::check_sender(resolver, ip, mail_from, c.helo, opts, &o.identity);
  o.header = spf::received_spf_header(o.result, ip, mail_from, c.helo, config.server.hostname,
                                      o.identity);
  std::string sender = mail_from.empty() ? "postmaster@" + c.helo : mail_from;
  o.detail = o.result.explanation.empty() ? spf::describe(o.result, ip, sender)
                                          : o.result.explanation;
  co_return o;
}

int run_batch(const Config& config, std::istream& in) {
  std::vector<Check> checks;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string field;
    while (std::getline(ss, field, '\t')) f.push_back(field);
    if (line.back() == '\t') f.emplace_back();
    if (f.size() != 3) {
      std::cerr << "diguectl spf --batch: line " << lineno
                << ": want IP<TAB>MAIL_FROM<TAB>HELO\n";
      return 2;
    }
    checks.push_back({f[0], f[1], f[2]});
  }
  asio::io_context io;
  auto resolver = dns::make_resolver(io.get_executor(), config.dns);
  int status = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (const auto& c : checks) {
          auto ip = net::Ip::parse(c.ip);
          std::string out = "{\"ip\": " + json_string(c.ip) +
                            ", \"mail_from\": " + json_string(c.mail_from) +
                            ", \"helo\": " + json_string(c.helo);
          if (!ip) {
            out += ", \"error\": \"bad client IP\"}";
            status = 2;
          } else {
            Outcome o = co_await run_one(*resolver, config, c, *ip);
            out += ", \"result\": " + json_string(spf::to_string(o.result.result)) +
                   ", \"identity\": " + json_string(o.identity) +
                   ", \"explanation\": " + json_string(o.result.explanation) +
                   ", \"problem\": " + json_string(o.result.problem) +
                   ", \"mechanism\": " + json_string(o.result.mechanism) +
                   ", \"dns_lookups\": " + std::to_string(o.result.dns_lookups) +
                   ", \"header\": " + json_string(o.header) + "}";
          }
          std::cout << out << "\n" << std::flush;
        }
      },
      rethrow_escaped());
  io.run();
  return status;
}

}  // namespace

int spf(const Config& config, const Args& args) {
  if (args.size() == 2 && args[0] == "--batch") {
    if (args[1] == "-") return run_batch(config, std::cin);
    std::ifstream in(args[1]);
    if (!in) {
      std::cerr << "diguectl spf: cannot read " << args[1] << "\n";
      return 2;
    }
    return run_batch(config, in);
  }
  if (args.size() != 3) {
    std::cerr << "usage: diguectl spf CLIENT_IP MAIL_FROM HELO | spf --batch FILE\n";
    return 2;
  }
  auto ip = net::Ip::parse(args[0]);
  if (!ip) {
    std::cerr << "diguectl spf: not an IP address: " << args[0] << "\n";
    return 2;
  }
  asio::io_context io;
  auto resolver = dns::make_resolver(io.get_executor(), config.dns);
  Outcome o;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        // A named Check: GCC 12 destroys a braced temporary in a co_await expression twice.
        Check check{args[0], args[1], args[2]};
        o = co_await run_one(*resolver, config, check, *ip);
      },
      rethrow_escaped());
  io.run();
  std::cout << spf::to_string(o.result.result) << "\n" << o.detail << "\n" << o.header << "\n";
  return 0;
}

}  // namespace digue::ctl
