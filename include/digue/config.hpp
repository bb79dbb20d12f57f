// Config: the TOML configuration, validated once at load into typed structs.
// Contract: load_config throws ConfigError naming the key and the line on any unknown key,
// wrong type or bad value; nothing else in the daemon reads TOML at run time except filter
// factories, which get their own [filters.NAME] table at pipeline build time.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "digue/filter.hpp"
#include "digue/net.hpp"

namespace digue {

struct ConfigError : std::runtime_error {
  ConfigError(const std::string& key, int line, const std::string& what);
  std::string key;
  int line = 0;
};

// Throws ConfigError for `key` at the node's line.
[[noreturn]] void config_fail(const std::string& key, const toml::node* node,
                              const std::string& what);

struct Endpoint {
  std::string host;  // IP literal (v4 or v6) or a name
  uint16_t port = 0;
  std::string str() const;
  static std::optional<Endpoint> parse(std::string_view text, uint16_t default_port);
};

enum class SlotAction : uint8_t {
  Spam,      // a hit classes the message as spam (the first such slot is the deciding filter)
  Reject,    // a hit refuses the message at SMTP time (5xx)
  Tempfail,  // a hit answers 4xx (try later)
  Score,     // a hit only adds its symbols' scores; spam when the total reaches `required`
  Log,       // record the symbols, no effect on the verdict
};
enum class OnError : uint8_t { Continue, Tempfail };

struct SlotConfig {
  std::string filter;         // registry name
  SlotAction action = SlotAction::Spam;
  std::chrono::milliseconds timeout{5000};
  OnError on_error = OnError::Continue;
  bool dry_run = false;
  bool always = false;        // runs even for domains with filtering = false
  int line = 0;               // where the slot was named in [pipeline] order
  const toml::table* options = nullptr;  // [filters.NAME] without the slot keys above
};

enum class SpamMode : uint8_t { Quarantine, Tag, Junk };
const char* to_string(SpamMode m);
// The seven levels' thresholds, most aggressive first; level 4 is the default 7.5.
inline constexpr double kLevelThresholds[7] = {3.0, 4.5, 6.0, 7.5, 9.0, 10.5, 12.0};

class RecipientList;

// Recipient verification at RCPT time (see include/digue/rcpt_verify.hpp): keys verify_*
// and recipients in the domain's table. The static list, when given, is checked first.
struct RecipientVerification {
  enum class Mode : uint8_t { Off, Callout };
  Mode mode = Mode::Off;                       // verify_recipients = "off" | "callout"
  bool tempfail_accept = false;                // verify_tempfail = "defer" (450) | "accept"
  std::chrono::seconds timeout{10};            // verify_timeout: the whole callout
  std::chrono::seconds positive_ttl{7 * 86400};  // verify_positive_ttl
  std::chrono::seconds negative_ttl{3 * 3600};   // verify_negative_ttl
  std::string list_path;                       // recipients = "/path"; "" = no list
  std::shared_ptr<const RecipientList> list;   // loaded with the config
  // recipient_delimiter: characters that start an address extension ("+" for user+tag, as
  // Postfix's key of that name); "" = none. The list and the cache try the address as given
  // first, then its local part cut at the first of them.
  std::string delimiter;
  // Callouts one client session may cause for this domain's recipients (cache hits are
  // free); past it, unverified recipients get 450 and the client retries them later.
  int max_callouts_per_session = 20;  // max_callouts_per_session
  // And one client (its IPv4 address or IPv6 /64) over all its sessions per callout_window,
  // so that reconnecting does not renew the allowance.
  int max_callouts_per_client = 100;         // max_callouts_per_client
  std::chrono::seconds callout_window{600};  // callout_window
};

struct DomainPolicy {
  std::string name;
  std::vector<std::string> downstream;  // "host[:port]", "lmtp:host:port", "maildir:/path"
  SpamMode spam_mode = SpamMode::Quarantine;
  double required = 7.5;                // score at or above which a message is spam
  int level = 4;                        // 1 (most aggressive) .. 7 (most lenient); sets required
  std::string tag_prefix = "SPAM: ";
  std::set<std::string> disabled_filters;
  bool filtering = true;                // false: only filters marked always-on run
  std::vector<net::Cidr> relay_ips;     // "only these IPs may relay to us" (empty: anyone)
  std::vector<net::Cidr> never_spam_ips;
  std::vector<net::Cidr> always_spam_ips;
  bool greylisting = false;
  bool whitelist_from_header = true;
  std::string tls;                      // downstream TLS policy; "" = [delivery] tls
  RecipientVerification verify;
  int line = 0;                         // where the [domains."x"] table starts
};

struct ServerConfig {
  std::string hostname = "localhost";
  std::vector<Endpoint> listen;
  std::vector<Endpoint> listen_tls;
  std::string tls_cert, tls_key;
  int threads = 0;                            // 0: one per core
  size_t max_message_size = 50u << 20;        // SIZE
  size_t max_recipients = 100;
  size_t max_command_line = 4096;             // longer: 500 5.5.2
  size_t max_data_line = 1u << 20;            // longer DATA lines are passed on intact up to this
  int max_connections = 2000;
  size_t max_data_memory = size_t{1024} << 20;  // DATA held by all sessions; bytes (MB in TOML)
  int max_connections_per_ip = 50;
  int max_bad_commands = 10;
  int max_junk_commands = 100;                 // NOOP/RSET/HELP/VRFY/EXPN/EHLO per message
  std::chrono::seconds max_session_time{3600};  // then 421 at the next command
  std::chrono::seconds greeting_timeout{300};  // RFC 5321 4.5.3.2: 5 minutes per command
  std::chrono::seconds command_timeout{300};
  std::chrono::seconds data_timeout{180};      // per DATA block
  std::chrono::seconds shutdown_grace{30};
};

struct SpoolConfig {
  std::string dir = "./data/spool";
  bool fsync = true;
};

struct StoreConfig {
  std::string dir = "./data/store";
  size_t map_size = size_t{1} << 32;
  // "periodic": MDB_NOSYNC + a sync every sync_interval_ms (counters, greylist, ban and
  // quarantine-index writes never wait for the disk on the data path; an OS crash can lose
  // the last interval, never corrupt the store). "commit": one fdatasync per write.
  std::string sync = "periodic";
  int sync_interval_ms = 1000;
};

struct DnsConfig {
  std::vector<Endpoint> servers;  // empty: /etc/resolv.conf
  std::chrono::milliseconds timeout{2000};
  int tries = 2;
  uint32_t min_ttl = 30, max_ttl = 86400, negative_ttl = 300;
};

struct DeliveryConfig {
  std::chrono::seconds queue_lifetime{5 * 24 * 3600};
  std::chrono::seconds retry_min{60};
  std::chrono::seconds retry_max{3600};
  std::chrono::seconds connect_timeout{30};
  std::chrono::seconds command_timeout{300};
  int max_per_destination = 10;   // concurrent connections per downstream
  int max_attempts_in_flight = 200;
  // Message bytes the deliveries in flight may hold together (each holds about three times
  // its message while it rewrites headers); past it new records wait, without their bytes.
  // One delivery always runs, whatever its size.
  size_t max_bytes_in_flight = size_t{1024} << 20;
  std::string maildir_root = "./data/mail";  // default for "maildir:" without a path
  std::string bounce_relay;                  // "host:port" for DSNs; empty: the sender's MX
  bool starttls = true;                      // use STARTTLS downstream when offered
  // Downstream TLS policy: "none", "may" (default; "none" when starttls = false), "encrypt",
  // "verify" (see delivery::TlsPolicy); a domain's own `tls` overrides it.
  std::string tls = "may";
  std::string lmtp_folder_delimiter;         // "+": Junk via RCPT TO:<local+Junk@domain>
  std::chrono::seconds quarantine_days{30 * 86400};  // quarantine retention
  // A recipient whose quarantine write (file or index) keeps failing this long after the
  // message was accepted is delivered as the "tag" outcome instead: never dropped at
  // queue_lifetime. Default: a day, or half queue_lifetime when that is shorter.
  std::chrono::seconds quarantine_fallback_after{86400};
};

struct LogConfig {
  std::string level = "info";
};

struct Config {
  std::string path;
  ServerConfig server;
  SpoolConfig spool;
  StoreConfig store;
  DnsConfig dns;
  DeliveryConfig delivery;
  LogConfig log;
  std::vector<SlotConfig> pipeline;            // [pipeline] order, with each slot's config
  std::map<std::string, DomainPolicy> domains; // key: lower-case domain
  // A-label (punycode) form -> key in `domains`, for the domains written with U-labels.
  std::map<std::string, std::string> idn_aliases;
  // The first [domains."x"] table of the file (by line), its key in `domains`, and its
  // A-label form; "" when none: where RCPT TO:<postmaster> goes.
  std::string first_domain, first_domain_ascii;
  std::map<std::string, toml::table> filter_options;  // SlotConfig::options point here
  toml::table root;

  // The policy for a recipient domain, or nullptr when we do not accept mail for it. ASCII
  // letters match in any case; a domain with non-ASCII labels matches in its UTF-8 and its
  // A-label form (compared after IDNA mapping).
  const DomainPolicy* domain(std::string_view name) const;
};

std::shared_ptr<const Config> load_config(const std::string& path);
std::shared_ptr<const Config> parse_config(std::string_view text, const std::string& path);

}  // namespace digue
