// Operator rule files; see include/digue/rule_file.hpp.
#include "digue/rule_file.hpp"

#include <filesystem>
#include <fstream>

namespace digue {

std::string resolve_config_path(const Config& config, const std::string& path) {
  namespace fs = std::filesystem;
  fs::path p(path);
  if (p.is_absolute() || config.path.empty()) return path;
  fs::path near_config = fs::path(config.path).parent_path() / p;
  std::error_code ec;
  if (fs::exists(near_config, ec)) return near_config.string();
  return path;
}

std::vector<RuleLine> read_rule_lines(const std::string& path, const std::string& key,
                                      const toml::node* at) {
  std::ifstream in(path);
  if (!in) config_fail(key, at, "cannot read " + path);
  std::vector<RuleLine> out;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    size_t b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#') continue;
    size_t e = line.find_last_not_of(" \t\r");
    out.push_back({number, line.substr(b, e - b + 1)});
  }
  return out;
}

}  // namespace digue
