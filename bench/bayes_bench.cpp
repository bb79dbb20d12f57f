// Bayes accuracy and speed benchmark on the SpamAssassin corpus split.
//   bayes_bench --train DIR --test DIR [--cv K] [--variants] [--scores FILE] [--dir TMP]
//   (CV experiments: --set, --lr, --cgram, --knn, --knn-sample N, --lsh B,R,CAP,
//   --lsh-shuffle SEED, --lsh-rare F, --toe, --curve, and --holdout DIR: with --cv, also score DIR once
//   with the whole train split's model)
// Trains on DIR/{ham,spam} of --train only. With --cv K it reports K-fold cross-validation
// on the train split for each parameter variant (how parameters were chosen); otherwise it
// learns the whole train split into an LMDB store and classifies the test split once.
// Prints FN/FP at the default threshold, FN at FP = 0, (1 - ROC area) %, and speeds.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <random>
#include <unordered_map>

#include "digue/bayes.hpp"
#include "digue/mbox.hpp"
#include "digue/text.hpp"
#include "digue/mime.hpp"
#include "digue/store.hpp"
#include "src/bayes_cache.hpp"

namespace fs = std::filesystem;
using namespace digue;
using Clock = std::chrono::steady_clock;

namespace {

struct Msg {
  std::string name;
  std::string raw;
  bool spam = false;
  mime::Parsed parsed;
  std::string id;  // bayes::message_identity(parsed): what learning counts once
  bool held = false;  // --holdout: scored by the model of the whole train split, never learnt
};

std::vector<Msg> load(const fs::path& dir) {
  std::vector<Msg> out;
  for (const char* label : {"ham", "spam"}) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir / label)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      // Read as diguectl reads it (mbox envelope line dropped, ">From " unquoted), so both
      // give the same messages, identities and figures.
      auto msgs = mbox::split(text::read_file(f.string()).value_or(""));
      out.push_back({f.filename().string(), msgs.empty() ? std::string() : std::move(msgs[0]),
                     label[0] == 's', {}, {}, false});
    }
  }
  return out;
}

double secs(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// CPU time of this thread: "per core" speed that does not depend on how busy the shared
// machine is (wall clock figures are printed too).
double cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct Metrics {
  size_t ham = 0, spam = 0, fp = 0, fn = 0, fn_at_fp0 = 0, fn_at_fp3 = 0;
  double one_minus_roca_pct = 0;
};

struct Scored {
  bool spam;
  double score;  // 0..15, compared with the threshold
  double rank;   // unclamped evidence (decades), for FN at FP = 0 and the ROC area
};

Metrics metrics(const std::vector<Scored>& scored, double threshold) {
  Metrics m;
  double max_ham = -1e300;
  std::vector<double> hs, ss;
  for (auto [spam, score, s] : scored) {
    if (spam) {
      ++m.spam;
      ss.push_back(s);
      if (score < threshold) ++m.fn;
    } else {
      ++m.ham;
      hs.push_back(s);
      if (score >= threshold) ++m.fp;
      max_ham = std::max(max_ham, s);
    }
  }
  for (double s : ss)
    if (s <= max_ham) ++m.fn_at_fp0;
  {
    // FN when 3 ham (~0.1 % of the train split) may score above the cut: less hostage to
    // the single worst ham than FN at FP = 0.
    std::vector<double> h = hs;
    std::sort(h.rbegin(), h.rend());
    double cut = h.size() > 3 ? h[3] : -1e300;
    for (double s : ss)
      if (s <= cut) ++m.fn_at_fp3;
  }
  // ROC area = P(spam score > ham score), ties count half.
  std::sort(hs.begin(), hs.end());
  double wins = 0;
  for (double s : ss) {
    auto lo = std::lower_bound(hs.begin(), hs.end(), s);
    auto hi = std::upper_bound(hs.begin(), hs.end(), s);
    wins += static_cast<double>(lo - hs.begin()) + 0.5 * static_cast<double>(hi - lo);
  }
  double auc = hs.empty() || ss.empty() ? 1.0 : wins / (double(hs.size()) * double(ss.size()));
  m.one_minus_roca_pct = (1.0 - auc) * 100.0;
  return m;
}

void print(const char* what, const Metrics& m, double threshold) {
  std::printf(
      "%-28s FP %3zu/%zu (%.2f%%)  FN %3zu/%zu (%.2f%%) at %.1f   FN@FP=0 %3zu (%.2f%%)"
      "   FN@FP=3 %3zu   1-ROCA %.4f%%\n",
      what, m.fp, m.ham, 100.0 * m.fp / std::max<size_t>(1, m.ham), m.fn, m.spam,
      100.0 * m.fn / std::max<size_t>(1, m.spam), threshold, m.fn_at_fp0,
      100.0 * m.fn_at_fp0 / std::max<size_t>(1, m.spam), m.fn_at_fp3, m.one_minus_roca_pct);
}


// Experiment (not the product): online logistic regression over the same tokens, binary
// features, for comparing rankings in CV. spec: "eta=0.02,passes=5,norm=1".
struct LrSpec {
  double eta = 0.02;
  int passes = 5;
  bool norm = true;
  double l2 = 0;
  bool nb = false;       // NB-weighted features: x_f = log-count ratio of f in the fold
  double alpha = 1.0;    // NB smoothing
  double w0 = 0;         // initial weight of every feature (1: start from the NB sum)
  unsigned seed = 42;
};
LrSpec parse_lr(const std::string& spec) {
  LrSpec s;
  std::stringstream ss(spec);
  std::string kv;
  while (std::getline(ss, kv, ',')) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos) continue;
    std::string k = kv.substr(0, eq);
    double v = std::stod(kv.substr(eq + 1));
    if (k == "eta") s.eta = v;
    else if (k == "passes") s.passes = static_cast<int>(v);
    else if (k == "norm") s.norm = v != 0;
    else if (k == "l2") s.l2 = v;
    else if (k == "nb") s.nb = v != 0;
    else if (k == "alpha") s.alpha = v;
    else if (k == "w0") s.w0 = v;
    else if (k == "seed") s.seed = static_cast<unsigned>(v);
  }
  return s;
}
struct Lr {
  std::unordered_map<uint64_t, double> w;
  double b = 0;
};

// Experiment: online logistic regression over hashed byte n-grams of the raw message (the
// TREC spam track's strongest simple filters: Goodman & Yih; Sculley's ROSVM; Cormack's OLR).
// spec: "n=4,bytes=3000,bits=22,eta=0.02,passes=5,norm=1,mix=0.5,body=0".
struct CgramSpec {
  int n = 4;
  size_t bytes = 3000;
  int bits = 22;
  double eta = 0.02;
  int passes = 5;
  bool norm = true;
  std::vector<double> mixes = {0.25, 0.5, 1.0};
  unsigned seed = 42;
  bool lower = false;
};
CgramSpec parse_cgram(const std::string& spec) {
  CgramSpec s;
  std::stringstream ss(spec);
  std::string kv;
  bool mix_seen = false;
  while (std::getline(ss, kv, ',')) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos) continue;
    std::string k = kv.substr(0, eq);
    double v = std::stod(kv.substr(eq + 1));
    if (k == "n") s.n = static_cast<int>(v);
    else if (k == "bytes") s.bytes = static_cast<size_t>(v);
    else if (k == "bits") s.bits = static_cast<int>(v);
    else if (k == "eta") s.eta = v;
    else if (k == "passes") s.passes = static_cast<int>(v);
    else if (k == "norm") s.norm = v != 0;
    else if (k == "seed") s.seed = static_cast<unsigned>(v);
    else if (k == "lower") s.lower = v != 0;
    else if (k == "mix") {
      if (!mix_seen) s.mixes.clear();
      mix_seen = true;
      s.mixes.push_back(v);
    }
  }
  return s;
}
std::vector<uint32_t> cgram_features(const std::string& raw, const CgramSpec& cs) {
  size_t len = std::min(raw.size(), cs.bytes);
  std::vector<uint32_t> f;
  uint32_t mask = (uint32_t{1} << cs.bits) - 1;
  for (size_t i = 0; i + static_cast<size_t>(cs.n) <= len; ++i) {
    uint64_t h = 1469598103934665603ull;
    for (int k = 0; k < cs.n; ++k) {
      unsigned char c = static_cast<unsigned char>(raw[i + static_cast<size_t>(k)]);
      if (cs.lower && c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c + 32);
      h = (h ^ c) * 1099511628211ull;
    }
    f.push_back(static_cast<uint32_t>((h ^ (h >> 29)) & mask));
  }
  std::sort(f.begin(), f.end());
  f.erase(std::unique(f.begin(), f.end()), f.end());
  return f;
}
struct CgramLr {
  std::vector<float> w;
  double b = 0;
  double logit(const std::vector<uint32_t>& x, bool norm) const {
    double z = 0;
    for (auto f : x) z += w[f];
    if (norm && !x.empty()) z /= std::sqrt(double(x.size()));
    return z + b;
  }
};

// The variants of bench/README.md's first round, as --set specs over today's defaults
// ("bogo": bogofilter's s, x and min_dev).
const std::vector<std::pair<std::string, std::string>>& variants() {
  static const std::string bogo = "s=0.0178,x=0.52,md=0.375";
  static const std::vector<std::pair<std::string, std::string>> v = {
      {"baseline", ""},
      {"osb", "html=0,osb=1"},
      {"osb2", "html=0,osb=1,osbw=2"},
      {"bogo", "html=0," + bogo},
      {"osb+bogo", "html=0,osb=1," + bogo},
      {"osb2+bogo", "html=0,osb=1,osbw=2," + bogo},
      {"osb2+bogo+allhdr", "html=0,osb=1,osbw=2,allhdr=1," + bogo},
      {"osb2+allhdr", "html=0,osb=1,osbw=2,allhdr=1"},
      {"bogo+allhdr", "html=0,allhdr=1," + bogo},
      {"osb2 s=0.1 md=0.3", "html=0,osb=1,osbw=2,s=0.1,md=0.3"},
      {"osb2 s=0.1 md=0.375", "html=0,osb=1,osbw=2,s=0.1,md=0.375"},
      {"osb2 s=0.45 md=0.375", "html=0,osb=1,osbw=2,md=0.375"},
      {"osb2 s=0.0178 md=0.2", "html=0,osb=1,osbw=2,s=0.0178,x=0.52,md=0.2"},
      {"without osb", "osb=0"},
      {"with html tokens", "html=1"},
      {"s=0.45 md=0.1 (SpamBayes)", "s=0.45,md=0.1"},
      {"bogo+clues400", "html=0,clues=400," + bogo},
  };
  return v;
}

// "--set key=value,key=value": parameter overrides for CV experiments.
bool apply_set(bayes::Params& p, const std::string& spec) {
  std::stringstream ss(spec);
  std::string kv;
  while (std::getline(ss, kv, ',')) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos) return false;
    std::string k = kv.substr(0, eq);
    double v = std::stod(kv.substr(eq + 1));
    auto& t = p.tokenizer;
    if (k == "s") p.robinson_s = v;
    else if (k == "x") p.robinson_x = v;
    else if (k == "md") p.min_dev = v;
    else if (k == "clues") p.max_clues = static_cast<size_t>(v);
    else if (k == "pivot") p.pivot_decades = v;
    else if (k == "spd") p.score_per_decade = v;
    else if (k == "osb") t.osb = v != 0;
    else if (k == "osbw") t.osb_window = static_cast<size_t>(v);
    else if (k == "html") t.html_tokens = v != 0;
    else if (k == "allhdr") t.all_headers = v != 0;
    else if (k == "hdr") t.header_tokens = v != 0;
    else if (k == "urlpath") t.url_paths = v != 0;
    else if (k == "caps") t.shape_tokens = v != 0;
    else if (k == "rcvdfix") t.received_fix = v != 0;
    else if (k == "fp") t.fingerprints = v != 0;
    else if (k == "cons") t.consistency = v != 0;
    else if (k == "to") t.recipient_tokens = v != 0;
    else if (k == "w") p.weights = v != 0;
    else if (k == "weta") p.weight_eta = v;
    else if (k == "wpass") p.weight_passes = static_cast<int>(v);
    else if (k == "walpha") p.weight_alpha = v;
    else if (k == "wmix") p.weight_mix = v;
    else if (k == "wseed") p.weight_seed = static_cast<uint64_t>(v);
    else if (k == "gbytes") t.gram_bytes = static_cast<size_t>(v);
    else if (k == "geta") p.gram_eta = v;
    else if (k == "gpass") p.gram_passes = static_cast<int>(v);
    else if (k == "nearw") p.near_window = static_cast<size_t>(v);
    else if (k == "nearx") p.near_exact = static_cast<size_t>(v);
    else if (k == "comb") p.combine = v != 0;
    else if (k == "cpivot") p.combined_pivot = v;
    else if (k == "cspu") p.combined_score_per_unit = v;

    else if (k == "conf") p.confidence_messages = static_cast<uint32_t>(v);
    else if (k == "wpivot") p.weighted_pivot = v;
    else if (k == "wspu") p.weighted_score_per_unit = v;
    else return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string train_dir, test_dir, scores_file, tmp_dir, holdout_dir;
  int cv = 0, variant = -1;
  bool all_variants = false;
  std::vector<std::string> sets;
  int toe_passes = 0;
  double toe_margin = 0;
  std::string lr_spec, cgram_spec;
  bool knn = false;
  int lsh_b = 0, lsh_r = 0, lsh_cap = 0, lsh_sig = 64;
  unsigned lsh_shuffle = 0;
  size_t knn_sample = 0;
  double lsh_rare = 0;
  bool curve = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--train")
      train_dir = next();
    else if (a == "--test")
      test_dir = next();
    else if (a == "--cv")
      cv = std::stoi(next());
    else if (a == "--variants")
      all_variants = true;
    else if (a == "--variant")
      variant = std::stoi(next());
    else if (a == "--scores")
      scores_file = next();
    else if (a == "--dir")
      tmp_dir = next();
    else if (a == "--set")
      sets.push_back(next());
    else if (a == "--toe")
      toe_passes = std::stoi(next());
    else if (a == "--curve")
      curve = true;
    else if (a == "--lr")
      lr_spec = next();
    else if (a == "--cgram")
      cgram_spec = next();
    else if (a == "--knn")
      knn = true;
    else if (a == "--lsh") {  // "bands,rows,cap[,signature size]": also score with MinHash-LSH neighbours
      knn = true;
      std::sscanf(next().c_str(), "%d,%d,%d,%d", &lsh_b, &lsh_r, &lsh_cap, &lsh_sig);
    }
    else if (a == "--lsh-shuffle")  // SEED: enter messages in the LSH index in a random order
      lsh_shuffle = static_cast<unsigned>(std::stoul(next()));
    else if (a == "--lsh-rare")  // F: band minima over tokens in at most a share F of messages
      lsh_rare = std::stod(next());
    else if (a == "--knn-sample") {  // N: also the best similarity within N random spam + N ham
      knn = true;
      knn_sample = std::stoul(next());
    } else if (a == "--holdout")  // with --cv: also score DIR once with the whole train split
      holdout_dir = next();
    else if (a == "--toe-margin")
      toe_margin = std::stod(next());
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (train_dir.empty()) {
    std::fprintf(stderr, "usage: bayes_bench --train DIR [--test DIR] [--cv K] [--variants]\n");
    return 2;
  }
  auto t0 = Clock::now();
  auto train = load(train_dir);
  auto t1 = Clock::now();
  for (auto& m : train) {
    m.parsed = mime::parse(m.raw);
    m.id = bayes::message_identity(m.parsed);
  }
  auto t2 = Clock::now();
  std::printf("train: %zu messages, read %.2fs, parse %.2fs (%.0f msgs/s)\n", train.size(),
              secs(t0, t1), secs(t1, t2), train.size() / secs(t1, t2));



  if (curve) {
    // Cold start: learn N spam + N ham drawn (seeded) from 4/5 of the train split and score
    // the other fifth (i % 5 == 0), for growing N. Train split only.
    bayes::Params p;
    for (const auto& spec : sets)
      if (!apply_set(p, spec)) throw std::runtime_error("bad --set " + spec);
    std::vector<std::vector<std::string>> toks;
    for (auto& m : train) toks.push_back(bayes::tokenize(m.parsed, p.tokenizer));
    std::vector<size_t> spam_pool, ham_pool;
    for (size_t i = 0; i < train.size(); ++i)
      if (i % 5 != 0) (train[i].spam ? spam_pool : ham_pool).push_back(i);
    std::mt19937 rng(7);
    std::shuffle(spam_pool.begin(), spam_pool.end(), rng);
    std::shuffle(ham_pool.begin(), ham_pool.end(), rng);
    for (size_t n : {20, 50, 100, 200, 500, 1000, 100000}) {
      auto store = make_memory_store();
      bayes::Classifier c(*store, p);
      std::vector<bayes::Classifier::Item> items;
      size_t ns = std::min(n, spam_pool.size()), nh = std::min(n, ham_pool.size());
      for (size_t k = 0; k < ns; ++k)
        items.push_back({toks[spam_pool[k]], bayes::Class::Spam, train[spam_pool[k]].id});
      for (size_t k = 0; k < nh; ++k)
        items.push_back({toks[ham_pool[k]], bayes::Class::Ham, train[ham_pool[k]].id});
      c.learn(items);
      if (p.weights) c.train_weights();
      std::vector<Scored> scored;
      for (size_t i = 0; i < train.size(); i += 5) {
        auto r = c.classify_tokens(toks[i]);
        scored.push_back({train[i].spam, r.score, r.evidence_decades});
      }
      char what[64];
      std::snprintf(what, sizeof what, "learnt %zu spam + %zu ham", ns, nh);
      print(what, metrics(scored, bayes::kDefaultThreshold), bayes::kDefaultThreshold);
    }
    return 0;
  }
  if (cv > 0 && !lr_spec.empty()) {
    LrSpec ls = parse_lr(lr_spec);
    bayes::Params p;
    for (const auto& spec : sets)
      if (!apply_set(p, spec)) throw std::runtime_error("bad --set " + spec);
    std::vector<std::vector<uint64_t>> feats;
    for (auto& m : train) {
      std::vector<uint64_t> f;
      for (auto& t : bayes::tokenize(m.parsed, p.tokenizer)) f.push_back(bayes::token_hash(t));
      feats.push_back(std::move(f));
    }
    std::vector<Scored> scored;
    std::vector<std::string> lines;
    std::mt19937 rng(ls.seed);
    for (int fold = 0; fold < cv; ++fold) {
      Lr lr;
      std::vector<size_t> idx;
      for (size_t i = 0; i < train.size(); ++i)
        if (static_cast<int>(i % cv) != fold) idx.push_back(i);
      std::unordered_map<uint64_t, std::pair<double, double>> cnt;
      double S = 0, H = 0;
      for (size_t i : idx) {
        (train[i].spam ? S : H) += 1;
        for (auto f : feats[i]) (train[i].spam ? cnt[f].first : cnt[f].second) += 1;
      }
      auto val = [&](uint64_t f) {
        if (!ls.nb) return 1.0;
        auto it = cnt.find(f);
        double a = ls.alpha, sf = it == cnt.end() ? 0 : it->second.first,
               hf = it == cnt.end() ? 0 : it->second.second;
        return std::log((sf + a) / (S + 2 * a)) - std::log((hf + a) / (H + 2 * a));
      };
      auto scale_of = [&](const std::vector<uint64_t>& x) {
        return ls.norm && !x.empty() ? 1.0 / std::sqrt(double(x.size())) : 1.0;
      };
      auto logit = [&](const std::vector<uint64_t>& x) {
        double z = lr.b, scale = scale_of(x);
        for (auto f : x) {
          auto it = lr.w.find(f);
          z += (it == lr.w.end() ? ls.w0 : it->second) * val(f) * scale;
        }
        return z;
      };
      for (int pass = 0; pass < ls.passes; ++pass) {
        std::shuffle(idx.begin(), idx.end(), rng);
        for (size_t i : idx) {
          const auto& x = feats[i];
          double scale = scale_of(x);
          double z = logit(x);
          double pr = 1.0 / (1.0 + std::exp(-z));
          double g = (train[i].spam ? 1.0 : 0.0) - pr;
          for (auto f : x) {
            auto [it, fresh] = lr.w.try_emplace(f, ls.w0);
            double& wf = it->second;
            wf += ls.eta * (g * val(f) * scale - ls.l2 * (wf - ls.w0));
          }
          lr.b += ls.eta * g * 0.1;
        }
      }
      for (size_t i = 0; i < train.size(); ++i)
        if (static_cast<int>(i % cv) == fold) {
          double z = logit(feats[i]);
          scored.push_back({train[i].spam, z > 0 ? 15.0 : 0.0, z});
          if (!scores_file.empty())
            lines.push_back(std::string(train[i].spam ? "spam " : "ham ") + std::to_string(z) +
                            " " + train[i].name);
        }
    }
    print(("lr " + lr_spec).c_str(), metrics(scored, bayes::kDefaultThreshold),
          bayes::kDefaultThreshold);
    if (!scores_file.empty()) {
      std::ofstream out(scores_file + ".lr");
      for (const auto& l : lines) out << l << '\n';
    }
    return 0;
  }

  // --holdout: the held-out messages go after the train split, in a fold of their own (cv)
  // that no model learns; the model of the whole train split (fold cv) scores them, with
  // the same figures as the CV folds (so a second-level model fitted on the CV figures can
  // be tried on them once).
  if (cv > 0 && !holdout_dir.empty())
    for (auto& m : load(holdout_dir)) {
      m.parsed = mime::parse(m.raw);
      m.id = bayes::message_identity(m.parsed);
      m.held = true;
      train.push_back(std::move(m));
    }
  const bool have_holdout = cv > 0 && !holdout_dir.empty();
  auto fold_of = [&](size_t i) { return train[i].held ? cv : static_cast<int>(i % cv); };
  auto in_train = [&](size_t i, int fold) { return !train[i].held && fold_of(i) != fold; };
  CgramSpec cgs = parse_cgram(cgram_spec);
  std::vector<std::vector<uint32_t>> cgf;
  if (!cgram_spec.empty())
    for (auto& m : train) cgf.push_back(cgram_features(m.raw, cgs));

  if (cv > 0) {
    auto vs = variants();
    if (!sets.empty()) {
      vs.clear();
      for (const auto& spec : sets) vs.push_back({spec, spec});
    } else if (variant >= 0)
      vs = {vs.at(static_cast<size_t>(variant))};
    else if (!all_variants)
      vs.resize(1);
    for (size_t vi = 0; vi < vs.size(); ++vi) {
      const auto& [vname, spec] = vs[vi];
      bayes::Params p;
      if (!spec.empty() && !apply_set(p, spec)) throw std::runtime_error("bad --set " + spec);
      std::vector<std::vector<std::string>> toks;
      for (auto& m : train) toks.push_back(bayes::tokenize(m.parsed, p.tokenizer));
      std::vector<std::vector<uint32_t>> grams;  // the product's byte 4-grams
      for (auto& m : train)
        grams.push_back(bayes::byte_grams(m.raw, p.tokenizer.gram_bytes));
      std::vector<Scored> scored;
      std::vector<double> zcs;  // byte n-gram logit per scored message (--cgram)
      std::vector<std::pair<double, double>> nn;  // (max Jaccard to train spam, to train ham)
      std::vector<std::vector<uint64_t>> sets;
      if (knn)
        for (auto& t : toks) {
          std::vector<uint64_t> h;
          for (auto& x : t) h.push_back(bayes::token_hash(x));
          std::sort(h.begin(), h.end());
          h.erase(std::unique(h.begin(), h.end()), h.end());
          sets.push_back(std::move(h));
        }
      // MinHash band keys per message (--lsh): band b's key hashes the minima of rows
      // b*r .. b*r+r-1, each minimum over the set of a seeded 64-bit mix of the token hash.
      auto mix = [](uint64_t x) {
        x += 0x9e3779b97f4a7c15ULL;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
        return x ^ (x >> 31);
      };
      std::vector<std::vector<uint64_t>> bands;
      std::vector<std::vector<uint16_t>> sigs;  // lsh_sig minhashes, 16 bits each
      if (lsh_b > 0)
        for (auto& h : sets) {
          std::vector<uint16_t> sg;
          for (int r = 0; r < lsh_sig; ++r) {
            uint64_t seed = mix(uint64_t(1000 + r));
            uint64_t m = ~uint64_t{0};
            for (uint64_t x : h) m = std::min(m, mix(x ^ seed));
            sg.push_back(static_cast<uint16_t>(m >> 48));
          }
          sigs.push_back(std::move(sg));
        }
      std::vector<std::pair<double, double>> ns;  // LSH candidates, signature estimate
      std::vector<std::pair<double, double>> ks_sample;  // --knn-sample
      // --lsh-rare F: the band minima over the tokens in at most a share F of the train
      // split's messages only (common tokens make crowded bands that lose close messages).
      std::unordered_map<uint64_t, uint32_t> df;
      if (lsh_b > 0 && lsh_rare > 0)
        for (size_t j = 0; j < sets.size(); ++j)
          if (!train[j].held)
            for (uint64_t x : sets[j]) ++df[x];
      const double rare_max = lsh_rare * static_cast<double>(sets.size());
      if (lsh_b > 0)
        for (auto& full : sets) {
          std::vector<uint64_t> rare;
          if (lsh_rare > 0)
            for (uint64_t x : full)
              if (df[x] <= rare_max) rare.push_back(x);
          const auto& h = lsh_rare > 0 && !rare.empty() ? rare : full;
          std::vector<uint64_t> keys;
          for (int b = 0; b < lsh_b; ++b) {
            uint64_t key = uint64_t(b) * 0x100000001b3ULL;
            for (int r = 0; r < lsh_r; ++r) {
              uint64_t seed = mix(uint64_t(b * lsh_r + r + 1));
              uint64_t m = ~uint64_t{0};
              for (uint64_t x : h) m = std::min(m, mix(x ^ seed));
              key = mix(key ^ m);
            }
            keys.push_back(key);
          }
          bands.push_back(std::move(keys));
        }
      std::vector<std::pair<double, double>> nl;  // the same, found through the LSH index
      size_t lsh_candidates = 0, lsh_queries = 0;
      auto jaccard = [](const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
        size_t i = 0, j = 0, inter = 0;
        while (i < a.size() && j < b.size()) {
          if (a[i] < b[j]) ++i;
          else if (b[j] < a[i]) ++j;
          else { ++inter; ++i; ++j; }
        }
        size_t uni = a.size() + b.size() - inter;
        return uni ? double(inter) / double(uni) : 0.0;
      };
      std::vector<std::string> lines, feats;
      std::vector<bool> held_scored;  // per scored message: from --holdout
      for (int fold = 0; fold < cv + (have_holdout ? 1 : 0); ++fold) {
        std::unordered_map<uint64_t, std::vector<size_t>> index;  // band key -> newest ids
        // The order messages enter the index ("newest" = entered last): the file order (ham,
        // then spam, each by name) by default; --lsh-shuffle enters them in a seeded random
        // order, as a live model's learning order would be (the file order leaves only spam
        // in crowded bands).
        std::vector<size_t> order;
        if (lsh_b > 0) {
          order.resize(train.size());
          for (size_t j = 0; j < order.size(); ++j) order[j] = j;
          if (lsh_shuffle) std::shuffle(order.begin(), order.end(), std::mt19937(lsh_shuffle));
        }
        for (size_t j : order) {
          if (!in_train(j, fold)) continue;
          for (uint64_t key : bands[j]) {
            auto& ids = index[key];
            ids.push_back(j);
            if (static_cast<int>(ids.size()) > lsh_cap) ids.erase(ids.begin());
          }
        }
        CgramLr cg;
        if (!cgf.empty()) {
          cg.w.assign(size_t{1} << cgs.bits, 0.0f);
          std::vector<size_t> idx;
          for (size_t i = 0; i < train.size(); ++i)
            if (in_train(i, fold)) idx.push_back(i);
          std::mt19937 rng(cgs.seed);
          for (int pass = 0; pass < cgs.passes; ++pass) {
            std::shuffle(idx.begin(), idx.end(), rng);
            for (size_t i : idx) {
              const auto& x = cgf[i];
              double z = cg.logit(x, cgs.norm);
              double g = (train[i].spam ? 1.0 : 0.0) - 1.0 / (1.0 + std::exp(-z));
              double step = cgs.eta * g * (cgs.norm && !x.empty() ? 1.0 / std::sqrt(double(x.size())) : 1.0);
              for (auto f : x) cg.w[f] += static_cast<float>(step);
              cg.b += cgs.eta * g * 0.1;
            }
          }
        }
        auto store = make_memory_store();
        bayes::Classifier c(*store, p);
        std::vector<bayes::Classifier::Item> items;
        for (size_t i = 0; i < train.size(); ++i)
          if (in_train(i, fold)) {
            items.push_back({toks[i], train[i].spam ? bayes::Class::Spam : bayes::Class::Ham,
                             train[i].id});
            items.back().grams = grams[i];
          }
        c.learn(items);
        // Train on errors: relearn the fold's training messages that score on the wrong side
        // of (or within toe_margin of) the default threshold; a nonce token makes the
        // relearnt copy a new message for the "seen" digest.
        for (int pass = 0; pass < toe_passes; ++pass) {
          std::vector<bayes::Classifier::Item> again;
          for (auto& it : items) {
            double e = c.classify_tokens(it.tokens).evidence_decades - p.pivot_decades;
            bool spam = it.cls == bayes::Class::Spam;
            if (spam ? e < toe_margin : e > -toe_margin) {
              auto t = it.tokens;
              t.push_back("\x01toe:" + std::to_string(pass));
              again.push_back({std::move(t), it.cls, it.id + "toe" + std::to_string(pass)});
            }
          }
          if (again.empty()) break;
          c.learn(again);
        }
        if (p.weights) c.train_weights();
        std::vector<size_t> sample;  // --knn-sample: N learnt spam and N learnt ham
        if (knn_sample > 0) {
          std::vector<size_t> sp, hm;
          for (size_t j = 0; j < train.size(); ++j)
            if (in_train(j, fold)) (train[j].spam ? sp : hm).push_back(j);
          std::mt19937 rng(12345u + static_cast<unsigned>(fold));
          std::shuffle(sp.begin(), sp.end(), rng);
          std::shuffle(hm.begin(), hm.end(), rng);
          sp.resize(std::min(sp.size(), knn_sample));
          hm.resize(std::min(hm.size(), knn_sample));
          sample = sp;
          sample.insert(sample.end(), hm.begin(), hm.end());
        }
        for (size_t i = 0; i < train.size(); ++i)
          if (fold_of(i) == fold) {
            auto r = c.classify_tokens(toks[i], grams[i]);
            held_scored.push_back(train[i].held);
            scored.push_back({train[i].spam, r.score, r.evidence_decades});
            if (!cgf.empty()) zcs.push_back(cg.logit(cgf[i], cgs.norm));
            if (knn) {
              double bs = 0, bh = 0;
              for (size_t j = 0; j < train.size(); ++j) {
                if (!in_train(j, fold)) continue;
                double x = jaccard(sets[i], sets[j]);
                (train[j].spam ? bs : bh) = std::max(train[j].spam ? bs : bh, x);
              }
              nn.push_back({bs, bh});
              if (knn_sample > 0) {
                // The best similarity within a fixed random sample of the fold's learnt spam
                // and ham (what a product could afford: a few dozen kept lists per message).
                double ss = 0, sh = 0;
                for (size_t j : sample)
                  (train[j].spam ? ss : sh) =
                      std::max(train[j].spam ? ss : sh, jaccard(sets[i], sets[j]));
                ks_sample.push_back({ss, sh});
              }
              if (lsh_b > 0) {
                std::vector<size_t> cand;
                for (uint64_t key : bands[i]) {
                  auto it = index.find(key);
                  if (it != index.end()) cand.insert(cand.end(), it->second.begin(), it->second.end());
                }
                std::sort(cand.begin(), cand.end());
                cand.erase(std::unique(cand.begin(), cand.end()), cand.end());
                lsh_candidates += cand.size();
                ++lsh_queries;
                double ls = 0, lh = 0, es = 0, eh = 0;
                for (size_t j : cand) {
                  double x = jaccard(sets[i], sets[j]);
                  (train[j].spam ? ls : lh) = std::max(train[j].spam ? ls : lh, x);
                  int eq = 0;
                  for (int r = 0; r < lsh_sig; ++r) eq += sigs[i][r] == sigs[j][r];
                  (train[j].spam ? es : eh) = std::max(train[j].spam ? es : eh, eq / double(lsh_sig));
                }
                nl.push_back({ls, lh});
                ns.push_back({es, eh});
              }
            }
            if (!scores_file.empty()) {
              const double eh = r.header_evidence * double(r.header_clues);
              const double eb = r.body_evidence * double(r.body_clues);
              const int nh = int(r.header_clues), nb = int(r.body_clues);
              // Nearest-neighbour similarities to the best spam / ham (exhaustive, --knn; LSH
              // exact and LSH signature, --lsh) and the byte n-gram logit (--cgram); 0 when not
              // asked for. bayes_stack.py reads these columns.
              double k[7] = {0, 0, 0, 0, 0, 0, 0};
              if (!zcs.empty() && zcs.size() == scored.size()) k[6] = zcs.back();
              else if (r.grams_used) k[6] = r.gram_logit;  // the product's gram model
              if (!nn.empty() && nn.size() == scored.size()) { k[0] = nn.back().first; k[1] = nn.back().second; }
              if (!nl.empty() && nl.size() == scored.size()) { k[2] = nl.back().first; k[3] = nl.back().second; }
              if (!ns.empty() && ns.size() == scored.size()) { k[4] = ns.back().first; k[5] = ns.back().second; }
              if (!ks_sample.empty() && ks_sample.size() == scored.size()) {
                k[4] = ks_sample.back().first;  // in the signature columns (no --lsh then)
                k[5] = ks_sample.back().second;
              }
              char fl[512];
              // Then the From address's learnt spam / ham (its "fa:" token).
              std::snprintf(fl, sizeof fl,
                            "%s %f %f %f %f %d %f %d %zu %s %f %f %f %f %f %f %f %u %u %f %f",
                            train[i].spam ? "spam" : "ham", r.evidence_decades, r.bayes_evidence,
                            r.weight_logit, eh, nh, eb, nb, toks[i].size(), train[i].name.c_str(),
                            k[0], k[1], k[2], k[3], k[4], k[5], k[6], r.sender_spam,
                            r.sender_ham, r.near_spam, r.near_ham);
              feats.push_back(fl);
            }
            if (!scores_file.empty())
              lines.push_back(std::string(train[i].spam ? "spam " : "ham ") +
                              std::to_string(r.evidence_decades) + " " + train[i].name + " E=" +
                              std::to_string(r.bayes_evidence) + " z=" +
                              std::to_string(r.weight_logit) + " " + r.evidence(10));
          }
      }
      if (have_holdout) {
        // The CV figures, then the held-out ones apart; the mixes below are CV-only.
        std::vector<Scored> cvs, held;
        std::vector<std::string> cv_lines, held_lines, cv_feats, held_feats;
        for (size_t q = 0; q < scored.size(); ++q) {
          (held_scored[q] ? held : cvs).push_back(scored[q]);
          if (!scores_file.empty()) {
            (held_scored[q] ? held_lines : cv_lines).push_back(lines[q]);
            (held_scored[q] ? held_feats : cv_feats).push_back(feats[q]);
          }
        }
        print(("cv " + vname).c_str(), metrics(cvs, bayes::kDefaultThreshold),
              bayes::kDefaultThreshold);
        print(("holdout " + vname).c_str(), metrics(held, bayes::kDefaultThreshold),
              bayes::kDefaultThreshold);
        if (!scores_file.empty()) {
          const std::string base = scores_file + "." + std::to_string(vi);
          std::ofstream(base) << text::join(cv_lines, "\n") << '\n';
          std::ofstream(base + ".feat") << text::join(cv_feats, "\n") << '\n';
          std::ofstream(base + ".holdout") << text::join(held_lines, "\n") << '\n';
          std::ofstream(base + ".holdout.feat") << text::join(held_feats, "\n") << '\n';
        }
        continue;
      }
      print(("cv " + vname).c_str(), metrics(scored, bayes::kDefaultThreshold),
            bayes::kDefaultThreshold);
      if (!nn.empty()) {
        for (double t : {0.0, 0.1, 0.15, 0.2, 0.25})
          for (double k : {3.0, 5.0, 7.0, 10.0, 15.0}) {
            std::vector<Scored> mixed;
            for (size_t q = 0; q < scored.size(); ++q) {
              auto [bs, bh] = nn[q];
              double e = scored[q].rank;
              if (std::max(bs, bh) >= t) e += k * (bs - bh);
              mixed.push_back({scored[q].spam, 7.5 + (e - p.weighted_pivot), e});
            }
            char what[64];
            std::snprintf(what, sizeof what, "  + knn t=%.1f k=%.0f", t, k);
            print(what, metrics(mixed, 7.5), 7.5);
          }
        if (!nl.empty()) {
          std::printf("  lsh %d bands x %d rows, cap %d: %.1f candidates per message\n", lsh_b,
                      lsh_r, lsh_cap, double(lsh_candidates) / double(lsh_queries));
          for (double k : {5.0, 7.0, 10.0}) {
            std::vector<Scored> mixed;
            for (size_t q = 0; q < scored.size(); ++q) {
              double e = scored[q].rank + k * (nl[q].first - nl[q].second);
              mixed.push_back({scored[q].spam, 7.5 + (e - p.weighted_pivot), e});
            }
            char what[64];
            std::snprintf(what, sizeof what, "  + lsh k=%.0f", k);
            print(what, metrics(mixed, 7.5), 7.5);
            mixed.clear();
            for (size_t q = 0; q < scored.size(); ++q) {
              double e = scored[q].rank + k * (ns[q].first - ns[q].second);
              mixed.push_back({scored[q].spam, 7.5 + (e - p.weighted_pivot), e});
            }
            std::snprintf(what, sizeof what, "  + lsh sig64 k=%.0f", k);
            print(what, metrics(mixed, 7.5), 7.5);
          }
        }
      }
      if (!zcs.empty()) {
        std::vector<Scored> alone, mixed;
        for (size_t k = 0; k < scored.size(); ++k)
          alone.push_back({scored[k].spam, zcs[k] > 0 ? 15.0 : 0.0, zcs[k]});
        print(("  cgram alone " + cgram_spec).c_str(), metrics(alone, 7.5), 7.5);
        for (double mix : cgs.mixes) {
          mixed.clear();
          for (size_t k = 0; k < scored.size(); ++k) {
            double e = scored[k].rank + mix * zcs[k];
            mixed.push_back({scored[k].spam, 7.5 + (e - p.weighted_pivot), e});
          }
          char what[64];
          std::snprintf(what, sizeof what, "  + cgram mix %.2f", mix);
          print(what, metrics(mixed, 7.5), 7.5);
        }
      }
      if (!scores_file.empty()) {
        std::ofstream out(scores_file + "." + std::to_string(vi));
        for (const auto& l : lines) out << l << '\n';
        std::ofstream fo(scores_file + "." + std::to_string(vi) + ".feat");
        for (const auto& l : feats) fo << l << '\n';
      }
      std::fflush(stdout);
    }
    return 0;
  }

  // Learn the whole train split into a real LMDB store.
  if (tmp_dir.empty()) {
    char tmpl[] = "/tmp/digue-bayes-bench-XXXXXX";
    tmp_dir = mkdtemp(tmpl);
  }
  bayes::Params p;
  for (const auto& spec : sets)
    if (!apply_set(p, spec)) throw std::runtime_error("bad --set " + spec);
  {
    auto store = make_lmdb_store(tmp_dir, size_t{1} << 30);
    bayes::Classifier c(*store, p);
    auto a = Clock::now();
    double ca = cpu_now();
    std::vector<bayes::Classifier::Item> items;
    for (auto& m : train) {
      items.push_back({bayes::tokenize(m.parsed, p.tokenizer),
                       m.spam ? bayes::Class::Spam : bayes::Class::Ham, m.id});
      items.back().grams = bayes::byte_grams(m.raw, p.tokenizer.gram_bytes);
    }
    auto b = Clock::now();
    for (size_t s = 0; s < items.size(); s += 500) {
      std::vector<bayes::Classifier::Item> batch(items.begin() + s,
                                                 items.begin() + std::min(items.size(), s + 500));
      c.learn(batch);
    }
    auto tw = Clock::now();
    auto wt = c.train_weights();
    std::printf("train_weights: %zu messages, %zu weights, %.2fs\n", wt.messages, wt.nonzero,
                secs(tw, Clock::now()));
    store->sync();
    auto e = Clock::now();
    std::printf("learn CPU time (tokenize + store, this thread): %.2fs\n", cpu_now() - ca);
    auto st = c.stats();
    std::printf(
        "learn: tokenize %.2fs, store %.2fs, total with parse %.2fs (%.0f msgs/s); "
        "%llu tokens\n",
        secs(a, b), secs(b, e), secs(t1, t2) + secs(a, e),
        train.size() / (secs(t1, t2) + secs(a, e)), (unsigned long long)st.tokens);
  }
  std::error_code ec;
  std::printf("model on disk: %llu bytes (data.mdb)\n",
              (unsigned long long)fs::file_size(fs::path(tmp_dir) / "data.mdb", ec));
  if (test_dir.empty()) return 0;

  auto test = load(test_dir);
  auto a = Clock::now();
  for (auto& m : test) m.parsed = mime::parse(m.raw);
  auto b = Clock::now();
  auto store = make_lmdb_store(tmp_dir, size_t{1} << 30);
  bayes::Classifier c(*store, p);
  std::vector<Scored> scored;
  std::vector<bayes::Result> results;
  // A new model version empties the process's token cache (as any learning does).
  auto new_version = [&] {
    store->put(bayes::cache::kVersionKey, bayes::cache::bump(store->get(bayes::cache::kVersionKey)));
  };
  // Best of 3 passes: the machine is shared, the first pass also warms the page cache. Each
  // pass starts with an empty token cache: a stream of new mail, each message finding the
  // tokens the earlier ones brought.
  double best = 1e9;
  for (int pass = 0; pass < 3; ++pass) {
    results.clear();
    new_version();
    auto s = Clock::now();
    for (auto& m : test) results.push_back(c.classify(m.parsed, m.raw));
    best = std::min(best, secs(s, Clock::now()));
  }
  for (size_t i = 0; i < test.size(); ++i)
    scored.push_back({test[i].spam, results[i].score, results[i].evidence_decades});
  {
    // The two halves apart: tokenizing, and the model lookups + combining.
    // (Tokenizing counts the byte 4-grams too.)
    std::vector<std::vector<std::string>> toks;
    std::vector<std::vector<uint32_t>> grams;
    double c0 = cpu_now();
    for (auto& m : test) {
      toks.push_back(bayes::tokenize(m.parsed, p.tokenizer));
      grams.push_back(bayes::byte_grams(m.raw, p.tokenizer.gram_bytes));
    }
    new_version();
    double c1 = cpu_now();
    for (size_t i = 0; i < toks.size(); ++i) c.classify_tokens(toks[i], grams[i]);
    double c2 = cpu_now();
    new_version();
    for (auto& m : test) c.classify(m.parsed, m.raw);
    double c3 = cpu_now();
    for (auto& m : test) c.classify(m.parsed, m.raw);
    double c4 = cpu_now();
    // No cache at all: a model without a version key is read from the store every time.
    const auto version = store->get(bayes::cache::kVersionKey);
    store->del(bayes::cache::kVersionKey);
    double u0 = cpu_now();
    for (auto& m : test) c.classify(m.parsed, m.raw);
    const double uncached = cpu_now() - u0;
    if (version) store->put(bayes::cache::kVersionKey, *version);
    size_t ntok = 0;
    for (auto& t : toks) ntok += t.size();
    std::printf(
        "  CPU time, one core: tokenize %.0f msgs/s, classify_tokens %.0f msgs/s, "
        "tokenize+classify %.0f msgs/s (cache emptied before the pass; %.0f with every token "
        "cached, %.0f without the cache); %.0f tokens/msg\n",
        test.size() / (c1 - c0), test.size() / (c2 - c1), test.size() / (c3 - c2),
        test.size() / (c4 - c3), test.size() / uncached, double(ntok) / test.size());
    // Where the time goes, in microseconds per message (CPU of one thread; each part timed
    // alone over the whole split, so its data stays warm: the sum is below the whole).
    auto per_msg = [&](auto&& f) {
      double a0 = cpu_now();
      for (size_t i = 0; i < test.size(); ++i) f(i);
      return (cpu_now() - a0) * 1e6 / double(test.size());
    };
    const double t_tok = per_msg([&](size_t i) { (void)bayes::tokenize(test[i].parsed, p.tokenizer); });
    const double t_grams = per_msg([&](size_t i) { (void)bayes::byte_grams(test[i].raw, p.tokenizer.gram_bytes); });
    const std::vector<uint32_t> none;
    const double t_base = per_msg([&](size_t i) { (void)c.classify_tokens(toks[i], none); });
    bayes::Params q = p;
    q.near_window = 0;
    bayes::Classifier no_near(*store, q);
    const double t_gram = per_msg([&](size_t i) { (void)no_near.classify_tokens(toks[i], grams[i]); });
    const double t_full = per_msg([&](size_t i) { (void)c.classify_tokens(toks[i], grams[i]); });
    std::printf(
        "  us/msg: tokenize %.1f, byte_grams %.1f, classify without grams %.1f, + gram logit "
        "%.1f, + nearest %.1f\n",
        t_tok, t_grams, t_base, t_gram - t_base, t_full - t_gram);
    // As with autolearn: each message learnt right after its classification, a new model
    // version every time (the learning outside the timing). Last: it changes the model.
    new_version();
    double learnt_cpu = 0;
    for (size_t i = 0; i < test.size(); ++i) {
      const double a0 = cpu_now();
      const auto r = c.classify(test[i].parsed, test[i].raw);
      learnt_cpu += cpu_now() - a0;
      bayes::Classifier::Item item{toks[i], r.score >= 7.5 ? bayes::Class::Spam : bayes::Class::Ham};
      item.grams = grams[i];
      c.learn({std::move(item)});
    }
    std::printf("  tokenize+classify with a message learnt after each: %.0f msgs/s\n",
                test.size() / learnt_cpu);
  }
  std::printf(
      "classify: parse %.2fs (%.0f msgs/s); tokenize+classify %.3fs (%.0f msgs/s, one "
      "thread)\n",
      secs(a, b), test.size() / secs(a, b), best, test.size() / best);
  print("digue test split", metrics(scored, bayes::kDefaultThreshold), bayes::kDefaultThreshold);
  if (!scores_file.empty()) {
    std::ofstream out(scores_file);
    for (size_t i = 0; i < test.size(); ++i)
      out << (test[i].spam ? "spam " : "ham ") << results[i].score << ' '
          << results[i].evidence_decades << ' ' << test[i].name << ' ' << results[i].evidence(6)
          << '\n';
  }
  return 0;
}
