// Test harness for the network filters: builds a filter by its registry name from an options
// table and runs check() on an io_context with an in-memory resolver and store (fine in unit
// tests; the integration tests use nsd and LMDB). Header-only, for tests/filters/*.cpp.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "digue/config.hpp"
#include "digue/filter_registry.hpp"
#include "digue/store.hpp"
#include "tests/filters/fake_resolver.hpp"

namespace digue::test {

struct Net {
  Config config;
  SlotConfig slot;
  toml::table options;
  FakeResolver resolver;
  std::unique_ptr<Store> store = make_memory_store();
  Services services;
  DomainPolicy policy;
  std::string domain = "example.net";
  Envelope env;

  Net() {
    config.server.hostname = "mx.digue.test";
    services.hostname = "mx.digue.test";
    policy.name = domain;
    config.domains["example.net"] = policy;
    env.client_ip = "192.0.2.1";
  }
  FilterPtr build(const std::string& name) {
    slot.filter = name;
    const FilterInfo* info = find_filter(name);
    REQUIRE(info);
    return info->make(FilterBuildContext{config, slot, options});
  }
  FilterResult run(const FilterPtr& f) {
    services.resolver = &resolver;
    services.store = store.get();
    boost::asio::io_context io;
    FilterContext ctx{env, nullptr, domain, policy, services, io.get_executor()};
    auto fut = boost::asio::co_spawn(io, f->check(ctx), boost::asio::use_future);
    io.run();
    return fut.get();
  }
  std::string first_symbol(const FilterResult& r) {
    return r.symbols.empty() ? std::string() : r.symbols[0].name;
  }
};

}  // namespace digue::test
