// Config validation cases not covered by the integration tests (check-config in test_spine).
#include <catch2/catch.hpp>

#include "digue/config.hpp"

using namespace digue;

namespace {

std::shared_ptr<const Config> with_downstream(const std::string& target) {
  return parse_config("[domains.\"example.test\"]\ndownstream = [\"" + target + "\"]\n",
                      "test.toml");
}

}  // namespace

TEST_CASE("config: downstream targets use the delivery parser's grammar", "[config]") {
  // Accepted by the queue, so accepted here.
  for (const char* ok : {"maildir", "maildir:/srv/mail", "mx.example.test", "mx.example.test:2525",
                         "smtp:mx.example.test:2525", "lmtp:127.0.0.1:24", "[2001:db8::1]:25",
                         "192.0.2.1"})
    CHECK_NOTHROW(with_downstream(ok));
  // Refused here, with the key and line, instead of being dropped by the queue at delivery
  // time (the mail would wait for queue_lifetime, then bounce).
  for (const char* bad : {"[mx.example.test]", "mx.example.test:0", "maildirx", "lmtp:",
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
