// Config loading and validation; see include/digue/config.hpp.
// Every key is read through OptionReader so that an unknown key or a bad value stops the
// start-up with a message naming the key and its line.
#include "digue/config.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "digue/delivery.hpp"
#include "digue/filter_registry.hpp"
#include "digue/options.hpp"
#include "digue/recipient_list.hpp"
#include "digue/resolver.hpp"
#include "digue/text.hpp"

namespace digue {

namespace {

using text::lower;

std::vector<Endpoint> endpoints(OptionReader& r, const std::string& key, uint16_t default_port) {
  std::vector<Endpoint> out;
  for (const auto& text : r.strings(key)) {
    auto ep = Endpoint::parse(text, default_port);
    if (!ep) r.fail(key, "bad address '" + text + "' (want IP:port, [IPv6]:port or host:port)");
    out.push_back(*ep);
  }
  return out;
}

// Durations are at least a second: a zero timeout fails every session or delivery at once,
// a zero retry interval retries every second.
std::chrono::seconds seconds(OptionReader& r, const std::string& key, std::chrono::seconds def,
                             int64_t min = 1, int64_t max = 365LL * 86400) {
  return std::chrono::seconds(r.integer(key, def.count(), min, max));
}

const toml::table& sub(OptionReader& r, const std::string& key) {
  static const toml::table kEmpty;
  const toml::table* t = r.table(key);
  return t ? *t : kEmpty;
}

void read_server(Config& c, const toml::table& t) {
  OptionReader r(t, "server");
  auto& s = c.server;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  s.hostname = r.str("hostname", host[0] ? host : "localhost");
  s.listen = endpoints(r, "listen", 25);
  s.listen_tls = endpoints(r, "listen_tls", 465);
  if (const toml::table* tls = r.table("tls")) {
    OptionReader tr(*tls, "server.tls");
    s.tls_cert = tr.str("cert", "");
    s.tls_key = tr.str("key", "");
    if (s.tls_cert.empty() != s.tls_key.empty())
      tr.fail(s.tls_cert.empty() ? "cert" : "key", "cert and key go together");
    tr.finish();
  }
  if (!s.listen_tls.empty() && s.tls_cert.empty())
    r.fail("listen_tls", "implicit TLS listeners need [server.tls] cert and key");
  s.threads = static_cast<int>(r.integer("threads", 0, 0, 256));
  s.max_message_size = r.integer("max_message_size", s.max_message_size, 1024, 1LL << 31);
  s.max_recipients = r.integer("max_recipients", s.max_recipients, 1, 100000);
  s.max_command_line = r.integer("max_command_line", s.max_command_line, 512, 1 << 20);
  s.max_data_line = r.integer("max_data_line", s.max_data_line, 1000, 1LL << 30);
  s.max_connections = r.integer("max_connections", s.max_connections, 1, 1000000);
  s.max_data_memory = static_cast<size_t>(r.integer("max_data_memory", 1024, 1, 1 << 20)) << 20;
  // Smaller, a message of the largest size would never fit: 4xx for ever, never a bounce.
  // A session reserves room for what its next read can decode to (two 64 KiB chunks) ahead.
  constexpr size_t kReadAhead = 256 << 10;
  if (s.max_data_memory < s.max_message_size + kReadAhead)
    r.fail("max_data_memory", "must hold at least one message of max_message_size (" +
                                  std::to_string(s.max_message_size) +
                                  " bytes) and 256 KiB of read-ahead");
  s.max_connections_per_ip =
      r.integer("max_connections_per_ip", s.max_connections_per_ip, 1, 1000000);
  s.max_bad_commands = r.integer("max_bad_commands", s.max_bad_commands, 1, 1000);
  s.max_junk_commands = r.integer("max_junk_commands", s.max_junk_commands, 1, 1000000);
  s.max_session_time = seconds(r, "max_session_time", s.max_session_time);
  s.greeting_timeout = seconds(r, "greeting_timeout", s.greeting_timeout);
  s.command_timeout = seconds(r, "command_timeout", s.command_timeout);
  s.data_timeout = seconds(r, "data_timeout", s.data_timeout);
  s.shutdown_grace = seconds(r, "shutdown_grace", s.shutdown_grace, 0);
  r.finish();
}

// A downstream TLS policy name (delivery::TlsPolicy), or fallback when the key is absent.
std::string tls_policy(OptionReader& r, const char* key, const std::string& fallback) {
  std::string v = r.str(key, fallback);
  if (!v.empty() && !delivery::parse_tls_policy(v))
    r.fail(key, "must be none, may, encrypt or verify");
  return v;
}

void read_verification(OptionReader& r, RecipientVerification& v) {
  std::string mode = r.str("verify_recipients", "off");
  if (mode == "off") v.mode = RecipientVerification::Mode::Off;
  else if (mode == "callout") v.mode = RecipientVerification::Mode::Callout;
  else r.fail("verify_recipients", "must be off or callout");
  std::string tempfail = r.str("verify_tempfail", "defer");
  if (tempfail == "defer") v.tempfail_accept = false;
  else if (tempfail == "accept") v.tempfail_accept = true;
  else r.fail("verify_tempfail", "must be defer or accept");
  v.timeout = seconds(r, "verify_timeout", v.timeout, 1, 300);
  v.positive_ttl = seconds(r, "verify_positive_ttl", v.positive_ttl);
  v.negative_ttl = seconds(r, "verify_negative_ttl", v.negative_ttl);
  v.max_callouts_per_session = static_cast<int>(
      r.integer("max_callouts_per_session", v.max_callouts_per_session, 1, 100000));
  v.max_callouts_per_client = static_cast<int>(
      r.integer("max_callouts_per_client", v.max_callouts_per_client, 1, 10000000));
  v.callout_window = seconds(r, "callout_window", v.callout_window, 1, 86400);
  v.delimiter = r.str("recipient_delimiter", "");
  if (v.delimiter.size() > 8) r.fail("recipient_delimiter", "at most 8 characters");
  for (char ch : v.delimiter)
    if (!is_extension_delimiter(ch))
      r.fail("recipient_delimiter", std::string("'") + ch +
                                        "' cannot start an address extension (want characters "
                                        "such as + - _ = .)");
  v.list_path = r.str("recipients", "");
  if (!v.list_path.empty()) {
    try {
      v.list = RecipientList::load(v.list_path);
    } catch (const std::invalid_argument& e) {
      r.fail("recipients", e.what());
    }
  }
}

void read_domain(Config& c, const std::string& name, const toml::node& node) {
  const std::string prefix = "domains.\"" + name + "\"";
  if (!node.is_table()) config_fail(prefix, &node, "expected a table");
  OptionReader r(*node.as_table(), prefix);
  DomainPolicy d;
  d.name = lower(name);
  d.line = static_cast<int>(node.source().begin.line);
  d.downstream = r.strings("downstream", {"maildir"});
  if (d.downstream.empty()) r.fail("downstream", "must name at least one target");
  // The queue's own parser: what passes here is what delivery can use.
  for (const auto& ds : d.downstream)
    if (!delivery::Target::parse(ds, "maildir"))
      r.fail("downstream", "bad target '" + ds +
                               "' (want maildir[:PATH], [smtp:]HOST[:PORT] or lmtp:HOST[:PORT])");
  std::string mode = r.str("spam_mode", "quarantine");
  if (mode == "quarantine") d.spam_mode = SpamMode::Quarantine;
  else if (mode == "tag") d.spam_mode = SpamMode::Tag;
  else if (mode == "junk") d.spam_mode = SpamMode::Junk;
  else r.fail("spam_mode", "must be quarantine, tag or junk");
  d.level = static_cast<int>(r.integer("level", 4, 1, 7));
  d.required = kLevelThresholds[d.level - 1];
  d.required = r.number("required", d.required, 0.0, 1000.0);
  d.tag_prefix = r.str("tag_prefix", d.tag_prefix);
  for (const auto& f : r.strings("disabled_filters")) {
    if (!find_filter(f)) r.fail("disabled_filters", "unknown filter '" + f + "'");
    d.disabled_filters.insert(f);
  }
  d.filtering = r.boolean("filtering", true);
  d.relay_ips = r.cidrs("relay_ips");
  d.never_spam_ips = r.cidrs("never_spam_ips");
  d.always_spam_ips = r.cidrs("always_spam_ips");
  d.greylisting = r.boolean("greylisting", false);
  d.whitelist_from_header = r.boolean("whitelist_from_header", true);
  d.tls = tls_policy(r, "tls", "");
  read_verification(r, d.verify);
  r.finish();
  if (c.domains.count(d.name)) config_fail(prefix, &node, "domain listed twice");
  std::string ace = lower(dns::a_labels(d.name));
  if (ace != d.name) {
    // Written with U-labels: mail for it may come in either form (A-labels from clients
    // without SMTPUTF8).
    if (c.domains.count(ace) || c.idn_aliases.count(ace))
      config_fail(prefix, &node, "domain listed twice (as " + ace + ")");
    c.idn_aliases.emplace(ace, d.name);
  } else if (c.idn_aliases.count(ace)) {
    config_fail(prefix, &node, "domain listed twice (also in its UTF-8 form)");
  }
  c.domains.emplace(d.name, std::move(d));
}

// filters: the [filters] table of c.root; each filter's table is moved (not copied) into
// c.filter_options, as a copied toml node loses its source lines, which the filters' option
// errors name.
void read_pipeline(Config& c, const toml::table& pipeline, toml::table& filters) {
  OptionReader pr(pipeline, "pipeline");
  const toml::node* order_node = pipeline.get("order");
  auto order = pr.strings("order");
  pr.finish();
  // Every [filters.NAME] table must name a known filter, even when it is not in the order.
  for (const auto& [k, v] : filters) {
    std::string name(k.str());
    if (!find_filter(name)) config_fail("filters." + name, &v, "unknown filter");
    if (!v.is_table()) config_fail("filters." + name, &v, "expected a table");
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < order.size(); ++i) {
    const std::string& name = order[i];
    const toml::node* at = order_node && order_node->as_array()
                               ? order_node->as_array()->get(i)
                               : static_cast<const toml::node*>(order_node);
    if (!find_filter(name)) config_fail("pipeline.order", at, "unknown filter '" + name + "'");
    if (!seen.insert(name).second)
      config_fail("pipeline.order", at, "filter '" + name + "' listed twice");
    SlotConfig slot;
    slot.filter = name;
    slot.line = at ? static_cast<int>(at->source().begin.line) : 0;
    // Moved, not copied, out of the parsed document: toml++ does not copy a node's source
    // position, and the filter's own option errors (at pipeline build) would say line 0.
    toml::table options;
    if (toml::table* t = filters.get_as<toml::table>(name)) options = std::move(*t);
    OptionReader r(options, "filters." + name);
    std::string action = r.str("action", "spam");
    if (action == "spam") slot.action = SlotAction::Spam;
    else if (action == "reject") slot.action = SlotAction::Reject;
    else if (action == "tempfail") slot.action = SlotAction::Tempfail;
    else if (action == "score") slot.action = SlotAction::Score;
    else if (action == "log") slot.action = SlotAction::Log;
    else r.fail("action", "must be spam, reject, tempfail, score or log");
    slot.timeout = std::chrono::milliseconds(r.integer("timeout_ms", 5000, 1, 600000));
    std::string on_error = r.str("on_error", "continue");
    if (on_error == "continue") slot.on_error = OnError::Continue;
    else if (on_error == "tempfail") slot.on_error = OnError::Tempfail;
    else r.fail("on_error", "must be continue or tempfail");
    slot.dry_run = r.boolean("dry_run", false);
    slot.always = r.boolean("always", false);
    for (const char* k : {"action", "timeout_ms", "on_error", "dry_run", "always"}) options.erase(k);
    c.filter_options[name] = std::move(options);
    c.pipeline.push_back(std::move(slot));
  }
  for (auto& slot : c.pipeline) slot.options = &c.filter_options[slot.filter];
}

}  // namespace

ConfigError::ConfigError(const std::string& k, int l, const std::string& what)
    : std::runtime_error(what), key(k), line(l) {}

void config_fail(const std::string& key, const toml::node* node, const std::string& what) {
  int line = node ? static_cast<int>(node->source().begin.line) : 0;
  throw ConfigError(key, line, what);
}

const char* to_string(SpamMode m) {
  switch (m) {
    case SpamMode::Quarantine: return "quarantine";
    case SpamMode::Tag: return "tag";
    case SpamMode::Junk: return "junk";
  }
  return "?";
}

std::string Endpoint::str() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::optional<Endpoint> Endpoint::parse(std::string_view text, uint16_t default_port) {
  Endpoint ep;
  std::string_view port;
  if (text.empty()) return std::nullopt;
  if (text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    ep.host = std::string(text.substr(1, close - 1));
    auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
    }
  } else if (std::count(text.begin(), text.end(), ':') > 1) {
    ep.host = std::string(text);  // bare IPv6 without a port
  } else {
    auto colon = text.find(':');
    ep.host = std::string(text.substr(0, colon));
    if (colon != std::string_view::npos) port = text.substr(colon + 1);
  }
  if (ep.host.empty()) return std::nullopt;
  for (char ch : ep.host)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-' || ch == ':' ||
          ch == '_'))
      return std::nullopt;
  ep.port = default_port;
  if (!port.empty()) {
    if (port.size() > 5) return std::nullopt;
    unsigned v = 0;
    for (char ch : port) {
      if (ch < '0' || ch > '9') return std::nullopt;
      v = v * 10 + (ch - '0');
    }
    if (v == 0 || v > 65535) return std::nullopt;
    ep.port = static_cast<uint16_t>(v);
  } else if (!port.data() && default_port == 0) {
    return std::nullopt;
  }
  return ep;
}

const DomainPolicy* Config::domain(std::string_view name) const {
  std::string key = lower(std::string(name));
  auto it = domains.find(key);
  if (it != domains.end()) return &it->second;
  // IDN: hosted and asked-for domains are compared in A-label form, so that a domain matches
  // in its UTF-8 and its punycode spelling alike.
  std::string ace = lower(dns::a_labels(key));
  it = domains.find(ace);
  if (it != domains.end()) return &it->second;
  auto alias = idn_aliases.find(ace);
  return alias == idn_aliases.end() ? nullptr : &domains.at(alias->second);
}

std::shared_ptr<const Config> parse_config(std::string_view text, const std::string& path) {
  auto c = std::make_shared<Config>();
  c->path = path;
  try {
    c->root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    throw ConfigError("(syntax)", static_cast<int>(e.source().begin.line),
                      std::string(e.description()));
  }
  OptionReader top(c->root, "");
  read_server(*c, sub(top, "server"));
  {
    OptionReader r(sub(top, "spool"), "spool");
    c->spool.dir = r.str("dir", c->spool.dir);
    c->spool.fsync = r.boolean("fsync", true);
    r.finish();
  }
  {
    OptionReader r(sub(top, "store"), "store");
    c->store.dir = r.str("dir", c->store.dir);
    c->store.map_size = r.integer("map_size", c->store.map_size, 1 << 20, 1LL << 40);
    c->store.sync = r.str("sync", c->store.sync);
    if (c->store.sync != "periodic" && c->store.sync != "commit" && c->store.sync != "full")
      r.fail("sync", "must be periodic, commit or full");
    c->store.sync_interval_ms =
        static_cast<int>(r.integer("sync_interval_ms", c->store.sync_interval_ms, 10, 60000));
    r.finish();
  }
  {
    OptionReader r(sub(top, "dns"), "dns");
    auto& d = c->dns;
    d.servers = endpoints(r, "servers", 53);
    d.timeout = std::chrono::milliseconds(r.integer("timeout_ms", d.timeout.count(), 10, 60000));
    d.tries = static_cast<int>(r.integer("tries", d.tries, 1, 10));
    d.min_ttl = static_cast<uint32_t>(r.integer("min_ttl", d.min_ttl, 0, 86400));
    d.max_ttl = static_cast<uint32_t>(r.integer("max_ttl", d.max_ttl, 0, 7 * 86400));
    d.negative_ttl = static_cast<uint32_t>(r.integer("negative_ttl", d.negative_ttl, 0, 86400));
    r.finish();
  }
  {
    OptionReader r(sub(top, "delivery"), "delivery");
    auto& d = c->delivery;
    d.queue_lifetime = seconds(r, "queue_lifetime", d.queue_lifetime);
    d.retry_min = seconds(r, "retry_min", d.retry_min);
    d.retry_max = seconds(r, "retry_max", d.retry_max);
    if (d.retry_min > d.retry_max)
      r.fail("retry_min", "must not exceed retry_max (" + std::to_string(d.retry_min.count()) +
                              " s > " + std::to_string(d.retry_max.count()) + " s)");
    d.connect_timeout = seconds(r, "connect_timeout", d.connect_timeout);
    d.command_timeout = seconds(r, "command_timeout", d.command_timeout);
    d.max_per_destination =
        static_cast<int>(r.integer("max_per_destination", d.max_per_destination, 1, 10000));
    d.max_attempts_in_flight =
        static_cast<int>(r.integer("max_attempts_in_flight", d.max_attempts_in_flight, 1, 100000));
    d.max_bytes_in_flight =
        static_cast<size_t>(r.integer("max_bytes_in_flight", 1024, 1, 1 << 20)) << 20;
    d.maildir_root = r.str("maildir_root", d.maildir_root);
    d.bounce_relay = r.str("bounce_relay", "");
    if (!d.bounce_relay.empty() && !delivery::Target::parse(d.bounce_relay, "maildir"))
      r.fail("bounce_relay", "bad address '" + d.bounce_relay + "'");
    d.starttls = r.boolean("starttls", true);
    d.tls = tls_policy(r, "tls", d.starttls ? "may" : "none");
    if (d.tls == "none") d.starttls = false;
    d.lmtp_folder_delimiter = r.str("lmtp_folder_delimiter", "");
    d.quarantine_days =
        std::chrono::seconds(r.integer("quarantine_days", 30, 1, 3650) * 86400);
    // Later than queue_lifetime, the fallback would never come: the copy would be dropped.
    auto fallback_default = std::max<std::chrono::seconds>(
        std::chrono::seconds(1), std::min(d.quarantine_fallback_after, d.queue_lifetime / 2));
    d.quarantine_fallback_after = seconds(r, "quarantine_fallback_after", fallback_default);
    // At most half the lifetime: the tagged delivery it falls back to needs retries of its
    // own before the queue gives up (a tagged copy expires without a DSN, as spam).
    auto fallback_max = std::max<std::chrono::seconds>(std::chrono::seconds(1), d.queue_lifetime / 2);
    if (d.quarantine_fallback_after > fallback_max)
      r.fail("quarantine_fallback_after",
             "must not exceed half of queue_lifetime (" +
                 std::to_string(d.quarantine_fallback_after.count()) + " s > " +
                 std::to_string(fallback_max.count()) + " s)");
    r.finish();
  }
  {
    OptionReader r(sub(top, "log"), "log");
    c->log.level = r.str("level", "info");
    static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
    if (std::find_if(std::begin(kLevels), std::end(kLevels),
                     [&](const char* l) { return c->log.level == l; }) == std::end(kLevels))
      r.fail("level", "must be trace, debug, info, warn, error, critical or off");
    r.finish();
  }
  sub(top, "filters");  // checked to be a table
  toml::table no_filters;
  toml::table* filters = c->root.get_as<toml::table>("filters");
  read_pipeline(*c, sub(top, "pipeline"), filters ? *filters : no_filters);
  if (const toml::table* domains = top.table("domains")) {
    for (const auto& [k, v] : *domains) read_domain(*c, std::string(k.str()), v);
  }
  int first_line = 0;
  for (const auto& [name, policy] : c->domains)
    if (c->first_domain.empty() || policy.line < first_line) {
      c->first_domain = name;
      first_line = policy.line;
    }
  c->first_domain_ascii = dns::a_labels(c->first_domain);
  top.finish();
  if (c->server.listen.empty() && c->server.listen_tls.empty())
    c->server.listen.push_back(*Endpoint::parse("127.0.0.1:2525", 25));
  return c;
}

std::shared_ptr<const Config> load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("(file)", 0, "cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

}  // namespace digue
