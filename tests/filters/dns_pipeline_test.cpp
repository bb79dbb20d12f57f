// The DNS filters inside a real Pipeline over an in-memory resolver: a DNS failure reaches the
// slot's on_error and the error counter (never a silent "not listed"), and the SPF result
// reaches the message as a Received-SPF trace header.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "digue/config.hpp"
#include "digue/pipeline.hpp"
#include "tests/filters/fake_resolver.hpp"

using namespace digue;

namespace {

struct Chain {
  std::shared_ptr<const Config> config;
  std::shared_ptr<const Pipeline> pipeline;
  test::FakeResolver resolver;
  Services services;
  boost::asio::io_context io;
  Envelope env;

  explicit Chain(const std::string& toml) {
    config = parse_config(toml + "[domains.\"example.test\"]\n", "dns-pipeline-test.toml");
    pipeline = Pipeline::build(config);
    services.resolver = &resolver;
    services.hostname = "mx.digue.test";
    env.client_ip = "192.0.2.1";
    env.helo = "client.example.org";
    env.mail_from = {"bob", "example.org"};
    env.rcpts.push_back({"u", "example.test"});
  }
  Verdict evaluate(Phase upto) {
    PipelineRun run(pipeline, services, io.get_executor());
    run.set_envelope(std::make_shared<Envelope>(env));
    const DomainPolicy* policy = config->domain("example.test");
    REQUIRE(policy);
    auto fut = boost::asio::co_spawn(io, run.evaluate(*policy, upto), boost::asio::use_future);
    io.restart();
    io.run();
    return fut.get();
  }
  uint64_t errors(const std::string& filter) const {
    for (const Slot& s : pipeline->slots())
      if (s.config.filter == filter) return s.stats->error.load();
    return 0;
  }
  static const RanSymbol* symbol(const Verdict& v, const std::string& name) {
    for (const auto& s : v.symbols)
      if (s.symbol.name == name) return &s;
    return nullptr;
  }
};

}  // namespace

TEST_CASE("pipeline: every DNSBL zone refused is an error: on_error and the counter apply",
          "[pipeline][rbl]") {
  Chain c(R"([pipeline]
order = ["rbl"]
[filters.rbl]
action = "spam"
on_error = "tempfail"
zones = ["a.test", "b.test"]
)");
  c.resolver.add("1.2.0.192.a.test", dns::Type::A, {"127.255.255.254"});
  c.resolver.add("1.2.0.192.b.test", dns::Type::A, {"127.255.255.255"});
  Verdict v = c.evaluate(Phase::Connect);
  CHECK(v.decision == Decision::Tempfail);
  CHECK(c.errors("rbl") == 1);
  REQUIRE(Chain::symbol(v, "RBL_REFUSED"));
  CHECK(Chain::symbol(v, "RBL_REFUSED")->symbol.evidence == "refused: a.test b.test");
  CHECK(Chain::symbol(v, "RBL_REFUSED")->symbol.score == 0.0);
  CHECK_FALSE(Chain::symbol(v, "RBL_FAIL"));
}
