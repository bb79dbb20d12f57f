// Test harness for pipeline tests: one SMTP session's PipelineRun over a real Pipeline built
// from a TOML text, with an in-memory store, driven the way Server::Session drives it (RCPT
// by RCPT, then DATA, then the after_verdict / after_message hooks of an accepted message).
// Header-only, for tests/filters/*.cpp.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "digue/config.hpp"
#include "digue/pipeline.hpp"
#include "digue/store.hpp"
#include "tests/filters/counting_store.hpp"

namespace digue::test {

struct Session {
  std::shared_ptr<const Config> config;
  std::shared_ptr<const Pipeline> pipeline;
  test::CountingStore store;  // greylist records one triplet per check (an update)
  Services services;
  boost::asio::io_context io;
  std::unique_ptr<PipelineRun> run;
  Envelope env;

  explicit Session(const std::string& toml) {
    config = parse_config(toml, "pipeline-rcpt-test.toml");
    pipeline = Pipeline::build(config);
    services.store = &store;
    run = std::make_unique<PipelineRun>(pipeline, services, io.get_executor());
    env.session_id = "s1";
    env.client_ip = "192.0.2.9";
    env.mail_from = {"bob", "sender.example"};
  }
  Verdict evaluate(const std::string& domain, Phase upto) {
    const DomainPolicy* policy = config->domain(domain);
    REQUIRE(policy);
    auto fut = boost::asio::co_spawn(io, run->evaluate(*policy, upto), boost::asio::use_future);
    io.restart();
    io.run();
    return fut.get();
  }
  // What Server::Session::on_rcpt does: the recipient joins the envelope, the rcpt-phase
  // chain runs, and a refused recipient leaves it again.
  Verdict rcpt(const Address& a) {
    auto e = std::make_shared<Envelope>(env);
    e->rcpts.push_back(a);
    run->set_envelope(e);
    Verdict v = evaluate(a.domain, Phase::Rcpt);
    if (v.decision == Decision::Reject || v.decision == Decision::Tempfail) {
      run->set_envelope(std::make_shared<Envelope>(env));
      run->forget_rcpt(a);
    } else {
      env.rcpts.push_back(a);
    }
    return v;
  }
  // What Server::Session does after DATA: every recipient domain's verdict over the whole
  // chain, then, when a domain accepted the message (as spam or not), the learning hooks.
  std::map<std::string, Verdict> data(const std::string& raw) {
    auto e = std::make_shared<Envelope>(env);
    run->set_envelope(e);
    run->set_message(std::make_shared<Message>(raw));
    std::map<std::string, Verdict> verdicts;
    for (const Address& a : env.rcpts)
      if (!verdicts.count(a.domain)) verdicts[a.domain] = evaluate(a.domain, Phase::Data);
    std::vector<const Verdict*> all;
    bool accepted = false;
    for (const auto& entry : verdicts) {
      all.push_back(&entry.second);
      Decision d = entry.second.decision;
      accepted = accepted || d == Decision::Accept || d == Decision::Spam;
    }
    if (!accepted) return verdicts;
    for (const auto& entry : verdicts)
      run->after_verdict(*config->domain(entry.first), entry.second);
    run->after_message(*config->domain(verdicts.begin()->first), all);
    return verdicts;
  }
  // A new connection from the same client (connect-phase results are checked afresh).
  void reconnect() {
    run = std::make_unique<PipelineRun>(pipeline, services, io.get_executor());
    env.rcpts.clear();
  }
  uint64_t runs(const std::string& filter) const {
    for (const Slot& s : pipeline->slots())
      if (s.config.filter == filter) return s.stats->total.load();
    return 0;
  }
  const RanSymbol* symbol(const Verdict& v, const std::string& name) const {
    for (const auto& s : v.symbols)
      if (s.symbol.name == name) return &s;
    return nullptr;
  }
};

}  // namespace digue::test
