// diguectl subcommands. Each takes the loaded config and the arguments after its name, prints
// to stdout/stderr, and returns the process exit code. Wired in src/bin/diguectl.cpp.
#pragma once

#include <string>
#include <vector>

#include "digue/config.hpp"

namespace digue::ctl {

using Args = std::vector<std::string>;

int scan(const Config& config, const Args& args);   // src/ctl_scan.cpp
int queue(const Config& config, const Args& args);  // src/ctl_queue.cpp

}  // namespace digue::ctl
