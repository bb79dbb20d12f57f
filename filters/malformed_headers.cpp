#include "filters/malformed_headers.hpp"

#include <algorithm>
#include <cctype>
#include <map>

#include "digue/message.hpp"
#include "digue/options.hpp"
#include "digue/text.hpp"

namespace digue::filters {
namespace {

using text::lower;

// "[Day, ] D Mon YYYY HH:MM[:SS] zone" loosely: a month name, a 4- or 2-digit year and a
// time; real mailers vary in the rest (obsolete zones, comments).
bool plausible_date(std::string_view v) {
  static constexpr std::string_view kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                                 "jul", "aug", "sep", "oct", "nov", "dec"};
  std::string l = lower(v);
  bool month = std::any_of(std::begin(kMonths), std::end(kMonths),
                           [&](std::string_view m) { return l.find(m) != std::string::npos; });
  bool time = false;
  for (size_t i = 1; i + 3 < l.size(); ++i)
    if (l[i] == ':' && std::isdigit(static_cast<unsigned char>(l[i - 1])) &&
        std::isdigit(static_cast<unsigned char>(l[i + 1])) &&
        std::isdigit(static_cast<unsigned char>(l[i + 2])))
      time = true;
  return month && time;
}

bool plausible_msgid(std::string_view v) {
  size_t lt = v.find('<'), at = v.find('@'), gt = v.find('>');
  return lt != std::string_view::npos && at != std::string_view::npos &&
         gt != std::string_view::npos && lt < at && at + 1 < gt && at > lt + 1;
}

class MalformedHeaders final : public Filter {
 public:
  struct Settings {
    double missing = 1.0, duplicate = 1.5, syntax = 1.0, eightbit = 1.0, long_line = 0.5;
    size_t max_line = 998;
  };
  explicit MalformedHeaders(Settings s) : s_(s) {}
  std::string_view name() const override { return "malformed_headers"; }
  Phase phase() const override { return Phase::Data; }

  boost::asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
    if (!ctx.message) co_return FilterResult::error("malformed_headers: no message");
    const mime::Parsed& f = ctx.message->facts();
    FilterResult result;
    auto add = [&](const char* sym, double score, const std::vector<std::string>& what) {
      if (what.empty()) return;
      std::string ev;
      for (const auto& w : what) ev += (ev.empty() ? "" : ", ") + w;
      result.symbols.push_back({sym, score, ev});
      result.verdict = FilterResult::Verdict::Hit;
    };

    std::map<std::string, int> counts;
    for (const auto& h : f.headers()) ++counts[lower(h.name)];
    std::vector<std::string> missing, dups, syntax, eight;
    for (const char* n : {"date", "from", "message-id"})
      if (!counts.count(n)) missing.push_back(n);
    for (const char* n : {"date", "from", "sender", "reply-to", "to", "cc", "bcc", "message-id",
                          "in-reply-to", "references", "subject"})
      if (auto it = counts.find(n); it != counts.end() && it->second > 1) dups.push_back(n);

    if (const mime::Header* h = f.header("from"); h && h->value.find('@') == std::string::npos)
      syntax.push_back("from: no address");
    if (const mime::Header* h = f.header("message-id"); h && !plausible_msgid(h->raw_value))
      syntax.push_back("message-id");
    if (const mime::Header* h = f.header("date"); h && !plausible_date(h->raw_value))
      syntax.push_back("date");
    for (const auto& d : f.defects)
      if (d == "header block ended by a line that is not a header") syntax.push_back("not a header line");
    if (!ctx.envelope.smtputf8) {
      for (const auto& h : f.headers()) {
        bool high = std::any_of(h.raw_value.begin(), h.raw_value.end(),
                                [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
        if (high && std::find(eight.begin(), eight.end(), lower(h.name)) == eight.end())
          eight.push_back(lower(h.name));
      }
    }
    // Line lengths need the raw header block: unfolding hides them.
    std::vector<std::string> longs;
    const std::string& raw = ctx.message->raw();
    size_t pos = 0;
    if (raw.starts_with("From ")) pos = raw.find('\n') == std::string::npos ? raw.size() : raw.find('\n') + 1;
    while (pos < raw.size()) {
      size_t nl = raw.find('\n', pos);
      size_t end = nl == std::string::npos ? raw.size() : nl;
      size_t len = end - pos - (end > pos && raw[end - 1] == '\r' ? 1 : 0);
      if (len == 0) break;  // end of the header block
      if (len > s_.max_line) {
        size_t colon = raw.find(':', pos);
        std::string name = colon < end && colon - pos < 80 ? lower(raw.substr(pos, colon - pos))
                                                           : "line";
        longs.push_back(name + " (" + std::to_string(len) + " bytes)");
        if (longs.size() >= 5) break;
      }
      if (nl == std::string::npos) break;
      pos = nl + 1;
    }
    add("MISSING_HEADER", s_.missing, missing);
    add("DUPLICATE_HEADER", s_.duplicate, dups);
    add("BAD_HEADER_SYNTAX", s_.syntax, syntax);
    add("HEADER_8BIT", s_.eightbit, eight);
    add("LONG_HEADER_LINE", s_.long_line, longs);
    if (result.verdict == FilterResult::Verdict::Hit) result.reason = "malformed headers";
    co_return result;
  }

 private:
  Settings s_;
};

}  // namespace

FilterPtr make_malformed_headers(const FilterBuildContext& b) {
  OptionReader r(b.options, "filters.malformed_headers");
  MalformedHeaders::Settings s;
  s.missing = r.number("score_missing", 1.0, -100, 100);
  s.duplicate = r.number("score_duplicate", 1.5, -100, 100);
  s.syntax = r.number("score_syntax", 1.0, -100, 100);
  s.eightbit = r.number("score_8bit", 1.0, -100, 100);
  s.long_line = r.number("score_long_line", 0.5, -100, 100);
  s.max_line = static_cast<size_t>(r.integer("max_line_length", 998, 78, 1 << 20));
  r.finish();
  return std::make_shared<MalformedHeaders>(s);
}

}  // namespace digue::filters
