// Operator files that filters load at pipeline build time (keyword rules, complaint lists).
// Contract: read once at load, never on the data path; a missing or unreadable file is a
// ConfigError naming the option key, so a typo stops the daemon at start instead of silently
// disabling a check.
#pragma once

#include <string>
#include <vector>

#include "digue/config.hpp"

namespace digue {

struct RuleLine {
  int number = 0;    // 1-based line number in the file
  std::string text;  // trimmed; never empty, never a '#' comment
};

// A relative path is looked up next to the config file first, then in the working directory.
std::string resolve_config_path(const Config& config, const std::string& path);
// Reads the file's meaningful lines; throws ConfigError(key, line of `at`) when unreadable.
std::vector<RuleLine> read_rule_lines(const std::string& path, const std::string& key,
                                      const toml::node* at);

}  // namespace digue
