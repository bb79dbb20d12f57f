// OptionReader: typed access to one TOML table with errors that name the key and the line,
// and a final check that every key in the table was read (unknown keys are errors).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "digue/config.hpp"

namespace digue {

class OptionReader {
 public:
  // prefix: the table's path for messages, e.g. "filters.rbl".
  OptionReader(const toml::table& table, std::string prefix);

  std::string str(const std::string& key, const std::string& def);
  bool boolean(const std::string& key, bool def);
  int64_t integer(const std::string& key, int64_t def, int64_t min, int64_t max);
  double number(const std::string& key, double def, double min, double max);
  std::vector<std::string> strings(const std::string& key, std::vector<std::string> def = {});
  // A list of IPs and CIDR ranges ("192.0.2.0/24", "2001:db8::1"); absent: empty.
  std::vector<net::Cidr> cidrs(const std::string& key);
  const toml::table* table(const std::string& key);  // nullptr when absent
  // An array of mixed elements (strings or tables) that the caller checks itself with
  // config_fail on the element; nullptr when absent.
  const toml::array* array(const std::string& key);
  // Throws ConfigError for a bad value of key.
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;
  // Throws ConfigError for the first key that was never read.
  void finish() const;

  std::string path(const std::string& key) const { return prefix_.empty() ? key : prefix_ + "." + key; }

 private:
  const toml::table& table_;
  std::string prefix_;
  std::set<std::string> seen_;
};

}  // namespace digue
