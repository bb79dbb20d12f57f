// diguectl scan: the data-phase pipeline run offline on one message file, like
// `spamassassin -t`: each filter's result with its evidence, then the verdict.
#include <fmt/format.h>

#include <boost/asio.hpp>
#include <iostream>

#include "digue/ctl.hpp"
#include "digue/pipeline.hpp"
#include "digue/resolver.hpp"
#include "digue/smtp_protocol.hpp"
#include "digue/spawn.hpp"
#include "digue/store.hpp"
#include "digue/text.hpp"

namespace asio = boost::asio;

namespace digue::ctl {

namespace {
std::optional<Address> parse_addr(const std::string& s) {
  std::string err;
  // "" is the null reverse-path, as "<>" is.
  auto p = smtp::parse_path_and_params(!s.empty() && s.front() == '<' ? s : "<" + s + ">", true, &err);
  if (!p) return std::nullopt;
  return p->address;
}
}  // namespace

int scan(const Config& config_in, const Args& args) {
  std::string file, client_ip = "127.0.0.1", helo = "localhost";
  std::optional<Address> from = Address{}, rcpt;
  bool json = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) throw std::runtime_error(a + " needs a value");
      return args[++i];
    };
    if (a == "--json") json = true;
    else if (a == "--client-ip") client_ip = value();
    else if (a == "--helo") helo = value();
    else if (a == "--from") {
      from = parse_addr(value());
      if (!from) throw std::runtime_error("bad --from address");
    } else if (a == "--rcpt") {
      rcpt = parse_addr(value());
      if (!rcpt || rcpt->empty()) throw std::runtime_error("bad --rcpt address");
    } else if (file.empty() && (a.empty() || a[0] != '-')) file = a;
    else throw std::runtime_error("unknown option " + a);
  }
  if (file.empty()) {
    std::cerr << "usage: diguectl --config FILE scan MESSAGE.eml [--json] [--client-ip IP] "
                 "[--helo NAME] [--from ADDR] [--rcpt ADDR]\n";
    return 2;
  }
  auto bytes = text::read_file(file);
  if (!bytes) {
    std::cerr << "diguectl: cannot read " << file << "\n";
    return 1;
  }
  // A recipient domain that is not configured is scanned with the default policy.
  auto config = std::make_shared<Config>(config_in);
  for (auto& slot : config->pipeline) slot.options = &config->filter_options[slot.filter];
  if (!rcpt) {
    std::string d = config->domains.empty() ? "example.invalid" : config->domains.begin()->first;
    rcpt = Address{"postmaster", d};
  }
  if (!config->domain(rcpt->domain)) {
    DomainPolicy p;
    p.name = rcpt->domain;
    config->domains[p.name] = p;
  }
  auto pipeline = Pipeline::build(config);
  const DomainPolicy& policy = *config->domain(rcpt->domain);

  asio::io_context io;
  // The filters read the production store (Bayes model, lists) but their writes (bulk
  // counters, greylist triplets, bans) stay in an overlay: a scan changes nothing.
  std::unique_ptr<Store> store, overlay;
  try {
    store = make_lmdb_store(config->store.dir, config->store.map_size);
    overlay = make_overlay_store(*store);
  } catch (const std::exception& e) {
    std::cerr << "diguectl: warning: store unavailable (" << e.what() << ")\n";
  }
  asio::thread_pool workers(1);
  Services services;
  services.store = overlay.get();
  services.workers = &workers;
  services.hostname = config->server.hostname;
  std::unique_ptr<dns::Resolver> resolver;
  try {
    resolver = dns::make_resolver(io.get_executor(), config->dns);
    services.resolver = resolver.get();
  } catch (const std::exception& e) {
    std::cerr << "diguectl: warning: no resolver (" << e.what() << ")\n";
  }
  auto env = std::make_shared<Envelope>();
  env->client_ip = client_ip;
  env->helo = helo;
  env->esmtp = true;
  env->mail_from = *from;
  env->rcpts.push_back(*rcpt);
  env->queue_id = "scan";
  env->received_at = static_cast<int64_t>(std::time(nullptr));
  auto msg = std::make_shared<Message>(text::as_received(*bytes));
  PipelineRun run(pipeline, services, io.get_executor());
  run.set_envelope(env);
  run.set_message(msg);
  Verdict v;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> { v = co_await run.evaluate(policy, Phase::Data); },
                 rethrow_escaped());
  io.run();
  const auto& facts = msg->facts();

  if (json) {
    std::string out = fmt::format(
        "{{\"file\": \"{}\", \"score\": {:.3f}, \"required\": {:.1f}, \"decision\": \"{}\", "
        "\"deciding_filter\": \"{}\", \"whitelisted\": {}, \"symbols\": [",
        text::json_escape(file), v.score, v.required, to_string(v.decision),
        text::json_escape(v.deciding_filter), v.whitelisted ? "true" : "false");
    for (size_t i = 0; i < v.symbols.size(); ++i) {
      const auto& s = v.symbols[i];
      out += fmt::format("{}{{\"name\": \"{}\", \"score\": {:.3f}, \"filter\": \"{}\", "
                         "\"counted\": {}, \"evidence\": \"{}\"}}",
                         i ? ", " : "", text::json_escape(s.symbol.name), s.symbol.score,
                         text::json_escape(s.filter), s.counted ? "true" : "false",
                         text::json_escape(s.symbol.evidence));
    }
    out += "], \"filters\": [";
    for (size_t i = 0; i < v.timings.size(); ++i)
      out += fmt::format("{}{{\"name\": \"{}\", \"time_us\": {}}}", i ? ", " : "",
                         text::json_escape(v.timings[i].first), v.timings[i].second.count());
    out += fmt::format("], \"mime\": {{\"parts\": {}, \"attachments\": {}, \"urls\": {}, "
                       "\"defects\": {}}}}}",
                       facts.leaf_count, facts.attachments.size(), facts.urls.size(),
                       facts.defects.size());
    std::cout << out << "\n";
  } else {
    std::cout << "file:     " << file << "\n";
    std::cout << "envelope: client=" << client_ip << " helo=" << helo << " from=<"
              << env->mail_from.str() << "> rcpt=<" << rcpt->str() << ">\n";
    std::cout << fmt::format("mime:     {} part(s), {} attachment(s), {} URL(s), {} defect(s)\n",
                             facts.leaf_count, facts.attachments.size(), facts.urls.size(),
                             facts.defects.size());
    std::cout << "filters (in order):\n";
    for (const auto& [name, us] : v.timings) {
      std::string syms;
      for (const auto& s : v.symbols)
        if (s.filter == name)
          syms += fmt::format(" {}={:.2f}{}{}", s.symbol.name, s.symbol.score,
                              s.counted ? "" : "(not counted)",
                              s.symbol.evidence.empty() ? "" : " [" + s.symbol.evidence + "]");
      std::cout << fmt::format("  {:<20} {:>7} us {}\n", name, us.count(), syms.empty() ? " -" : syms);
    }
    for (const auto& d : v.dry_run) std::cout << "  dry-run: " << d << "\n";
    std::cout << fmt::format("verdict:  {} score={:.2f} required={:.1f}{}{}\n",
                             to_string(v.decision), v.score, v.required,
                             v.deciding_filter.empty() ? "" : " filter=" + v.deciding_filter,
                             v.whitelisted ? " whitelisted (" + v.whitelist_reason + ")" : "");
  }
  return 0;
}

}  // namespace digue::ctl
