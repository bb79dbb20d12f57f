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

  // Hostile shapes (what a sender can make the parser do), each against plain text of the
  // same size parsed in the same run: a ratio far above 1 is a parser hot spot. Messages up
  // to 256 kB are parsed on an SMTP I/O thread.
  auto parse_ms = [](const std::string& raw) {
    double t0 = cpu_us();
    digue::Message m(raw);
    m.facts();
    return (cpu_us() - t0) / 1e3;
  };
  auto sized = [](std::string unit, size_t n) {
    std::string out;
    while (out.size() < n) out += unit;
    return out;
  };
  const std::string plain_head = "Subject: x\r\nContent-Type: text/plain\r\n\r\n";
  struct Shape {
    const char* name;
    std::string raw;
  };
  std::vector<Shape> shapes;
  shapes.push_back({"7,000 URLs then text without a 'w' (240 kB)",
                    plain_head + sized("http://a.example/ ", 7000 * 18) + sized("x", 110000)});
  shapes.push_back({"200 kB of bare www. candidates", plain_head + sized("www.a.bc ", 200000)});
  shapes.push_back({"250 kB of RFC 2047 words in a Subject",
                    "Subject: " + sized("=?utf-8?q?a?= ", 250000) + "\r\n\r\nhi\r\n"});
  shapes.push_back({"200 kB of nested HTML tags",
                    "Content-Type: text/html\r\n\r\n" + sized("<div><b><i>", 200000)});
  {
    std::string nested;
    for (int d = 0; d < 60; ++d)
      nested += "Content-Type: multipart/mixed; boundary=b" + std::to_string(d) + "\r\n\r\n--b" +
                std::to_string(d) + "\r\n";
    shapes.push_back({"60 nested multiparts + 200 kB", nested + plain_head + sized("word ", 200000)});
  }
  std::printf("hostile shapes (parse CPU, ratio to plain text of the same size):\n");
  for (const auto& sh : shapes) {
    std::string ref = plain_head + sized("plain words of text ", sh.raw.size());
    double ref_ms = parse_ms(ref), ms = parse_ms(sh.raw);
    std::printf("  %-48s %8.2f ms  (plain %6.2f ms, ratio %.1f)\n", sh.name, ms, ref_ms,
                ref_ms > 0 ? ms / ref_ms : 0.0);
  }
  return 0;
}
