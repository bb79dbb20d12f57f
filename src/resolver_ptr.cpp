// Reverse DNS on top of the Resolver: the PTR query name and forward-confirmed names; see
// include/digue/resolver.hpp.
#include <algorithm>

#include "digue/net.hpp"
#include "digue/resolver.hpp"

namespace digue::dns {

std::string ptr_name(const net::Ip& ip) {
  return ip.reversed() + (ip.v6 ? ".ip6.arpa" : ".in-addr.arpa");
}

boost::asio::awaitable<ConfirmedNames> forward_confirmed(Resolver& resolver, net::Ip ip,
                                                         size_t max_names, size_t max_confirmed) {
  ConfirmedNames out;
  std::string reverse = ptr_name(ip);
  out.ptr = co_await resolver.query(reverse, Type::PTR);
  if (!out.ptr.ok()) co_return out;
  Type type = ip.v6 ? Type::AAAA : Type::A;
  size_t n = std::min(out.ptr.records.size(), max_names);
  for (size_t i = 0; i < n && out.names.size() < max_confirmed; ++i) {
    std::string name = out.ptr.records[i];
    Answer fwd = co_await resolver.query(name, type);
    if (fwd.failed()) out.unverified.push_back(name);
    if (!fwd.ok()) continue;
    for (const auto& addr : fwd.records) {
      auto x = net::Ip::parse(addr);
      if (x && *x == ip) {
        out.names.push_back(std::move(name));
        break;
      }
    }
  }
  co_return out;
}

}  // namespace digue::dns
