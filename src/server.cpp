// SMTP listeners, per-thread io_contexts and the session coroutine; see server.hpp.
// The protocol logic lives in smtp_protocol.cpp (no I/O); this file only moves bytes, runs
// timers and awaits the pipeline, the spool and the queue.
#include "digue/server.hpp"

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <set>
#include <thread>

#include "digue/headers.hpp"
#include "digue/memory_budget.hpp"
#include "digue/net.hpp"
#include "digue/queue.hpp"
#include "digue/rcpt_verify.hpp"
#include "digue/resolver.hpp"
#include "digue/smtp_protocol.hpp"
#include "digue/spawn.hpp"
#include "digue/spool.hpp"

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace digue {

namespace {

std::shared_ptr<ssl::context> make_tls_context(const ServerConfig& s) {
  if (s.tls_cert.empty()) return nullptr;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression |
                   ssl::context::single_dh_use);
  SSL_CTX_set_options(ctx->native_handle(), SSL_OP_CIPHER_SERVER_PREFERENCE);
  try {
    ctx->use_certificate_chain_file(s.tls_cert);
    ctx->use_private_key_file(s.tls_key, ssl::context::pem);
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
      throw std::runtime_error("the key does not match the certificate");
  } catch (const std::exception& e) {
    throw ConfigError("server.tls.cert", 0,
                      "cannot load certificate/key " + s.tls_cert + ", " + s.tls_key + ": " + e.what());
  }
  return ctx;
}

// RFC 5321 4.5.3.2.6: a client waits 10 minutes for the reply to the final dot. The time we
// give ourselves between a read and the reply to what it brought: the filters' own timeouts
// bound them well below this; it is only the watchdog's last resort. A deadline left over
// from the read instead (data_timeout from its start) could fire after the spool commit and
// before the 250: the client would send the queued message again.
constexpr std::chrono::seconds kProcessingBudget{600};

std::string session_id() {
  static std::atomic<uint64_t> n{0};
  static const uint64_t start = static_cast<uint64_t>(std::time(nullptr));
  return fmt::format("{:x}.{:x}", start, n++);
}

}  // namespace

struct Server::Impl {
  struct Worker;
  class Session;

  Impl(Server& o, std::shared_ptr<const Config> c, std::shared_ptr<const Pipeline> p, Spool& sp,
       Queue& q)
      : owner(o), config(std::move(c)), pipeline(std::move(p)), spool(sp), queue(q),
        data_budget(config->server.max_data_memory),
        cpu_pool(std::max(1u, std::thread::hardware_concurrency())) {
    tls = make_tls_context(config->server);
  }

  // What a new session runs with: a reload never changes it for a running session.
  struct Current {
    std::shared_ptr<const Config> config;
    std::shared_ptr<const Pipeline> pipeline;
    std::shared_ptr<ssl::context> tls;  // null: no STARTTLS
  };
  Current current() {
    std::lock_guard lk(mu);
    return {config, pipeline, tls};
  }

  // `client` is net::client_key of the address (an IPv6 client counts per /64).
  bool acquire(const std::string& client, const ServerConfig& s) {
    std::lock_guard lk(conn_mu);
    if (total >= s.max_connections) return false;
    int& n = per_ip[client];
    if (n >= s.max_connections_per_ip) {
      if (n == 0) per_ip.erase(client);
      return false;
    }
    ++n;
    ++total;
    return true;
  }
  void release(const std::string& client) {
    std::lock_guard lk(conn_mu);
    auto it = per_ip.find(client);
    if (it != per_ip.end() && --it->second <= 0) per_ip.erase(it);
    --total;
  }

  Server& owner;
  std::mutex mu;  // config, pipeline and tls: replaced together by a reload
  std::shared_ptr<const Config> config;
  std::shared_ptr<const Pipeline> pipeline;
  Spool& spool;
  Queue& queue;
  std::shared_ptr<ssl::context> tls;
  bool implicit_tls_listeners = false;  // bound at start; a reload cannot close them
  // Before the workers: a session frame destroyed with its io_context gives its hold back.
  MemoryBudget data_budget;
  asio::thread_pool cpu_pool;
  std::unique_ptr<RecipientVerifier> verifier;  // outlives the workers' suspended sessions
  std::vector<std::unique_ptr<Worker>> workers;
  std::mutex conn_mu;
  std::unordered_map<std::string, int> per_ip;
  int total = 0;
  std::atomic<bool> stopping{false};
};

struct Server::Impl::Worker {
  // Session frames still suspended are destroyed with io, after the members below: stopped
  // first, so that their cleanup guards know not to touch them.
  ~Worker() { io.stop(); }

  asio::io_context io{1};
  Services services;
  std::vector<std::pair<tcp::acceptor, bool /*implicit tls*/>> acceptors;
  std::set<Session*> sessions;  // touched only on this worker's thread
  std::unique_ptr<dns::Resolver> resolver;
};

class Server::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Impl& impl, Worker& worker, tcp::socket socket, bool implicit_tls)
      : impl_(impl),
        worker_(worker),
        socket_(std::move(socket)),
        implicit_tls_(implicit_tls),
        deadline_(worker.io) {
    Current now = impl_.current();
    config_ = std::move(now.config);
    pipeline_ = std::move(now.pipeline);
    tls_context_ = std::move(now.tls);
  }

  asio::awaitable<void> run();
  void abort() {
    error_code ec;
    sock().close(ec);
  }

 private:
  // The TCP socket: the session's own until TLS starts, then the TLS stream's next layer.
  tcp::socket& sock() { return tls_ ? tls_->next_layer() : socket_; }
  asio::awaitable<size_t> read_some(char* buf, size_t n, std::chrono::seconds timeout);
  asio::awaitable<bool> flush();
  asio::awaitable<void> watchdog();
  asio::awaitable<bool> handshake();
  asio::awaitable<void> session_loop_entry();
  asio::awaitable<smtp::Reply> on_rcpt(const Address& rcpt);
  asio::awaitable<bool> on_data();
  asio::awaitable<smtp::Reply> finish_message(std::string&& raw, bool eight_bit);
  // Moving the deadline only stores it: the watchdog timer, armed at the old deadline,
  // re-arms itself when it fires early. This keeps timer syscalls and coroutine wake-ups
  // off the per-command path.
  void set_deadline(std::chrono::seconds s) {
    deadline_at_ = asio::steady_timer::clock_type::now() + s;
    if (deadline_at_ < deadline_.expiry()) deadline_.cancel();  // rare: an earlier deadline
  }

  Impl& impl_;
  Worker& worker_;
  tcp::socket socket_;
  // Built when TLS starts (STARTTLS or an implicit-TLS listener), taking the socket over:
  // plain sessions never allocate an SSL object.
  std::unique_ptr<ssl::stream<tcp::socket>> tls_;
  std::shared_ptr<ssl::context> tls_context_;  // the certificate when the session started
  bool implicit_tls_;
  bool tls_active_ = false;
  asio::steady_timer deadline_;
  asio::steady_timer::time_point deadline_at_ = asio::steady_timer::time_point::max();
  std::shared_ptr<const Config> config_;
  std::shared_ptr<const Pipeline> pipeline_;
  std::unique_ptr<smtp::Protocol> proto_;
  std::unique_ptr<PipelineRun> run_;
  std::string in_;
  size_t in_pos_ = 0;
  std::string out_;
  std::string ip_;
  std::string client_key_;  // what max_connections_per_ip counts: the IPv4 address, IPv6 /64
  std::chrono::steady_clock::time_point started_;
  int callouts_ = 0;  // recipient verification's, this session (bounded per domain)
  uint16_t port_ = 0;
  std::string sid_;
  int messages_ = 0;
  bool closed_ = false;
};

asio::awaitable<void> Server::Impl::Session::watchdog() {
  auto self = shared_from_this();
  while (!closed_) {
    deadline_.expires_at(deadline_at_);
    error_code ec;
    co_await deadline_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (closed_) break;
    if (deadline_at_ <= asio::steady_timer::clock_type::now()) {
      spdlog::info("session={} client={} timeout", sid_, ip_);
      closed_ = true;
      abort();
      break;
    }
  }
}

asio::awaitable<size_t> Server::Impl::Session::read_some(char* buf, size_t n,
                                                          std::chrono::seconds timeout) {
  set_deadline(timeout);
  error_code ec;
  size_t got;
  if (tls_active_)
    got = co_await tls_->async_read_some(asio::buffer(buf, n),
                                         asio::redirect_error(asio::use_awaitable, ec));
  else
    got = co_await socket_.async_read_some(
        asio::buffer(buf, n), asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return 0;
  // Renewed for the work on what was read (filters, the spool commit), so that the deadline
  // of a slow read never cuts that work short.
  set_deadline(kProcessingBudget);
  co_return got;
}

asio::awaitable<bool> Server::Impl::Session::flush() {
  if (out_.empty()) co_return true;
  set_deadline(config_->server.command_timeout);
  error_code ec;
  if (tls_active_)
    co_await asio::async_write(*tls_, asio::buffer(out_),
                               asio::redirect_error(asio::use_awaitable, ec));
  else
    co_await asio::async_write(socket_, asio::buffer(out_),
                               asio::redirect_error(asio::use_awaitable, ec));
  out_.clear();
  co_return !ec;
}

asio::awaitable<bool> Server::Impl::Session::handshake() {
  set_deadline(config_->server.command_timeout);
  if (!tls_context_ || tls_) co_return false;  // not configured; or already started
  tls_ = std::make_unique<ssl::stream<tcp::socket>>(std::move(socket_), *tls_context_);
  error_code ec;
  co_await tls_->async_handshake(ssl::stream_base::server,
                                 asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    spdlog::info("session={} client={} tls handshake failed: {}", sid_, ip_, ec.message());
    co_return false;
  }
  tls_active_ = true;
  proto_->set_tls_active(true);
  SSL* ssl = tls_->native_handle();
  proto_->envelope().tls = TlsInfo{SSL_get_version(ssl), SSL_get_cipher_name(ssl)};
  co_return true;
}

// Runs its function when the scope ends, also by an exception.
template <typename F>
class ScopeExit {
 public:
  explicit ScopeExit(F f) : f_(std::move(f)) {}
  ~ScopeExit() { f_(); }
  ScopeExit(const ScopeExit&) = delete;
  ScopeExit& operator=(const ScopeExit&) = delete;

 private:
  F f_;
};

asio::awaitable<void> Server::Impl::Session::run() {
  auto self = shared_from_this();
  worker_.sessions.insert(this);
  bool admitted = false;
  // Whatever ends the session (also an exception) gives back its slots and leaves the
  // worker's set, so that stop() never sees a dangling Session*. Not when the frame is
  // destroyed with its stopped io_context at shutdown: the set and counters go with it.
  ScopeExit cleanup([this, &admitted] {
    if (worker_.io.stopped()) return;
    closed_ = true;
    deadline_.cancel();
    if (admitted) {
      impl_.release(client_key_);
      impl_.owner.stats_.active--;
    }
    worker_.sessions.erase(this);
  });
  const ServerConfig& sc = config_->server;
  error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  if (ec) co_return;
  auto addr = ep.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped())
    addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
  ip_ = addr.to_string();
  port_ = ep.port();
  sid_ = session_id();
  started_ = std::chrono::steady_clock::now();
  impl_.owner.stats_.connections++;

  smtp::Settings st;
  st.hostname = sc.hostname;
  st.max_message_size = sc.max_message_size;
  st.max_recipients = sc.max_recipients;
  st.max_command_line = sc.max_command_line;
  st.max_bad_commands = sc.max_bad_commands;
  st.max_junk_commands = sc.max_junk_commands;
  st.tls_available = tls_context_ != nullptr;
  auto cfg = config_;
  st.accepts_domain = [cfg](const std::string& d) { return cfg->domain(d) != nullptr; };
  // The first hosted domain in the config file receives "RCPT TO:<postmaster>".
  st.postmaster_domain = cfg->first_domain;
  st.postmaster_domain_ascii = cfg->first_domain_ascii;
  proto_ = std::make_unique<smtp::Protocol>(std::move(st));
  proto_->envelope().session_id = sid_;
  proto_->envelope().client_ip = ip_;
  proto_->envelope().client_port = port_;
  run_ = std::make_unique<PipelineRun>(pipeline_, worker_.services, worker_.io.get_executor());

  set_deadline(sc.greeting_timeout);
  asio::co_spawn(worker_.io, watchdog(), log_escaped("session watchdog"));
  auto parsed = net::Ip::parse(ip_);
  client_key_ = parsed ? net::client_key(*parsed) : ip_;
  admitted = impl_.acquire(client_key_, sc);
  if (!admitted) {
    impl_.owner.stats_.refused_connections++;
    out_ = smtp::Reply(421, "4.7.0", sc.hostname + " too many connections, try again later").wire();
    co_await flush();
    spdlog::info("session={} client={} refused: connection limit", sid_, ip_);
  } else {
    impl_.owner.stats_.active++;
    bool ok = true;
    if (implicit_tls_) ok = co_await handshake();
    if (ok) {
      if (impl_.stopping) {
        out_ = smtp::Reply(421, "4.3.2", sc.hostname + " shutting down, try again later").wire();
        co_await flush();
      } else {
        out_ = proto_->greeting().wire();
        co_await session_loop_entry();
      }
    }
  }
  closed_ = true;
  deadline_.cancel();
  if (tls_active_) {
    // Best effort close_notify; the peer may already be gone.
    sock().shutdown(tcp::socket::shutdown_both, ec);
  }
  sock().close(ec);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  started_);
  if (admitted)
    spdlog::info("session={} client={} helo={} tls={} messages={} duration_ms={} disconnect", sid_,
                 ip_, proto_->envelope().helo, tls_active_ ? "yes" : "no", messages_, ms.count());
}


// The command loop. Replies are buffered and written when no complete command is left in the
// input (RFC 2920 pipelining: one write per group of pipelined commands).
asio::awaitable<void> Server::Impl::Session::session_loop_entry() {
  const ServerConfig& sc = config_->server;
  char buf[16384];
  bool discarding = false;  // inside an over-long command line
  while (!closed_) {
    size_t nl = in_.find('\n', in_pos_);
    if (nl == std::string::npos) {
      if (discarding || in_.size() - in_pos_ > sc.max_command_line) {
        discarding = true;
        in_.clear();
        in_pos_ = 0;
      }
      if (!co_await flush()) co_return;
      if (in_pos_ > 0) {
        in_.erase(0, in_pos_);
        in_pos_ = 0;
      }
      auto timeout = messages_ == 0 && proto_->envelope().helo.empty() ? sc.greeting_timeout
                                                                        : sc.command_timeout;
      size_t n = co_await read_some(buf, sizeof buf, timeout);
      if (n == 0) co_return;  // closed, reset or timed out
      in_.append(buf, n);
      continue;
    }
    std::string_view line(in_.data() + in_pos_, nl - in_pos_);
    in_pos_ = nl + 1;
    smtp::Step step;
    // Checked between commands only: a message being received is never cut short.
    if (std::chrono::steady_clock::now() - started_ >= sc.max_session_time) {
      step = proto_->on_session_expired();
    } else if (discarding) {
      discarding = false;
      step = proto_->on_overlong_line();
    } else {
      step = proto_->on_line(line);
    }
    switch (step.kind) {
      case smtp::Step::Kind::Reply:
        out_ += step.reply.wire();
        break;
      case smtp::Step::Kind::Helo:
        // A new EHLO/HELO (also the one required after STARTTLS) is a new HELO identity.
        run_->forget_all(Phase::Helo);
        out_ += step.reply.wire();
        break;
      case smtp::Step::Kind::Mail:
        // Refusals wait for RCPT (like Postfix's smtpd_delay_reject): whitelists keyed on
        // the recipient domain can still apply, and clients handle RCPT refusals best.
        proto_->mail_accepted();
        run_->reset();
        out_ += step.reply.wire();
        break;
      case smtp::Step::Kind::Rcpt: {
        smtp::Reply r = co_await on_rcpt(step.rcpt);
        if (r.code / 100 == 2) proto_->rcpt_accepted(step.rcpt);
        out_ += r.wire();
        break;
      }
      case smtp::Step::Kind::Data:
        out_ += step.reply.wire();
        if (!co_await flush()) co_return;
        if (!co_await on_data()) co_return;
        break;
      case smtp::Step::Kind::StartTls:
        out_ += step.reply.wire();
        if (!co_await flush()) co_return;
        // Anything the client pipelined after STARTTLS was sent in clear text and could
        // have been injected: it is discarded (CVE-2011-0411).
        in_.clear();
        in_pos_ = 0;
        if (!co_await handshake()) co_return;
        proto_->tls_started();
        run_->reset();
        break;
    }
    if (step.reply.close || proto_->closed()) {
      // A limit (errors, junk commands, session time) ends the session: say which.
      if (step.reply.code == 421)
        spdlog::info("session={} client={} closing: {}", sid_, ip_, step.reply.lines.front());
      co_await flush();
      co_return;
    }
  }
}

asio::awaitable<smtp::Reply> Server::Impl::Session::on_rcpt(const Address& rcpt) {
  set_deadline(kProcessingBudget);  // also when the command came with an earlier read
  const DomainPolicy* policy = config_->domain(rcpt.domain);
  if (!policy) co_return smtp::Reply(550, "5.7.1", "Relaying denied");
  auto env = std::make_shared<Envelope>(proto_->envelope());
  env->rcpts.push_back(rcpt);
  run_->set_envelope(env);
  // Rcpt-phase filters run for this recipient only (the others' results are cached).
  Verdict v = co_await run_->evaluate(*policy, Phase::Rcpt);
  // Recipient verification last (Postfix's unlisted/unverified checks): clients the filters
  // refuse cause no callout.
  std::optional<smtp::Reply> unverified;
  if (v.decision != Decision::Reject && v.decision != Decision::Tempfail) {
    VerifyResult checked =
        co_await impl_.verifier->check(*config_, *policy, rcpt, sid_, &callouts_, client_key_);
    unverified = verify_reply(policy->verify, rcpt, checked);
  }
  if (unverified || v.decision == Decision::Reject || v.decision == Decision::Tempfail) {
    // The refused recipient is not part of the transaction: its rcpt-phase results (a
    // greylisted triplet) must not decide for the recipients already accepted at DATA.
    run_->set_envelope(std::make_shared<Envelope>(proto_->envelope()));
    run_->forget_rcpt(rcpt);
  }
  if (unverified) co_return *unverified;
  switch (v.decision) {
    case Decision::Reject:
      spdlog::info("session={} client={} from=<{}> to=<{}> refused filter={} reason=\"{}\"", sid_,
                   ip_, env->mail_from.str(), rcpt.str(), v.deciding_filter, v.reason);
      co_return smtp::Reply(550, "5.7.1", "Refused: " + v.reason);
    case Decision::Tempfail:
      spdlog::info("session={} client={} from=<{}> to=<{}> tempfail filter={} reason=\"{}\"",
                   sid_, ip_, env->mail_from.str(), rcpt.str(), v.deciding_filter, v.reason);
      co_return smtp::Reply(451, "4.7.1", "Try again later: " + v.reason);
    default:
      co_return smtp::Reply(250, "2.1.5", "Recipient OK");
  }
}

asio::awaitable<bool> Server::Impl::Session::on_data() {
  const ServerConfig& sc = config_->server;
  smtp::DataDecoder dec(sc.max_message_size, sc.max_data_line);
  // Counted against max_data_memory until the message is spooled or refused: the capacity
  // of the buffer that holds it, grown before each read when the budget allows.
  MemoryBudget::Hold hold(impl_.data_budget);
  auto feed = [&](std::string_view chunk) { return smtp::feed_counted(dec, hold, chunk); };
  // Bytes already buffered after "DATA\r\n" (a pipelining client may send them at once).
  if (in_pos_ < in_.size()) in_pos_ += feed(std::string_view(in_).substr(in_pos_));
  char buf[65536];
  while (!dec.done()) {
    size_t n = co_await read_some(buf, sizeof buf, sc.data_timeout);
    if (n == 0) {
      spdlog::info("session={} client={} connection lost during DATA", sid_, ip_);
      co_return false;
    }
    size_t used = feed(std::string_view(buf, n));
    if (used < n) {
      // Pipelined commands after the final dot.
      in_.erase(0, in_pos_);
      in_pos_ = 0;
      in_.append(buf + used, n - used);
    }
  }
  if (in_pos_ >= in_.size()) {
    in_.clear();
    in_pos_ = 0;
  }
  smtp::Reply reply;
  if (dec.too_big()) {
    reply = smtp::Reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
  } else if (dec.line_too_long()) {
    reply = smtp::Reply(554, "5.6.0", "Line too long in message content");
  } else if (dec.discarded()) {
    impl_.owner.stats_.data_memory_refused++;
    spdlog::warn("session={} client={} message discarded: max_data_memory reached size={}", sid_,
                 ip_, dec.size());
    reply = smtp::Reply(452, "4.3.1", "Insufficient system resources, try again later");
  } else {
    reply = co_await finish_message(std::move(dec.message()), dec.has_8bit());
  }
  proto_->data_done();
  run_->reset();
  out_ += reply.wire();
  co_return true;
}

asio::awaitable<smtp::Reply> Server::Impl::Session::finish_message(std::string&& raw_in,
                                                                   bool eight_bit) {
  set_deadline(kProcessingBudget);  // the message may have come with the 354's write deadline
  auto started = std::chrono::steady_clock::now();
  auto& stats = impl_.owner.stats_;
  stats.messages++;
  messages_++;
  auto raw = std::make_shared<const std::string>(std::move(raw_in));
  auto env = std::make_shared<Envelope>(proto_->envelope());
  env->queue_id = impl_.spool.new_id();
  env->received_at = static_cast<int64_t>(std::time(nullptr));
  env->body_8bit = env->body_8bit || eight_bit;
  auto msg = std::make_shared<Message>(raw);
  run_->set_envelope(env);
  run_->set_message(msg);
  // Big messages are parsed on the CPU pool, never on an I/O thread. A named lambda: GCC 12
  // destroys a capturing lambda temporary of a co_await expression twice, which released msg
  // once too often (the Message freed here while run_ still held it: a use-after-free at
  // run_->reset(), seen by ThreadSanitizer).
  if (raw->size() > 256 * 1024) {
    auto parse = [msg]() -> asio::awaitable<void> {
      msg->facts();
      co_return;
    };
    co_await asio::co_spawn(impl_.cpu_pool, std::move(parse), asio::use_awaitable);
  }

  // One verdict per recipient domain, in first-seen order.
  std::vector<std::string> domains;
  for (const auto& r : env->rcpts)
    if (std::find(domains.begin(), domains.end(), r.domain) == domains.end())
      domains.push_back(r.domain);
  std::map<std::string, Verdict> verdicts;
  for (const auto& d : domains) {
    const DomainPolicy* policy = config_->domain(d);
    verdicts[d] = co_await run_->evaluate(*policy, Phase::Data);
  }
  int accept = 0, reject = 0, tempfail = 0;
  for (auto& [d, v] : verdicts) {
    if (v.decision == Decision::Reject) ++reject;
    else if (v.decision == Decision::Tempfail) ++tempfail;
    else ++accept;
  }
  std::string summary_syms;
  auto log_line = [&](const char* outcome, const std::string& extra) {
    std::string rcpts, syms, times;
    for (const auto& r : env->rcpts) rcpts += (rcpts.empty() ? "" : ",") + r.str();
    for (const auto& [d, v] : verdicts) {
      syms += fmt::format("{}{}:{}[{}]:{:.1f}", syms.empty() ? "" : " ", d, to_string(v.decision),
                          v.tests(), v.score);
      for (const auto& [f, us] : v.timings) times += fmt::format("{}{}={}", times.empty() ? "" : ",", f, us.count());
      for (const auto& dr : v.dry_run) spdlog::info("queue={} dry-run: {}", env->queue_id, dr);
    }
    auto ms = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::steady_clock::now() - started).count();
    spdlog::info("queue={} session={} client={} helo={} from=<{}> to={} size={} verdicts=\"{}\" "
                 "filter_us=\"{}\" outcome={} {}time_us={}",
                 env->queue_id, sid_, ip_, env->helo, env->mail_from.str(), rcpts, raw->size(), syms,
                 times, outcome, extra, ms);
  };
  if (accept == 0) {
    auto& first = verdicts.begin()->second;
    if (tempfail > 0) {
      stats.tempfailed++;
      log_line("tempfail", "");
      co_return smtp::Reply(451, "4.7.1", "Try again later: " + first.reason);
    }
    stats.rejected++;
    log_line("reject", "");
    co_return smtp::Reply(550, "5.7.1", "Message refused: " + first.reason);
  }

  SpoolRecord rec;
  rec.id = env->queue_id;
  rec.state = SpoolState::Queued;
  rec.envelope = *env;
  rec.created = env->received_at;
  for (const auto& d : domains) {
    const Verdict& v = verdicts[d];
    const DomainPolicy* policy = config_->domain(d);
    std::string action = "deliver";
    bool spam = false;
    switch (v.decision) {
      case Decision::Accept: break;
      case Decision::Spam:
        spam = true;
        action = policy->spam_mode == SpamMode::Tag    ? "tag"
                 : policy->spam_mode == SpamMode::Junk ? "junk"
                                                       : "quarantine";
        break;
      case Decision::Reject:
      case Decision::Tempfail:
        // Other domains accepted this message, so it cannot be refused as a whole: it is
        // kept in quarantine for this domain (never dropped silently). Marked apart: a copy
        // the domain refused is never delivered as the quarantine's fallback.
        spam = true;
        action = "quarantine-refused";
        break;
    }
    std::vector<Address> group;
    for (const auto& r : env->rcpts)
      if (r.domain == d) group.push_back(r);
    for (const auto& a : group) {
      RcptState rs;
      rs.address = a;
      rs.action = action;
      rec.rcpts.push_back(rs);
    }
    rec.headers[d] = headers::trace_block(*env, config_->server.hostname, group, v, spam);
    if (action == "tag") rec.tags[d] = policy->tag_prefix;
    if (spam && rec.deciding_filter.empty()) rec.deciding_filter = v.deciding_filter;
    rec.summary += fmt::format("{}{}:{}:{:.1f}:{}", rec.summary.empty() ? "" : " ", d, action,
                               v.score, v.deciding_filter);
  }
  error_code ec;
  co_await impl_.spool.async_commit(raw, rec, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    stats.spool_errors++;
    log_line("spool-error", fmt::format("error=\"{}\" ", ec.message()));
    co_return smtp::Reply(452, "4.3.1", "Insufficient system storage, try again later");
  }
  stats.accepted++;
  // Only for a message we took (a 452 above leaves no trace: the client will retry it, and a
  // ban for mail we never accepted would refuse the retry).
  std::vector<const Verdict*> all;
  for (const auto& d : domains) {
    run_->after_verdict(*config_->domain(d), verdicts[d]);
    all.push_back(&verdicts[d]);
  }
  if (!domains.empty()) run_->after_message(*config_->domain(domains.front()), all);
  log_line("queued", fmt::format("actions=\"{}\" ", rec.summary));
  std::string id = rec.id;
  impl_.queue.submit(std::move(rec), raw);
  co_return smtp::Reply(250, "2.0.0", "Ok: queued as " + id);
}

// ---- Server ----

Server::Server(std::shared_ptr<const Config> config, std::shared_ptr<const Pipeline> pipeline,
               Spool& spool, Queue& queue, Store* store)
    : impl_(std::make_unique<Impl>(*this, std::move(config), std::move(pipeline), spool, queue)) {
  impl_->verifier = std::make_unique<RecipientVerifier>(store);
  const ServerConfig& sc = impl_->config->server;
  int n = sc.threads > 0 ? sc.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < n; ++i) {
    auto w = std::make_unique<Impl::Worker>();
    w->services.store = store;
    w->services.workers = &impl_->cpu_pool;
    w->services.hostname = sc.hostname;
    w->resolver = dns::make_resolver(w->io.get_executor(), impl_->config->dns);
    w->services.resolver = w->resolver.get();
    impl_->workers.push_back(std::move(w));
  }
}

Server::~Server() {
  // The spool's writer thread posts each commit's completion to its session's worker
  // io_context: a commit still being written (a slow fsync at shutdown) would post to an
  // io_context destroyed with the workers below.
  impl_->spool.wait_idle();
  impl_->cpu_pool.join();
}

void Server::bind() {
  const ServerConfig& sc = impl_->config->server;
  auto open = [&](const Endpoint& ep, bool tls) {
    error_code ec;
    auto addr = asio::ip::make_address(ep.host, ec);
    if (ec) throw std::runtime_error("listen address must be an IP literal: " + ep.str());
    tcp::endpoint endpoint(addr, ep.port);
    for (auto& w : impl_->workers) {
      tcp::acceptor acc(w->io);
      acc.open(endpoint.protocol(), ec);
      if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec) {
        int one = 1;
        ::setsockopt(acc.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        if (endpoint.protocol() == tcp::v6()) acc.set_option(asio::ip::v6_only(true), ec);
      }
      if (!ec) acc.bind(endpoint, ec);
      if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
      if (ec) throw std::runtime_error("cannot listen on " + ep.str() + ": " + ec.message());
      w->acceptors.emplace_back(std::move(acc), tls);
    }
  };
  for (const auto& ep : sc.listen) open(ep, false);
  for (const auto& ep : sc.listen_tls) open(ep, true);
  impl_->implicit_tls_listeners = !sc.listen_tls.empty();
}

void Server::run() {
  Impl& impl = *impl_;
  std::vector<std::thread> threads;
  for (auto& wp : impl.workers) {
    Impl::Worker* w = wp.get();
    for (auto& [acc, tls] : w->acceptors) {
      tcp::acceptor* a = &acc;
      bool implicit = tls;
      asio::co_spawn(w->io, [&impl, w, a, implicit]() -> asio::awaitable<void> {
        while (!impl.stopping) {
          error_code ec;
          tcp::socket sock = co_await a->async_accept(asio::redirect_error(asio::use_awaitable, ec));
          if (ec) {
            if (impl.stopping || ec == asio::error::operation_aborted) co_return;
            // EMFILE and friends: back off a little instead of spinning.
            spdlog::warn("accept failed: {}", ec.message());
            asio::steady_timer t(w->io, std::chrono::milliseconds(100));
            co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            continue;
          }
          sock.set_option(tcp::no_delay(true), ec);
          auto s = std::make_shared<Impl::Session>(impl, *w, std::move(sock), implicit);
          asio::co_spawn(w->io, [s]() { return s->run(); }, log_escaped("session"));
        }
      }, log_escaped("acceptor"));
    }
    threads.emplace_back([w] {
      auto guard = asio::make_work_guard(w->io);
      for (;;) {
        try {
          w->io.run();
          break;
        } catch (const std::exception& e) {
          // A broken session must not take the process down.
          spdlog::error("session error: {}", e.what());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
}

void Server::stop() {
  Impl& impl = *impl_;
  if (impl.stopping.exchange(true)) return;
  auto grace = impl.config->server.shutdown_grace;
  for (auto& wp : impl.workers) {
    Impl::Worker* w = wp.get();
    asio::co_spawn(w->io, [w, grace]() -> asio::awaitable<void> {
      for (auto& [acc, tls] : w->acceptors) {
        error_code ec;
        acc.close(ec);
      }
      auto until = std::chrono::steady_clock::now() + grace;
      asio::steady_timer t(w->io);
      while (!w->sessions.empty() && std::chrono::steady_clock::now() < until) {
        t.expires_after(std::chrono::milliseconds(50));
        error_code ec;
        co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      for (auto* s : std::vector<Impl::Session*>(w->sessions.begin(), w->sessions.end())) s->abort();
      t.expires_after(std::chrono::milliseconds(200));
      error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      w->io.stop();
    }, log_escaped("shutdown"));
  }
}

const VerifyStats& Server::verify_stats() const { return impl_->verifier->stats(); }

void Server::reload(std::shared_ptr<const Config> config, std::shared_ptr<const Pipeline> pipeline) {
  // The certificate files are read again (renewed at the same path); throws, changing
  // nothing, when they cannot be loaded.
  auto tls = make_tls_context(config->server);
  if (!tls && impl_->implicit_tls_listeners)
    throw ConfigError("server.tls.cert", 0,
                      "the implicit TLS listeners stay open until a restart: they need a "
                      "certificate");
  std::lock_guard lk(impl_->mu);
  impl_->tls = std::move(tls);
  impl_->data_budget.set_limit(config->server.max_data_memory);
  impl_->config = std::move(config);
  impl_->pipeline = std::move(pipeline);
}

void Server::check_tls(const ServerConfig& config) { make_tls_context(config); }

size_t Server::data_memory() const { return impl_->data_budget.in_use(); }

}  // namespace digue
