// Bayes model dump and restore (a portable text format); see include/digue/bayes.hpp.
#include "digue/bayes.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <istream>
#include <ostream>
#include <stdexcept>
#include <unordered_map>

#include "src/bayes_cache.hpp"
#include "src/bayes_records.hpp"

namespace digue::bayes {

using namespace records;

void Classifier::dump(std::ostream& out) const {
  // One scan of every "bayes:" key: one read transaction, so a learn running meanwhile is
  // either wholly in the dump or not at all. Keys come in order: g, gram-*, meta, seen, t,
  // weights. The gram model's table is not dumped: train_weights rebuilds it from the lists.
  out << "digue-bayes 4\n";
  size_t records = 0;
  bool have_meta = false;
  char wbuf[32];
  store_.scan("bayes:", [&](std::string_view k, std::string_view v) {
    if (k == kMetaKey) {
      Meta m = decode_meta(std::string(v));
      out << "meta " << m.spam << ' ' << m.ham << '\n';
      have_meta = true;
    } else if (k == kWeightsKey) {
      out << "weights " << encode_weights_meta(decode_weights_meta(std::string(v))) << '\n';
    } else if (k.rfind(kTokenPrefix, 0) == 0) {
      Counts c = decode_counts(v);
      out << "t " << k.substr(kTokenPrefix.size()) << ' ' << c.spam << ' ' << c.ham << ' '
          << c.day;
      if (c.weight != 0) {
        std::snprintf(wbuf, sizeof wbuf, " %.9g", static_cast<double>(c.weight));
        out << wbuf;
      }
      out << '\n';
    } else if (k.rfind(kGramPrefix, 0) == 0) {
      // "g <identity> <hex of the encoded list>": written only when it reads back.
      if (!decode_grams(v)) return true;
      out << "g " << k.substr(kGramPrefix.size()) << ' ';
      for (unsigned char ch : v) out << hex_digit(ch >> 4) << hex_digit(ch);
      out << '\n';
    } else if (k.rfind(kSeenPrefix, 0) == 0) {
      SeenRecord rec = decode_seen(v);
      out << "seen " << k.substr(kSeenPrefix.size()) << ' ' << (rec.cls ? rec.cls : '?');
      if (rec.day != 0 || !rec.hashes.empty()) out << ' ' << rec.day;
      if (!rec.hashes.empty()) {
        out << ' ';
        for (size_t i = 0; i < rec.hashes.size(); ++i)
          out << (i ? "," : "") << hex64(rec.hashes[i]);
      }
      out << '\n';
    } else {
      return true;  // not a model record
    }
    ++records;
    return static_cast<bool>(out);
  });
  if (!have_meta) {
    out << "meta 0 0\n";
    ++records;
  }
  // The count ends the dump: a cut copy is refused by restore.
  out << "end " << records << '\n';
}

namespace {

// One line of a dump, parsed; throws std::runtime_error naming the line.
struct DumpLine {
  enum class Kind : uint8_t { Blank, Meta, Weights, Token, Seen, Grams, End } kind = Kind::Blank;
  std::string key;    // Token, Seen, Grams
  Counts c;           // Token
  std::string value;  // Seen, Grams: the record; Weights: the encoded weights meta
  uint64_t a = 0, b = 0;  // Meta: spam, ham; End: records
};

DumpLine parse_dump_line(const std::string& line, size_t lineno) {
  auto bad = [&](const std::string& why) -> DumpLine {
    throw std::runtime_error("restore: line " + std::to_string(lineno) + ": " + why);
  };
  DumpLine r;
  if (line.empty()) return r;
  if (line.back() == '\r') bad("CR at the end of the line (a dump has LF line ends)");
  char kind[8] = {0}, id[65] = {0}, cls = 0;
  unsigned long long a = 0, b = 0, d = 0;
  int pos = 0;
  if (line.rfind("meta ", 0) == 0) {
    if (std::sscanf(line.c_str(), "meta %llu %llu%n", &a, &b, &pos) != 2 ||
        static_cast<size_t>(pos) != line.size())
      bad("bad meta record");
    r.kind = DumpLine::Kind::Meta;
    r.a = a;
    r.b = b;
  } else if (line.rfind("weights ", 0) == 0) {
    double bias = 0;
    if (std::sscanf(line.c_str(), "weights %lf %llu", &bias, &a) != 2 || !std::isfinite(bias))
      bad("bad weights record");
    r.kind = DumpLine::Kind::Weights;
    r.value = encode_weights_meta({bias, a});
  } else if (line.rfind("t ", 0) == 0) {
    double wt = 0;
    int got = std::sscanf(line.c_str(), "%7s %64s %llu %llu %llu %lf", kind, id, &a, &b, &d, &wt);
    uint64_t h = 0;
    // The bound is checked on the stored float: a double just under 1e30 rounds up to
    // 1e30f, which the dump writes back as 1.00000002e+30 and must read again.
    if ((got != 5 && got != 6) || !parse_hex64(id, h) || a > UINT32_MAX || b > UINT32_MAX ||
        d > UINT32_MAX || !std::isfinite(wt) || std::fabs(wt) > 2e30 ||
        std::fabs(static_cast<float>(wt)) > 1e30f)
      bad("bad token record");
    r.kind = DumpLine::Kind::Token;
    r.key = std::string(kTokenPrefix) + id;
    r.c = Counts{static_cast<uint32_t>(a), static_cast<uint32_t>(b), static_cast<uint32_t>(d),
                 static_cast<float>(wt)};
  } else if (line.rfind("seen ", 0) == 0) {
    if (std::sscanf(line.c_str(), "%7s %64s %c%n", kind, id, &cls, &pos) != 3 ||
        (cls != 'S' && cls != 'H'))
      bad("bad seen record");
    std::vector<uint64_t> hashes;
    std::string_view rest = std::string_view(line).substr(static_cast<size_t>(pos));
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    uint32_t day = 0;
    if (!rest.empty()) {
      size_t sp = std::min(rest.find(' '), rest.size());
      auto [end, ec] = std::from_chars(rest.data(), rest.data() + sp, day);
      if (ec != std::errc() || end != rest.data() + sp) bad("bad seen record: day");
      rest.remove_prefix(std::min(sp + 1, rest.size()));
      while (!rest.empty()) {
        size_t comma = rest.find(',');
        uint64_t h = 0;
        if (!parse_hex64(rest.substr(0, comma), h)) bad("bad seen record: token hash");
        hashes.push_back(h);
        rest.remove_prefix(comma == std::string_view::npos ? rest.size() : comma + 1);
      }
    }
    r.kind = DumpLine::Kind::Seen;
    r.key = std::string(kSeenPrefix) + id;
    r.value = encode_seen(cls, day, hashes);
  } else if (line.rfind("g ", 0) == 0) {
    if (std::sscanf(line.c_str(), "%7s %64s %n", kind, id, &pos) != 2 || pos == 0)
      bad("bad gram list record");
    std::string_view hex = std::string_view(line).substr(static_cast<size_t>(pos));
    if (hex.size() % 2 != 0) bad("bad gram list record: odd hex length");
    std::string bytes(hex.size() / 2, '\0');
    for (size_t i = 0; i < bytes.size(); ++i) {
      unsigned v = 0;
      auto [end, ec] = std::from_chars(hex.data() + 2 * i, hex.data() + 2 * i + 2, v, 16);
      if (ec != std::errc() || end != hex.data() + 2 * i + 2) bad("bad gram list record: hex");
      bytes[i] = static_cast<char>(v);
    }
    if (!decode_grams(bytes)) bad("bad gram list record: not a gram list");
    r.kind = DumpLine::Kind::Grams;
    r.key = std::string(kGramPrefix) + id;
    r.value = std::move(bytes);
  } else if (line.rfind("end ", 0) == 0) {
    if (std::sscanf(line.c_str(), "end %llu%n", &a, &pos) != 1 ||
        static_cast<size_t>(pos) != line.size())
      bad("bad end record");
    r.kind = DumpLine::Kind::End;
    r.a = a;
  } else {
    bad("unknown record");
  }
  return r;
}

}  // namespace

size_t Classifier::restore(std::istream& in, RestoreMode mode) const {
  const std::istream::pos_type start = in.tellg();
  if (start == std::istream::pos_type(-1))
    throw std::runtime_error("restore: the input cannot be read twice (not a file)");
  std::string line;
  auto read_header = [&] {
    if (!std::getline(in, line)) throw std::runtime_error("restore: line 1: empty input");
    if (line == "digue-bayes 1" || line == "digue-bayes 2") return 2;
    if (line == "digue-bayes 3") return 3;
    if (line == "digue-bayes 4") return 4;
    throw std::runtime_error("restore: line 1: not a digue-bayes 1, 2, 3 or 4 dump" +
                             std::string(!line.empty() && line.back() == '\r'
                                             ? " (CR line ends: a dump has LF line ends)"
                                             : ""));
  };

  // First pass: every line checked, the end record matched, before anything is written.
  const int version = read_header();
  size_t lineno = 1, records = 0;
  std::optional<uint64_t> end;
  std::vector<std::string> seen_keys;  // merge mode: checked against the model below
  while (std::getline(in, line)) {
    ++lineno;
    DumpLine r = parse_dump_line(line, lineno);
    if (r.kind == DumpLine::Kind::Blank) continue;
    if (end)
      throw std::runtime_error("restore: line " + std::to_string(lineno) +
                               ": a record after the end record");
    if (r.kind == DumpLine::Kind::End) {
      end = r.a;
      continue;
    }
    ++records;
    if (mode == RestoreMode::Merge && r.kind == DumpLine::Kind::Seen)
      seen_keys.push_back(std::move(r.key));
  }
  if (in.bad()) throw std::runtime_error("restore: read error");
  if (version >= 3 && !end)
    throw std::runtime_error("restore: the dump is cut short (no end record after " +
                             std::to_string(records) + " records)");
  if (end && *end != records)
    throw std::runtime_error("restore: the end record says " + std::to_string(*end) +
                             " records, the dump holds " + std::to_string(records));

  // The model it goes into.
  Meta have = decode_meta(store_.get(kMetaKey));
  if (mode == RestoreMode::Empty) {
    bool any = have.spam + have.ham > 0;
    for (std::string_view prefix : {kTokenPrefix, kSeenPrefix, kGramPrefix})
      store_.scan(prefix, [&](std::string_view, std::string_view) {
        any = true;
        return false;
      });
    if (any)
      throw std::runtime_error("restore: the model is not empty (" +
                               std::to_string(have.spam) + " spam, " + std::to_string(have.ham) +
                               " ham messages): restore --merge adds to it, --replace "
                               "replaces it");
  } else if (mode == RestoreMode::Merge) {
    size_t known = 0;
    for (size_t i = 0; i < seen_keys.size(); i += 20000) {
      std::vector<std::string> keys(
          seen_keys.begin() + static_cast<ptrdiff_t>(i),
          seen_keys.begin() + static_cast<ptrdiff_t>(std::min(seen_keys.size(), i + 20000)));
      for (const auto& v : store_.get_many(keys)) known += v ? 1 : 0;
    }
    if (known > 0)
      throw std::runtime_error("restore: " + std::to_string(known) +
                               " messages of the dump are already in the model: merging would "
                               "count them twice (--replace replaces the model)");
  } else {
    // Replace: the model's records go first, in transactions of 20,000, each with a new
    // version (the version record stays: a learner running meanwhile must not find its own).
    for (;;) {
      std::vector<Store::Op> dels;
      store_.scan("bayes:", [&](std::string_view k, std::string_view) {
        if (k != cache::kVersionKey) dels.push_back({Store::Op::Kind::Del, std::string(k), ""});
        return dels.size() < 20000;
      });
      if (dels.empty()) break;
      store_.update({std::string(cache::kVersionKey)},
                    [&](const std::vector<std::optional<std::string>>& v) {
                      std::vector<Store::Op> ops = dels;
                      ops.push_back(cache::bump_op(v[0]));
                      return ops;
                    });
    }
  }

  // Second pass: written in transactions of 20,000 records, summed into what the model holds
  // (a weight in the dump replaces the token's: weights are not additive, retrain after a
  // merge); the message counts and the weights' record last, so a restore cut short leaves
  // a model that is not ready (or, merging, one without the new counts), never one whose
  // counts claim tokens it does not hold.
  in.clear();
  in.seekg(start);
  read_header();
  lineno = 1;
  std::vector<DumpLine> batch;
  Meta add_meta;
  std::optional<std::string> weights_meta;
  auto flush = [&] {
    if (batch.empty()) return;
    std::vector<std::string> keys;
    for (const auto& r : batch) keys.push_back(r.key);
    keys.emplace_back(cache::kVersionKey);  // last: token records change, a new version
    store_.update(keys, [&](const std::vector<std::optional<std::string>>& values) {
      using K = Store::Op::Kind;
      std::vector<Store::Op> ops{cache::bump_op(values.back())};
      std::unordered_map<std::string, Counts> merged;
      for (size_t i = 0; i < batch.size(); ++i) {
        const auto& r = batch[i];
        if (r.kind == DumpLine::Kind::Seen || r.kind == DumpLine::Kind::Grams) {
          ops.push_back({K::Put, r.key, r.value});
          continue;
        }
        auto it = merged.find(r.key);
        if (it == merged.end())
          it = merged.emplace(r.key, values[i] ? decode_counts(*values[i]) : Counts{}).first;
        it->second.spam += r.c.spam;
        it->second.ham += r.c.ham;
        it->second.day = std::max(it->second.day, r.c.day);
        if (r.c.weight != 0) it->second.weight = r.c.weight;
      }
      for (const auto& [k, c] : merged) ops.push_back({K::Put, k, encode_counts(c)});
      return ops;
    });
    batch.clear();
  };
  while (std::getline(in, line)) {
    DumpLine r = parse_dump_line(line, ++lineno);
    switch (r.kind) {
      case DumpLine::Kind::Meta:
        add_meta.spam += r.a;
        add_meta.ham += r.b;
        break;
      case DumpLine::Kind::Weights:
        weights_meta = std::move(r.value);
        break;
      case DumpLine::Kind::Token:
      case DumpLine::Kind::Seen:
      case DumpLine::Kind::Grams:
        batch.push_back(std::move(r));
        if (batch.size() >= 20000) flush();
        break;
      default:
        break;
    }
  }
  flush();
  store_.update({std::string(kMetaKey)}, [&](const std::vector<std::optional<std::string>>& v) {
    Meta m = decode_meta(v[0]);
    m.spam += add_meta.spam;
    m.ham += add_meta.ham;
    return std::vector<Store::Op>{{Store::Op::Kind::Put, std::string(kMetaKey), encode_meta(m)}};
  });
  if (weights_meta) store_.put(kWeightsKey, *weights_meta);
  return records;
}

}  // namespace digue::bayes
