#include "digue/text.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <fstream>
#include <sstream>

namespace digue::text {

size_t utf8_char_length(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t n;
  uint32_t min;
  if (c < 0x80) return 1;
  if ((c & 0xe0) == 0xc0) {
    n = 2;
    min = 0x80;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3;
    min = 0x800;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  uint32_t cp = c & (0x7f >> n);
  for (size_t k = 1; k < n; ++k) {
    auto d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_char_length(s, i);
    if (!n) return false;
    i += n;
  }
  return true;
}

void utf8_repair(std::string_view in, std::string& out) {
  out.reserve(out.size() + in.size());
  for (size_t i = 0; i < in.size();) {
    size_t n = utf8_char_length(in, i);
    if (n) {
      out.append(in.substr(i, n));
      i += n;
    } else {
      out.append("\xef\xbf\xbd");
      ++i;
    }
  }
}

std::string json_escape(std::string_view s, NonAscii non_ascii) {
  std::string o;
  o.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\r': o += "\\r"; break;
      case '\t': o += "\\t"; break;
      default:
        if (c < 0x20 || (c >= 0x7f && non_ascii == NonAscii::Escape)) {
          o += fmt::format("\\u{:04x}", c);
        } else if (c < 0x80) {
          o += static_cast<char>(c);
        } else if (size_t n = utf8_char_length(s, i)) {
          o.append(s.substr(i, n));
          i += n - 1;
        } else {
          o += "\\ufffd";
        }
    }
  }
  return o;
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string as_received(std::string_view f) {
  if (f.substr(0, 5) == "From ") {
    size_t nl = f.find('\n');
    f = nl == std::string_view::npos ? std::string_view() : f.substr(nl + 1);
  }
  std::string o;
  o.reserve(f.size() + f.size() / 30);
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == '\n' && (i == 0 || f[i - 1] != '\r')) o += '\r';
    o += f[i];
  }
  return o;
}

}  // namespace digue::text
