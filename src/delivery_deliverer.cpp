// Deliverer: per-destination connection pools and caps, and the dispatch to SMTP, LMTP or
// Maildir; see include/digue/delivery.hpp.
//
// Pool invariant (under mu_): for each key, `active` counts delivery slots in use; a slot is
// either returned (active--) or handed directly to the oldest waiter (active unchanged). Idle
// connections hold no slot, and a slot holder opens a new connection only when no idle one
// is left, so open connections never exceed max_connections.
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <map>
#include <mutex>

#include "digue/delivery.hpp"
#include "src/delivery_client.hpp"

namespace digue::delivery {

namespace asio = boost::asio;
using detail::Connection;
using namespace asio::experimental::awaitable_operators;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

namespace {

using Channel = asio::experimental::concurrent_channel<void(boost::system::error_code)>;

std::string summary(const std::vector<RcptResult>& rs) {
  int ok = 0, temp = 0, perm = 0;
  for (const auto& r : rs) {
    if (r.status == RcptResult::Status::Delivered)
      ++ok;
    else if (r.status == RcptResult::Status::TempFail)
      ++temp;
    else
      ++perm;
  }
  return "delivered=" + std::to_string(ok) + " tempfail=" + std::to_string(temp) +
         " permfail=" + std::to_string(perm);
}

}  // namespace

std::shared_ptr<asio::ssl::context> make_client_tls_context(bool verify) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression);
  if (verify) ctx->set_default_verify_paths();
  return ctx;
}

struct Deliverer::Impl : std::enable_shared_from_this<Deliverer::Impl> {
  struct Waiter {
    explicit Waiter(asio::any_io_executor ex) : ch(ex, 1) {}
    Channel ch;
    bool refused = false;  // woken without a slot: the destination was found unreachable
  };
  struct Idle {
    std::shared_ptr<Connection> conn;
    uint64_t id = 0;
    std::shared_ptr<asio::steady_timer> timer;  // runs on strand_
  };
  struct Dest {
    std::size_t active = 0;
    std::deque<Idle> idle;
    std::deque<std::shared_ptr<Waiter>> waiters;
    std::chrono::steady_clock::time_point dead_until{};  // held unreachable until then
    std::string dead_reason;                             // the failed attempt's error
  };

  // Why key is held unreachable now; empty when it is not. Under mu_.
  std::string held_reason(Dest& d) const {
    if (d.dead_reason.empty() || std::chrono::steady_clock::now() >= d.dead_until) return {};
    return d.dead_reason;
  }

  // A connection attempt to key failed: hold it unreachable and wake its waiters, which fail.
  void mark_dead(const std::string& key, const std::string& err) {
    if (opts_.dead_hold.count() <= 0) return;
    std::lock_guard lock(mu_);
    Dest& d = dests_[key];
    d.dead_until = std::chrono::steady_clock::now() + opts_.dead_hold;
    d.dead_reason = err;
    for (auto& w : d.waiters) {
      w->refused = true;
      w->ch.try_send(boost::system::error_code{});
    }
    d.waiters.clear();
  }

  Impl(asio::any_io_executor ex, Options o) : strand_(asio::make_strand(ex)), opts_(std::move(o)) {
    if (opts_.max_connections == 0) opts_.max_connections = 1;
    tls_ = opts_.tls_context ? opts_.tls_context : make_client_tls_context(opts_.tls_verify);
  }

  // The options and TLS context for a connection to target: its policy over the defaults.
  std::pair<Options, std::shared_ptr<asio::ssl::context>> for_target(const Target& target) {
    if (target.tls == TlsPolicy::Default) return {opts_, tls_};
    Options o = with_tls_policy(opts_, target.tls);
    if (opts_.tls_context || o.tls_verify == opts_.tls_verify) return {o, tls_};
    std::lock_guard lock(mu_);
    auto& ctx = o.tls_verify ? verify_tls_ : plain_tls_;
    // Once: loading the system CAs is not free.
    if (!ctx) ctx = make_client_tls_context(o.tls_verify);
    return {o, ctx};
  }

  enum class Acquired { Slot, Timeout, Unreachable };

  // Waits for a slot to key (FIFO), up to queue_wait; none while key is held unreachable.
  asio::awaitable<Acquired> acquire(const std::string& key) {
    auto ex = co_await asio::this_coro::executor;
    std::shared_ptr<Waiter> w;
    {
      std::lock_guard lock(mu_);
      Dest& d = dests_[key];
      if (!held_reason(d).empty()) co_return Acquired::Unreachable;
      if (d.active < opts_.max_connections) {
        ++d.active;
        stats_.peak_active = std::max(stats_.peak_active, d.active);
        co_return Acquired::Slot;
      }
      w = std::make_shared<Waiter>(ex);
      d.waiters.push_back(w);
    }
    asio::steady_timer timer(ex, opts_.queue_wait);
    co_await (w->ch.async_receive(kTuple) || timer.async_wait(kTuple));
    std::lock_guard lock(mu_);
    auto& waiters = dests_[key].waiters;
    auto it = std::find(waiters.begin(), waiters.end(), w);
    if (it == waiters.end())  // woken (possibly just as the timer fired): a slot, or refused
      co_return w->refused ? Acquired::Unreachable : Acquired::Slot;
    waiters.erase(it);
    co_return Acquired::Timeout;
  }

  // Gives the slot back; conn (may be null) goes to the idle list when still usable.
  void release(const std::string& key, std::shared_ptr<Connection> conn) {
    std::lock_guard lock(mu_);
    Dest& d = dests_[key];
    if (conn && !conn->broken()) {
      Idle idle{std::move(conn), ++next_idle_id_,
                std::make_shared<asio::steady_timer>(strand_, opts_.idle_timeout)};
      asio::co_spawn(strand_, reap(weak_from_this(), key, idle.id, idle.timer), asio::detached);
      d.idle.push_back(std::move(idle));
    }
    if (!d.waiters.empty()) {
      auto w = d.waiters.front();
      d.waiters.pop_front();
      w->ch.try_send(boost::system::error_code{});  // the slot moves to w; active unchanged
    } else {
      --d.active;
    }
  }

  std::shared_ptr<Connection> take_idle(const std::string& key) {
    std::lock_guard lock(mu_);
    auto& idle = dests_[key].idle;
    if (idle.empty()) return nullptr;
    Idle i = std::move(idle.back());  // the most recently used is the least likely to be dead
    idle.pop_back();
    asio::post(strand_, [t = i.timer] { t->cancel(); });
    return i.conn;
  }

  static asio::awaitable<void> reap(std::weak_ptr<Impl> weak, std::string key, uint64_t id,
                                    std::shared_ptr<asio::steady_timer> timer) {
    auto [ec] = co_await timer->async_wait(kTuple);
    if (ec) co_return;
    std::shared_ptr<Connection> conn;
    if (auto self = weak.lock()) {
      std::lock_guard lock(self->mu_);
      auto& idle = self->dests_[key].idle;
      auto it = std::find_if(idle.begin(), idle.end(), [id](const Idle& i) { return i.id == id; });
      if (it == idle.end()) co_return;
      conn = std::move(it->conn);
      idle.erase(it);
    }
    if (conn) co_await conn->quit();
  }

  std::vector<Idle> drain_idle() {
    std::vector<Idle> out;
    std::lock_guard lock(mu_);
    for (auto& [key, d] : dests_) {
      for (auto& i : d.idle) out.push_back(std::move(i));
      d.idle.clear();
    }
    std::vector<std::shared_ptr<asio::steady_timer>> timers;
    for (auto& i : out) timers.push_back(i.timer);
    asio::post(strand_, [timers] {
      for (auto& t : timers) t->cancel();
    });
    return out;
  }

  asio::awaitable<std::vector<RcptResult>> deliver_remote(const Target& target, const Job& job) {
    const std::string key = target.key();
    auto fail_all = [&](std::string why) {
      return std::vector<RcptResult>(job.rcpts.size(),
                                     detail::local_temp_fail("4.4.1", std::move(why)));
    };
    auto held = [&] {
      std::lock_guard lock(mu_);
      ++stats_.held_unreachable;
      return fail_all(key + " held unreachable for up to " +
                      std::to_string(opts_.dead_hold.count() / 1000) +
                      " s after a failed attempt: " + dests_[key].dead_reason);
    };
    switch (co_await acquire(key)) {
      case Acquired::Slot:
        break;
      case Acquired::Timeout:
        co_return fail_all("no free connection to " + key + " within the queue wait");
      case Acquired::Unreachable:
        co_return held();
    }
    std::shared_ptr<Connection> conn;
    std::vector<RcptResult> results;
    bool reused = false;
    try {
      while ((conn = take_idle(key))) {
        if (co_await conn->reset()) {
          reused = true;
          break;
        }
        conn->close();
      }
      if (!conn) {
        auto ex = co_await asio::this_coro::executor;
        auto [o, ctx] = for_target(target);
        conn = std::make_shared<Connection>(ex, target, o, ctx);
        std::string err = co_await conn->open(true);
        if (!err.empty() && conn->tls_handshake_failed() && !o.tls_required) {
          spdlog::warn("delivery to={} tls=failed retry=plain reason=\"{}\"", key, err);
          conn->close();
          conn = std::make_shared<Connection>(ex, target, o, ctx);
          err = co_await conn->open(false);
        }
        {
          std::lock_guard lock(mu_);
          ++stats_.connections_opened;
          if (err.empty() && !conn->tls_version().empty()) ++stats_.tls_connections;
        }
        if (!err.empty()) {
          conn->close();
          mark_dead(key, err);
          release(key, nullptr);
          spdlog::debug("delivery qid={} to={} status=deferred reason=\"{}\"", job.queue_id, key,
                       err);
          co_return fail_all(err);
        }
      }
      results = co_await conn->transaction(job);
    } catch (const std::exception& e) {
      if (conn) conn->close();
      release(key, nullptr);
      co_return fail_all(std::string("internal error: ") + e.what());
    }
    {
      std::lock_guard lock(mu_);
      ++stats_.transactions;
      if (reused) ++stats_.connections_reused;
    }
    spdlog::debug("delivery qid={} to={} peer={} conn={} tls={} {}", job.queue_id, key, conn->peer(),
                 reused ? "reused" : "new",
                 conn->tls_version().empty() ? "none" : conn->tls_version(), summary(results));
    if (conn->broken() || conn->messages() >= opts_.max_messages_per_connection) {
      co_await conn->quit();
      release(key, nullptr);
    } else {
      release(key, std::move(conn));
    }
    co_return results;
  }

  asio::strand<asio::any_io_executor> strand_;
  Options opts_;
  std::shared_ptr<asio::ssl::context> tls_;
  std::shared_ptr<asio::ssl::context> verify_tls_, plain_tls_;  // per-target policies (mu_)
  mutable std::mutex mu_;
  std::map<std::string, Dest> dests_;
  Stats stats_;
  uint64_t next_idle_id_ = 0;
};

Deliverer::Deliverer(asio::any_io_executor ex, Options options)
    : impl_(std::make_shared<Impl>(std::move(ex), std::move(options))) {}

Deliverer::~Deliverer() {
  for (auto& i : impl_->drain_idle()) i.conn->close();
}

asio::awaitable<std::vector<RcptResult>> Deliverer::deliver(Target target, Job job) {
  if (job.rcpts.empty()) co_return std::vector<RcptResult>{};
  auto impl = impl_;  // keeps the pool alive for the whole delivery
  if (target.kind != Target::Kind::Maildir) co_return co_await impl->deliver_remote(target, job);
  const auto& hostname = impl->opts_.hostname;
  std::vector<RcptResult> results;
  if (impl->opts_.blocking_executor) {
    results = co_await asio::co_spawn(
        *impl->opts_.blocking_executor,
        [&]() -> asio::awaitable<std::vector<RcptResult>> {
          co_return write_maildir(target.path, job, hostname);
        },
        asio::use_awaitable);
  } else {
    results = write_maildir(target.path, job, hostname);
  }
  // The queue logs the canonical line per attempt (relay, status, reply); these are details.
  spdlog::debug("delivery qid={} to={} {}", job.queue_id, target.key(), summary(results));
  co_return results;
}

asio::awaitable<void> Deliverer::close_idle() {
  for (auto& i : impl_->drain_idle()) co_await i.conn->quit();
}

Stats Deliverer::stats() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->stats_;
}

}  // namespace digue::delivery
