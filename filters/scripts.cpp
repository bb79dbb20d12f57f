#include "filters/scripts.hpp"

#include <cstdio>

#include "digue/message.hpp"
#include "digue/options.hpp"

namespace digue::filters {
namespace {

bool is_cyrillic(uint32_t cp) { return (cp >= 0x400 && cp <= 0x52f) || (cp >= 0x1c80 && cp <= 0x1c8f); }
bool is_cjk(uint32_t cp) {
  return (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) ||  // Han
         (cp >= 0x3040 && cp <= 0x30ff) ||                                   // kana
         (cp >= 0xac00 && cp <= 0xd7af) || (cp >= 0x1100 && cp <= 0x11ff) ||  // Hangul
         (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x20000 && cp <= 0x2fa1f);
}
// Letters of any script; punctuation, symbols, digits and spaces are not counted, so that a
// subject of "!!! 100% ..." does not dilute the share.
bool is_letter(uint32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  if (cp < 0xc0 || cp == 0xd7 || cp == 0xf7) return false;
  if (cp >= 0x2000 && cp <= 0x2bff) return false;  // punctuation, symbols, arrows, boxes
  if (cp >= 0x3000 && cp <= 0x303f) return false;  // CJK punctuation
  if (cp >= 0xff00 && cp <= 0xff20) return false;  // full-width punctuation and digits
  if (cp >= 0xd800 && cp <= 0xf8ff) return false;  // surrogates, private use
  if (cp >= 0x1f000) return cp >= 0x20000 && cp <= 0x2fa1f;  // emoji out, Han extension in
  return true;
}

struct Part {
  const char* label;
  std::string_view text;
  size_t min_letters;
};

class Scripts final : public Filter {
 public:
  struct Settings {
    bool cyrillic = true, cjk = true;
    double cyrillic_threshold = 0.3, cjk_threshold = 0.3;
    size_t min_header = 3, min_body = 20, max_body = 65536;
    double score = 3.0;
  };
  explicit Scripts(Settings s) : s_(s) {}
  std::string_view name() const override { return "scripts"; }
  Phase phase() const override { return Phase::Data; }

  boost::asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
    if (!ctx.message) co_return FilterResult::error("scripts: no message");
    const mime::Parsed& f = ctx.message->facts();
    std::string_view from;
    if (const mime::Header* h = f.header("from")) {
      from = h->value;
      // The display name only: the address is ASCII whatever the sender's language.
      if (size_t lt = from.find('<'); lt != std::string_view::npos) from = from.substr(0, lt);
    }
    std::string_view body = f.text;
    if (body.size() > s_.max_body) body = body.substr(0, s_.max_body);
    const Part parts[] = {{"SUBJECT", f.subject, s_.min_header},
                          {"FROM", from, s_.min_header},
                          {"BODY", body, s_.min_body}};
    FilterResult result;
    for (const Part& p : parts) {
      ScriptCounts c = count_scripts(p.text);
      if (c.letters < p.min_letters || c.letters == 0) continue;
      auto test = [&](bool on, size_t n, double threshold, const char* script) {
        double share = static_cast<double>(n) / static_cast<double>(c.letters);
        if (!on || share < threshold) return;
        char ev[64];
        std::snprintf(ev, sizeof ev, "share=%.2f letters=%zu", share, c.letters);
        result.verdict = FilterResult::Verdict::Hit;
        result.symbols.push_back({std::string(script) + "_" + p.label, s_.score, ev});
      };
      test(s_.cyrillic, c.cyrillic, s_.cyrillic_threshold, "CYRILLIC");
      test(s_.cjk, c.cjk, s_.cjk_threshold, "CJK");
    }
    if (result.verdict == FilterResult::Verdict::Hit) result.reason = "foreign script";
    co_return result;
  }

 private:
  Settings s_;
};

}  // namespace

ScriptCounts count_scripts(std::string_view s) {
  ScriptCounts c;
  for (size_t i = 0; i < s.size();) {
    auto b = static_cast<unsigned char>(s[i]);
    uint32_t cp;
    size_t n;
    if (b < 0x80) {
      cp = b;
      n = 1;
    } else if ((b & 0xe0) == 0xc0) {
      cp = b & 0x1f;
      n = 2;
    } else if ((b & 0xf0) == 0xe0) {
      cp = b & 0x0f;
      n = 3;
    } else if ((b & 0xf8) == 0xf0) {
      cp = b & 0x07;
      n = 4;
    } else {
      ++i;  // stray continuation byte
      continue;
    }
    if (i + n > s.size()) break;
    for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    i += n;
    if (!is_letter(cp)) continue;
    ++c.letters;
    if (is_cyrillic(cp)) ++c.cyrillic;
    else if (is_cjk(cp)) ++c.cjk;
  }
  return c;
}

FilterPtr make_scripts(const FilterBuildContext& b) {
  OptionReader r(b.options, "filters.scripts");
  Scripts::Settings s;
  s.cyrillic = r.boolean("cyrillic", true);
  s.cjk = r.boolean("cjk", true);
  s.cyrillic_threshold = r.number("cyrillic_threshold", 0.3, 0.01, 1.0);
  s.cjk_threshold = r.number("cjk_threshold", 0.3, 0.01, 1.0);
  s.min_header = static_cast<size_t>(r.integer("min_letters_header", 3, 1, 1000));
  s.min_body = static_cast<size_t>(r.integer("min_letters_body", 20, 1, 100000));
  s.max_body = static_cast<size_t>(r.integer("max_body_bytes", 65536, 256, 64 << 20));
  s.score = r.number("score", 3.0, -100, 100);
  r.finish();
  return std::make_shared<Scripts>(s);
}

}  // namespace digue::filters
