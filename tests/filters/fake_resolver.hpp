// An in-memory Resolver for filter unit tests: answers from a table, NXDOMAIN for names it
// does not know, NODATA for known names without that type; counts queries.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "digue/resolver.hpp"

namespace digue::test {

class FakeResolver : public dns::Resolver {
 public:
  void add(const std::string& name, dns::Type t, std::vector<std::string> records) {
    auto& a = table_[{name, t}];
    a.status = dns::Status::Ok;
    a.records = std::move(records);
  }
  void add_mx(const std::string& name, std::vector<dns::Mx> mx) {
    auto& a = table_[{name, dns::Type::MX}];
    a.status = dns::Status::Ok;
    a.mx = std::move(mx);
  }
  void fail(const std::string& name, dns::Type t, dns::Status s) { table_[{name, t}].status = s; }
  boost::asio::awaitable<dns::Answer> query(std::string name, dns::Type type) override {
    ++queries;
    dns::Answer a;
    auto it = table_.find({name, type});
    if (it != table_.end()) {
      a = it->second;
    } else {
      bool known = false;
      for (const auto& kv : table_) known = known || kv.first.first == name;
      a.status = known ? dns::Status::NoData : dns::Status::NxDomain;
    }
    co_return a;
  }
  int queries = 0;

 private:
  std::map<std::pair<std::string, dns::Type>, dns::Answer> table_;
};

}  // namespace digue::test
