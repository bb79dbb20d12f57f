// OptionReader: typed, line-aware access to one TOML table; see include/digue/options.hpp.
#include "digue/options.hpp"

namespace digue {
namespace {

// Shortest decimal text for a number in messages ("7.5", "20").
std::string fmt_number(double v) {
  std::string s = std::to_string(v);
  while (s.size() > 1 && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

}  // namespace

OptionReader::OptionReader(const toml::table& table, std::string prefix)
    : table_(table), prefix_(std::move(prefix)) {}

void OptionReader::fail(const std::string& key, const std::string& what) const {
  config_fail(path(key), table_.get(key) ? table_.get(key) : &table_, what);
}

std::string OptionReader::str(const std::string& key, const std::string& def) {
  seen_.insert(key);
  const toml::node* n = table_.get(key);
  if (!n) return def;
  if (auto v = n->value<std::string>()) return *v;
  fail(key, "expected a string");
}

bool OptionReader::boolean(const std::string& key, bool def) {
  seen_.insert(key);
  const toml::node* n = table_.get(key);
  if (!n) return def;
  if (auto v = n->value<bool>(); v && n->is_boolean()) return *v;
  fail(key, "expected true or false");
}

int64_t OptionReader::integer(const std::string& key, int64_t def, int64_t min, int64_t max) {
  seen_.insert(key);
  const toml::node* n = table_.get(key);
  if (!n) return def;
  if (!n->is_integer()) fail(key, "expected an integer");
  int64_t v = *n->value<int64_t>();
  if (v < min || v > max)
    fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
  return v;
}

double OptionReader::number(const std::string& key, double def, double min, double max) {
  seen_.insert(key);
  const toml::node* n = table_.get(key);
  if (!n) return def;
  if (!n->is_number()) fail(key, "expected a number");
  double v = *n->value<double>();
  if (v < min || v > max)
    fail(key, "must be between " + fmt_number(min) + " and " + fmt_number(max));
  return v;
}

std::vector<std::string> OptionReader::strings(const std::string& key,
                                               std::vector<std::string> def) {
  seen_.insert(key);
  const toml::node* n = table_.get(key);
  if (!n) return def;
  const toml::array* arr = n->as_array();
  if (!arr) fail(key, "expected an array of strings");
  std::vector<std::string> out;
  for (const toml::node& e : *arr) {
    auto v = e.value<std::string>();
    if (!v || !e.is_string()) config_fail(path(key), &e, "expected an array of strings");
    out.push_back(*v);
  }
  return out;
}

std::vector<net::Cidr> OptionReader::cidrs(const std::string& key) {
  std::vector<net::Cidr> out;
  for (const auto& text : strings(key)) {
    auto c = net::Cidr::parse(text);
    if (!c) fail(key, "bad IP or CIDR '" + text + "'");
    out.push_back(*c);
  }
  return out;
}

const toml::table* OptionReader::table(const std::string& key) {
  seen_.insert(key);
  const toml::node* n = table_.get(key);
  if (!n) return nullptr;
  if (!n->is_table()) fail(key, "expected a table");
  return n->as_table();
}

const toml::array* OptionReader::array(const std::string& key) {
  seen_.insert(key);
  const toml::node* n = table_.get(key);
  if (!n) return nullptr;
  if (!n->is_array()) fail(key, "expected an array");
  return n->as_array();
}

void OptionReader::finish() const {
  for (const auto& [k, v] : table_) {
    std::string key(k.str());
    if (!seen_.count(key)) config_fail(path(key), &v, "unknown key");
  }
}

}  // namespace digue
