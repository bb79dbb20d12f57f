// diguectl bayes: offline learning, classification and model upkeep; see digue/ctl.hpp.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string_view>
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

// One input: a message, or why a path gave none.
struct Loaded {
  enum class Kind {
    Message,
    Skipped,  // a file that is not a message (empty, binary, no header block)
    Error,    // a file or directory that could not be read
    Warning,  // a directory without message files, a Maildir folder or entry not read
  };
  Kind kind = Kind::Message;
  std::string name;    // file, or file#N for the Nth message of an mbox; else the path
  std::string raw;     // Message
  std::string reason;  // the others: "empty file", strerror's text, ...
};

// Collects loaded inputs and hands them on a batch at a time: kBatch messages, or fewer when
// they reach kBatchBytes. Memory is bounded by the batch whatever the input's size, and each
// learn batch is one Store transaction (one fsync).
class Batches {
 public:
  using Handler = std::function<void(std::vector<Loaded>&)>;
  explicit Batches(Handler handler) : handler_(std::move(handler)) {}
  void add(Loaded l) {
    bytes_ += l.raw.size();
    batch_.push_back(std::move(l));
    if (batch_.size() >= kBatch || bytes_ >= kBatchBytes) flush();
  }
  void flush() {
    if (!batch_.empty()) handler_(batch_);
    batch_.clear();
    bytes_ = 0;
  }

 private:
  static constexpr size_t kBatch = 500;
  static constexpr size_t kBatchBytes = 32u << 20;
  Handler handler_;
  std::vector<Loaded> batch_;
  size_t bytes_ = 0;
};

// Reads the command line's paths into Batches, in order: message files, mboxes (split as they
// are read), Maildirs (cur/, new/, then Maildir++ folders) and directory trees of these (year
// subdirectories, folders), each directory in name order. Dot-files, tmp/ and the files of a
// Maildir's own directory are not messages; symbolic links to directories inside a tree are
// not followed (no loops). Nothing is silent: unreadable paths are Errors, files that are not
// messages are Skipped, a directory without message files is a Warning.
class Loader {
 public:
  explicit Loader(Batches& out) : out_(out) {}

  void load(const std::string& path) {
    std::error_code ec;
    auto st = fs::status(path, ec);
    if (ec) return error(path, ec.message());
    if (!fs::is_directory(st)) return file(path);
    size_t errors = errors_;
    if (walk(path) == 0 && errors_ == errors)
      out_.add({Loaded::Kind::Warning, path, {}, "no message files"});
  }

 private:
  void error(const fs::path& p, std::string reason) {
    ++errors_;
    out_.add({Loaded::Kind::Error, p.string(), {}, std::move(reason)});
  }

  void skip(std::string name, std::string reason) {
    out_.add({Loaded::Kind::Skipped, std::move(name), {}, std::move(reason)});
  }

  void note(std::string name, std::string reason) {
    out_.add({Loaded::Kind::Warning, std::move(name), {}, std::move(reason)});
  }

  void message(std::string name, std::string raw) {
    if (!mbox::looks_like_message(raw))
      skip(std::move(name), raw.empty() ? "empty message" : "not a mail message");
    else
      out_.add({Loaded::Kind::Message, std::move(name), std::move(raw), {}});
  }

  // d's entries in name order; an Error naming d when it cannot be read.
  std::optional<std::vector<fs::directory_entry>> list(const fs::path& d) {
    std::vector<fs::directory_entry> out;
    std::error_code ec;
    for (fs::directory_iterator it(d, ec), end; !ec && it != end; it.increment(ec))
      out.push_back(*it);
    if (ec) {
      error(d, ec.message());
      return std::nullopt;
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // The message files under d (read into out_); returns how many there were. A Maildir (cur/
  // and new/ both there) gives the messages of cur/ and new/ only: its Maildir++ folders
  // (".Junk", ".Sent", ...) are not read — learning ~/Maildir as ham must not learn the
  // Junk folder digue delivers spam to — and each is named in a note, as is anything else
  // that is not part of a Maildir. Any other directory is walked recursively (dot-files and
  // symbolic links to directories skipped).
  size_t walk(const fs::path& d) {
    auto entries = list(d);
    if (!entries) return 0;
    auto is_dir = [](const fs::directory_entry& e) {
      std::error_code ec;
      return e.is_directory(ec);
    };
    auto find = [&](const char* name) {
      return std::find_if(entries->begin(), entries->end(), [&](const fs::directory_entry& e) {
        return e.path().filename() == name && is_dir(e);
      });
    };
    size_t files = 0;
    if (find("cur") != entries->end() && find("new") != entries->end()) {
      files += walk(find("cur")->path()) + walk(find("new")->path());
      for (const auto& e : *entries) {
        const std::string name = e.path().filename().string();
        if (name == "cur" || name == "new" || name == "tmp") continue;
        if (name[0] == '.' && is_dir(e))
          note(e.path().string(), "Maildir++ folder not read (give its path to read it)");
        else if (name[0] != '.' && name != "maildirfolder" && name != "subscriptions" &&
                 name.rfind("dovecot", 0) != 0 && name.rfind("courier", 0) != 0)
          note(e.path().string(), "not part of the Maildir (only cur/ and new/ are read)");
      }
      return files;
    }
    for (const auto& e : *entries) {
      if (e.path().filename().string()[0] == '.') continue;
      std::error_code ec;
      auto st = e.status(ec);  // follows a symbolic link
      if (ec) {
        error(e.path(), ec.message());
      } else if (fs::is_directory(st)) {
        if (!e.is_symlink(ec)) files += walk(e.path());
      } else if (fs::is_regular_file(st)) {
        ++files;
        file(e.path());
      } else {
        skip(e.path().string(), "not a regular file");
      }
    }
    return files;
  }

  // A message file or an mbox, read line by line: an mbox of any size needs memory for one
  // message (and the batch) only. An mbox's messages are named file#1, file#2, ...
  void file(const fs::path& p) {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(p.c_str(), "rb"), &std::fclose);
    if (!f) return error(p, std::strerror(errno));
    struct Line {
      char* data = nullptr;
      size_t cap = 0;
      ~Line() { std::free(data); }
    } line;
    mbox::Splitter split;
    size_t n = 0;
    for (ssize_t len; (len = ::getline(&line.data, &line.cap, f.get())) > 0;)
      if (auto m = split.feed({line.data, static_cast<size_t>(len)}))
        message(p.string() + "#" + std::to_string(++n), std::move(*m));
    if (std::ferror(f.get())) return error(p, std::strerror(errno));
    auto last = split.finish();
    if (!last) return skip(p.string(), "empty file");
    message(n ? p.string() + "#" + std::to_string(n + 1) : p.string(), std::move(*last));
  }

  Batches& out_;
  size_t errors_ = 0;
};

// The one place a message becomes a learn item: its tokens, identity and byte 4-grams.
bayes::Classifier::Item make_item(std::string_view raw, const bayes::TokenizerOptions& opt,
                                  bayes::Class cls) {
  const mime::Parsed msg = mime::parse(raw);
  bayes::Classifier::Item item{bayes::tokenize(msg, opt), cls, bayes::message_identity(msg)};
  item.grams = bayes::byte_grams(raw, opt.gram_bytes);
  return item;
}

// Items for a batch's messages (empty ones for the rest), parsed and tokenized on a few
// threads: that is where learning spends its time.
std::vector<bayes::Classifier::Item> make_items(const std::vector<Loaded>& batch,
                                                const bayes::TokenizerOptions& opt,
                                                bayes::Class cls) {
  std::vector<bayes::Classifier::Item> out(batch.size());
  unsigned n = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < n; ++t)
    threads.emplace_back([&, t] {
      for (size_t i = t; i < batch.size(); i += n)
        if (batch[i].kind == Loaded::Kind::Message)
          out[i] = make_item(batch[i].raw, opt, cls);
    });
  for (auto& th : threads) th.join();
  return out;
}

// Why an input is not a message, on stderr.
void report(const Loaded& l) {
  if (l.kind == Loaded::Kind::Error)
    std::cerr << "bayes: cannot read " << l.name << ": " << l.reason << "\n";
  else if (l.kind == Loaded::Kind::Skipped)
    std::cerr << "bayes: warning: skipped " << l.name << ": " << l.reason << "\n";
  else if (l.kind == Loaded::Kind::Warning)
    std::cerr << "bayes: warning: " << l.name << ": " << l.reason << "\n";
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

// The words after a subcommand: its options, in order, and its paths.
struct Words {
  std::vector<std::pair<std::string, std::string>> options;  // (option, value or "")
  std::vector<std::string> paths;
  std::string problem;  // for usage(): an unknown option, or one without its value
};

// args[1...] as options and paths: `flags` stand alone, `valued` take the next word, any
// other "--word" is a problem; "--" ends the options.
Words words(const Args& args, std::initializer_list<std::string_view> flags,
            std::initializer_list<std::string_view> valued) {
  auto in = [](std::initializer_list<std::string_view> list, const std::string& a) {
    return std::find(list.begin(), list.end(), a) != list.end();
  };
  Words w;
  bool options = true;
  for (size_t i = 1; i < args.size() && w.problem.empty(); ++i) {
    const std::string& a = args[i];
    if (!options || a.rfind("--", 0) != 0)
      w.paths.push_back(a);
    else if (a == "--")
      options = false;
    else if (in(flags, a))
      w.options.emplace_back(a, "");
    else if (!in(valued, a))
      w.problem = "unknown option: " + a;
    else if (i + 1 == args.size())
      w.problem = a + " needs a value";
    else
      w.options.emplace_back(a, args[++i]);
  }
  return w;
}

int usage(const std::string& problem = "") {
  if (!problem.empty()) std::cerr << "bayes: " << problem << "\n";
  std::cerr << "usage: diguectl --config FILE bayes learn --spam|--ham PATH...\n"
               "       diguectl --config FILE bayes unlearn PATH...\n"
               "       diguectl --config FILE bayes classify MESSAGE... [--json] [--threshold S]\n"
               "       diguectl --config FILE bayes stats|train|dump [FILE]\n"
               "       diguectl --config FILE bayes restore [--merge|--replace] [FILE]\n"
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
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (w.messages == 0)
    std::printf("weights: not trained (fewer than %u spam or ham messages with token lists)\n",
                c.params().min_learned);
  else
    std::printf("weights: trained on %zu messages, %zu token weights, %.2f s\n", w.messages,
                w.nonzero, secs);
  if (w.gram_messages > 0)
    std::printf("gram model: trained on %zu messages\n", w.gram_messages);
}

int learn(const bayes::Classifier& c, const Args& args, bool unlearn) {
  auto w = words(args, {"--spam", "--ham"}, {});
  if (!w.problem.empty()) return usage(w.problem);
  std::optional<bayes::Class> cls;
  for (const auto& [option, value] : w.options) {
    auto want = option == "--spam" ? bayes::Class::Spam : bayes::Class::Ham;
    if (cls && *cls != want) return usage("give one of --spam or --ham");
    cls = want;
  }
  const auto& paths = w.paths;
  if ((!unlearn && !cls) || paths.empty()) return usage();
  bool ok = true;
  size_t counts[5] = {0, 0, 0, 0, 0};
  Batches batches([&](std::vector<Loaded>& batch) {
    auto items = make_items(batch, c.params().tokenizer, cls.value_or(bayes::Class::Spam));
    std::vector<bayes::Classifier::Item> todo;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].kind == Loaded::Kind::Message) {
        todo.push_back(std::move(items[i]));
      } else {
        report(batch[i]);
        ok = ok && batch[i].kind != Loaded::Kind::Error;
      }
    }
    if (todo.empty()) return;
    for (auto o : unlearn ? c.unlearn(todo) : c.learn(todo)) ++counts[static_cast<int>(o)];
  });
  Loader loader(batches);
  for (const auto& p : paths) loader.load(p);
  batches.flush();
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

// The gram model's logit as JSON: a number, or null when it took no part.
std::string gram_figure(const bayes::Result& r) {
  if (!r.grams_used) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", r.gram_logit);
  return buf;
}

int classify(const bayes::Classifier& c, const Args& args) {
  bool json = false;
  double threshold = bayes::kDefaultThreshold;
  auto w = words(args, {"--json"}, {"--threshold"});
  if (!w.problem.empty()) return usage(w.problem);
  for (const auto& [option, value] : w.options) {
    if (option == "--json")
      json = true;
    else
      threshold = number(option, value);
  }
  const auto& paths = w.paths;
  if (paths.empty()) return usage();
  bool ok = true;
  size_t scored = 0;
  Batches batches([&](std::vector<Loaded>& batch) {
    auto items = make_items(batch, c.params().tokenizer, bayes::Class::Spam);
    for (size_t i = 0; i < batch.size(); ++i) {
      const Loaded& l = batch[i];
      if (l.kind == Loaded::Kind::Warning) {
        report(l);
        continue;
      }
      // Every file asked about gets its line, so plain scores stay aligned with the arguments.
      if (l.kind != Loaded::Kind::Message) {
        if (l.kind == Loaded::Kind::Error)
          report(l);
        else
          std::cerr << "bayes: cannot classify " << l.name << ": " << l.reason << "\n";
        ok = false;
        if (json)
          std::printf("{\"file\": \"%s\", \"error\": \"%s\"}\n", text::json_escape(l.name).c_str(),
                      text::json_escape(l.reason).c_str());
        else
          std::printf("error\n");
        continue;
      }
      auto r = c.classify_tokens(items[i].tokens, items[i].grams);
      ++scored;
      // Decide on the printed value, so the score and the spam flag never disagree.
      r.score = std::round(r.score * 1000.0) / 1000.0;
      if (json)
        std::printf(
            "{\"file\": \"%s\", \"score\": %.3f, \"spam\": %s, \"ready\": %s, "
            "\"evidence\": %.4f, \"combined\": %s, \"gram_logit\": %s, \"tokens\": \"%s\"}\n",
            text::json_escape(l.name).c_str(), r.score, r.score >= threshold ? "true" : "false",
            r.ready ? "true" : "false", r.evidence_decades, r.combined ? "true" : "false",
            gram_figure(r).c_str(), text::json_escape(r.evidence(8)).c_str());
      else
        std::printf("%.3f\n", r.score);
    }
  });
  Loader loader(batches);
  for (const auto& p : paths) loader.load(p);
  batches.flush();
  if (scored > 0 && !c.classify_tokens({}).ready)
    std::cerr << "bayes: warning: the model is not trained yet (scores are 0)\n";
  // Scores a script reads must all have been written (a full disk, a closed pipe).
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    std::cerr << "bayes: cannot write the scores to standard output\n";
    return 1;
  }
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

// Reads a dump (FILE or standard input) into the model (Classifier::restore: an empty model,
// or --merge / --replace), then retrains. Standard input is copied to a temporary file
// first: restore checks the whole dump before it writes, so it reads it twice.
int restore(const bayes::Classifier& c, const Args& args) {
  auto w = words(args, {"--merge", "--replace"}, {});
  if (!w.problem.empty() || w.paths.size() > 1) return usage(w.problem);
  auto mode = bayes::RestoreMode::Empty;
  for (const auto& [opt, value] : w.options)
    mode = opt == "--merge" ? bayes::RestoreMode::Merge : bayes::RestoreMode::Replace;
  if (w.options.size() > 1) return usage("give one of --merge or --replace");
  // restore reads the dump twice (checks it all, then writes): a file is read in place;
  // standard input, a pipe or any other stream is copied to an unlinked temporary file.
  std::fstream in;
  std::ifstream source;
  std::istream* from = &std::cin;
  std::string name = "standard input";
  if (!w.paths.empty()) {
    name = w.paths[0];
    // Read as a stream, a directory looks like an empty dump: say what it is instead.
    std::error_code ec;
    if (fs::is_directory(name, ec)) {
      std::cerr << "bayes: cannot restore " << name << ": is a directory, not a dump file\n";
      return 1;
    }
    errno = 0;
    if (fs::is_regular_file(name, ec)) {
      in.open(name, std::ios::in | std::ios::binary);
      from = nullptr;
    } else {
      source.open(name, std::ios::in | std::ios::binary);
      from = &source;
    }
    if (from ? !source : !in) {
      std::cerr << "bayes: cannot read " << name << ": " << last_error() << "\n";
      return 1;
    }
  }
  if (from) {
    std::string tmpl = (fs::temp_directory_path() / "digue-restore-XXXXXX").string();
    int fd = mkstemp(tmpl.data());
    if (fd < 0) {
      std::cerr << "bayes: cannot make a temporary file: " << last_error() << "\n";
      return 1;
    }
    ::close(fd);
    in.open(tmpl, std::ios::in | std::ios::out | std::ios::binary | std::ios::trunc);
    std::error_code ec;
    fs::remove(tmpl, ec);  // unlinked: gone with the stream
    // (Copying nothing sets failbit: an empty input is restore's to name.)
    if (from->peek() != std::char_traits<char>::eof()) in << from->rdbuf();
    if (!in || from->bad()) {
      std::cerr << "bayes: cannot copy " << name << " to a temporary file\n";
      return 1;
    }
    in.seekg(0);
  }
  size_t n = c.restore(in, mode);
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
          "kept token lists: %llu\nweights trained on: %llu messages\nweighted tokens: %llu\n"
          "kept gram lists: %llu\ngram model trained on: %llu messages\n",
          (unsigned long long)st.spam_messages, (unsigned long long)st.ham_messages,
          (unsigned long long)st.tokens, (unsigned long long)st.seen,
          (unsigned long long)st.kept_messages, (unsigned long long)st.weight_messages,
          (unsigned long long)st.weighted_tokens, (unsigned long long)st.gram_lists,
          (unsigned long long)st.gram_messages);
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
      auto w = words(args, {}, {"--max-tokens", "--stale-days", "--max-seen", "--seen-days"});
      if (!w.problem.empty() || !w.paths.empty()) return usage(w.problem);
      auto days = [](const std::string& o, const std::string& v) {
        return static_cast<uint32_t>(std::min<uint64_t>(positive(o, v), 36500));
      };
      for (const auto& [option, v] : w.options) {
        if (option == "--max-tokens")
          lim.max_tokens = positive(option, v);
        else if (option == "--stale-days")
          lim.stale_days = days(option, v);
        else if (option == "--max-seen")
          lim.max_seen = positive(option, v);
        else
          lim.seen_days = days(option, v);
      }
      auto out = c.expire(lim);
      std::printf("expired %zu tokens, %zu token lists, %zu seen markers, %zu gram lists\n",
                  out.tokens, out.lists, out.markers, out.gram_lists);
      return 0;
    }
  } catch (const std::exception& e) {
    std::cerr << "bayes: " << e.what() << "\n";
    return 1;
  }
  return usage();
}

}  // namespace digue::ctl
