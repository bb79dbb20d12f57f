// diguectl: the admin and offline tool. `diguectl [--config FILE] COMMAND ARGS...`; each
// command is a function in digue::ctl (digue/ctl.hpp) that gets the loaded config.
#include <cstring>
#include <iostream>
#include <string_view>

#include "digue/config.hpp"
#include "digue/ctl.hpp"

namespace {

struct Command {
  std::string_view name;
  int (*run)(const digue::Config&, const digue::ctl::Args&);
};

constexpr Command kCommands[] = {
    {"spf", &digue::ctl::spf},
};

int usage() {
  std::cerr << "usage: diguectl [--config FILE] COMMAND [ARGS...]\ncommands:";
  for (const auto& c : kCommands) std::cerr << " " << c.name;
  std::cerr << "\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = "/etc/digue/digue.toml";
  int i = 1;
  while (i < argc && argv[i][0] == '-' && argv[i][1] == '-') {
    std::string_view opt = argv[i];
    if (opt == "--config" && i + 1 < argc) {
      config_path = argv[i + 1];
      i += 2;
    } else if (opt.starts_with("--config=")) {
      config_path = std::string(opt.substr(9));
      ++i;
    } else {
      return usage();
    }
  }
  if (i >= argc) return usage();
  std::string_view name = argv[i];
  digue::ctl::Args args(argv + i + 1, argv + argc);
  for (const auto& c : kCommands) {
    if (c.name != name) continue;
    std::shared_ptr<const digue::Config> config;
    try {
      config = digue::load_config(config_path);
    } catch (const digue::ConfigError& e) {
      std::cerr << "diguectl: " << config_path << ": " << e.what() << "\n";
      return 1;
    }
    try {
      return c.run(*config, args);
    } catch (const std::exception& e) {
      std::cerr << "diguectl " << name << ": " << e.what() << "\n";
      return 1;
    }
  }
  return usage();
}
