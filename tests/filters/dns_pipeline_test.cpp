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
#include "digue/headers.hpp"
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

namespace {
const char* kSpfChain = R"([pipeline]
order = ["spf"]
[filters.spf]
action = "spam"
on_error = "tempfail"
)";
}  // namespace

TEST_CASE("pipeline: an SPF DNS outage tempfails with on_error = tempfail, and is counted",
          "[pipeline][spf]") {
  Chain c(kSpfChain);
  c.resolver.fail("example.org", dns::Type::TXT, dns::Status::TempError);
  Verdict v = c.evaluate(Phase::Mail);
  CHECK(v.decision == Decision::Tempfail);
  CHECK(c.errors("spf") == 1);
  REQUIRE(Chain::symbol(v, "SPF_TEMPERROR"));
  CHECK_FALSE(Chain::symbol(v, "SPF_FAIL"));  // not the SPF result "fail"

  auto config = std::string(kSpfChain);
  config.replace(config.find("tempfail"), 8, "continue");
  Chain goes_on(config);
  goes_on.resolver.fail("example.org", dns::Type::TXT, dns::Status::TempError);
  Verdict g = goes_on.evaluate(Phase::Mail);
  CHECK(g.decision == Decision::Accept);
  CHECK(goes_on.errors("spf") == 1);
  REQUIRE(g.traces.size() == 1);  // the temperror is still written into the message
  CHECK(g.traces[0].field == "Received-SPF");
}

TEST_CASE("pipeline: the SPF result reaches the message as its Received-SPF header",
          "[pipeline][spf]") {
  Chain c(kSpfChain);
  c.resolver.add("example.org", dns::Type::TXT, {"v=spf1 ip4:192.0.2.0/24 -all"});
  Verdict v = c.evaluate(Phase::Mail);
  CHECK(v.decision == Decision::Accept);
  c.env.queue_id = "QID1";
  std::string block = headers::trace_block(c.env, "mx.digue.test", c.env.rcpts, v, false);
  INFO(block);
  for (size_t at; (at = block.find("\r\n\t")) != std::string::npos;)
    block.replace(at, 3, " ");  // unfolded
  // RFC 7208 9.1: above our Received: line, result first, then the key=value pairs.
  CHECK(block.rfind("Received-SPF: pass (mx.digue.test: domain of bob@example.org designates "
                    "192.0.2.1 as permitted sender)",
                    0) == 0);
  size_t received = block.find("\r\nReceived: from ");
  REQUIRE(received != std::string::npos);
  std::string spf = block.substr(0, received);
  CHECK(spf.find("client-ip=192.0.2.1;") != std::string::npos);
  CHECK(spf.find("identity=mailfrom;") != std::string::npos);
  CHECK(block.find("X-Digue-Spf") == std::string::npos);
}
