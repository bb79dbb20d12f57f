// diguectl verify: the recipient verification cache, the callout answers RecipientVerifier
// keeps in the store under "rcptv:<domain>:<local>" (see digue/rcpt_verify.hpp).
//   verify list [DOMAIN]            every cached answer, or DOMAIN's
//   verify flush [ADDRESS|@DOMAIN]  forgets one address's answer, a domain's, or all
// The store is the daemon's LMDB, shared while it runs: a flushed address is verified again
// (a new callout) at its next RCPT. An address is flushed as written: with a
// recipient_delimiter, "user" and "user+tag" are separate entries.
#include <fmt/format.h>

#include <iostream>

#include "digue/ctl.hpp"
#include "digue/rcpt_verify.hpp"
#include "digue/store.hpp"
#include "digue/text.hpp"

namespace digue::ctl {

namespace {

int usage() {
  std::cerr << "usage: diguectl [--config FILE] verify list [DOMAIN] | "
               "flush [ADDRESS|@DOMAIN]\n";
  return 2;
}

// The domain as the cache keys name it: the config's name for a hosted domain (so either
// spelling of an IDN domain works), else the argument in lower case (a domain no longer
// hosted may still have answers cached).
std::string cache_domain(const Config& config, const std::string& name) {
  const DomainPolicy* p = config.domain(name);
  return p ? p->name : text::lower(name);
}

std::string domain_prefix(const Config& config, const std::string& domain) {
  std::string prefix(kVerifyCachePrefix);
  return domain.empty() ? prefix : prefix + cache_domain(config, domain) + ":";
}

// The cached entries under prefix: key -> value.
std::vector<std::pair<std::string, std::string>> entries(Store& store, const std::string& prefix) {
  std::vector<std::pair<std::string, std::string>> out;
  store.scan(prefix, [&](std::string_view key, std::string_view value) {
    out.emplace_back(key, value);
    return true;
  });
  return out;
}

int list(Store& store, const Config& config, const std::string& domain) {
  auto found = entries(store, domain_prefix(config, domain));
  for (const auto& [key, value] : found) {
    // "rcptv:<domain>:<local>": a domain has no ':', a (quoted) local part may.
    std::string_view rest = std::string_view(key).substr(kVerifyCachePrefix.size());
    size_t colon = rest.find(':');
    if (colon == std::string_view::npos) continue;
    std::string address = fmt::format("{}@{}", rest.substr(colon + 1), rest.substr(0, colon));
    if (!value.empty() && value[0] == '1')
      std::cout << fmt::format("<{}>  accepted\n", address);
    else
      std::cout << fmt::format("<{}>  rejected  \"{}\"\n", address,
                               value.size() > 2 ? value.substr(2) : std::string());
  }
  std::cout << "-- " << found.size() << " cached answer(s)\n";
  return 0;
}

int flush(Store& store, const Config& config, const std::string& what) {
  if (what == "@") return usage();  // "@DOMAIN" without its domain: never "flush them all"
  size_t at = what.rfind('@');
  if (!what.empty() && at != 0) {
    if (at == std::string::npos || at + 1 == what.size()) return usage();
    std::string key =
        verify_cache_key(cache_domain(config, what.substr(at + 1)), what.substr(0, at));
    if (!store.del(key)) {
      std::cerr << "diguectl: verify: <" << what << "> is not in the verification cache\n";
      return 1;
    }
    std::cout << "flushed <" << what << ">\n";
    return 0;
  }
  std::vector<Store::Op> ops;
  for (auto& [key, value] :
       entries(store, domain_prefix(config, what.empty() ? "" : what.substr(1))))
    ops.push_back({Store::Op::Kind::Del, key, {}, 0, {}});
  if (!ops.empty()) store.apply(ops);
  std::cout << "-- " << ops.size() << " cached answer(s) flushed\n";
  return 0;
}

}  // namespace

int verify(const Config& config, const Args& args) {
  if (args.empty() || args.size() > 2) return usage();
  const std::string& cmd = args[0];
  std::string arg = args.size() > 1 ? args[1] : "";
  if (cmd != "list" && cmd != "flush") return usage();
  if (cmd == "list" && arg.starts_with('@')) arg.erase(0, 1);  // as flush writes it
  if (cmd == "list" && arg.find('@') != std::string::npos) return usage();
  auto store = make_lmdb_store(config.store.dir, config.store.map_size);
  return cmd == "list" ? list(*store, config, arg) : flush(*store, config, arg);
}

}  // namespace digue::ctl
