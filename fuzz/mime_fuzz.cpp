// libFuzzer target for the MIME parser (and the Bayes tokenizer on its result): any byte
// string must parse without a crash, a leak or undefined behaviour, within the limits. Small limits make deep and wide inputs reachable.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "digue/bayes.hpp"
#include "digue/mime.hpp"
#include "digue/resolver.hpp"
#include "digue/text.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  digue::mime::Parsed p = digue::mime::parse(raw);
  digue::mime::Limits small;
  small.max_depth = 4;
  small.max_parts = 16;
  small.max_decoded_bytes = 4096;
  small.max_text_bytes = 512;
  small.max_urls = 8;
  digue::mime::Parsed q = digue::mime::parse(raw, small);
  // Invariants the filters rely on.
  if (q.parts.size() > 16 || q.text.size() > 512 || q.urls.size() > 8) __builtin_trap();
  for (const auto& part : p.parts)
    for (int c : part.children)
      if (c <= 0 || static_cast<size_t>(c) >= p.parts.size()) __builtin_trap();
  // URL hosts become DNS query names (SURBL): via libidn2 for UTF-8 hosts. A query name is
  // empty or a valid length with no byte c-ares would read as an escape or an end.
  for (const auto& u : p.urls)
    for (const std::string* name : {&u.host, &u.registered_domain}) {
      std::string q = digue::dns::normalize_name(*name);
      if (q.size() > 253 || q.find('\\') != std::string::npos ||
          q.find('\0') != std::string::npos)
        __builtin_trap();
    }
  // Decoded text is UTF-8 whatever the input's charsets; Bayes tokens too (they reach logs and
  // JSON), with word pairs on as well.
  using digue::text::valid_utf8;
  if (!valid_utf8(p.text) || !valid_utf8(p.subject)) __builtin_trap();
  digue::bayes::TokenizerOptions topt;
  topt.osb = true;
  topt.url_paths = true;
  topt.all_headers = true;
  for (const auto& tok : digue::bayes::tokenize(p, topt))
    if (!valid_utf8(tok)) __builtin_trap();
  // Byte 4-grams of the raw bytes: each within the table, each once, never more than the
  // bytes allow (whole and cut short).
  for (size_t max : {size_t{30000}, size_t{7}}) {
    auto g = digue::bayes::byte_grams(raw, max);
    if (g.size() > (max < 4 ? 0 : max - 3)) __builtin_trap();
    std::sort(g.begin(), g.end());
    for (size_t i = 0; i < g.size(); ++i)
      if (g[i] >= (uint32_t{1} << digue::bayes::kGramBits) || (i > 0 && g[i] == g[i - 1]))
        __builtin_trap();
  }
  return 0;
}
