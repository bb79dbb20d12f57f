// HTML to visible text, and link targets. Not a full HTML5 parser on purpose: filters need
// what a reader *sees* (spammers hide words in script, style, display:none and zero-size
// fonts, and split words with comments) and where links point, at a cost linear in the input.
#include <algorithm>
#include <array>

#include "src/mime_internal.hpp"

namespace digue::mime {
namespace detail {
namespace {

struct Entity {
  std::string_view name;
  uint32_t cp;
};

// The named entities that occur in mail in practice; the rest stay as written.
constexpr Entity kEntities[] = {
    {"amp", '&'},       {"lt", '<'},         {"gt", '>'},        {"quot", '"'},
    {"apos", '\''},     {"nbsp", 0xa0},      {"copy", 0xa9},     {"reg", 0xae},
    {"trade", 0x2122},  {"euro", 0x20ac},    {"pound", 0xa3},    {"yen", 0xa5},
    {"cent", 0xa2},     {"sect", 0xa7},      {"deg", 0xb0},      {"middot", 0xb7},
    {"laquo", 0xab},    {"raquo", 0xbb},     {"ndash", 0x2013},  {"mdash", 0x2014},
    {"lsquo", 0x2018},  {"rsquo", 0x2019},   {"ldquo", 0x201c},  {"rdquo", 0x201d},
    {"bull", 0x2022},   {"hellip", 0x2026},  {"shy", 0xad},      {"zwnj", 0x200c},
    {"zwj", 0x200d},    {"agrave", 0xe0},    {"aacute", 0xe1},   {"acirc", 0xe2},
    {"auml", 0xe4},     {"ccedil", 0xe7},    {"egrave", 0xe8},   {"eacute", 0xe9},
    {"ecirc", 0xea},    {"euml", 0xeb},      {"icirc", 0xee},    {"iuml", 0xef},
    {"ocirc", 0xf4},    {"ouml", 0xf6},      {"ugrave", 0xf9},   {"uacute", 0xfa},
    {"ucirc", 0xfb},    {"uuml", 0xfc},      {"szlig", 0xdf},    {"ntilde", 0xf1},
    {"Agrave", 0xc0},   {"Eacute", 0xc9},    {"Egrave", 0xc8},   {"Ccedil", 0xc7},
    {"Auml", 0xc4},     {"Ouml", 0xd6},      {"Uuml", 0xdc},     {"times", 0xd7},
    {"iexcl", 0xa1},    {"iquest", 0xbf},    {"oslash", 0xf8},   {"aring", 0xe5},
};

void put_cp(std::string& out, uint32_t cp) {
  if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) cp = 0xfffd;
  if (cp == 0xa0) cp = ' ';  // a non-breaking space separates words like a space
  if (cp == 0xad || cp == 0x200b || cp == 0x200c || cp == 0x200d || cp == 0xfeff) return;
  append_utf8(out, cp);
}

// Decodes the entity at s[i] == '&'; returns the number of bytes consumed (0: not an entity).
size_t decode_entity(std::string_view s, size_t i, std::string& out) {
  size_t j = i + 1;
  if (j < s.size() && s[j] == '#') {
    ++j;
    bool hex = j < s.size() && (s[j] == 'x' || s[j] == 'X');
    if (hex) ++j;
    uint32_t cp = 0;
    size_t digits = 0;
    for (; j < s.size() && digits < 8; ++j, ++digits) {
      char c = s[j];
      int v = (c >= '0' && c <= '9') ? c - '0'
              : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
              : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10
                                            : -1;
      if (v < 0) break;
      cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(v);
    }
    if (!digits) return 0;
    if (j < s.size() && s[j] == ';') ++j;
    put_cp(out, cp);
    return j - i;
  }
  size_t k = j;
  while (k < s.size() && k - j < 8 &&
         ((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z')))
    ++k;
  std::string_view name = s.substr(j, k - j);
  if (name.empty()) return 0;
  for (const auto& e : kEntities) {
    if (e.name == name || (name.size() <= 5 && text::iequals(e.name, name) && e.cp < 0x80)) {
      if (k < s.size() && s[k] == ';') ++k;
      put_cp(out, e.cp);
      return k - i;
    }
  }
  return 0;
}

void decode_entities_into(std::string_view s, std::string& out) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '&') {
      size_t n = decode_entity(s, i, out);
      if (n) {
        i += n - 1;
        continue;
      }
    }
    out.push_back(s[i]);
  }
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '_' || c == ':';
}

struct Attr {
  std::string_view name, value;
};

// Tags whose content is never shown.
bool is_invisible_container(std::string_view t) {
  return t == "template" || t == "title" || t == "object" || t == "svg";
}
bool is_block(std::string_view t) {
  static constexpr std::string_view kBlocks[] = {
      "br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol",
      "blockquote", "pre", "hr", "dd", "dt", "center", "section", "article", "header",
      "footer", "form", "tbody", "thead", "dl", "address"};
  for (auto b : kBlocks)
    if (t == b) return true;
  return false;
}
bool is_void(std::string_view t) {
  return t == "br" || t == "img" || t == "hr" || t == "meta" || t == "link" || t == "input" ||
         t == "area" || t == "base" || t == "col" || t == "wbr" || t == "source";
}

// An inline style that hides the element from the reader.
bool hides(std::string_view style) {
  std::string s;
  s.reserve(style.size());
  for (char c : style)
    if (!is_space(c)) s.push_back(text::lower(c));
  auto has = [&](std::string_view needle) { return s.find(needle) != std::string::npos; };
  bool zero_font = (has("font-size:0;") || s.ends_with("font-size:0") || has("font-size:0px") ||
                    has("font-size:0pt"));
  bool transparent = has("opacity:0;") || s.ends_with("opacity:0");
  return has("display:none") || has("visibility:hidden") || zero_font || transparent ||
         has("max-height:0;") || s.ends_with("max-height:0") || has("max-height:0px");
}

}  // namespace

void html_extract(std::string_view h, std::string& text, std::vector<std::string>* links) {
  text.reserve(text.size() + h.size() / 2);
  size_t i = 0;
  const size_t n = h.size();
  // Hidden content: the element that started it and how deep we are inside same-named ones.
  std::string hidden_tag;
  int hidden_depth = 0;
  bool space_pending = false;
  auto emit_space = [&](bool newline) {
    if (hidden_depth) return;
    if (newline) {
      while (!text.empty() && text.back() == ' ') text.pop_back();
      if (!text.empty() && text.back() != '\n') text.push_back('\n');
      space_pending = false;
    } else {
      space_pending = true;
    }
  };
  std::vector<Attr> attrs;
  while (i < n) {
    char c = h[i];
    if (c != '<') {
      // Text run up to the next tag.
      size_t next = h.find('<', i);
      if (next == std::string_view::npos) next = n;
      if (!hidden_depth) {
        for (size_t k = i; k < next; ++k) {
          char t = h[k];
          if (is_space(t)) {
            space_pending = true;
            continue;
          }
          if (space_pending && !text.empty() && text.back() != '\n' && text.back() != ' ')
            text.push_back(' ');
          space_pending = false;
          if (t == '&') {
            size_t used = decode_entity(h, k, text);
            if (used) {
              k += used - 1;
              continue;
            }
          }
          text.push_back(t);
        }
      }
      i = next;
      continue;
    }
    // Comments, doctype, processing instructions, CDATA.
    if (h.compare(i, 4, "<!--") == 0) {
      size_t e = h.find("-->", i + 4);
      i = e == std::string_view::npos ? n : e + 3;
      continue;
    }
    if (i + 1 < n && (h[i + 1] == '!' || h[i + 1] == '?')) {
      size_t e = h.find('>', i + 2);
      i = e == std::string_view::npos ? n : e + 1;
      continue;
    }
    bool closing = i + 1 < n && h[i + 1] == '/';
    size_t j = i + (closing ? 2 : 1);
    size_t name_begin = j;
    while (j < n && is_name_char(h[j])) ++j;
    if (j == name_begin) {
      // "<" not followed by a tag name is text ("a < b").
      if (!hidden_depth) {
        if (space_pending && !text.empty() && text.back() != '\n' && text.back() != ' ')
          text.push_back(' ');
        space_pending = false;
        text.push_back('<');
      }
      ++i;
      continue;
    }
    std::string tag = text::lower(h.substr(name_begin, j - name_begin));
    // Attributes up to '>' (quotes may contain '>').
    attrs.clear();
    bool self_closing = false;
    while (j < n && h[j] != '>') {
      if (is_space(h[j]) || h[j] == '/') {
        if (h[j] == '/') self_closing = true;
        ++j;
        continue;
      }
      self_closing = false;
      size_t an = j;
      while (j < n && !is_space(h[j]) && h[j] != '=' && h[j] != '>' && h[j] != '/') ++j;
      std::string_view aname = h.substr(an, j - an);
      while (j < n && is_space(h[j])) ++j;
      std::string_view aval;
      if (j < n && h[j] == '=') {
        ++j;
        while (j < n && is_space(h[j])) ++j;
        if (j < n && (h[j] == '"' || h[j] == '\'')) {
          char q = h[j++];
          size_t vb = j;
          while (j < n && h[j] != q) ++j;
          aval = h.substr(vb, j - vb);
          if (j < n) ++j;
        } else {
          size_t vb = j;
          while (j < n && !is_space(h[j]) && h[j] != '>') ++j;
          aval = h.substr(vb, j - vb);
        }
      }
      if (!aname.empty() && attrs.size() < 64) attrs.push_back({aname, aval});
      if (j == an) ++j;  // never loop without progress
    }
    i = j < n ? j + 1 : n;

    if (closing) {
      if (hidden_depth && tag == hidden_tag && --hidden_depth == 0) hidden_tag.clear();
      if (is_block(tag) || tag == "td" || tag == "th") emit_space(is_block(tag));
      continue;
    }
    // Link targets are collected even inside hidden content: hidden links are still links.
    if (links && links->size() < 2000) {
      for (const auto& a : attrs) {
        if ((text::iequals(a.name, "href") || text::iequals(a.name, "src") || text::iequals(a.name, "action") ||
             text::iequals(a.name, "background")) &&
            !a.value.empty()) {
          std::string v;
          decode_entities_into(trim(a.value), v);
          links->push_back(std::move(v));
        }
      }
    }
    if (tag == "script" || tag == "style") {
      // Raw text elements: skip to the matching close tag without parsing what is inside.
      std::string close = "</" + tag;
      size_t k = i;
      size_t e = std::string_view::npos;
      while (k < n) {
        size_t p = h.find("</", k);
        if (p == std::string_view::npos) break;
        if (istarts_with(h.substr(p), close)) {
          e = p;
          break;
        }
        k = p + 2;
      }
      if (e == std::string_view::npos) {
        i = n;
      } else {
        size_t gt = h.find('>', e);
        i = gt == std::string_view::npos ? n : gt + 1;
      }
      continue;
    }
    if (self_closing || is_void(tag)) {
      if (tag == "br" || tag == "hr") emit_space(true);
      else if (tag == "img") emit_space(false);
      continue;
    }
    if (tag == "body") {
      // A body is never inside hidden content: an unclosed <title> must not hide the mail.
      hidden_depth = 0;
      hidden_tag.clear();
    }
    if (hidden_depth) {
      if (tag == hidden_tag) ++hidden_depth;
      continue;
    }
    bool hidden = is_invisible_container(tag);
    for (const auto& a : attrs) {
      if (text::iequals(a.name, "hidden") || (text::iequals(a.name, "style") && hides(a.value)) ||
          (text::iequals(a.name, "aria-hidden") && text::iequals(a.value, "true") && tag != "a")) {
        hidden = true;
      }
    }
    if (hidden) {
      hidden_tag = tag;
      hidden_depth = 1;
      continue;
    }
    if (is_block(tag)) emit_space(true);
    else if (tag == "td" || tag == "th") emit_space(false);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\n')) text.pop_back();
}

}  // namespace detail

std::string html_to_text(std::string_view html, std::vector<std::string>* links) {
  std::string text;
  detail::html_extract(html, text, links);
  return text;
}

}  // namespace digue::mime
