// Config validation cases not covered by the integration tests (check-config in test_spine).
#include <catch2/catch.hpp>

#include "digue/config.hpp"
#include "digue/pipeline.hpp"

using namespace digue;

namespace {

std::shared_ptr<const Config> with_downstream(const std::string& target) {
  return parse_config("[domains.\"example.test\"]\ndownstream = [\"" + target + "\"]\n",
                      "test.toml");
}

// The config is refused with an error naming key and line.
void check_refused(const std::string& text, const std::string& key, int line) {
  INFO(text);
  try {
    parse_config(text, "t.toml");
    FAIL("accepted");
  } catch (const ConfigError& e) {
    CHECK(e.key == key);
    CHECK(e.line == line);
  }
}

}  // namespace

TEST_CASE("config: downstream targets use the delivery parser's grammar", "[config]") {
  // Accepted by the queue, so accepted here.
  for (const char* ok : {"maildir", "maildir:/srv/mail", "mx.example.test", "mx.example.test:2525",
                         "smtp:mx.example.test:2525", "lmtp:127.0.0.1:24", "[2001:db8::1]:25",
                         "192.0.2.1", "maildir1.corp", "maildirx"})
    CHECK_NOTHROW(with_downstream(ok));
  // Refused here, with the key and line, instead of being dropped by the queue at delivery
  // time (the mail would wait for queue_lifetime, then bounce).
  for (const char* bad : {"[mx.example.test]", "mx.example.test:0", "maildir:", "lmtp:",
                          "host name"}) {
    CHECK_THROWS_AS(with_downstream(bad), ConfigError);
    try {
      with_downstream(bad);
    } catch (const ConfigError& e) {
      CHECK(e.key == "domains.\"example.test\".downstream");
      CHECK(e.line == 2);
    }
  }
}

TEST_CASE("config: bounce_relay uses the delivery parser's grammar", "[config]") {
  CHECK_NOTHROW(parse_config("[delivery]\nbounce_relay = \"smtp:relay.example.test:587\"\n",
                             "t.toml"));
  CHECK_THROWS_AS(parse_config("[delivery]\nbounce_relay = \"[relay.example.test]\"\n", "t.toml"),
                  ConfigError);
}

TEST_CASE("config: a filter's option error names its key and line", "[config]") {
  // The filters read their options when the pipeline is built, from the config's copy of
  // their table: the line must survive it (and the domains' CIDR lists keep theirs).
  std::string text = "[pipeline]\norder = [\"honeypot\"]\n[filters.honeypot]\naction = \"reject\"\n"
                     "traps = [\"t@a.test\"]\n\nbulk_threshold = 0\n[domains.\"a.test\"]\n";
  try {
    Pipeline::build(parse_config(text, "t.toml"));
    FAIL("accepted");
  } catch (const ConfigError& e) {
    CHECK(e.key == "filters.honeypot.bulk_threshold");
    CHECK(e.line == 7);
  }
  check_refused("[domains.\"a.test\"]\n\nnever_spam_ips = [\"192.0.2.0/24\", \"x\"]\n",
                "domains.\"a.test\".never_spam_ips", 3);
}

TEST_CASE("config: durations are at least a second", "[config]") {
  for (const char* key : {"queue_lifetime", "retry_min", "retry_max", "connect_timeout",
                          "command_timeout"})
    check_refused(std::string("[delivery]\n") + key + " = 0\n", std::string("delivery.") + key,
                  2);
  for (const char* key : {"greeting_timeout", "command_timeout", "data_timeout"})
    CHECK_THROWS_AS(parse_config(std::string("[server]\n") + key + " = 0\n", "t.toml"),
                    ConfigError);
  CHECK_NOTHROW(parse_config("[server]\nshutdown_grace = 0\n", "t.toml"));
  CHECK_NOTHROW(parse_config("[delivery]\nretry_min = 1\nretry_max = 1\n", "t.toml"));
}

TEST_CASE("config: retry_min <= retry_max, downstream not empty", "[config]") {
  check_refused("[delivery]\nretry_min = 600\nretry_max = 60\n", "delivery.retry_min", 2);
  // Against the default retry_max (3600 s) as well.
  CHECK_THROWS_AS(parse_config("[delivery]\nretry_min = 7200\n", "t.toml"), ConfigError);
  check_refused("[domains.\"example.test\"]\ndownstream = []\n",
                "domains.\"example.test\".downstream", 2);
}

TEST_CASE("config: hosted domain lookup", "[config]") {
  auto c = parse_config("[domains.\"Example.TEST\"]\n[domains.\"b\xc3\xbc" "cher.test\"]\n",
                        "t.toml");
  // ASCII domains match whatever their case; U-labels byte for byte (ASCII lower-cased).
  CHECK(c->domain("example.test"));
  CHECK(c->domain("EXAMPLE.test"));
  CHECK(c->domain("b\xc3\xbc" "cher.test"));
  CHECK(c->domain("B\xc3\xbc" "CHER.TEST"));
  CHECK(!c->domain("b\xc3\xa4" "cher.test"));
  // The same domain in A-label form, as clients without SMTPUTF8 send it, and the reverse.
  CHECK(c->domain("xn--bcher-kva.test") == c->domain("b\xc3\xbc" "cher.test"));
  CHECK(c->domain("XN--BCHER-KVA.TEST"));
  auto a = parse_config("[domains.\"xn--mnchen-3ya.test\"]\n", "t.toml");
  CHECK(a->domain("m\xc3\xbc" "nchen.test"));
  CHECK(!a->domain("munchen.test"));
  // Both spellings of one domain are one domain.
  CHECK_THROWS_AS(parse_config("[domains.\"xn--bcher-kva.test\"]\n"
                               "[domains.\"b\xc3\xbc" "cher.test\"]\n",
                               "t.toml"),
                  ConfigError);
}

TEST_CASE("config: downstream TLS policy", "[config]") {
  auto c = parse_config("[delivery]\ntls = \"encrypt\"\n[domains.\"a.test\"]\n"
                        "[domains.\"b.test\"]\ntls = \"verify\"\n",
                        "t.toml");
  CHECK(c->delivery.tls == "encrypt");
  CHECK(c->domain("a.test")->tls.empty());  // inherits [delivery]
  CHECK(c->domain("b.test")->tls == "verify");
  // starttls = false is the old spelling of "none".
  auto off = parse_config("[delivery]\nstarttls = false\n", "t.toml");
  CHECK(off->delivery.tls == "none");
  CHECK(parse_config("[delivery]\ntls = \"none\"\n", "t.toml")->delivery.starttls == false);
  check_refused("[delivery]\ntls = \"required\"\n", "delivery.tls", 2);
  check_refused("[domains.\"a.test\"]\ntls = \"strict\"\n", "domains.\"a.test\".tls", 2);
}

TEST_CASE("config: session resource limits", "[config]") {
  auto c = parse_config("[server]\nmax_data_memory = 64\nmax_junk_commands = 20\n"
                        "max_session_time = 600\n",
                        "t.toml");
  CHECK(c->server.max_data_memory == size_t{64} << 20);
  CHECK(c->server.max_junk_commands == 20);
  CHECK(c->server.max_session_time == std::chrono::seconds(600));
  auto d = parse_config("", "t.toml");
  CHECK(d->server.max_data_memory == size_t{1024} << 20);
  CHECK(d->server.max_junk_commands == 100);
  CHECK(d->server.max_session_time == std::chrono::seconds(3600));
  check_refused("[server]\nmax_data_memory = 0\n", "server.max_data_memory", 2);
  check_refused("[server]\nmax_junk_commands = 0\n", "server.max_junk_commands", 2);
  check_refused("[server]\n\nmax_session_time = 0\n", "server.max_session_time", 3);
  // Smaller than one message of the largest size: that message would be tempfailed for ever.
  check_refused("[server]\nmax_message_size = 10485760\nmax_data_memory = 8\n",
                "server.max_data_memory", 3);
  // Equal is not enough: a read reserves room for what it can decode to ahead of it.
  check_refused("[server]\nmax_message_size = 10485760\nmax_data_memory = 10\n",
                "server.max_data_memory", 3);
}

TEST_CASE("config: quarantine_fallback_after", "[config]") {
  // A day by default, or half queue_lifetime when that is shorter: the fallback must come
  // before the queue gives up on the message.
  CHECK(parse_config("", "t.toml")->delivery.quarantine_fallback_after ==
        std::chrono::seconds(86400));
  CHECK(parse_config("[delivery]\nqueue_lifetime = 3600\n", "t.toml")
            ->delivery.quarantine_fallback_after == std::chrono::seconds(1800));
  CHECK(parse_config("[delivery]\nqueue_lifetime = 1\n", "t.toml")
            ->delivery.quarantine_fallback_after == std::chrono::seconds(1));
  CHECK(parse_config("[delivery]\nquarantine_fallback_after = 7200\n", "t.toml")
            ->delivery.quarantine_fallback_after == std::chrono::seconds(7200));
  check_refused("[delivery]\nquarantine_fallback_after = 0\n", "delivery.quarantine_fallback_after",
                2);
  check_refused("[delivery]\nqueue_lifetime = 3600\n\nquarantine_fallback_after = 7200\n",
                "delivery.quarantine_fallback_after", 4);
  // Equal to the lifetime (or just under) left the tagged copy one attempt before expiry.
  check_refused("[delivery]\nqueue_lifetime = 100\nquarantine_fallback_after = 100\n",
                "delivery.quarantine_fallback_after", 3);
  CHECK(parse_config("[delivery]\nqueue_lifetime = 100\nquarantine_fallback_after = 50\n", "t.toml")
            ->delivery.quarantine_fallback_after == std::chrono::seconds(50));
}
