#include "digue/text.hpp"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

namespace digue::text {

std::string json_escape(std::string_view s, NonAscii non_ascii) {
  std::string o;
  o.reserve(s.size() + 8);
  for (unsigned char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\r': o += "\\r"; break;
      case '\t': o += "\\t"; break;
      default:
        if (c < 0x20 || (c >= 0x7f && non_ascii == NonAscii::Escape))
          o += fmt::format("\\u{:04x}", c);
        else
          o += static_cast<char>(c);  // Keep: UTF-8 passes through; invalid bytes too
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
