// diguectl bayes: offline learning, classification and model upkeep; see digue/ctl.hpp.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "digue/bayes.hpp"
#include "digue/ctl.hpp"
#include "digue/mbox.hpp"
#include "digue/mime.hpp"
#include "digue/store.hpp"
#include "digue/text.hpp"
#include "filters/bayes.hpp"

namespace digue::ctl {
namespace {

namespace fs = std::filesystem;

struct Loaded {
  std::string name;  // file, or file#N for the Nth message of an mbox
  std::string raw;
};

bool read_file(const fs::path& p, std::string& out) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

void add_file(const fs::path& p, std::vector<Loaded>& out, bool& ok) {
  std::string data;
  if (!read_file(p, data)) {
    std::cerr << "bayes: cannot read " << p.string() << "\n";
    ok = false;
    return;
  }
  auto msgs = mbox::split(data);
  for (size_t i = 0; i < msgs.size(); ++i)
    out.push_back({msgs.size() == 1 ? p.string() : p.string() + "#" + std::to_string(i + 1),
                   std::move(msgs[i])});
}

// Files, mboxes, Maildirs (cur/ and new/) and plain directories of messages, in name order.
std::vector<Loaded> load(const std::vector<std::string>& paths, bool& ok) {
  std::vector<Loaded> out;
  for (const auto& path : paths) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      std::vector<fs::path> files;
      bool maildir =
          fs::is_directory(fs::path(path) / "cur") || fs::is_directory(fs::path(path) / "new");
      std::vector<fs::path> dirs =
          maildir ? std::vector<fs::path>{fs::path(path) / "cur", fs::path(path) / "new"}
                  : std::vector<fs::path>{fs::path(path)};
      for (const auto& d : dirs) {
        if (!fs::is_directory(d, ec)) continue;
        for (const auto& e : fs::directory_iterator(d, ec))
          if (e.is_regular_file() && e.path().filename().string()[0] != '.')
            files.push_back(e.path());
      }
      std::sort(files.begin(), files.end());
      for (const auto& f : files) add_file(f, out, ok);
    } else if (fs::is_regular_file(path, ec)) {
      add_file(path, out, ok);
    } else {
      std::cerr << "bayes: no such file or directory: " << path << "\n";
      ok = false;
    }
  }
  return out;
}

// Parses and tokenizes on a few threads: that is where learning spends its time.
std::vector<std::vector<std::string>> tokenize_all(const std::vector<Loaded>& msgs,
                                                   const bayes::TokenizerOptions& opt) {
  std::vector<std::vector<std::string>> out(msgs.size());
  unsigned n = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < n; ++t)
    threads.emplace_back([&, t] {
      for (size_t i = t; i < msgs.size(); i += n)
        out[i] = bayes::tokenize(mime::parse(msgs[i].raw), opt);
    });
  for (auto& th : threads) th.join();
  return out;
}

// A positive integer option value, or an error naming the option.
uint64_t positive(const std::string& option, const std::string& value) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size() || v == 0)
    throw std::runtime_error(option + ": not a positive integer: " + value);
  return v;
}

// A number option value, or an error naming the option.
double number(const std::string& option, const std::string& value) {
  double v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size() || !std::isfinite(v))
    throw std::runtime_error(option + ": not a number: " + value);
  return v;
}

int usage(const std::string& problem = "") {
  if (!problem.empty()) std::cerr << "bayes: " << problem << "\n";
  std::cerr << "usage: diguectl --config FILE bayes learn --spam|--ham PATH...\n"
               "       diguectl --config FILE bayes unlearn PATH...\n"
               "       diguectl --config FILE bayes classify MESSAGE... [--json] [--threshold S]\n"
               "       diguectl --config FILE bayes stats|train|dump [FILE]|restore [FILE]\n"
               "       diguectl --config FILE bayes expire [--max-tokens N] [--stale-days D]\n"
               "                                           [--max-seen N] [--seen-days D]\n";
  return 2;
}

// Retrains the token weights after the counts changed (see bayes::Classifier::train_weights).
void train(const bayes::Classifier& c) {
  if (!c.params().weights) {
    std::printf("weights: off ([filters.bayes] weights = false)\n");
    return;
  }
  auto t0 = std::chrono::steady_clock::now();
  auto w = c.train_weights();
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (w.messages == 0)
    std::printf("weights: not trained (fewer than %u spam or ham messages with token lists)\n",
                c.params().min_learned);
  else
    std::printf("weights: trained on %zu messages, %zu token weights, %.2f s\n", w.messages,
                w.nonzero, secs);
}

int learn(const bayes::Classifier& c, const Args& args, bool unlearn) {
  std::optional<bayes::Class> cls;
  std::vector<std::string> paths;
  bool options = true;  // until "--"
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (options && (a == "--spam" || a == "--ham")) {
      auto c = a == "--spam" ? bayes::Class::Spam : bayes::Class::Ham;
      if (cls && *cls != c) return usage("give one of --spam or --ham");
      cls = c;
    } else if (options && a == "--") {
      options = false;
    } else if (options && a.rfind("--", 0) == 0) {
      return usage("unknown option: " + a);
    } else {
      paths.push_back(a);
    }
  }
  if ((!unlearn && !cls) || paths.empty()) return usage();
  bool ok = true;
  auto msgs = load(paths, ok);
  auto tokens = tokenize_all(msgs, c.params().tokenizer);
  size_t counts[5] = {0, 0, 0, 0, 0};
  // Batches of a few hundred messages: one transaction (one fsync) each.
  constexpr size_t kBatch = 500;
  for (size_t start = 0; start < msgs.size(); start += kBatch) {
    std::vector<bayes::Classifier::Item> items;
    for (size_t i = start; i < std::min(msgs.size(), start + kBatch); ++i)
      items.push_back({std::move(tokens[i]), cls.value_or(bayes::Class::Spam)});
    auto outs = unlearn ? c.unlearn(items) : c.learn(items);
    for (auto o : outs) ++counts[static_cast<int>(o)];
  }
  using O = bayes::LearnOutcome;
  if (unlearn)
    std::printf("unlearned %zu, not found %zu\n", counts[int(O::Unlearned)],
                counts[int(O::NotFound)]);
  else
    std::printf("learned %zu, already known %zu, moved %zu\n", counts[int(O::Learned)],
                counts[int(O::AlreadyKnown)], counts[int(O::Moved)]);
  if (counts[int(O::Learned)] + counts[int(O::Moved)] + counts[int(O::Unlearned)] > 0) train(c);
  return ok ? 0 : 1;
}

int classify(const bayes::Classifier& c, const Args& args) {
  bool json = false;
  double threshold = bayes::kDefaultThreshold;
  std::vector<std::string> paths;
  bool options = true;  // until "--"
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (options && a == "--json") {
      json = true;
    } else if (options && a == "--threshold") {
      if (i + 1 == args.size()) return usage("--threshold needs a value");
      threshold = number(a, args[++i]);
    } else if (options && a == "--") {
      options = false;
    } else if (options && a.rfind("--", 0) == 0) {
      return usage("unknown option: " + a);
    } else {
      paths.push_back(a);
    }
  }
  if (paths.empty()) return usage();
  bool ok = true;
  auto msgs = load(paths, ok);
  auto tokens = tokenize_all(msgs, c.params().tokenizer);
  for (size_t i = 0; i < msgs.size(); ++i) {
    auto r = c.classify_tokens(tokens[i]);
    // Decide on the printed value, so the score and the spam flag never disagree.
    r.score = std::round(r.score * 1000.0) / 1000.0;
    if (json)
      std::printf(
          "{\"file\": \"%s\", \"score\": %.3f, \"spam\": %s, \"ready\": %s, \"tokens\": \"%s\"}\n",
          text::json_escape(msgs[i].name).c_str(), r.score, r.score >= threshold ? "true" : "false",
          r.ready ? "true" : "false", text::json_escape(r.evidence(8)).c_str());
    else
      std::printf("%.3f\n", r.score);
  }
  if (!msgs.empty() && !c.classify_tokens({}).ready)
    std::cerr << "bayes: warning: the model is not trained yet (scores are 0)\n";
  return ok ? 0 : 1;
}

// errno's text after a failed stream operation ("write error" when the library left none).
std::string last_error() { return errno ? std::strerror(errno) : "write error"; }

// Writes the model's text dump to FILE or standard output; a write error (a full disk) fails
// the command rather than leaving a short dump behind an exit code 0.
int dump(const bayes::Classifier& c, const Args& args) {
  if (args.size() > 1) {
    errno = 0;
    std::ofstream out(args[1]);
    if (!out) {
      std::cerr << "bayes: cannot write " << args[1] << ": " << last_error() << "\n";
      return 1;
    }
    c.dump(out);
    out.close();  // flushes; a failed flush or close sets failbit
    if (!out) {
      std::cerr << "bayes: cannot write " << args[1] << ": " << last_error() << "\n";
      return 1;
    }
    return 0;
  }
  errno = 0;
  c.dump(std::cout);
  std::cout.flush();
  if (!std::cout || std::fflush(stdout) != 0 || std::ferror(stdout)) {
    std::cerr << "bayes: cannot write the dump to standard output: " << last_error() << "\n";
    return 1;
  }
  return 0;
}

// Adds a dump (FILE or standard input) to the model (Classifier::restore), then retrains.
int restore(const bayes::Classifier& c, const Args& args) {
  size_t n = 0;
  if (args.size() > 1) {
    // Read as a stream, a directory looks like an empty dump: say what it is instead.
    std::error_code ec;
    if (fs::is_directory(args[1], ec)) {
      std::cerr << "bayes: cannot restore " << args[1] << ": is a directory, not a dump file\n";
      return 1;
    }
    errno = 0;
    std::ifstream in(args[1]);
    if (!in) {
      std::cerr << "bayes: cannot read " << args[1] << ": " << last_error() << "\n";
      return 1;
    }
    n = c.restore(in);
  } else {
    n = c.restore(std::cin);
  }
  std::printf("restored %zu records\n", n);
  train(c);
  return 0;
}

}  // namespace

int bayes(const Config& config, const Args& args) {
  if (args.empty()) return usage();
  filters::BayesSettings settings;
  std::unique_ptr<Store> store;
  try {
    settings = filters::read_bayes_settings(filters::bayes_options(config));
    store = make_lmdb_store(config.store.dir, config.store.map_size);
  } catch (const std::exception& e) {
    std::cerr << "bayes: " << e.what() << "\n";
    return 1;
  }
  bayes::Classifier c(*store, settings.params);
  const std::string& cmd = args[0];
  try {
    if (cmd == "learn") return learn(c, args, false);
    if (cmd == "unlearn") return learn(c, args, true);
    if (cmd == "classify") return classify(c, args);
    if (cmd == "stats") {
      auto st = c.stats();
      std::printf(
          "spam messages: %llu\nham messages: %llu\ntokens: %llu\nseen: %llu\n"
          "kept token lists: %llu\nweights trained on: %llu messages\nweighted tokens: %llu\n",
          (unsigned long long)st.spam_messages, (unsigned long long)st.ham_messages,
          (unsigned long long)st.tokens, (unsigned long long)st.seen,
          (unsigned long long)st.kept_messages, (unsigned long long)st.weight_messages,
          (unsigned long long)st.weighted_tokens);
      std::error_code ec;
      auto size = fs::file_size(fs::path(config.store.dir) / "data.mdb", ec);
      if (!ec) std::printf("store file bytes: %llu\n", (unsigned long long)size);
      return 0;
    }
    if (cmd == "train") {
      train(c);
      return 0;
    }
    if (cmd == "dump") return dump(c, args);
    if (cmd == "restore") return restore(c, args);
    if (cmd == "expire") {
      bayes::ExpireLimits lim = settings.expire;
      if (args.size() % 2 == 0) return usage();  // every option takes a value
      for (size_t i = 1; i + 1 < args.size(); i += 2) {
        const std::string& v = args[i + 1];
        if (args[i] == "--max-tokens")
          lim.max_tokens = positive(args[i], v);
        else if (args[i] == "--stale-days")
          lim.stale_days = static_cast<uint32_t>(std::min<uint64_t>(positive(args[i], v), 36500));
        else if (args[i] == "--max-seen")
          lim.max_seen = positive(args[i], v);
        else if (args[i] == "--seen-days")
          lim.seen_days = static_cast<uint32_t>(std::min<uint64_t>(positive(args[i], v), 36500));
        else
          return usage();
      }
      auto out = c.expire(lim);
      std::printf("expired %zu tokens, %zu token lists, %zu seen markers\n", out.tokens,
                  out.lists, out.markers);
      return 0;
    }
  } catch (const std::exception& e) {
    std::cerr << "bayes: " << e.what() << "\n";
    return 1;
  }
  return usage();
}

}  // namespace digue::ctl
