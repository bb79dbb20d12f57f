// ip_complaints — the operator's list of IPs blacklisted after recipients' complaints: one
// CIDR (or bare address) per line in a plain file, '#' starts a comment (whole line or after
// the address, where it is the listing's reason, shown as evidence).
// Phase: connect. Symbols: IP_COMPLAINT (hit; evidence "<ip> in <cidr> (file:line)
// [reason]"). Options ([filters.ip_complaints]): file ("rules/ip_complaints.txt"; a relative
// path is looked up next to the config file, then in the working directory, as keywords and
// sender_complaints do), score (10).
// The file is read when the pipeline is built: at start and on each SIGHUP reload, never on
// the data path. A missing file or a bad line is a ConfigError naming filters.ip_complaints
// .file and the file's line, so a reload with a broken list keeps the running pipeline.
// Dependencies: none at run time. Failure: cannot fail; an unparsable client IP matches
// nothing. Untrusted input: the list is operator input (validated at load); the client IP.
#pragma once

#include "digue/filter_registry.hpp"

namespace digue::filters {

FilterPtr make_ip_complaints(const FilterBuildContext& b);

}  // namespace digue::filters
