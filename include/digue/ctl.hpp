// diguectl subcommands. Each takes the loaded config and the arguments after its name, prints
// to stdout/stderr, and returns the process exit code. Wired in src/bin/diguectl.cpp.
#pragma once

#include <string>
#include <vector>

#include "digue/config.hpp"

namespace digue::ctl {

using Args = std::vector<std::string>;

// `diguectl bayes learn --spam|--ham PATH... | unlearn PATH... | classify MESSAGE... [--json]
// [--threshold S] | stats | train | dump [FILE] | restore [--merge|--replace] [FILE] |
// expire [--max-tokens N] [--stale-days D] [--max-seen N] [--seen-days D]`. PATH: a message
// file, an mbox (split on envelope lines "From SENDER DATE"), a Maildir (cur/ and new/; its
// Maildir++ folders such as .Junk are named, not read), or a directory walked recursively. A message is learnt once per bayes::message_identity, so the
// copy in a mailbox is the message learnt at SMTP time. The model is the LMDB store at
// [store] dir.
int bayes(const Config& config, const Args& args);

int scan(const Config& config, const Args& args);   // src/ctl_scan.cpp
int queue(const Config& config, const Args& args);  // src/ctl_queue.cpp
int quarantine(const Config& config, const Args& args);  // src/ctl_quarantine.cpp
// `verify list [DOMAIN] | flush [ADDRESS|@DOMAIN]`: the recipient verification cache in the
// store. Exit status: 0; 1 when the ADDRESS to flush is not cached; 2 on bad usage.
int verify(const Config& config, const Args& args);  // src/ctl_verify.cpp
// `spf CLIENT_IP MAIL_FROM HELO`: prints the RFC 7208 result word on the first line, then a
// detail line (the explanation for a fail with exp=, else a description) and the
// Received-SPF header. MAIL_FROM "" or "<>" is the null sender (the HELO identity is checked).
// `spf --batch FILE` ("-": stdin): one check per line "IP<TAB>MAIL_FROM<TAB>HELO", one JSON
// object per line out ({"result", "explanation", "problem", "mechanism", "header", ...}),
// with one resolver (and its cache) for the whole batch. Uses the config's [dns] section.
// Exit status: 0 when every check ran, 2 on bad usage or input.
int spf(const Config& config, const Args& args);

}  // namespace digue::ctl
