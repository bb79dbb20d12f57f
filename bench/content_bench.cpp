// Content-filter benchmark: MIME parse + every content filter over the SpamAssassin corpus,
// single-threaded, CPU time per message (CLOCK_THREAD_CPUTIME_ID). No network: the SURBL
// filter gets an in-process resolver that answers NXDOMAIN at once, the checksum filter an
// in-memory store. Files are read before timing.
// Usage: content_bench [CORPUS_DIR]   (default: <repo>/../shared/data/corpus)
#include <time.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "digue/config.hpp"
#include "digue/filter_registry.hpp"
#include "digue/message.hpp"
#include "digue/mime.hpp"
#include "digue/resolver.hpp"
#include "digue/store.hpp"

namespace {

class NxResolver final : public digue::dns::Resolver {
 public:
  boost::asio::awaitable<digue::dns::Answer> query(std::string, digue::dns::Type) override {
    digue::dns::Answer a;
    a.status = digue::dns::Status::NxDomain;
    co_return a;
  }
};

double cpu_us() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  fs::path dir = argc > 1 ? fs::path(argv[1]) : fs::path(DIGUE_SOURCE_DIR "/../shared/data/corpus");
  std::vector<std::pair<std::string, std::string>> msgs;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file() || e.path().extension() == ".tsv") continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    msgs.emplace_back(e.path().filename().string(), ss.str());
  }
  std::sort(msgs.begin(), msgs.end());
  if (msgs.empty()) {
    std::fprintf(stderr, "no messages under %s\n", dir.c_str());
    return 1;
  }

  const std::string src = DIGUE_SOURCE_DIR;
  const std::pair<const char*, std::string> filters[] = {
      {"keywords", "rules = [\"" + src + "/rules/keywords.rules\"]\n"},
      {"checksum", ""},
      {"surbl", ""},
      {"scripts", ""},
      {"empty_email", ""},
      {"malformed_headers", ""},
      {"sender_complaints", "file = \"" + src + "/rules/sender_complaints.txt\"\n"},
  };
  digue::Config config;
  digue::SlotConfig slot;
  std::vector<toml::table> tables;
  std::vector<digue::FilterPtr> built;
  for (const auto& [name, opts] : filters) {
    tables.push_back(toml::parse(opts));
    const digue::FilterInfo* info = digue::find_filter(name);
    if (!info) {
      std::fprintf(stderr, "filter %s not registered\n", name);
      return 1;
    }
    built.push_back(info->make({config, slot, tables.back()}));
  }

  auto store = digue::make_memory_store();
  NxResolver resolver;
  digue::Services services;
  services.store = store.get();
  services.resolver = &resolver;
  digue::DomainPolicy policy;
  std::string domain = "example.test";
  digue::Envelope env;
  env.mail_from = {"sender", "example.org"};
  env.rcpts.push_back({"user", "example.test"});
  env.received_at = 1'700'000'000;

  boost::asio::io_context io;
  double total = 0, parse_total = 0, slowest = 0;
  std::string slowest_name;
  size_t hits = 0, bytes = 0;
  std::vector<std::string> hosts;  // every URL host name, for the registered-domain timing
  for (const auto& [name, raw] : msgs) {
    double t0 = cpu_us();
    digue::Message m(raw);
    m.facts();
    double t1 = cpu_us();
    for (const auto& u : m.facts().urls)
      if (!u.is_ip) hosts.push_back(u.host);
    for (const auto& f : built) {
      boost::asio::co_spawn(
          io,
          [&]() -> boost::asio::awaitable<void> {
            digue::FilterContext ctx{env, &m, domain, policy, services, io.get_executor()};
            auto r = co_await f->check(ctx);
            if (r.verdict == digue::FilterResult::Verdict::Hit) ++hits;
          },
          boost::asio::detached);
      io.run();
      io.restart();
    }
    double t2 = cpu_us();
    total += t2 - t0;
    parse_total += t1 - t0;
    bytes += raw.size();
    if (t2 - t0 > slowest) {
      slowest = t2 - t0;
      slowest_name = name;
    }
  }
  double mean = total / static_cast<double>(msgs.size());
  std::printf("messages: %zu (%.1f MB)\n", msgs.size(), static_cast<double>(bytes) / 1e6);
  std::printf("mean CPU per message: %.1f us (parse %.1f us, filters %.1f us)\n", mean,
              parse_total / static_cast<double>(msgs.size()),
              (total - parse_total) / static_cast<double>(msgs.size()));
  std::printf("throughput: %.0f msgs/s per core\n", 1e6 / mean);
  std::printf("slowest: %s %.0f us\n", slowest_name.c_str(), slowest);
  std::printf("filter hits: %zu\n", hits);

  // Public Suffix List look-ups alone (part of parse above), over the corpus's URL hosts.
  constexpr int kRounds = 20;
  size_t found = 0;
  digue::mime::registered_domain("warm.example.com");  // list loaded outside the timing
  double r0 = cpu_us();
  for (int k = 0; k < kRounds; ++k)
    for (const auto& h : hosts) found += digue::mime::registered_domain(h).size();
  double r1 = cpu_us();
  std::printf("registered_domain: %zu hosts x %d, %.3f us per call (result bytes %zu)\n",
              hosts.size(), kRounds, (r1 - r0) / static_cast<double>(hosts.size() * kRounds),
              found);
  return 0;
}
