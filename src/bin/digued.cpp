// digued: the SMTP filtering relay daemon.
//   digued --config FILE                  run (foreground; systemd Type=notify)
//   digued --config FILE --check-config   validate and exit 0/1
//   digued --config FILE --print-pipeline print the effective filter order and exit
// Signals: SIGHUP reloads the config (sessions keep the pipeline they started with),
// SIGTERM/SIGINT stop accepting, let sessions finish up to server.shutdown_grace, keep the
// spool.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <cstring>
#include <iostream>
#include <thread>

#include "digue/config.hpp"
#include "digue/pipeline.hpp"
#include "digue/queue.hpp"
#include "digue/rcpt_verify.hpp"
#include "digue/server.hpp"
#include "digue/spool.hpp"
#include "digue/store.hpp"

using namespace digue;

namespace {

void usage() {
  std::cerr << "usage: digued --config FILE [--check-config | --print-pipeline]\n";
}

struct Loaded {
  std::shared_ptr<const Config> config;
  std::shared_ptr<const Pipeline> pipeline;
};

Loaded load(const std::string& path) {
  Loaded l;
  l.config = load_config(path);
  l.pipeline = Pipeline::build(l.config);
  return l;
}

std::string describe_error(const std::string& path, const ConfigError& e) {
  return fmt::format("{}:{}: {}: {}", path, e.line, e.key, e.what());
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check = false, print = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--config" || a == "-c") && i + 1 < argc) config_path = argv[++i];
    else if (a == "--check-config") check = true;
    else if (a == "--print-pipeline") print = true;
    else if (a == "--version") {
      std::cout << "digued " << DIGUE_VERSION << "\n";
      return 0;
    } else {
      usage();
      return 2;
    }
  }
  if (config_path.empty()) {
    usage();
    return 2;
  }
  Loaded loaded;
  try {
    loaded = load(config_path);
    // The certificate is checked too: a reload would be refused for it.
    if (check) Server::check_tls(loaded.config->server);
  } catch (const ConfigError& e) {
    std::cerr << "digued: config error: " << describe_error(config_path, e) << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "digued: config error: " << config_path << ": " << e.what() << "\n";
    return 1;
  }
  if (check) {
    std::cout << "config OK: " << config_path << " (" << loaded.config->domains.size()
              << " domain(s), " << loaded.pipeline->slots().size() << " filter slot(s))\n";
    return 0;
  }
  if (print) {
    std::cout << loaded.pipeline->describe();
    return 0;
  }

  auto logger = spdlog::stderr_color_mt("digue");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(spdlog::level::from_str(loaded.config->log.level));

  // Signals are taken by one thread with sigwait; every other thread blocks them.
  sigset_t sigs;
  sigemptyset(&sigs);
  for (int s : {SIGHUP, SIGTERM, SIGINT, SIGUSR1}) sigaddset(&sigs, s);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  try {
    const StoreConfig& sc = loaded.config->store;
    LmdbOptions lo;
    lo.map_size = sc.map_size;
    lo.sync = sc.sync == "commit" ? LmdbSync::Commit
              : sc.sync == "full" ? LmdbSync::Full
                                  : LmdbSync::Periodic;
    lo.sync_interval = std::chrono::milliseconds(sc.sync_interval_ms);
    auto store = make_lmdb_store(sc.dir, lo);
    Spool spool(loaded.config->spool);
    Queue queue(loaded.config, spool, store.get());
    Server server(loaded.config, loaded.pipeline, spool, queue, store.get());
    server.bind();
    queue.start();
    std::string listening;
    for (const auto& e : loaded.config->server.listen) listening += " " + e.str();
    for (const auto& e : loaded.config->server.listen_tls) listening += " " + e.str() + "(tls)";
    spdlog::info("digued {} ready: hostname={} listen={} domains={} filters={}", DIGUE_VERSION,
                 loaded.config->server.hostname, listening, loaded.config->domains.size(),
                 loaded.pipeline->slots().size());
    sd_notify(0, "READY=1");

    // The running pipeline, for its per-filter counters (replaced by a reload; only this
    // signal thread reads or replaces it).
    std::shared_ptr<const Pipeline> pipeline = loaded.pipeline;
    std::thread signals([&] {
      for (;;) {
        int sig = 0;
        sigwait(&sigs, &sig);
        if (sig == SIGHUP) {
          sd_notify(0, "RELOADING=1");
          try {
            Loaded fresh = load(config_path);
            server.reload(fresh.config, fresh.pipeline);
            pipeline = fresh.pipeline;
            queue.reload(fresh.config);
            spdlog::info("config reloaded: {} filter slot(s), {} domain(s)",
                         fresh.pipeline->slots().size(), fresh.config->domains.size());
          } catch (const ConfigError& e) {
            spdlog::error("reload refused, keeping the running config: {}",
                          describe_error(config_path, e));
          } catch (const std::exception& e) {
            spdlog::error("reload refused, keeping the running config: {}", e.what());
          }
          sd_notify(0, "READY=1");
        } else if (sig == SIGUSR1) {
          const auto& s = server.stats();
          const auto& q = queue.stats();
          spdlog::info(
              "stats connections={} active={} messages={} accepted={} rejected={} "
              "tempfailed={} spool_errors={} data_memory={} data_memory_refused={} "
              "delivered={} deferred={} quarantined={} quarantine_fallbacks={} dsn={} "
              "queue_duplicates={} spool_commits={} spool_batches={}",
              s.connections.load(), s.active.load(), s.messages.load(), s.accepted.load(),
              s.rejected.load(), s.tempfailed.load(), s.spool_errors.load(), server.data_memory(),
              s.data_memory_refused.load(), q.delivered.load(), q.deferred.load(),
              q.quarantined.load(), q.quarantine_fallbacks.load(), q.dsn_sent.load(),
              q.duplicates.load(), spool.commits(), spool.batches());
          const auto& v = server.verify_stats();
          spdlog::info("stats rcpt_verify verified={} rejected={} tempfailed={} cache_hits={} "
                       "callouts={} store_errors={} limited={} held={}",
                       v.verified.load(), v.rejected.load(), v.tempfailed.load(),
                       v.cache_hits.load(), v.callouts.load(), v.store_errors.load(),
                       v.limited.load(), v.held.load());
          // Since the pipeline was built (start or the last reload).
          for (const auto& slot : pipeline->slots())
            spdlog::info("stats filter={} total={} hit={} pass={} error={} timeout={}",
                         slot.config.filter, slot.stats->total.load(), slot.stats->hit.load(),
                         slot.stats->pass.load(), slot.stats->error.load(),
                         slot.stats->timeout.load());
        } else {
          sd_notify(0, "STOPPING=1");
          spdlog::info("signal {}: stopping", strsignal(sig));
          server.stop();
          return;
        }
      }
    });
    server.run();
    signals.join();
    queue.stop();
    spdlog::info("stopped");
  } catch (const ConfigError& e) {
    spdlog::critical("{}", describe_error(config_path, e));
    return 1;
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }
  return 0;
}
