// Static recipient lists; see include/digue/recipient_list.hpp.
#include "digue/recipient_list.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "digue/resolver.hpp"
#include "digue/text.hpp"

namespace digue {

namespace {

// Domains compare in A-label form: a hosted IDN domain takes mail in either spelling.
std::string domain_key(std::string_view domain) { return text::lower(dns::a_labels(domain)); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

bool is_extension_delimiter(char ch) {
  return ch != '\0' && std::string_view("!#$%&'*+-/=?^_`{|}~.").find(ch) != std::string_view::npos;
}

std::optional<std::string> strip_extension(std::string_view local, std::string_view delimiters) {
  // A quoted local part is taken as written: its delimiter may be inside the quotes.
  if (delimiters.empty() || local.starts_with('"')) return std::nullopt;
  size_t cut = local.find_first_of(delimiters);
  if (cut == std::string_view::npos || cut == 0) return std::nullopt;
  return std::string(local.substr(0, cut));
}

std::shared_ptr<const RecipientList> RecipientList::parse(std::string_view text) {
  auto list = std::make_shared<RecipientList>();
  int line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    auto bad = [&](const std::string& why) {
      throw std::invalid_argument(std::to_string(line_no) + ": " + why + " '" +
                                  std::string(line) + "'");
    };
    for (char ch : line)
      if (ch == ' ' || ch == '\t' || ch == '<' || ch == '>' || static_cast<unsigned char>(ch) < 32)
        bad("not an address, @domain or local part:");
    std::string entry = text::lower(line);
    size_t at = entry.rfind('@');
    if (at == std::string::npos) {
      list->locals_.insert(std::move(entry));
    } else if (at + 1 == entry.size()) {
      bad("no domain after '@' in");
    } else if (at == 0) {
      list->domains_.insert(domain_key(entry.substr(1)));
    } else {
      list->addresses_.insert(entry.substr(0, at + 1) + domain_key(entry.substr(at + 1)));
    }
  }
  return list;
}

std::shared_ptr<const RecipientList> RecipientList::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return parse(ss.str());
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(path + ":" + e.what());
  }
}

bool RecipientList::contains(const Address& rcpt) const {
  std::string local = text::lower(rcpt.local);
  std::string domain = domain_key(rcpt.domain);
  return domains_.count(domain) || locals_.count(local) || addresses_.count(local + "@" + domain);
}

bool RecipientList::contains(const Address& rcpt, std::string_view delimiters) const {
  if (contains(rcpt)) return true;
  auto base = strip_extension(rcpt.local, delimiters);
  return base && contains(Address{*base, rcpt.domain});
}

}  // namespace digue
