// diguectl: the admin and offline tool.
//   diguectl --config FILE check-config | print-pipeline
//   diguectl --config FILE scan MESSAGE.eml [--json] [--client-ip IP] [--helo NAME]
//                                             [--from ADDR] [--rcpt ADDR]
//   diguectl --config FILE spf CLIENT_IP MAIL_FROM HELO
//   diguectl --config FILE bayes learn|classify|unlearn|stats|dump|restore ...
//   diguectl --config FILE queue list
//   diguectl --config FILE quarantine list [DOMAIN] | show ID | delete ID | release ID |
//                                     reindex
//   diguectl --config FILE verify list [DOMAIN] | flush [ADDRESS|@DOMAIN]
#include <iostream>

#include "digue/ctl.hpp"
#include "digue/pipeline.hpp"

using namespace digue;

namespace {

struct Command {
  const char* name;
  int (*run)(const Config&, const ctl::Args&);
  const char* help;
};

int check_config(const Config& c, const ctl::Args&) {
  auto p = Pipeline::build(std::make_shared<Config>(c));
  std::cout << "config OK: " << c.path << "\n";
  return 0;
}

int print_pipeline(const Config& c, const ctl::Args&) {
  auto copy = std::make_shared<Config>(c);
  for (auto& slot : copy->pipeline) slot.options = &copy->filter_options[slot.filter];
  std::cout << Pipeline::build(copy)->describe();
  return 0;
}

const Command kCommands[] = {
    {"check-config", &check_config, "validate the config"},
    {"print-pipeline", &print_pipeline, "print the effective filter order"},
    {"scan", &ctl::scan, "run the data-phase pipeline on a message file"},
    {"queue", &ctl::queue, "list the spooled messages"},
    {"quarantine", &ctl::quarantine,
     "list [DOMAIN] | show ID | delete ID | release ID | reindex"},
    {"verify", &ctl::verify,
     "recipient verification cache: list [DOMAIN] | flush [ADDRESS|@DOMAIN]"},
    {"bayes", &ctl::bayes, "learn, classify and maintain the Bayes model"},
    {"spf", &ctl::spf, "SPF check: CLIENT_IP MAIL_FROM HELO (or --batch FILE)"},
};

void usage() {
  std::cerr << "usage: diguectl [--config FILE] COMMAND [ARGS...]\ncommands:\n";
  for (const auto& c : kCommands) std::cerr << "  " << c.name << ": " << c.help << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = "/etc/digue/digue.toml";
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--config" || a == "-c") && i + 1 < argc) config_path = argv[++i];
    else if (a.rfind("--config=", 0) == 0) config_path = a.substr(9);
    else break;
  }
  if (i >= argc) {
    usage();
    return 2;
  }
  std::string name = argv[i++];
  ctl::Args args(argv + i, argv + argc);
  for (const auto& c : kCommands) {
    if (name != c.name) continue;
    try {
      auto config = load_config(config_path);
      return c.run(*config, args);
    } catch (const ConfigError& e) {
      std::cerr << "diguectl: config error: " << config_path << ":" << e.line << ": " << e.key
                << ": " << e.what() << "\n";
      return 1;
    } catch (const std::exception& e) {
      std::cerr << "diguectl: " << name << ": " << e.what() << "\n";
      return 1;
    }
  }
  usage();
  return 2;
}
