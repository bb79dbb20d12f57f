// Test harness for filters: builds one filter from a TOML options table and runs check() on
// an io_context, with a test envelope and message. Header-only, for tests/filters/*.cpp.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <exception>
#include <memory>
#include <string>
#include <string_view>

#include "digue/config.hpp"
#include "digue/filter_registry.hpp"
#include "digue/message.hpp"

namespace digue::test {

struct FilterHarness {
  Config config;
  SlotConfig slot;
  toml::table options;
  Envelope envelope;
  DomainPolicy policy;
  Services services;
  std::string domain = "example.test";
  FilterPtr filter;

  FilterHarness(FilterFactory make, std::string_view options_toml) {
    options = toml::parse(options_toml);
    slot.options = &options;
    filter = make(FilterBuildContext{config, slot, options});
    envelope.mail_from = {"sender", "sender.example"};
    envelope.rcpts.push_back({"user", "example.test"});
    policy.name = domain;
  }

  FilterResult run(const Message& message) {
    boost::asio::io_context io;
    FilterResult out;
    std::exception_ptr error;
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
          FilterContext ctx{envelope, &message, domain, policy, services, io.get_executor()};
          out = co_await filter->check(ctx);
        },
        [&](std::exception_ptr e) { error = e; });
    io.run();
    if (error) std::rethrow_exception(error);
    return out;
  }
  FilterResult run(std::string raw) {
    Message m(std::move(raw));
    return run(m);
  }
};

inline bool is_hit(const FilterResult& r) { return r.verdict == FilterResult::Verdict::Hit; }

}  // namespace digue::test
