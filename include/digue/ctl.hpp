// diguectl subcommands. Each takes the loaded config and the arguments after its name, prints
// to stdout/stderr, and returns the process exit code. Wired in src/bin/diguectl.cpp.
#pragma once

#include <string>
#include <vector>

#include "digue/config.hpp"

namespace digue::ctl {

using Args = std::vector<std::string>;

}  // namespace digue::ctl
