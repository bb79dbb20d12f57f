// Delivery queue; see include/digue/queue.hpp.
#include "digue/queue.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <cstring>
#include <deque>
#include <set>
#include <filesystem>

#include "digue/delivery.hpp"
#include "digue/files.hpp"
#include "digue/headers.hpp"
#include "digue/quarantine.hpp"
#include "digue/resolver.hpp"
#include "digue/spawn.hpp"
#include "digue/store.hpp"

namespace asio = boost::asio;
using boost::system::error_code;

namespace digue {

namespace {

int64_t now_s() { return static_cast<int64_t>(std::time(nullptr)); }

bool pending(const SpoolRecord& r) {
  for (const auto& rs : r.rcpts)
    if (rs.status == RcptState::Status::Pending) return true;
  return false;
}

std::string header_value(std::string_view raw, std::string_view name) {
  size_t pos = 0;
  while (pos < raw.size()) {
    size_t eol = raw.find('\n', pos);
    if (eol == std::string_view::npos) eol = raw.size();
    std::string_view line = raw.substr(pos, eol - pos);
    if (line.empty() || line == "\r") break;
    if (line.size() > name.size() && line[name.size()] == ':' &&
        strncasecmp(line.data(), name.data(), name.size()) == 0) {
      std::string v(line.substr(name.size() + 1));
      while (!v.empty() && (v.back() == '\r' || v.back() == ' ')) v.pop_back();
      while (!v.empty() && v.front() == ' ') v.erase(0, 1);
      return v;
    }
    pos = eol + 1;
  }
  return {};
}

// A timer that stop() can cancel, listed for as long as its coroutine frame lives (also when
// the io_context destroys a suspended frame: the list must outlive the io_context).
struct Sleeper {
  std::vector<asio::steady_timer*>& list;
  asio::steady_timer timer;
  Sleeper(asio::io_context& io, std::vector<asio::steady_timer*>& l) : list(l), timer(io) {
    list.push_back(&timer);
  }
  Sleeper(const Sleeper&) = delete;
  Sleeper& operator=(const Sleeper&) = delete;
  ~Sleeper() { list.erase(std::find(list.begin(), list.end(), &timer)); }
};

// Quarantine retention sweeps: how often, and how many files one removes at most.
constexpr std::chrono::minutes kSweepInterval{10};
constexpr std::chrono::seconds kSweepAgain{10};
constexpr size_t kSweepBatch = 500;

// The downstream TLS policy for a hosted domain (its own `tls`, else [delivery] tls), or for
// the bounce relay (domain null). The config checked the names.
delivery::TlsPolicy tls_policy(const Config& c, const DomainPolicy* domain) {
  const std::string& name = domain && !domain->tls.empty() ? domain->tls : c.delivery.tls;
  return delivery::parse_tls_policy(name).value_or(delivery::TlsPolicy::May);
}

// A DSN's way to the sender's own mail exchanger: opportunistic TLS whatever [delivery] says
// for downstreams (a policy for our customers' servers, not for the internet's).
delivery::Target sender_mx(const std::string& host) {
  delivery::Target t;
  t.kind = delivery::Target::Kind::Smtp;
  t.host = host;
  t.port = 25;
  t.tls = delivery::TlsPolicy::May;
  return t;
}

// A hosted domain's downstream targets, in order, with its TLS policy.
std::vector<delivery::Target> downstream_targets(const Config& c, const DomainPolicy& domain) {
  std::vector<delivery::Target> out;
  for (const auto& d : domain.downstream)
    if (auto t = delivery::Target::parse(d, c.delivery.maildir_root)) {
      t->tls = tls_policy(c, &domain);
      out.push_back(*t);
    }
  return out;
}

// Failed recipients get a DSN only when their own verdict was legitimate mail: another
// recipient's quarantine, tag or junk says nothing about this one. "release" is mail the
// postmaster judged legitimate; "bounce" is a DSN whose failure goes to its null sender.
bool legitimate(const RcptState& rs) {
  return rs.action == "deliver" || rs.action == "release" || rs.action == "bounce";
}

// A recipient's last error as recorded ("550 5.1.1 text" from the next hop, or our own
// "451 4.4.7 delivery time expired; ...") back into code, enhanced status and text.
delivery::RcptResult parse_failure(const std::string& last_error) {
  delivery::RcptResult r;
  r.status = delivery::RcptResult::Status::PermFail;
  r.code = 550;
  r.enhanced = "5.0.0";
  std::string_view rest = last_error;
  auto token = [&]() {
    auto sp = rest.find(' ');
    std::string_view t = rest.substr(0, sp);
    return std::pair{t, sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1)};
  };
  auto [first, after_first] = token();
  if (first.size() == 3 && std::all_of(first.begin(), first.end(), ::isdigit) &&
      (first[0] == '4' || first[0] == '5')) {
    r.code = std::atoi(std::string(first).c_str());
    r.enhanced = first[0] == '4' ? "4.0.0" : "5.0.0";
    rest = after_first;
    auto [second, after_second] = token();
    bool enhanced = second.size() >= 5 && (second[0] == '4' || second[0] == '5') &&
                    second[1] == '.' && std::count(second.begin(), second.end(), '.') == 2 &&
                    std::all_of(second.begin(), second.end(),
                                [](char c) { return c == '.' || std::isdigit(c); });
    if (enhanced) {
      r.enhanced = std::string(second);
      rest = after_second;
    }
  }
  r.text = std::string(rest);
  return r;
}

// What a (domain, action) group is sent or filed: the domain's trace headers, then the
// message (rewritten, with the domain's subject tag for "tag").
std::shared_ptr<std::string> group_data(const SpoolRecord& rec, const std::string& domain,
                                        const std::string& action, const std::string& raw) {
  auto headers_it = rec.headers.find(domain);
  auto data = std::make_shared<std::string>(headers_it != rec.headers.end() ? headers_it->second
                                                                            : std::string());
  // A DSN is ours, and a released quarantine copy already carries our trace headers: both
  // go out as they are.
  if (action == "bounce" || action == "release") {
    *data += raw;
    return data;
  }
  auto tag_it = rec.tags.find(domain);
  *data += headers::rewrite(raw, action == "tag" && tag_it != rec.tags.end() ? tag_it->second : "");
  return data;
}

}  // namespace

struct Queue::Impl {
  Impl(Queue& q, std::shared_ptr<const Config> c, Spool& s, Store* st)
      : queue(q), config(std::move(c)), spool(s), store(st), blocking(2) {}

  std::shared_ptr<const Config> cfg() {
    std::lock_guard lk(mu);
    return config;
  }

  // Builds the deliverer and resolver from the current config: at start, and on the queue's
  // thread at each reload (timeouts, STARTTLS, per-destination caps, the EHLO name and the
  // DNS servers take effect for the next delivery; deliveries in progress finish on the old
  // ones, whose pooled connections are closed with QUIT).
  void make_deliverer() {
    auto c = cfg();
    delivery::Options o;
    o.hostname = c->server.hostname;
    o.max_connections = static_cast<size_t>(c->delivery.max_per_destination);
    o.timeouts.connect = c->delivery.connect_timeout;
    o.timeouts.command = c->delivery.command_timeout;
    o.starttls = c->delivery.starttls;
    o.lmtp_folder_delimiter = c->delivery.lmtp_folder_delimiter;
    // A destination that failed is not tried again before the next retry would be.
    o.dead_hold = std::min<std::chrono::milliseconds>(c->delivery.retry_min, std::chrono::minutes(1));
    o.blocking_executor = blocking.get_executor();
    auto old = std::move(deliverer);
    deliverer = std::make_shared<delivery::Deliverer>(io.get_executor(), std::move(o));
    resolver = dns::make_resolver(io.get_executor(), c->dns);
    if (old)
      asio::co_spawn(io, [old]() -> asio::awaitable<void> { co_await old->close_idle(); },
                     log_escaped("queue: closing the old deliverer"));
  }

  // Admission: at most max_attempts_in_flight records are being delivered at once; the rest
  // wait in FIFO order, without their message bytes (reloaded from the spool when admitted:
  // a burst of mail must not pile up in memory). A deferred record waits for its next_try
  // outside the limit (a timer, no slot, no message in memory): deferred mail must not hold
  // back new mail.
  void admit(SpoolRecord rec, std::shared_ptr<const std::string> raw, bool from_backlog = false) {
    if (stopping) return;  // stays in the spool, resumed at the next start
    if (rec.next_try > now_s()) {
      asio::co_spawn(io, wait_next_try(std::move(rec)), log_escaped("queue: retry timer"));
      return;
    }
    auto& in_flight = queue.stats_.in_flight;
    auto& bytes = queue.stats_.bytes_in_flight;
    auto c = cfg();
    // What the delivery will hold: the message, and its rewritten copy with our headers.
    uint64_t weight = 3 * message_size(rec, raw.get());
    bool full = in_flight.load() >= static_cast<uint64_t>(c->delivery.max_attempts_in_flight) ||
                (in_flight.load() > 0 && bytes.load() + weight > c->delivery.max_bytes_in_flight);
    if (full) {
      // In arrival order; a record taken from the backlog that still does not fit keeps its
      // place at the front.
      if (from_backlog)
        backlog.push_front(std::move(rec));
      else
        backlog.push_back(std::move(rec));
      return;
    }
    in_flight++;
    bytes += weight;
    if (bytes.load() > queue.stats_.peak_bytes_in_flight.load())
      queue.stats_.peak_bytes_in_flight = bytes.load();
    std::string id = rec.id;
    asio::co_spawn(io, process(std::move(rec), std::move(raw)), [this, weight, id](std::exception_ptr e) {
      log_escaped("queue: delivery coroutine")(e);
      // An attempt that threw leaves its record in the spool, resumed at the next start; the
      // id must not stay held meanwhile (one entry per such failure, for ever).
      if (e) release(id);
      queue.stats_.in_flight--;
      queue.stats_.bytes_in_flight -= weight;
      // As many waiting records as now fit, oldest first.
      while (!backlog.empty() && !stopping) {
        size_t before = backlog.size();
        SpoolRecord next = std::move(backlog.front());
        backlog.pop_front();
        admit(std::move(next), nullptr, true);
        if (backlog.size() >= before) break;  // it went back: no room yet
      }
    });
  }

  // Takes the record id into the queue; false when it holds that id already.
  bool hold(const std::string& id) {
    std::lock_guard lk(held_mu);
    return held.insert(id).second;
  }
  bool holds(const std::string& id) {
    std::lock_guard lk(held_mu);
    return held.count(id) != 0;
  }
  // A second copy of a record the queue holds: taking it would deliver and bounce the
  // message twice.
  void refuse_duplicate(const std::string& id, const char* from) {
    queue.stats_.duplicates++;
    spdlog::warn("queue={} {} refused: the queue already holds this record", id, from);
  }
  // The record left the spool (delivered, bounced, quarantined, or its file gone).
  void release(const std::string& id) {
    std::lock_guard lk(held_mu);
    held.erase(id);
  }

  // The message's size: from the bytes at hand, else the spool file's (0 when unknown).
  uint64_t message_size(const SpoolRecord& rec, const std::string* raw) const {
    if (raw) return raw->size();
    std::error_code ec;
    auto n = std::filesystem::file_size(spool.dir() + "/queue/" + rec.id, ec);
    return ec ? 0 : n;
  }

  asio::awaitable<void> wait_next_try(SpoolRecord rec);
  asio::awaitable<void> process(SpoolRecord rec, std::shared_ptr<const std::string> raw);
  asio::awaitable<void> pickup_loop();
  asio::awaitable<void> sweep_loop();
  void pickup(const std::string& dir);
  asio::awaitable<void> attempt(SpoolRecord& rec, const std::string& raw);
  // Where a group goes; `permanent`: no target now and none to expect (a DSN to a domain
  // without mail exchanger), as opposed to a temporary DNS failure or a config change.
  struct Targets {
    std::vector<delivery::Target> list;
    bool permanent = false;
  };
  asio::awaitable<Targets> targets_for(const SpoolRecord& rec, const RcptState& rs);
  // Spools a DSN for the failed recipients not yet reported; false when it could not be
  // spooled (the recipients stay unreported, the record must be kept and retried).
  asio::awaitable<bool> bounce(SpoolRecord& rec, const std::string& raw);
  // Persists rec as deferred and waits for its next try with exponential backoff.
  void reschedule(SpoolRecord rec, const std::string* raw);
  bool quarantine(const SpoolRecord& rec, const std::string& domain, const std::string& data);
  // Quarantining these members kept failing past quarantine_fallback_after: they are
  // delivered as the "tag" outcome instead (never dropped at queue_lifetime).
  void fall_back_to_tag(SpoolRecord& rec, const std::string& domain,
                        const std::vector<RcptState*>& members);

  Queue& queue;
  // Before io: suspended coroutines destroyed with it still unlist their timers.
  std::vector<asio::steady_timer*> sleepers;
  std::atomic<bool> stopping{false};
  std::atomic<bool> sweeping{false}, sweep_again{false};
  std::mutex mu;
  // The ids of the records the queue holds, from their submit(), recovery or pickup until
  // they leave the spool (hold(), release()); cleared at stop().
  std::mutex held_mu;
  std::set<std::string> held;
  std::shared_ptr<const Config> config;
  Spool& spool;
  Store* store;
  asio::io_context io{1};
  asio::thread_pool blocking;
  std::thread thread;
  // Shared: a reload replaces them while deliveries in progress keep theirs.
  std::shared_ptr<delivery::Deliverer> deliverer;
  std::shared_ptr<dns::Resolver> resolver;
  std::deque<SpoolRecord> backlog;
  // Pickup files already reported (unreadable, unmovable, or waiting for a record of the same
  // id to finish): said once each, tried again every pass.
  std::set<std::string> reported_pickups;
};

asio::awaitable<Queue::Impl::Targets> Queue::Impl::targets_for(const SpoolRecord& rec,
                                                               const RcptState& rs) {
  auto c = cfg();
  Targets targets;
  auto& out = targets.list;
  if (rs.action == "bounce") {
    // A DSN goes to the original sender: through the configured relay, else its MX.
    if (!c->delivery.bounce_relay.empty()) {
      if (auto t = delivery::Target::parse(c->delivery.bounce_relay, c->delivery.maildir_root)) {
        t->tls = tls_policy(*c, nullptr);
        out.push_back(*t);
      }
      co_return targets;
    }
    if (const DomainPolicy* p = c->domain(rs.address.domain)) {
      out = downstream_targets(*c, *p);
      co_return targets;
    }
    auto dns = resolver;
    dns::Answer mx = co_await dns->query(rs.address.domain, dns::Type::MX);
    if (mx.ok()) {
      for (const auto& m : mx.mx)
        if (!m.host.empty()) out.push_back(sender_mx(m.host));
    } else if (mx.status == dns::Status::NoData) {
      out.push_back(sender_mx(rs.address.domain));
    }
    // NXDOMAIN or a null MX (RFC 7505): the domain takes no mail, waiting will not help.
    targets.permanent = out.empty() && (mx.ok() || mx.status == dns::Status::NxDomain);
    co_return targets;
  }
  const DomainPolicy* p = c->domain(rs.address.domain);
  if (!p) co_return targets;
  out = downstream_targets(*c, *p);
  co_return targets;
}

void Queue::Impl::fall_back_to_tag(SpoolRecord& rec, const std::string& domain,
                                   const std::vector<RcptState*>& members) {
  // Recorded in the spool record: a deferred tagged delivery is retried as one, never
  // quarantined again (the copy would reach the recipient twice).
  const DomainPolicy* policy = cfg()->domain(domain);
  rec.tags[domain] = policy ? policy->tag_prefix : DomainPolicy().tag_prefix;
  for (auto* m : members) m->action = "tag";
  queue.stats_.quarantine_fallbacks++;
  spdlog::warn(
      "queue={} to={} domain={} quarantine failing for {} s (past "
      "quarantine_fallback_after): delivered tagged instead",
      rec.id, members.size(), domain, now_s() - rec.created);
}

bool Queue::Impl::quarantine(const SpoolRecord& rec, const std::string& domain,
                             const std::string& data) {
  std::string path = quarantine::file_path(spool.dir(), rec.id, domain);
  if (auto e = files::write_durably(path + ".tmp", path, {data})) {
    spdlog::warn("queue={} quarantine: {}", rec.id, e.message());
    return false;
  }
  if (store) {
    quarantine::IndexEntry entry;
    entry.from = rec.envelope.mail_from.str();
    for (const auto& r : rec.rcpts)
      if (r.address.domain == domain)
        entry.rcpts += (entry.rcpts.empty() ? "" : ",") + r.address.str();
    entry.created = rec.created;
    entry.filter = rec.deciding_filter;
    entry.subject = header_value(data, "Subject");
    entry.smtputf8 = rec.envelope.smtputf8;
    entry.body_8bit = rec.envelope.body_8bit;
    try {
      store->put(quarantine::index_key(domain, rec.id), quarantine::encode(entry),
                 cfg()->delivery.quarantine_days);
      store->sync();  // the spool record goes next: the index must not be the one lost
    } catch (const std::exception& e) {
      // A file without its index entry is invisible to diguectl: retry both later, leave
      // no orphan behind.
      spdlog::warn("queue={} quarantine index write failed: {}", rec.id, e.what());
      std::error_code ec;
      std::filesystem::remove(path, ec);
      return false;
    }
  }
  return true;
}

asio::awaitable<void> Queue::Impl::attempt(SpoolRecord& rec, const std::string& raw) {
  auto c = cfg();
  // Groups: (domain, action) in record order.
  std::vector<std::pair<std::string, std::string>> groups;
  for (const auto& rs : rec.rcpts) {
    if (rs.status != RcptState::Status::Pending) continue;
    std::pair<std::string, std::string> g{rs.address.domain, rs.action};
    if (std::find(groups.begin(), groups.end(), g) == groups.end()) groups.push_back(g);
  }
  for (const auto& [domain, group_action] : groups) {
    std::string action = group_action;  // a quarantine that keeps failing becomes "tag"
    std::vector<RcptState*> members;
    for (auto& rs : rec.rcpts)
      if (rs.status == RcptState::Status::Pending && rs.address.domain == domain &&
          rs.action == action)
        members.push_back(&rs);
    auto data = group_data(rec, domain, action, raw);
    if (action == "quarantine" || action == "quarantine-refused") {
      // File write, fsyncs and the index sync: on the blocking pool, not the queue's thread.
      const std::string& to = domain;  // a structured binding: not captured directly
      auto write = [&]() -> asio::awaitable<bool> { co_return quarantine(rec, to, *data); };
      bool ok = co_await asio::co_spawn(blocking, write, asio::use_awaitable);
      for (auto* m : members) {
        m->attempts++;
        if (ok) {
          m->status = RcptState::Status::Delivered;
          m->last_error = "quarantined";
        } else {
          m->last_error = "quarantine write failed";
        }
      }
      if (ok) queue.stats_.quarantined++;
      // Spam the domain would have quarantined falls back to tagged delivery; a copy it
      // refused (malware, a reject rule) is not delivered: it stays deferred until it
      // expires, as spam, without a DSN.
      bool fall_back = !ok && action == "quarantine" &&
                       now_s() - rec.created >= c->delivery.quarantine_fallback_after.count();
      spdlog::info("queue={} to={} domain={} status={} filter={}", rec.id, members.size(), domain,
                   ok          ? "quarantined"
                   : fall_back ? "tag-fallback"
                               : "deferred",
                   rec.deciding_filter);
      if (!fall_back) continue;
      fall_back_to_tag(rec, domain, members);
      action = "tag";
      data = group_data(rec, domain, action, raw);
    }
    Targets found = co_await targets_for(rec, *members.front());
    const auto& targets = found.list;
    if (targets.empty() && found.permanent) {
      // A DSN (its sender is null: nothing to report back) to a domain without MX.
      for (auto* m : members) {
        m->attempts++;
        m->status = RcptState::Status::Failed;
        m->last_error = "550 5.1.2 no mail exchanger for " + domain;
      }
      spdlog::warn("queue={} to={} domain={} action={} status=bounced: no mail exchanger",
                   rec.id, members.size(), domain, action);
      continue;
    }
    if (targets.empty()) {
      for (auto* m : members) {
        m->attempts++;
        m->last_error = "no downstream target for " + domain;
      }
      spdlog::warn("queue={} domain={} no downstream target (domain removed from config? "
                   "DNS failure?)", rec.id, domain);
      continue;
    }
    for (const auto& target : targets) {
      if (members.empty()) break;
      delivery::Job job;
      job.queue_id = rec.id;
      job.mail_from = rec.envelope.mail_from;
      for (auto* m : members) job.rcpts.push_back(m->address);
      job.data = data;
      job.smtputf8 = rec.envelope.smtputf8;
      job.body_8bit = rec.envelope.body_8bit;
      if (action == "junk") job.folder = "Junk";
      auto via = deliverer;
      auto results = co_await via->deliver(target, job);
      std::vector<RcptState*> still;
      for (size_t i = 0; i < members.size(); ++i) {
        RcptState* m = members[i];
        const auto& r = i < results.size() ? results[i] : delivery::RcptResult{};
        m->attempts++;
        std::string reply = fmt::format("{} {} {}", r.code, r.enhanced, r.text);
        m->last_error = reply;
        const char* status = "deferred";
        if (r.status == delivery::RcptResult::Status::Delivered) {
          m->status = RcptState::Status::Delivered;
          queue.stats_.delivered++;
          status = "sent";
        } else if (r.status == delivery::RcptResult::Status::PermFail) {
          m->status = RcptState::Status::Failed;
          status = "bounced";
        } else {
          still.push_back(m);
        }
        spdlog::info("queue={} to=<{}> relay={} action={} status={} reply=\"{}\"", rec.id,
                     m->address.str(), target.key(), action, status, reply);
      }
      members = std::move(still);  // temporary failures try the next target
    }
  }
  co_return;
}

asio::awaitable<bool> Queue::Impl::bounce(SpoolRecord& rec, const std::string& raw) {
  // Never to the null sender (no bounce loops), never for spam (backscatter).
  std::vector<RcptState*> report, silent;
  for (auto& rs : rec.rcpts) {
    if (rs.status != RcptState::Status::Failed || rs.last_error.rfind("[dsn]", 0) == 0) continue;
    (rec.envelope.mail_from.empty() || !legitimate(rs) ? silent : report).push_back(&rs);
  }
  // Marked as reported only once the DSN is durable, so that a failed spool write retries.
  auto mark = [](const std::vector<RcptState*>& list) {
    for (auto* rs : list) rs->last_error = "[dsn] " + rs->last_error;
  };
  if (!silent.empty())
    spdlog::info("queue={} {} recipient(s) failed; no DSN ({})", rec.id, silent.size(),
                 rec.envelope.mail_from.empty() ? "null sender" : "spam");
  mark(silent);
  if (report.empty()) co_return true;
  auto c = cfg();
  delivery::DsnInput in;
  in.reporting_mta = c->server.hostname;
  in.sender = rec.envelope.mail_from;
  in.queue_id = rec.id;
  in.arrival = rec.created;
  for (const auto* rs : report) {
    delivery::DsnRecipient d;
    d.rcpt = rs->address;
    d.result = parse_failure(rs->last_error);
    in.rcpts.push_back(d);
  }
  in.original = raw;
  auto dsn = std::make_shared<const std::string>(delivery::make_dsn(in));
  SpoolRecord d;
  d.id = spool.new_id();
  d.state = SpoolState::Queued;
  d.created = now_s();
  d.envelope.queue_id = d.id;
  d.envelope.received_at = d.created;
  d.envelope.client_ip = "127.0.0.1";
  d.envelope.helo = c->server.hostname;
  RcptState rs;
  rs.address = rec.envelope.mail_from;
  rs.action = "bounce";
  d.rcpts.push_back(rs);
  error_code ec;
  co_await spool.async_commit(dsn, d, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    spdlog::error("queue={} DSN could not be spooled (retried later): {}", rec.id, ec.message());
    co_return false;
  }
  mark(report);
  hold(d.id);  // a new id
  queue.stats_.dsn_sent++;
  spdlog::info("queue={} dsn={} to=<{}>", rec.id, d.id, rec.envelope.mail_from.str());
  admit(std::move(d), dsn);
  co_return true;
}

// Deferred records (also after a restart) wait for their time here, holding no delivery slot
// and no message bytes; then they are admitted like new mail.
asio::awaitable<void> Queue::Impl::wait_next_try(SpoolRecord rec) {
  Sleeper sleeper(io, sleepers);
  auto& timer = sleeper.timer;
  timer.expires_after(std::chrono::seconds(std::max<int64_t>(0, rec.next_try - now_s())));
  error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (stopping) co_return;
  admit(std::move(rec), nullptr);
}

// One delivery attempt of a record that is due (admit() saw to that, so the message is
// read from disk only when it is about to be sent).
asio::awaitable<void> Queue::Impl::process(SpoolRecord rec, std::shared_ptr<const std::string> raw) {
  if (!raw) raw = spool.load_message(rec.id);
  if (!raw) {
    std::error_code ec;
    if (!std::filesystem::exists(spool.dir() + "/queue/" + rec.id, ec) && !ec) {
      spdlog::error("queue={} message file gone; nothing left to deliver", rec.id);
      release(rec.id);
      co_return;
    }
    // EMFILE, EIO...: the message is still there, try again later.
    spdlog::error("queue={} message file unreadable; retried later", rec.id);
    reschedule(std::move(rec), nullptr);
    co_return;
  }
  co_await attempt(rec, *raw);
  auto c = cfg();
  bool expired = now_s() - rec.created >= c->delivery.queue_lifetime.count();
  if (pending(rec) && expired) {
    for (auto& rs : rec.rcpts)
      if (rs.status == RcptState::Status::Pending) {
        rs.status = RcptState::Status::Failed;
        rs.last_error = "451 4.4.7 delivery time expired; last error: " + rs.last_error;
      }
  }
  bool reported = co_await bounce(rec, *raw);
  if (!pending(rec) && reported) {
    spool.remove(rec.id);
    release(rec.id);
    co_return;
  }
  reschedule(std::move(rec), raw.get());
}

void Queue::Impl::reschedule(SpoolRecord rec, const std::string* raw) {
  auto c = cfg();
  rec.attempts++;
  int64_t delay = c->delivery.retry_min.count();
  for (int i = 1; i < rec.attempts && delay < c->delivery.retry_max.count(); ++i) delay *= 2;
  delay = std::min<int64_t>(delay, c->delivery.retry_max.count());
  rec.state = SpoolState::Deferred;
  rec.next_try = now_s() + std::max<int64_t>(1, delay);
  queue.stats_.deferred++;
  if (raw && !spool.update(rec, raw))
    spdlog::warn("queue={} could not update the spool record", rec.id);
  if (stopping) return;
  // The slot is given back when process() ends; the retry waits without one.
  admit(std::move(rec), nullptr);
}

// Tools beside the daemon (diguectl quarantine release) drop complete spool files into
// spool/pickup/; they are moved into the queue (same file system: an atomic rename) and
// delivered like any other record.
asio::awaitable<void> Queue::Impl::pickup_loop() {
  Sleeper sleeper(io, sleepers);
  auto& timer = sleeper.timer;
  const std::string dir = spool.dir() + "/pickup";
  while (!stopping) {
    // Detached: an escaping exception would end pickup for good, silently.
    try {
      pickup(dir);
    } catch (const std::exception& e) {
      spdlog::error("queue: pickup: {}", e.what());
    }
    timer.expires_after(std::chrono::seconds(2));
    error_code tec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, tec));
  }
}

void Queue::Impl::pickup(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (!it->is_regular_file(fec)) continue;
    std::string id = it->path().filename().string();
    // A record of this id is still queued: moved in, the file would replace that record's;
    // it waits (unread: it may be large) until that one is done.
    if (holds(id)) {
      if (reported_pickups.insert(id).second) refuse_duplicate(id, "pickup file");
      continue;
    }
    int io_error = 0;
    auto loaded = Spool::read_path(it->path().string(), true, &io_error);
    if (!loaded || loaded->record.id != id) {
      if (io_error) {
        // Not ours to read (another user's file), or EMFILE, EIO...: said once, tried again.
        if (reported_pickups.insert(id).second)
          spdlog::error("queue: cannot read pickup file {}: {} (retried)", id,
                        std::strerror(io_error));
        continue;
      }
      // Readable but not a spool file: set aside for the postmaster, never deleted.
      std::string to = spool.dir() + "/corrupt/" + id;
      std::error_code mec;
      std::filesystem::create_directories(spool.dir() + "/corrupt", mec);
      if (::rename(it->path().c_str(), to.c_str()) == 0)
        spdlog::error("queue: malformed pickup file {}, moved to {}/corrupt", id, spool.dir());
      else if (reported_pickups.insert(id).second)
        spdlog::error("queue: malformed pickup file {}, cannot move it: {}", id,
                      std::strerror(errno));
      continue;
    }
    if (!hold(id)) {  // submitted meanwhile by another thread: the same wait
      if (reported_pickups.insert(id).second) refuse_duplicate(id, "pickup file");
      continue;
    }
    reported_pickups.erase(id);
    std::string to = spool.dir() + "/queue/" + id;
    if (::rename(it->path().c_str(), to.c_str()) != 0) {
      spdlog::warn("queue: cannot move pickup file {}: {}", id, std::strerror(errno));
      release(id);
      continue;
    }
    spdlog::info("queue={} picked up ({} recipient(s))", id, loaded->record.rcpts.size());
    queue.stats_.submitted++;
    admit(std::move(loaded->record), loaded->message);
  }
  if (ec && ec != std::errc::no_such_file_or_directory)
    spdlog::warn("queue: cannot read {}: {}", dir, ec.message());
}

// Quarantine retention: copies are kept quarantine_days, then deleted. The file work runs on
// the blocking pool, one sweep at a time; a sweep that hit its bound is followed by another
// one soon.
asio::awaitable<void> Queue::Impl::sweep_loop() {
  Sleeper sleeper(io, sleepers);
  auto& timer = sleeper.timer;
  while (!stopping) {
    if (!sweeping.exchange(true)) {
      asio::post(blocking, [this, keep = cfg()->delivery.quarantine_days] {
        sweep_again = quarantine::sweep(spool.dir(), keep, store, kSweepBatch) == kSweepBatch;
        sweeping = false;
      });
    }
    if (sweep_again)
      timer.expires_after(kSweepAgain);
    else
      timer.expires_after(kSweepInterval);
    error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

Queue::Queue(std::shared_ptr<const Config> config, Spool& spool, Store* store)
    : impl_(std::make_unique<Impl>(*this, std::move(config), spool, store)) {}

Queue::~Queue() {
  stop();
  impl_->blocking.join();
}

void Queue::start() {
  Impl& impl = *impl_;
  impl.make_deliverer();
  auto records = impl.spool.recover();
  if (!records.empty()) spdlog::info("queue: resuming {} spooled message(s)", records.size());
  for (auto& r : records) {
    if (!impl.hold(r.id)) {
      impl.refuse_duplicate(r.id, "recovery");
      continue;
    }
    asio::post(impl.io, [&impl, r = std::move(r)]() mutable { impl.admit(std::move(r), nullptr); });
  }
  asio::co_spawn(impl.io, impl.pickup_loop(), log_escaped("queue: pickup loop"));
  asio::co_spawn(impl.io, impl.sweep_loop(), log_escaped("queue: quarantine sweep"));
  impl.thread = std::thread([&impl] {
    auto guard = asio::make_work_guard(impl.io);
    for (;;) {
      try {
        impl.io.run();
        break;
      } catch (const std::exception& e) {
        spdlog::error("queue: {}", e.what());
      }
    }
  });
}

void Queue::stop() {
  Impl& impl = *impl_;
  if (!impl.thread.joinable()) return;
  impl.stopping = true;
  asio::post(impl.io, [&impl] {
    for (auto* t : impl.sleepers) t->cancel();
    impl.backlog.clear();
  });
  // Deliveries in progress get a moment to finish; what is left stays in the spool.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (stats_.in_flight.load() > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // Polite QUIT on pooled idle connections, bounded by the same deadline.
  std::atomic<bool> closed{false};
  asio::co_spawn(impl.io, [&impl, &closed]() -> asio::awaitable<void> {
    co_await impl.deliverer->close_idle();
    closed = true;
  }, asio::detached);
  until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (!closed && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  impl.io.stop();
  impl.thread.join();
  impl.deliverer.reset();
  impl.resolver.reset();
  // What it held stays in the spool, resumed by the next start().
  std::lock_guard lk(impl.held_mu);
  impl.held.clear();
}

void Queue::reload(std::shared_ptr<const Config> config) {
  {
    std::lock_guard lk(impl_->mu);
    impl_->config = std::move(config);
  }
  Impl* impl = impl_.get();
  if (impl->thread.joinable()) asio::post(impl->io, [impl] { impl->make_deliverer(); });
}

void Queue::submit(SpoolRecord record, std::shared_ptr<const std::string> raw) {
  Impl* impl = impl_.get();
  if (!impl->hold(record.id)) {
    impl->refuse_duplicate(record.id, "submit");
    return;
  }
  stats_.submitted++;
  asio::post(impl->io, [impl, r = std::move(record), raw = std::move(raw)]() mutable {
    impl->admit(std::move(r), std::move(raw));
  });
}

}  // namespace digue
