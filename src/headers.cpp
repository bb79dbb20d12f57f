// Trace headers and header-block edits; see include/digue/headers.hpp.
#include "digue/headers.hpp"

#include <strings.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <vector>

#include <fmt/format.h>

#include "digue/text.hpp"

namespace digue::headers {

std::string rfc5322_date(int64_t unix_seconds, bool utc) {
  // Names spelled here, not by strftime: they must not follow the locale.
  static const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  if (utc) gmtime_r(&t, &tm);
  else localtime_r(&t, &tm);
  long off = utc ? 0 : tm.tm_gmtoff / 60;
  char sign = off < 0 ? '-' : '+';
  if (off < 0) off = -off;
  return fmt::format("{}, {} {} {:04} {:02}:{:02}:{:02} {}{:02}{:02}", kDays[tm.tm_wday],
                     tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, sign, off / 60, off % 60);
}

namespace {

std::string angle(const Address& a) { return "<" + a.str() + ">"; }

// Header values we write come partly from the client (HELO, addresses): keep them on one
// line and printable so they cannot inject header fields.
std::string clean(std::string_view s) {
  std::string o;
  for (unsigned char c : s) o += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  return o;
}

// Folds a long header line at spaces or commas so lines stay under 78 characters.
std::string fold(const std::string& line) {
  if (line.size() <= 78) return line + "\r\n";
  std::string out;
  size_t start = 0;
  while (line.size() - start > 78 - (start ? 1 : 0)) {
    size_t limit = start + 76;
    size_t cut = line.find_last_of(" ,", limit);
    if (cut == std::string::npos || cut <= start + 8) cut = line.find_first_of(" ,", limit);
    if (cut == std::string::npos) break;
    if (line[cut] == ',') ++cut;
    out += line.substr(start, cut - start);
    out += "\r\n\t";
    start = cut;
    while (start < line.size() && line[start] == ' ') ++start;
  }
  out += line.substr(start);
  out += "\r\n";
  return out;
}

// Free text for an unstructured header field: runs of words holding bytes beyond ASCII become
// RFC 2047 encoded-words (UTF-8, Q encoding, at most 75 characters each, never splitting a
// character; the spaces inside a run encoded as '_', since decoders drop the space between
// two encoded-words), so the header stays 7-bit for any downstream server.
std::string encode_words(std::string_view text) {
  std::vector<std::string_view> words;
  for (size_t pos = 0;;) {
    size_t sp = std::min(text.find(' ', pos), text.size());
    words.push_back(text.substr(pos, sp - pos));
    if (sp == text.size()) break;
    pos = sp + 1;
  }
  auto ascii = [](std::string_view w) {
    return std::all_of(w.begin(), w.end(),
                       [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  };
  std::string out;
  for (size_t i = 0; i < words.size();) {
    if (i > 0) out += ' ';
    if (ascii(words[i])) {
      out += words[i++];
      continue;
    }
    // The run of non-ASCII words from i, spaces included.
    size_t j = i;
    while (j < words.size() && !ascii(words[j])) ++j;
    std::string_view run(words[i].data(),
                         static_cast<size_t>(words[j - 1].data() + words[j - 1].size() -
                                             words[i].data()));
    std::string enc;
    auto flush = [&] {
      if (enc.empty()) return;
      if (!out.empty() && out.back() != ' ') out += ' ';
      out += "=?UTF-8?Q?" + enc + "?=";
      enc.clear();
    };
    for (size_t k = 0; k < run.size();) {
      size_t n = text::utf8_char_length(run, k);
      if (n == 0) n = 1;  // ill-formed: encoded byte by byte all the same
      std::string piece;
      for (size_t m = k; m < k + n && m < run.size(); ++m) {
        auto c = static_cast<unsigned char>(run[m]);
        // (A comma is encoded too: the header folder may break a line after one.)
        if (c == ' ')
          piece += '_';
        else if (std::isalnum(c) || c == '!' || c == '*' || c == '+' || c == '-' || c == '/' ||
                 c == '.' || c == ':')
          piece += static_cast<char>(c);
        else
          piece += fmt::format("={:02X}", c);
      }
      if (enc.size() + piece.size() > 75 - 12) flush();
      enc += piece;
      k += n;
    }
    flush();
    i = j;
  }
  return out;
}

// "invalid_mx" -> "Invalid-Mx": a filter name as a header name part.
std::string header_case(std::string_view name) {
  std::string out;
  bool start = true;
  for (char c : name) {
    if (c == '_' || c == '-') {
      out += '-';
      start = true;
    } else if (std::isalnum(static_cast<unsigned char>(c))) {
      out += start ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
      start = false;
    }
  }
  return out;
}

}  // namespace

std::string received(const Envelope& env, const std::string& hostname,
                     const std::vector<Address>& rcpts) {
  std::string from = clean(env.helo.empty() ? "unknown" : env.helo);
  std::string paren = env.client_ptr.empty() ? "" : clean(env.client_ptr) + " ";
  std::string ip = env.client_ip.find(':') != std::string::npos ? "IPv6:" + env.client_ip
                                                                 : env.client_ip;
  std::string with = env.esmtp ? "ESMTP" : "SMTP";
  if (env.tls) with += "S";
  if (env.smtputf8) with = "UTF8" + with;
  std::string line = fmt::format("Received: from {} ({}[{}])", from, paren, ip);
  std::string out = line + "\r\n";
  std::string by = fmt::format("\tby {} (digue) with {}", hostname, with);
  if (env.tls) by += fmt::format(" ({}:{})", clean(env.tls->version), clean(env.tls->cipher));
  by += " id " + env.queue_id;
  out += by + "\r\n";
  std::string tail = "\t";
  if (rcpts.size() == 1) tail += "for " + clean(angle(rcpts[0])) + "; ";
  tail += rfc5322_date(env.received_at);
  out += tail + "\r\n";
  return out;
}

std::string trace_block(const Envelope& env, const std::string& hostname,
                        const std::vector<Address>& rcpts, const Verdict& verdict, bool spam) {
  // Standard trace fields (Received-SPF) go above our Received: line (RFC 7208 9.1).
  std::string out;
  for (const auto& t : verdict.traces)
    if (!t.field.empty()) out += fold(t.field + ": " + clean(t.line));
  out += received(env, hostname, rcpts);
  out += fold("X-Digue-Envelope-From: " + clean(angle(env.mail_from)));
  out += fold("X-Digue-HELO: " + clean(env.helo));
  out += fold("X-Digue-Client-IP: " + clean(env.client_ip));
  std::string to;
  for (const auto& r : rcpts) to += (to.empty() ? "" : ", ") + clean(angle(r));
  out += fold("X-Digue-Envelope-To: " + to);
  out += fold("X-Digue-Queue-ID: " + env.queue_id);
  out += fold(fmt::format("X-Spam-Status: {}, score={:.1f} required={:.1f} tests={}",
                          spam ? "Yes" : "No", verdict.score, verdict.required,
                          clean(verdict.tests())));
  if (!verdict.deciding_filter.empty() && !verdict.whitelisted)
    out += fold("X-Digue-Filter: " + clean(verdict.deciding_filter));
  if (verdict.whitelisted)
    out += fold("X-Digue-Whitelist: " + clean(verdict.whitelist_reason));
  for (const auto& t : verdict.traces)
    if (t.field.empty())
      out += fold("X-Digue-" + header_case(t.filter) + ": " + encode_words(clean(t.line)));
  if (spam) out += "X-Spam-Flag: YES\r\n";
  return out;
}

bool owned_header(std::string_view name) {
  auto ieq = [&](std::string_view b) {
    return name.size() == b.size() && strncasecmp(name.data(), b.data(), b.size()) == 0;
  };
  return ieq("X-Spam-Status") || ieq("X-Spam-Flag") ||
         (name.size() > 8 && strncasecmp(name.data(), "X-Digue-", 8) == 0);
}

std::string rewrite(std::string_view raw, std::string_view subject_prefix) {
  // Walk the top-level header fields (a field = its first line + continuation lines).
  std::string out;
  out.reserve(raw.size() + subject_prefix.size() + 16);
  size_t pos = 0;
  bool subject_done = subject_prefix.empty();
  while (pos < raw.size()) {
    size_t eol = raw.find('\n', pos);
    size_t line_end = eol == std::string_view::npos ? raw.size() : eol + 1;
    std::string_view line = raw.substr(pos, line_end - pos);
    if (line == "\r\n" || line == "\n") break;  // end of the header block
    if (line.front() == ' ' || line.front() == '\t') {  // stray continuation: keep
      out.append(line);
      pos = line_end;
      continue;
    }
    // Extend to the field's continuation lines.
    size_t field_end = line_end;
    while (field_end < raw.size() && (raw[field_end] == ' ' || raw[field_end] == '\t')) {
      size_t e = raw.find('\n', field_end);
      field_end = e == std::string_view::npos ? raw.size() : e + 1;
    }
    std::string_view field = raw.substr(pos, field_end - pos);
    size_t colon = line.find(':');
    std::string_view name = colon == std::string_view::npos ? std::string_view() : line.substr(0, colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    if (!name.empty() && owned_header(name)) {
      pos = field_end;
      continue;
    }
    if (!subject_done && name.size() == 7 && strncasecmp(name.data(), "Subject", 7) == 0) {
      out.append(field.substr(0, colon + 1));
      std::string_view value = field.substr(colon + 1);
      size_t ws = 0;
      while (ws < value.size() && (value[ws] == ' ' || value[ws] == '\t')) ++ws;
      out += ' ';
      out.append(subject_prefix);
      out.append(value.substr(ws));
      subject_done = true;
    } else {
      out.append(field);
    }
    pos = field_end;
  }
  if (!subject_done) {
    std::string_view p = subject_prefix;
    while (!p.empty() && p.back() == ' ') p.remove_suffix(1);
    out += "Subject: ";
    out.append(p);
    out += "\r\n";
  }
  out.append(raw.substr(pos));
  return out;
}

}  // namespace digue::headers
