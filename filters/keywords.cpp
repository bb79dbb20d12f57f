#include "filters/keywords.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <map>
#include <memory>

#include "digue/message.hpp"
#include "digue/options.hpp"
#include "digue/rule_file.hpp"
#include "digue/text.hpp"

namespace digue::filters {
namespace {

struct CodeFree {
  void operator()(pcre2_code* c) const { pcre2_code_free(c); }
};
struct ContextFree {
  void operator()(pcre2_match_context* c) const { pcre2_match_context_free(c); }
};
struct MatchDataFree {
  void operator()(pcre2_match_data* d) const { pcre2_match_data_free(d); }
};

enum class Target : uint8_t { Header, Headers, Subject, Body, Raw };

struct Rule {
  std::string id;
  Target target = Target::Body;
  std::string header;  // Target::Header: the name, compared case-insensitively
  std::unique_ptr<pcre2_code, CodeFree> code;
};

std::vector<Rule> load_rules(const std::string& path, const std::string& key,
                             const toml::node* at) {
  std::vector<Rule> rules;
  for (const RuleLine& line : read_rule_lines(path, key, at)) {
    auto fail = [&](const std::string& what) {
      config_fail(key, at, path + ":" + std::to_string(line.number) + ": " + what);
    };
    std::string_view t = line.text;
    size_t sp = t.find_first_of(" \t");
    if (sp == std::string_view::npos) fail("expected `id target /regex/flags`");
    Rule r;
    r.id = std::string(t.substr(0, sp));
    t = t.substr(t.find_first_not_of(" \t", sp));
    sp = t.find_first_of(" \t");
    if (sp == std::string_view::npos) fail("expected `id target /regex/flags`");
    std::string_view target = t.substr(0, sp);
    t = t.substr(t.find_first_not_of(" \t", sp));
    if (target.starts_with("header:") && target.size() > 7) {
      r.target = Target::Header;
      r.header = std::string(target.substr(7));
    } else if (target == "headers") {
      r.target = Target::Headers;
    } else if (target == "subject") {
      r.target = Target::Subject;
    } else if (target == "body") {
      r.target = Target::Body;
    } else if (target == "raw") {
      r.target = Target::Raw;
    } else {
      fail("unknown target '" + std::string(target) + "' (header:NAME, headers, subject, body, raw)");
    }
    size_t last = t.rfind('/');
    if (t.size() < 2 || t.front() != '/' || last == 0) fail("the regex must be written /regex/flags");
    std::string_view pattern = t.substr(1, last - 1);
    // Always UTF-8; invalid UTF-8 in the subject (raw bytes) is matched, not rejected.
    uint32_t options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
    for (char f : t.substr(last + 1)) {
      switch (f) {
        case 'i': options |= PCRE2_CASELESS; break;
        case 'm': options |= PCRE2_MULTILINE; break;
        case 's': options |= PCRE2_DOTALL; break;
        case 'x': options |= PCRE2_EXTENDED; break;
        case 'u': options |= PCRE2_UCP; break;
        default: fail(std::string("unknown regex flag '") + f + "'");
      }
    }
    int err = 0;
    PCRE2_SIZE err_off = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     options, &err, &err_off, nullptr);
    if (!code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      fail("bad regex in rule " + r.id + ": " + reinterpret_cast<const char*>(msg) +
           " at offset " + std::to_string(err_off));
    }
    // JIT is an optimisation: without it (unsupported CPU) the interpreter is used.
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    r.code.reset(code);
    rules.push_back(std::move(r));
  }
  return rules;
}

class Keywords final : public Filter {
 public:
  Keywords(std::vector<Rule> platform, std::map<std::string, std::vector<Rule>> domains,
           double score, double domain_score, bool all_matches, uint32_t match_limit,
           uint32_t depth_limit, size_t raw_max)
      : platform_(std::move(platform)),
        domains_(std::move(domains)),
        score_(score),
        domain_score_(domain_score),
        all_matches_(all_matches),
        raw_max_(raw_max),
        context_(pcre2_match_context_create(nullptr)) {
    pcre2_set_match_limit(context_.get(), match_limit);
    pcre2_set_depth_limit(context_.get(), depth_limit);
  }

  std::string_view name() const override { return "keywords"; }
  Phase phase() const override { return Phase::Data; }
  bool per_domain() const override { return !domains_.empty(); }

  boost::asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
    if (!ctx.message) co_return FilterResult::error("keywords: no message");
    const mime::Parsed& facts = ctx.message->facts();
    Run run{facts, ctx.message->raw(), {}, false,
            std::unique_ptr<pcre2_match_data, MatchDataFree>(pcre2_match_data_create(1, nullptr)),
            {}};
    FilterResult result;
    std::vector<std::string> hits = match(run, platform_);
    if (!hits.empty()) add_hit(result, "KEYWORDS", score_, hits);
    if (hits.empty() || all_matches_) {
      if (auto it = domains_.find(ctx.domain); it != domains_.end()) {
        std::vector<std::string> dh = match(run, it->second);
        if (!dh.empty()) add_hit(result, "KEYWORDS_DOMAIN", domain_score_, dh);
      }
    }
    if (!run.limited.empty()) result.symbols.push_back({"KEYWORDS_LIMIT", 0.0, text::join(run.limited, ", ")});
    co_return result;
  }

 private:
  struct Run {
    const mime::Parsed& facts;
    const std::string& raw;
    std::string headers;  // built on first use
    bool headers_built;
    std::unique_ptr<pcre2_match_data, MatchDataFree> md;
    std::vector<std::string> limited;
  };

  static void add_hit(FilterResult& r, const char* symbol, double score,
                      const std::vector<std::string>& hits) {
    r.verdict = FilterResult::Verdict::Hit;
    r.symbols.push_back({symbol, score, text::join(hits, ", ")});
    if (r.reason.empty()) r.reason = "keyword rule " + hits.front();
  }

  // Returns 1 on a match, 0 on none, -1 when a limit stopped the match.
  int match_one(Run& run, const Rule& rule, std::string_view text) const {
    int rc = pcre2_match(rule.code.get(), reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(),
                         0, 0, run.md.get(), context_.get());
    if (rc >= 0) return 1;
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    return -1;  // match/depth/heap/JIT stack limit: bounded work, reported, not a hit
  }

  std::vector<std::string> match(Run& run, const std::vector<Rule>& rules) const {
    std::vector<std::string> hits;
    for (const Rule& rule : rules) {
      int rc = 0;
      const char* target = "body";
      switch (rule.target) {
        case Target::Header:
          target = "header";
          for (const auto& h : run.facts.headers()) {
            if (!text::iequals(h.name, rule.header)) continue;
            rc = match_one(run, rule, h.value);
            if (rc != 0) break;
          }
          break;
        case Target::Headers:
          target = "headers";
          if (!run.headers_built) {
            for (const auto& h : run.facts.headers())
              run.headers.append(h.name).append(": ").append(h.value).push_back('\n');
            run.headers_built = true;
          }
          rc = match_one(run, rule, run.headers);
          break;
        case Target::Subject:
          target = "subject";
          rc = match_one(run, rule, run.facts.subject);
          break;
        case Target::Body:
          rc = match_one(run, rule, run.facts.text);
          break;
        case Target::Raw:
          target = "raw";
          rc = match_one(run, rule, std::string_view(run.raw).substr(0, raw_max_));
          break;
      }
      if (rc < 0) run.limited.push_back(rule.id);
      if (rc == 1) {
        hits.push_back(rule.id + " (" + target + (rule.target == Target::Header ? ":" + rule.header : "") + ")");
        if (!all_matches_) break;
      }
    }
    return hits;
  }

  std::vector<Rule> platform_;
  std::map<std::string, std::vector<Rule>> domains_;
  double score_, domain_score_;
  bool all_matches_;
  size_t raw_max_;
  std::unique_ptr<pcre2_match_context, ContextFree> context_;
};

}  // namespace

FilterPtr make_keywords(const FilterBuildContext& b) {
  OptionReader r(b.options, "filters.keywords");
  std::vector<std::string> files = r.strings("rules", {"rules/keywords.rules"});
  double score = r.number("score", 5.0, -100, 100);
  double domain_score = r.number("domain_score", 5.0, -100, 100);
  bool all = r.boolean("all_matches", false);
  auto match_limit = static_cast<uint32_t>(r.integer("match_limit", 100000, 100, 100000000));
  auto depth_limit = static_cast<uint32_t>(r.integer("depth_limit", 10000, 10, 10000000));
  auto raw_max = static_cast<size_t>(r.integer("raw_max_bytes", 1 << 20, 1024, int64_t{1} << 30));
  const toml::node* rules_node = b.options.get("rules");
  std::vector<Rule> platform;
  for (const auto& f : files) {
    auto rules = load_rules(resolve_config_path(b.config, f), r.path("rules"), rules_node);
    for (auto& x : rules) platform.push_back(std::move(x));
  }
  std::map<std::string, std::vector<Rule>> domains;
  if (const toml::table* t = r.table("domains")) {
    for (const auto& [k, v] : *t) {
      std::string key = r.path("domains") + "." + std::string(k.str());
      auto path = v.value<std::string>();
      if (!path || !v.is_string()) config_fail(key, &v, "expected a file path");
      std::string domain = text::lower(k.str());
      domains[domain] = load_rules(resolve_config_path(b.config, *path), key, &v);
    }
  }
  r.finish();
  return std::make_shared<Keywords>(std::move(platform), std::move(domains), score, domain_score,
                                    all, match_limit, depth_limit, raw_max);
}

}  // namespace digue::filters
