// RecipientList: a hosted domain's static list of valid recipients (`recipients = "/path"` in
// its [domains."x"] table), loaded with the config and so reloaded with it (SIGHUP).
// Contract:
// - One entry per line: "local@domain" (that address), "@domain" (every address at that
//   domain: a catch-all) or "local" (that local part at the domain being checked). Blank
//   lines and lines starting with '#' are ignored; spaces around an entry are trimmed.
// - Matching ignores ASCII case (local parts included: downstream servers in practice do).
// - With extension delimiters (recipient_delimiter, e.g. "+"), "user+tag" not listed itself
//   is looked up as "user" (Postfix's order: the address as given first, then stripped).
// - parse() throws std::invalid_argument "LINE: why" on a malformed entry; load() adds the
//   file name and reports an unreadable file the same way.
// - Untrusted input: none (the operator's file).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "digue/envelope.hpp"

namespace digue {

// True for the characters recipient_delimiter may hold: the non-alphanumeric characters a
// dot-atom local part may contain ("+", "-", "_", "=", "." ...).
bool is_extension_delimiter(char ch);
// local without its extension: the part before the first of the delimiters ("user" of
// "user+tag" for "+"); nullopt when local has none, or nothing before it.
std::optional<std::string> strip_extension(std::string_view local, std::string_view delimiters);

class RecipientList {
 public:
  static std::shared_ptr<const RecipientList> parse(std::string_view text);
  static std::shared_ptr<const RecipientList> load(const std::string& path);

  // True when rcpt is listed (its address, its domain as a catch-all, or its local part).
  bool contains(const Address& rcpt) const;
  // The same, then rcpt with its extension stripped (see strip_extension).
  bool contains(const Address& rcpt, std::string_view delimiters) const;
  size_t size() const { return addresses_.size() + domains_.size() + locals_.size(); }

 private:
  std::unordered_set<std::string> addresses_;  // "local@domain", lower-case
  std::unordered_set<std::string> domains_;    // "domain" of "@domain" entries
  std::unordered_set<std::string> locals_;     // bare local parts
};

}  // namespace digue
