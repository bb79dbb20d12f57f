// The c-ares resolver on Boost.Asio; contract in include/digue/resolver.hpp.
//
// How it runs: c-ares owns the sockets and the DNS protocol; Asio only waits. c-ares reports
// each socket it wants watched through sock_state_cb; we wrap the fd in a stream_descriptor
// (released, never closed, since c-ares closes it) and async_wait for readability or
// writability, then hand the event back with ares_process_fd. ares_timeout() arms one
// steady_timer for retransmissions and query timeouts. Nothing blocks and no thread is
// started. Every piece of state (channel, cache, in-flight table, watches) is touched only on
// one strand, so one Resolver may be shared by all the daemon's io_context threads.
#include "digue/resolver.hpp"

#include <ares.h>
#include <idn2.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>

#include <algorithm>
#include <boost/asio/any_completion_executor.hpp>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>

#include "digue/config.hpp"
#include "digue/net.hpp"
#include "digue/text.hpp"

namespace asio = boost::asio;

namespace digue::dns {

const char* to_string(Status s) {
  switch (s) {
    case Status::Ok: return "ok";
    case Status::NxDomain: return "nxdomain";
    case Status::NoData: return "nodata";
    case Status::TempError: return "temperror";
    case Status::PermError: return "permerror";
  }
  return "?";
}

const char* to_string(Type t) {
  switch (t) {
    case Type::A: return "A";
    case Type::NS: return "NS";
    case Type::CNAME: return "CNAME";
    case Type::PTR: return "PTR";
    case Type::MX: return "MX";
    case Type::TXT: return "TXT";
    case Type::AAAA: return "AAAA";
  }
  return "?";
}

namespace {
bool non_ascii(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return (c & 0x80) != 0; });
}

// One label in A-label form, or nullopt when libidn2 refuses it.
std::optional<std::string> label_to_ascii(const std::string& label) {
  for (int flags : {IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL, IDN2_NFC_INPUT | IDN2_TRANSITIONAL}) {
    char* out = nullptr;
    int rc = idn2_to_ascii_8z(label.c_str(), &out, flags);
    std::optional<std::string> ace;
    if (rc == IDN2_OK && out) ace = out;
    idn2_free(out);
    if (ace) return ace;
  }
  return std::nullopt;
}
}  // namespace

std::string a_labels(std::string_view name) {
  if (!non_ascii(name) || name.find('\0') != std::string_view::npos) return std::string(name);
  // Label by label: the length limits are normalize_name's to apply, on the converted name
  // (libidn2 refuses a whole name whose A-label form exceeds 253 octets).
  std::string out;
  size_t start = 0;
  for (;;) {
    size_t dot = name.find('.', start);
    std::string label(name.substr(start, dot == std::string_view::npos ? name.npos : dot - start));
    if (non_ascii(label)) {
      auto ace = label_to_ascii(label);
      if (!ace) return std::string(name);  // the bytes as they are (a name nobody can register)
      label = std::move(*ace);
    }
    out += label;
    if (dot == std::string_view::npos) break;
    out += '.';
    start = dot + 1;
  }
  return out;
}

std::string normalize_name(std::string_view name) {
  std::string ace = a_labels(name);
  name = ace;
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return {};
  std::string out;
  out.reserve(name.size());
  size_t label = 0;
  for (char c : name) {
    // c-ares reads names as C strings with backslash escapes: a NUL or a backslash from mail
    // would change the name actually queried, so such names are refused.
    if (c == '\0' || c == '\\') return {};
    if (c == '.') {
      if (label == 0) return {};
      label = 0;
    } else if (++label > 63) {
      return {};
    }
    out += text::lower(c);
  }
  if (label == 0) return {};
  return out;
}

namespace {

// A waiter: its completion handler and the executor it must be resumed on (kept apart
// because any_completion_handler's type-erased executor cannot be posted to in Boost 1.81).
struct Handler {
  asio::any_io_executor executor;
  asio::any_completion_handler<void(Answer)> handler;
};
using Clock = std::chrono::steady_clock;

// Bounds memory under a flood of distinct names (e.g. DNSBL lookups for random IPs).
constexpr size_t kMaxCacheEntries = 100000;
// Enough for any sane RRset; c-ares fills at most this many addresses.
constexpr int kMaxAddresses = 256;

struct Key {
  std::string name;
  Type type;
  auto operator<=>(const Key&) const = default;
};

struct CacheEntry {
  Answer answer;
  Clock::time_point expires;
};

// TTLs of an answer. c-ares 1.18's record parsers drop the TTL of MX, TXT, PTR and of the
// SOA that bounds negative caching, so this walks the sections for the TTL fields only,
// using c-ares' own name decoder; the records themselves come from c-ares' parsers.
struct TtlInfo {
  std::optional<uint32_t> answer_min;
  std::optional<uint32_t> negative;  // min(SOA TTL, SOA MINIMUM) from the authority section
  bool ok = false;
};

uint16_t get16(const unsigned char* p) { return uint16_t((p[0] << 8) | p[1]); }
uint32_t get32(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}

bool skip_name(const unsigned char*& p, const unsigned char* abuf, int alen) {
  char* name = nullptr;
  long enclen = 0;
  if (ares_expand_name(p, abuf, alen, &name, &enclen) != ARES_SUCCESS) return false;
  ares_free_string(name);
  p += enclen;
  return p <= abuf + alen;
}

TtlInfo scan_ttls(const unsigned char* abuf, int alen) {
  TtlInfo info;
  if (!abuf || alen < HFIXEDSZ) return info;
  const unsigned char* end = abuf + alen;
  const unsigned char* p = abuf + HFIXEDSZ;
  int qd = get16(abuf + 4), an = get16(abuf + 6), ns = get16(abuf + 8);
  for (int i = 0; i < qd; ++i) {
    if (!skip_name(p, abuf, alen) || end - p < QFIXEDSZ) return info;
    p += QFIXEDSZ;
  }
  for (int i = 0; i < an + ns; ++i) {
    if (!skip_name(p, abuf, alen) || end - p < RRFIXEDSZ) return info;
    uint16_t type = get16(p);
    uint32_t ttl = get32(p + 4);
    uint16_t rdlen = get16(p + 8);
    p += RRFIXEDSZ;
    if (end - p < rdlen) return info;
    if (i < an) {
      info.answer_min = std::min(info.answer_min.value_or(ttl), ttl);
    } else if (type == ns_t_soa && rdlen >= 4) {
      uint32_t neg = std::min(ttl, get32(p + rdlen - 4));  // MINIMUM is the last field
      info.negative = std::min(info.negative.value_or(neg), neg);
    }
    p += rdlen;
  }
  info.ok = true;
  return info;
}

std::string clean_host(const char* name) {
  std::string s = name ? name : "";
  if (!s.empty() && s.back() == '.') s.pop_back();
  return text::lower(s);
}

Status status_of_parse(int rc) {
  if (rc == ARES_ENODATA) return Status::NoData;
  if (rc == ARES_ENOMEM) return Status::TempError;
  return Status::PermError;
}

// Record data, with c-ares' parsers: they are the ones c-ares is tested and fuzzed with, they
// follow CNAME chains inside the answer, and the TXT "_ext" variant marks where each record
// starts, so an SPF record split into several strings is rebuilt while two records stay two.
Status parse_records(Type type, const unsigned char* abuf, int alen, Answer& a) {
  switch (type) {
    case Type::A:
    case Type::AAAA: {
      char text[INET6_ADDRSTRLEN];
      int n = kMaxAddresses;
      if (type == Type::A) {
        std::vector<ares_addrttl> addrs(kMaxAddresses);
        int rc = ares_parse_a_reply(abuf, alen, nullptr, addrs.data(), &n);
        if (rc != ARES_SUCCESS) return status_of_parse(rc);
        for (int i = 0; i < n; ++i)
          a.records.push_back(inet_ntop(AF_INET, &addrs[i].ipaddr, text, sizeof text));
      } else {
        std::vector<ares_addr6ttl> addrs(kMaxAddresses);
        int rc = ares_parse_aaaa_reply(abuf, alen, nullptr, addrs.data(), &n);
        if (rc != ARES_SUCCESS) return status_of_parse(rc);
        for (int i = 0; i < n; ++i)
          a.records.push_back(inet_ntop(AF_INET6, &addrs[i].ip6addr, text, sizeof text));
      }
      break;
    }
    case Type::MX: {
      ares_mx_reply* mx = nullptr;
      int rc = ares_parse_mx_reply(abuf, alen, &mx);
      if (rc != ARES_SUCCESS) return status_of_parse(rc);
      for (auto* m = mx; m; m = m->next) a.mx.push_back({m->priority, clean_host(m->host)});
      ares_free_data(mx);
      std::stable_sort(a.mx.begin(), a.mx.end(),
                       [](const Mx& x, const Mx& y) { return x.preference < y.preference; });
      break;
    }
    case Type::TXT: {
      ares_txt_ext* txt = nullptr;
      int rc = ares_parse_txt_reply_ext(abuf, alen, &txt);
      if (rc != ARES_SUCCESS) return status_of_parse(rc);
      for (auto* t = txt; t; t = t->next) {
        if (t->record_start || a.records.empty()) a.records.emplace_back();
        a.records.back().append(reinterpret_cast<const char*>(t->txt), t->length);
      }
      ares_free_data(txt);
      break;
    }
    case Type::PTR:
    case Type::NS: {
      hostent* host = nullptr;
      int rc;
      if (type == Type::PTR) {
        // The address is only copied into the hostent; the names are what we want.
        unsigned char dummy[4] = {0, 0, 0, 0};
        rc = ares_parse_ptr_reply(abuf, alen, dummy, sizeof dummy, AF_INET, &host);
      } else {
        rc = ares_parse_ns_reply(abuf, alen, &host);
      }
      if (rc != ARES_SUCCESS) return status_of_parse(rc);
      // c-ares lists every name in h_aliases (in answer order); h_name is one of them.
      if (host->h_aliases && host->h_aliases[0]) {
        for (char** al = host->h_aliases; *al; ++al) a.records.push_back(clean_host(*al));
      } else if (host->h_name) {
        a.records.push_back(clean_host(host->h_name));
      }
      ares_free_hostent(host);
      break;
    }
    case Type::CNAME: {
      // No c-ares parser for a bare CNAME answer: take the CNAME RRs' targets, decoded by
      // c-ares' name expander.
      const unsigned char* p = abuf + HFIXEDSZ;
      const unsigned char* end = abuf + alen;
      int qd = get16(abuf + 4), an = get16(abuf + 6);
      for (int i = 0; i < qd; ++i) {
        if (!skip_name(p, abuf, alen) || end - p < QFIXEDSZ) return Status::PermError;
        p += QFIXEDSZ;
      }
      for (int i = 0; i < an; ++i) {
        if (!skip_name(p, abuf, alen) || end - p < RRFIXEDSZ) return Status::PermError;
        uint16_t rtype = get16(p), rdlen = get16(p + 8);
        p += RRFIXEDSZ;
        if (end - p < rdlen) return Status::PermError;
        if (rtype == ns_t_cname) {
          char* target = nullptr;
          long enclen = 0;
          if (ares_expand_name(p, abuf, alen, &target, &enclen) != ARES_SUCCESS)
            return Status::PermError;
          a.records.push_back(clean_host(target));
          ares_free_string(target);
        }
        p += rdlen;
      }
      break;
    }
  }
  if (a.records.empty() && a.mx.empty()) return Status::NoData;
  return Status::Ok;
}

// The one parser of a response c-ares accepted (ARES_SUCCESS), for the resolver and for
// parse_response (the fuzz target): status and records, the TTL as found (answer minimum,
// or the SOA's negative TTL for NoData; 0 when absent or on error), and the raw TTL facts
// in ttls for the resolver's own bounds. No records are kept on error.
Answer parse_accepted(Type type, const unsigned char* abuf, int alen, TtlInfo& ttls) {
  Answer a;
  ttls = scan_ttls(abuf, alen);
  if (!ttls.ok) {
    a.status = Status::PermError;
    return a;
  }
  a.status = parse_records(type, abuf, alen, a);
  if (a.status == Status::Ok) {
    a.ttl = ttls.answer_min.value_or(0);
  } else if (a.status == Status::NoData) {
    a.ttl = ttls.negative.value_or(0);  // e.g. only a CNAME chain ending nowhere
  } else {
    a.records.clear();
    a.mx.clear();
  }
  return a;
}

class Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::any_io_executor executor, const DnsConfig& config)
      : strand_(asio::make_strand(executor)), timer_(strand_), config_(config) {}

  ~Impl() { shutdown(); }

  void init() {
    static std::once_flag once;
    std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
    ares_options opts{};
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB |
               ARES_OPT_EDNSPSZ;
    // NOSEARCH: a name from mail is absolute; appending resolv.conf search domains to it
    // would ask about names nobody published. EDNS: SPF TXT answers often exceed 512 bytes.
    opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_EDNS;
    opts.timeout = int(std::max<int64_t>(1, config_.timeout.count()));
    opts.tries = std::max(1, config_.tries);
    opts.ednspsz = 1232;  // the DNS flag day 2020 size: no IP fragmentation
    opts.sock_state_cb = &Impl::on_sock_state;
    opts.sock_state_cb_data = this;
    int rc = ares_init_options(&channel_, &opts, mask);
    if (rc != ARES_SUCCESS)
      throw std::runtime_error(std::string("dns: c-ares init: ") + ares_strerror(rc));
    if (!config_.servers.empty()) {
      std::string csv;
      for (const auto& ep : config_.servers) {
        auto ip = net::Ip::parse(ep.host);
        if (!ip) throw std::runtime_error("dns.servers: not an IP address: " + ep.host);
        if (!csv.empty()) csv += ',';
        uint16_t port = ep.port ? ep.port : 53;
        csv += ip->v6 ? "[" + ip->str() + "]:" + std::to_string(port)
                      : ip->str() + ":" + std::to_string(port);
      }
      rc = ares_set_servers_ports_csv(channel_, csv.c_str());
      if (rc != ARES_SUCCESS)
        throw std::runtime_error("dns.servers: " + csv + ": " + ares_strerror(rc));
    }
  }

  asio::strand<asio::any_io_executor>& strand() { return strand_; }

  // On the strand.
  void lookup(Key key, Handler handler) {
    auto now = Clock::now();
    if (auto it = cache_.find(key); it != cache_.end()) {
      if (it->second.expires > now) {
        ++stats_.cache_hits;
        Answer a = it->second.answer;
        a.ttl = uint32_t(
            std::chrono::ceil<std::chrono::seconds>(it->second.expires - now).count());
        complete(std::move(handler), std::move(a));
        return;
      }
      cache_.erase(it);
    }
    if (auto it = inflight_.find(key); it != inflight_.end()) {
      ++stats_.joined;
      it->second.push_back(std::move(handler));
      return;
    }
    if (!channel_) {
      complete(std::move(handler), Answer{});  // shut down: TempError
      return;
    }
    inflight_[key].push_back(std::move(handler));
    ++stats_.queries;
    auto* ctx = new QueryCtx{this, key};
    ares_query(channel_, key.name.c_str(), ns_c_in, int(key.type), &Impl::on_answer, ctx);
    arm_timer();
  }

  ResolverStats stats() const { return stats_; }

  void shutdown() {
    if (!channel_) return;
    // Pending queries complete with ARES_EDESTRUCTION (TempError for their waiters).
    ares_channel ch = channel_;
    destroying_ = true;
    ares_destroy(ch);
    channel_ = nullptr;
    timer_.cancel();
    for (auto& [fd, w] : watches_) release(*w);
    watches_.clear();
  }

 private:
  struct Watch {
    explicit Watch(asio::posix::stream_descriptor d) : desc(std::move(d)) {}
    asio::posix::stream_descriptor desc;
    bool want_read = false, want_write = false;
    bool reading = false, writing = false, closed = false;
  };
  struct QueryCtx {
    Impl* impl;
    Key key;
  };

  static void release(Watch& w) {
    w.closed = true;
    boost::system::error_code ec;
    w.desc.cancel(ec);
    w.desc.release();  // c-ares owns and closes the fd
  }

  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
    auto* self = static_cast<Impl*>(data);
    auto it = self->watches_.find(fd);
    if (!readable && !writable) {
      if (it != self->watches_.end()) {
        release(*it->second);
        self->watches_.erase(it);
      }
      return;
    }
    if (self->destroying_) return;
    if (it == self->watches_.end()) {
      auto w = std::make_shared<Watch>(asio::posix::stream_descriptor(self->strand_, fd));
      it = self->watches_.emplace(fd, std::move(w)).first;
    }
    it->second->want_read = readable;
    it->second->want_write = writable;
    self->arm(fd, it->second);
  }

  void arm(ares_socket_t fd, const std::shared_ptr<Watch>& w) {
    if (w->closed) return;
    if (w->want_read && !w->reading) {
      w->reading = true;
      w->desc.async_wait(asio::posix::descriptor_base::wait_read,
                         [self = shared_from_this(), w, fd](boost::system::error_code ec) {
                           w->reading = false;
                           if (ec || w->closed || !self->channel_) return;
                           ares_process_fd(self->channel_, fd, ARES_SOCKET_BAD);
                           self->arm(fd, w);
                           self->arm_timer();
                         });
    }
    if (w->want_write && !w->writing) {
      w->writing = true;
      w->desc.async_wait(asio::posix::descriptor_base::wait_write,
                         [self = shared_from_this(), w, fd](boost::system::error_code ec) {
                           w->writing = false;
                           if (ec || w->closed || !self->channel_) return;
                           ares_process_fd(self->channel_, ARES_SOCKET_BAD, fd);
                           self->arm(fd, w);
                           self->arm_timer();
                         });
    }
  }

  void arm_timer() {
    if (!channel_) return;
    timeval tv{};
    timeval* next = ares_timeout(channel_, nullptr, &tv);
    if (!next) {
      timer_.cancel();
      return;
    }
    timer_.expires_after(std::chrono::seconds(next->tv_sec) +
                         std::chrono::microseconds(next->tv_usec));
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || !self->channel_) return;
      ares_process_fd(self->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
      self->arm_timer();
    });
  }

  static void on_answer(void* arg, int status, int /*timeouts*/, unsigned char* abuf,
                        int alen) {
    std::unique_ptr<QueryCtx> ctx(static_cast<QueryCtx*>(arg));
    ctx->impl->finish(ctx->key, ctx->impl->make_answer(ctx->key.type, status, abuf, alen));
  }

  Answer make_answer(Type type, int status, const unsigned char* abuf, int alen) const {
    TtlInfo ttls;
    auto negative = [&] {
      // RFC 2308: the SOA in the authority section bounds how long "no such name" holds.
      uint32_t neg = ttls.negative.value_or(config_.negative_ttl);
      return std::clamp(neg, std::min(config_.min_ttl, config_.negative_ttl),
                        config_.negative_ttl);
    };
    if (status == ARES_SUCCESS) {
      Answer a = parse_accepted(type, abuf, alen, ttls);
      if (a.status == Status::Ok) {
        a.ttl = std::clamp(a.ttl, config_.min_ttl, std::max(config_.min_ttl, config_.max_ttl));
      } else if (a.status == Status::NoData) {
        a.ttl = negative();
      }
      return a;
    }
    Answer a;
    ttls = scan_ttls(abuf, alen);
    switch (status) {
      case ARES_ENODATA:
        a.status = Status::NoData;
        a.ttl = negative();
        return a;
      case ARES_ENOTFOUND:
        a.status = Status::NxDomain;
        a.ttl = negative();
        return a;
      case ARES_EFORMERR:
      case ARES_EBADRESP:
      case ARES_EBADNAME:
      case ARES_EBADQUERY:
        a.status = Status::PermError;
        return a;
      default:  // timeout, SERVFAIL, REFUSED, connection refused, shutdown, no memory
        a.status = Status::TempError;
        return a;
    }
  }

  void finish(const Key& key, Answer answer) {
    bool cacheable = answer.status == Status::Ok || answer.status == Status::NxDomain ||
                     answer.status == Status::NoData;
    if (cacheable && answer.ttl > 0 && !destroying_) {
      if (cache_.size() >= kMaxCacheEntries) purge_cache();
      cache_[key] = {answer, Clock::now() + std::chrono::seconds(answer.ttl)};
    }
    auto it = inflight_.find(key);
    if (it == inflight_.end()) return;
    std::vector<Handler> waiters = std::move(it->second);
    inflight_.erase(it);
    for (auto& h : waiters) complete(std::move(h), answer);
  }

  void purge_cache() {
    auto now = Clock::now();
    std::erase_if(cache_, [&](const auto& kv) { return kv.second.expires <= now; });
    // Still full of live entries: drop them all rather than track recency; answers are
    // re-fetched on demand and this only happens under a flood.
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
  }

  void complete(Handler handler, Answer answer) {
    // Resume the waiter on its own executor, never inside a c-ares callback: the waiter may
    // start new queries, and c-ares is not re-entered from its callbacks.
    asio::post(handler.executor, [h = std::move(handler.handler), a = std::move(answer)]() mutable {
      std::move(h)(std::move(a));
    });
  }

  asio::strand<asio::any_io_executor> strand_;
  asio::steady_timer timer_;
  DnsConfig config_;
  ares_channel channel_ = nullptr;
  bool destroying_ = false;
  std::map<ares_socket_t, std::shared_ptr<Watch>> watches_;
  std::map<Key, CacheEntry> cache_;
  std::map<Key, std::vector<Handler>> inflight_;
  ResolverStats stats_;
};

class CaresResolver final : public Resolver {
 public:
  CaresResolver(asio::any_io_executor executor, const DnsConfig& config)
      : impl_(std::make_shared<Impl>(executor, config)) {
    impl_->init();
  }
  ~CaresResolver() override { impl_->shutdown(); }

  asio::awaitable<Answer> query(std::string name, Type type) override {
    std::string normalized = normalize_name(name);
    if (normalized.empty()) {
      Answer bad;
      bad.status = Status::PermError;
      co_return bad;
    }
    auto impl = impl_;
    // The key goes in by capture, not as an initiation argument, and the result is a named
    // local: GCC 12 destroys some temporaries of a co_await full-expression twice.
    auto initiation = [impl, key = Key{std::move(normalized), type}](auto handler) mutable {
      auto ex = asio::get_associated_executor(handler, impl->strand());
      Handler h{ex, std::move(handler)};
      asio::dispatch(impl->strand(), [impl, key = std::move(key), h = std::move(h)]() mutable {
        impl->lookup(std::move(key), std::move(h));
      });
    };
    Answer answer = co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(Answer)>(
        std::move(initiation), asio::use_awaitable);
    co_return answer;
  }

  ResolverStats stats() const override {
    // Read without the strand: counters for logs and tests, a torn read is harmless.
    return impl_->stats();
  }

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace

Answer parse_response(Type type, const unsigned char* abuf, int alen) {
  TtlInfo ttls;
  return parse_accepted(type, abuf, alen, ttls);
}

std::unique_ptr<Resolver> make_resolver(asio::any_io_executor executor,
                                        const DnsConfig& config) {
  return std::make_unique<CaresResolver>(std::move(executor), config);
}

}  // namespace digue::dns
