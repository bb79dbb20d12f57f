// Spool records for the unit tests.
#pragma once

#include "digue/spool.hpp"

namespace digue::test {

// What `diguectl quarantine release` writes into pickup/: s@example.org to u@example.test.
inline SpoolRecord release_record() {
  SpoolRecord rec;
  rec.id = Spool::new_id();
  rec.envelope.mail_from = {"s", "example.org"};
  RcptState rs;
  rs.address = {"u", "example.test"};
  rs.action = "release";
  rec.rcpts.push_back(rs);
  return rec;
}

}  // namespace digue::test
