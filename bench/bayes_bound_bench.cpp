// How big a Bayes model gets at the expire bounds, and what bounding it costs: fills an LMDB
// store with synthetic records at ExpireLimits' defaults (2,000,000 tokens, 200,000 token
// lists of 227 hashes — the corpus' mean —, 2,000,000 seen markers, spread over the 180 days model_stale_days keeps),
// then over them by a tenth, and times Classifier::expire (as digued runs it with autolearn,
// and the digue-bayes-train timer). Prints data.mdb size, expire wall/CPU time, and the peak
// RSS of the process. Options: --scale F (default 1.0) multiplies every count; --dir DIR.
//   cmake -S . -B build-bench -G Ninja -DDIGUE_BENCH=ON && cmake --build build-bench
//   build-bench/bayes_bound_bench [--scale 0.1]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "digue/bayes.hpp"
#include "digue/store.hpp"
#include "src/bayes_records.hpp"

using namespace digue;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

long peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;
}

double mb(uintmax_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

// Writes n token records, lists token lists and markers seen markers (lists of them carry a
// list), days spread over the 180 days before today (model_stale_days); the messages with a
// list learnt in the newest gram_days days also get a byte 4-gram list (2,350 grams, the
// corpus' mean).
void fill(Store& store, size_t tokens, size_t lists, size_t markers, uint32_t today,
          uint64_t seed, uint32_t gram_days) {
  using namespace bayes::records;
  std::mt19937_64 rng(seed);
  std::vector<Store::Op> ops;
  auto flush = [&] {
    store.apply(ops);
    ops.clear();
  };
  for (size_t i = 0; i < tokens; ++i) {
    Counts c;
    c.spam = static_cast<uint32_t>(rng() % 20);
    c.ham = static_cast<uint32_t>(rng() % 20) + 1;
    c.day = today - static_cast<uint32_t>(rng() % 180);
    c.weight = 0.01f;
    ops.push_back({Store::Op::Kind::Put, bayes::token_key(rng()), encode_counts(c)});
    if (ops.size() == 20000) flush();
  }
  std::vector<uint64_t> hashes(227);
  for (size_t i = 0; i < markers; ++i) {
    uint32_t day = today - static_cast<uint32_t>(rng() % 180);
    std::vector<uint64_t> list;
    if (i < lists) {
      for (auto& h : hashes) h = rng();
      std::sort(hashes.begin(), hashes.end());
      list = hashes;
    }
    const std::string id = hex64(rng()) + hex64(rng());
    ops.push_back({Store::Op::Kind::Put, std::string(bayes::kSeenPrefix) + id,
                   encode_seen(rng() % 3 ? 'S' : 'H', day, list)});
    if (!list.empty() && today - day < gram_days) {
      std::vector<uint32_t> grams(2350);
      for (auto& g : grams) g = static_cast<uint32_t>(rng() >> (64 - bayes::kGramBits));
      ops.push_back({Store::Op::Kind::Put, std::string(bayes::kGramPrefix) + id,
                     encode_grams(std::move(grams))});
    }
    if (ops.size() == 5000) flush();
  }
  flush();
  store.put(bayes::kMetaKey, "1000000 1000000");
}

}  // namespace

int main(int argc, char** argv) {
  double scale = 1.0;
  std::string dir;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--scale" && i + 1 < argc)
      scale = std::atof(argv[++i]);
    else if (a == "--dir" && i + 1 < argc)
      dir = argv[++i];
    else {
      std::fprintf(stderr, "usage: bayes_bound_bench [--scale F] [--dir DIR]\n");
      return 2;
    }
  }
  if (dir.empty()) {
    char tmpl[] = "/tmp/digue-bound-bench-XXXXXX";
    dir = mkdtemp(tmpl);
  }
  bayes::ExpireLimits lim;  // the defaults
  auto n = [&](size_t v) { return static_cast<size_t>(static_cast<double>(v) * scale); };
  lim.max_tokens = n(lim.max_tokens);
  lim.max_lists = n(lim.max_lists);
  lim.max_seen = n(lim.max_seen);
  lim.max_gram_lists = n(lim.max_gram_lists);
  // Gram lists for the newest days that hold max_gram_lists of the lists (days are uniform).
  const auto gram_days = static_cast<uint32_t>(180.0 * static_cast<double>(lim.max_gram_lists) /
                                               static_cast<double>(lim.max_lists));
  const uint32_t today = bayes::Classifier::today();
  LmdbOptions opt;
  opt.map_size = size_t{16} << 30;
  opt.sync = LmdbSync::Periodic;
  auto store = make_lmdb_store(dir, opt);
  bayes::Classifier c(*store);
  auto t0 = Clock::now();
  fill(*store, lim.max_tokens, lim.max_lists, lim.max_seen, today, 1, gram_days);
  std::printf("filled at the bounds: %zu tokens, %zu token lists, %zu seen markers, %llu gram "
              "lists in %.1f s\n",
              lim.max_tokens, lim.max_lists, lim.max_seen,
              static_cast<unsigned long long>(c.stats().gram_lists),
              std::chrono::duration<double>(Clock::now() - t0).count());
  store->sync();
  std::printf("data.mdb at the bounds: %.0f MB\n", mb(fs::file_size(fs::path(dir) / "data.mdb")));

  auto run_expire = [&](const char* what) {
    long rss_before = peak_rss_mb();
    double cpu = cpu_seconds();
    auto a = Clock::now();
    auto out = c.expire(lim, today);
    double wall = std::chrono::duration<double>(Clock::now() - a).count();
    std::printf("expire (%s): %.2f s wall, %.2f s CPU; removed %zu tokens, %zu lists, %zu "
                "markers, %zu gram lists; peak RSS %ld MB (before: %ld MB)\n",
                what, wall, cpu_seconds() - cpu, out.tokens, out.lists, out.markers,
                out.gram_lists, peak_rss_mb(), rss_before);
  };
  run_expire("at the bounds, nothing to do");
  // A tenth more of everything, newer than the rest: expire brings it back to the bounds.
  fill(*store, lim.max_tokens / 10, lim.max_lists / 10, lim.max_seen / 10, today, 2, gram_days);
  store->sync();
  run_expire("a tenth over the bounds");
  auto st = c.stats();
  std::printf("after: %llu tokens, %llu token lists, %llu seen markers, %llu gram lists; "
              "data.mdb %.0f MB (LMDB keeps freed pages for reuse)\n",
              static_cast<unsigned long long>(st.tokens),
              static_cast<unsigned long long>(st.kept_messages),
              static_cast<unsigned long long>(st.seen),
              static_cast<unsigned long long>(st.gram_lists),
              mb(fs::file_size(fs::path(dir) / "data.mdb")));
  std::printf("store left in %s (remove it when done)\n", dir.c_str());
  return 0;
}
