// libFuzzer target: DNS response parsing (c-ares' record parsers plus our TTL section walker),
// for every record type the resolver asks for.
#include <cstddef>
#include <cstdint>

#include "digue/resolver.hpp"

using namespace digue::dns;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 65535) return 0;
  // Parsing garbage must neither crash nor leak (ASan/UBSan report it); the result itself
  // is not checked here: the resolver tests check the meaning of well-formed answers.
  for (Type t : {Type::A, Type::AAAA, Type::MX, Type::TXT, Type::PTR, Type::NS, Type::CNAME})
    (void)parse_response(t, data, static_cast<int>(size));
  return 0;
}
