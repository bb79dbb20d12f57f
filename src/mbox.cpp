// mbox splitting and the mail-message check; see digue/mbox.hpp.
#include "digue/mbox.hpp"

#include <algorithm>
#include <array>

namespace digue::mbox {
namespace {

constexpr std::array<std::string_view, 7> kDays{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 12> kMonths{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

template <size_t N>
bool one_of(std::string_view w, const std::array<std::string_view, N>& names) {
  return std::find(names.begin(), names.end(), w) != names.end();
}

bool digits(std::string_view w, size_t min, size_t max) {
  return w.size() >= min && w.size() <= max &&
         std::all_of(w.begin(), w.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "12:36", "12:36:23", "9:05:00".
bool is_time(std::string_view w) {
  size_t c1 = w.find(':');
  if (c1 == std::string_view::npos || !digits(w.substr(0, c1), 1, 2)) return false;
  std::string_view rest = w.substr(c1 + 1);
  size_t c2 = rest.find(':');
  if (c2 == std::string_view::npos) return digits(rest, 2, 2);
  return digits(rest.substr(0, c2), 2, 2) && digits(rest.substr(c2 + 1), 2, 2);
}

// "+0200", "-0700", "GMT", "PST", "CEST".
bool is_zone(std::string_view w) {
  if (w.size() == 5 && (w[0] == '+' || w[0] == '-')) return digits(w.substr(1), 4, 4);
  return w.size() >= 1 && w.size() <= 5 &&
         std::all_of(w.begin(), w.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

bool is_year(std::string_view w) { return digits(w, 4, 4); }

// w[d...] is "DAY MON DD HH:MM[:SS] [ZONE] YEAR [ZONE] [remote from HOST]", and nothing else.
bool is_date(const std::vector<std::string_view>& w, size_t d) {
  if (!one_of(w[d], kDays) || !one_of(w[d + 1], kMonths) || !digits(w[d + 2], 1, 2) ||
      !is_time(w[d + 3]))
    return false;
  size_t end = w.size();
  if (end - d >= 8 && w[end - 3] == "remote" && w[end - 2] == "from") end -= 3;
  size_t rest = end - (d + 4);
  if (rest == 1) return is_year(w[d + 4]);
  if (rest == 2)
    return (is_zone(w[d + 4]) && is_year(w[d + 5])) || (is_year(w[d + 4]) && is_zone(w[d + 5]));
  return false;
}

}  // namespace

bool is_envelope(std::string_view line) {
  if (line.substr(0, 5) != "From ") return false;
  line.remove_prefix(5);
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::vector<std::string_view> w;
  for (size_t pos = 0; pos < line.size();) {
    size_t start = line.find_first_not_of(" \t", pos);
    if (start == std::string_view::npos) break;
    size_t stop = std::min(line.find_first_of(" \t", start), line.size());
    w.push_back(line.substr(start, stop - start));
    pos = stop;
  }
  // The sender is one word, none, or a word and a bracketed note ("x@[10.0.0.1] [ufa]").
  for (size_t d = 0; d <= 2 && d + 5 <= w.size(); ++d)
    if (is_date(w, d)) return true;
  return false;
}

std::optional<std::string> Splitter::feed(std::string_view line) {
  if (mode_ == Mode::Start) {
    mode_ = is_envelope(line) ? Mode::Mbox : Mode::Plain;
    if (mode_ == Mode::Mbox) return std::nullopt;  // the envelope line is not the message's
  }
  if (mode_ == Mode::Plain) {
    cur_.append(line);
    return std::nullopt;
  }
  if (is_envelope(line)) return take();
  size_t q = line.find_first_not_of('>');
  if (q != 0 && q != std::string_view::npos && line.substr(q, 5) == "From ") line.remove_prefix(1);
  cur_.append(line);
  return std::nullopt;
}

std::optional<std::string> Splitter::finish() {
  if (mode_ == Mode::Start) return std::nullopt;
  bool mbox = mode_ == Mode::Mbox;
  mode_ = Mode::Start;
  if (mbox) return take();
  std::string done = std::move(cur_);
  cur_.clear();
  return done;
}

std::string Splitter::take() {
  // An mbox writer ends every message with an empty line: not the message's (the copy
  // delivered by SMTP has none).
  std::string done = std::move(cur_);
  cur_.clear();
  if (done.size() >= 4 && done.compare(done.size() - 4, 4, "\r\n\r\n") == 0)
    done.resize(done.size() - 2);
  else if (done.size() >= 2 && done.compare(done.size() - 2, 2, "\n\n") == 0)
    done.resize(done.size() - 1);
  return done;
}

std::vector<std::string> split(std::string_view data) {
  std::vector<std::string> out;
  Splitter s;
  for (size_t pos = 0; pos < data.size();) {
    size_t eol = data.find('\n', pos);
    size_t next = eol == std::string_view::npos ? data.size() : eol + 1;
    if (auto m = s.feed(data.substr(pos, next - pos))) out.push_back(std::move(*m));
    pos = next;
  }
  if (auto m = s.finish()) out.push_back(std::move(*m));
  return out;
}

bool looks_like_message(std::string_view raw) {
  bool field = false;
  for (size_t pos = 0; pos < raw.size();) {
    size_t eol = raw.find('\n', pos);
    std::string_view line = raw.substr(pos, eol == std::string_view::npos ? raw.size() : eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    if (line.find('\0') != std::string_view::npos) return false;
    // A field name is printable ASCII other than ':' (RFC 5322 2.2), then the colon.
    size_t colon = line.find(':');
    if (colon != 0 && colon != std::string_view::npos &&
        std::all_of(line.begin(), line.begin() + colon, [](char c) { return c > ' ' && c < 127; }))
      field = true;
    if (eol == std::string_view::npos) break;
    pos = eol + 1;
  }
  return field;
}

}  // namespace digue::mbox
