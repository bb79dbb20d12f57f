// Bounding the Bayes model (Classifier::expire); see include/digue/bayes.hpp.
#include "digue/bayes.hpp"

#include <algorithm>
#include <map>
#include <optional>

#include "src/bayes_cache.hpp"
#include "src/bayes_records.hpp"

namespace digue::bayes {

using namespace records;

ExpireOutcome Classifier::expire(const ExpireLimits& lim, uint32_t now_day) const {
  if (now_day == 0) now_day = today();
  ExpireOutcome out;
  struct Tok {
    std::string key;
    Counts c;
  };
  std::vector<Tok> all;
  store_.scan(kTokenPrefix, [&](std::string_view k, std::string_view v) {
    all.push_back({std::string(k), decode_counts(v)});
    return true;
  });
  const uint32_t cutoff = now_day > lim.stale_days ? now_day - lim.stale_days : 0;
  // Oldest first; among tokens of the same day the rarest go first.
  std::sort(all.begin(), all.end(), [](const Tok& a, const Tok& b) {
    if (a.c.day != b.c.day) return a.c.day < b.c.day;
    return a.c.spam + a.c.ham < b.c.spam + b.c.ham;
  });
  size_t drop = 0;
  while (drop < all.size() && all[drop].c.day < cutoff) ++drop;
  if (all.size() - drop > lim.max_tokens) drop = all.size() - lim.max_tokens;

  // Seen records: a first pass counts lists and markers per day, a second collects what
  // goes (only keys, so a large store costs memory in proportion to what changes).
  std::map<uint32_t, size_t> lists_per_day, markers_per_day;
  store_.scan(kSeenPrefix, [&](std::string_view, std::string_view v) {
    if (v.size() < 5) return true;  // undated: dated below, never dropped this time
    uint32_t day = get_u32(v, 1);
    ++markers_per_day[day];
    if (v.size() > 5) ++lists_per_day[day];
    return true;
  });
  const uint32_t lists_from = std::max(cutoff, keep_from_day(lists_per_day, lim.max_lists));
  const uint32_t seen_cutoff = now_day > lim.seen_days ? now_day - lim.seen_days : 0;
  const uint32_t markers_from = std::max(seen_cutoff, keep_from_day(markers_per_day, lim.max_seen));
  enum class Change : uint8_t { DropList, DropMarker, Date };
  auto change_of = [&](std::string_view v) -> std::optional<Change> {
    if (v.empty()) return std::nullopt;
    if (v.size() < 5) return Change::Date;
    uint32_t day = get_u32(v, 1);
    if (day < markers_from) return Change::DropMarker;
    if (v.size() > 5 && day < lists_from) return Change::DropList;
    return std::nullopt;
  };
  std::vector<std::string> changed;
  store_.scan(kSeenPrefix, [&](std::string_view k, std::string_view v) {
    if (change_of(v)) changed.emplace_back(k);
    return true;
  });
  for (size_t start = 0; start < changed.size(); start += 10000) {
    std::vector<std::string> keys(
        changed.begin() + static_cast<ptrdiff_t>(start),
        changed.begin() + static_cast<ptrdiff_t>(std::min(changed.size(), start + 10000)));
    ExpireOutcome chunk;
    store_.update(keys, [&](const std::vector<std::optional<std::string>>& values) {
      std::vector<Store::Op> ops;
      chunk = {};
      for (size_t i = 0; i < keys.size(); ++i) {
        if (!values[i]) continue;
        const std::string& v = *values[i];
        auto c = change_of(v);  // again: the record may have changed since the scan
        if (!c) continue;
        if (*c == Change::DropMarker) {
          ops.push_back({Store::Op::Kind::Del, keys[i], ""});
          ++chunk.markers;
          if (v.size() > 5) ++chunk.lists;
        } else {
          uint32_t day = *c == Change::Date ? now_day : get_u32(v, 1);
          ops.push_back({Store::Op::Kind::Put, keys[i], encode_seen(v[0], day, {})});
          if (*c == Change::DropList) ++chunk.lists;
        }
      }
      return ops;
    });
    out.lists += chunk.lists;
    out.markers += chunk.markers;
  }

  // Gram lists: kept only for a seen record that keeps its token list, the newest
  // max_gram_lists of them (by day, as the lists); the rest go, and so do lists whose record
  // went (unlearnt, or its marker expired).
  const uint32_t grams_from =
      std::max(lists_from, keep_from_day(lists_per_day, lim.max_gram_lists));
  std::vector<std::string> gram_keys;
  store_.scan(kGramPrefix, [&](std::string_view k, std::string_view) {
    gram_keys.emplace_back(k);
    return true;
  });
  for (size_t start = 0; start < gram_keys.size(); start += 10000) {
    std::vector<std::string> seen_keys;
    const size_t end = std::min(gram_keys.size(), start + 10000);
    for (size_t i = start; i < end; ++i)
      seen_keys.push_back(std::string(kSeenPrefix) + gram_keys[i].substr(kGramPrefix.size()));
    // Decided on the seen records as read in the deleting transaction (one learnt meanwhile
    // keeps its new list).
    size_t dropped = 0;
    store_.update(seen_keys, [&](const std::vector<std::optional<std::string>>& seen) {
      std::vector<Store::Op> ops;
      for (size_t i = start; i < end; ++i) {
        const auto& v = seen[i - start];
        if (!v || v->size() <= 5 || get_u32(*v, 1) < grams_from)
          ops.push_back({Store::Op::Kind::Del, gram_keys[i], ""});
      }
      dropped = ops.size();
      return ops;
    });
    out.gram_lists += dropped;
  }

  for (size_t start = 0; start < drop; start += 10000) {
    size_t end = std::min(drop, start + 10000);
    std::vector<std::string> keys;
    for (size_t i = start; i < end; ++i) keys.push_back(all[i].key);
    keys.emplace_back(cache::kVersionKey);  // last: read, bumped when a token goes
    size_t chunk_removed = 0;
    store_.update(keys, [&](const std::vector<std::optional<std::string>>& values) {
      std::vector<Store::Op> ops;
      for (size_t i = 0; i + 1 < keys.size(); ++i) {
        // A token learnt again since the scan (even the same day) is not stale: keep it.
        if (!values[i]) continue;
        Counts now = decode_counts(*values[i]);
        const Counts& then = all[start + i].c;
        if (now.day != then.day || now.spam != then.spam || now.ham != then.ham) continue;
        ops.push_back({Store::Op::Kind::Del, keys[i], ""});
      }
      chunk_removed = ops.size();
      if (!ops.empty()) ops.push_back(cache::bump_op(values.back()));
      return ops;
    });
    out.tokens += chunk_removed;
  }
  return out;
}

}  // namespace digue::bayes
