// Many queries at once on top of the Resolver; see include/digue/resolver.hpp.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "digue/resolver.hpp"

namespace asio = boost::asio;

namespace digue::dns {

asio::awaitable<std::vector<Answer>> query_all(Resolver& resolver, std::vector<Query> queries) {
  std::vector<Answer> out(queries.size());  // TempError until answered
  if (queries.empty()) co_return out;
  auto ex = co_await asio::this_coro::executor;
  using Op = decltype(asio::co_spawn(ex, resolver.query("", Type::A), asio::deferred));
  std::vector<Op> ops;
  ops.reserve(queries.size());
  for (auto& q : queries)
    ops.push_back(asio::co_spawn(ex, resolver.query(std::move(q.name), q.type), asio::deferred));
  // Group and awaitable named first: no temporaries inside co_await (GCC 12 coroutine bug).
  auto group = asio::experimental::make_parallel_group(std::move(ops));
  auto all = group.async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
  auto [order, errors, answers] = co_await std::move(all);
  (void)order;
  for (size_t i = 0; i < out.size(); ++i)
    if (!errors[i]) out[i] = std::move(answers[i]);  // a query that threw stays TempError
  co_return out;
}

}  // namespace digue::dns
