// Pipeline build and evaluation; see include/digue/pipeline.hpp.
#include "digue/pipeline.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "digue/filter_registry.hpp"
#include "digue/options.hpp"
#include "digue/text.hpp"

namespace asio = boost::asio;

namespace digue {

const char* to_string(Phase p) {
  switch (p) {
    case Phase::Connect: return "connect";
    case Phase::Helo: return "helo";
    case Phase::Mail: return "mail";
    case Phase::Rcpt: return "rcpt";
    case Phase::Data: return "data";
  }
  return "?";
}

const char* to_string(Decision d) {
  switch (d) {
    case Decision::Accept: return "accept";
    case Decision::Spam: return "spam";
    case Decision::Reject: return "reject";
    case Decision::Tempfail: return "tempfail";
  }
  return "?";
}

namespace {
const char* action_name(SlotAction a) {
  switch (a) {
    case SlotAction::Spam: return "spam";
    case SlotAction::Reject: return "reject";
    case SlotAction::Tempfail: return "tempfail";
    case SlotAction::Score: return "score";
    case SlotAction::Log: return "log";
  }
  return "?";
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}
}  // namespace

void RecipientMerge::join(std::vector<Joined>& into, const std::vector<Symbol>& symbols) {
  constexpr size_t kMaxEvidence = 600;  // a message may have hundreds of recipients
  for (const Symbol& s : symbols) {
    auto it = std::find_if(into.begin(), into.end(),
                           [&](const Joined& j) { return j.symbol.name == s.name; });
    if (it == into.end()) {
      into.push_back({s, 0});
    } else if (it->symbol.evidence != s.evidence) {
      if (it->symbol.evidence.size() + s.evidence.size() > kMaxEvidence)
        ++it->omitted;
      else
        it->symbol.evidence += "; " + s.evidence;
    }
  }
}

std::vector<Symbol> RecipientMerge::render(const std::vector<Joined>& a,
                                           const std::vector<Joined>& b) {
  std::vector<Symbol> out;
  for (const auto* list : {&a, &b})
    for (const Joined& j : *list) {
      if (std::any_of(out.begin(), out.end(),
                      [&](const Symbol& o) { return o.name == j.symbol.name; }))
        continue;
      out.push_back(j.symbol);
      if (j.omitted)
        out.back().evidence += "; and " + std::to_string(j.omitted) + " more recipients";
    }
  return out;
}

void RecipientMerge::add(const FilterResult& r) {
  if (++count_ == 1) only_ = r;
  if (r.status != FilterResult::Status::Ok) {
    if (!error_) error_ = r;
    return;
  }
  switch (r.verdict) {
    case FilterResult::Verdict::Hit:
      if (!hit_) hit_reason_ = r.reason;
      hit_ = true;
      join(hit_symbols_, r.symbols);
      break;
    case FilterResult::Verdict::Pass:
      if (passes_++ == 0) pass_reason_ = r.reason;
      join(pass_symbols_, r.symbols);
      break;
    case FilterResult::Verdict::None:
      if (note_reason_.empty()) note_reason_ = r.reason;
      join(notes_, r.symbols);
      break;
  }
}

FilterResult RecipientMerge::result() const {
  if (count_ == 1) return *only_;
  FilterResult out;
  if (hit_) {
    out.verdict = FilterResult::Verdict::Hit;
    out.reason = hit_reason_;
    out.symbols = render(hit_symbols_, notes_);
  } else if (error_) {
    out = *error_;
  } else if (count_ > 0 && passes_ == count_) {
    out.verdict = FilterResult::Verdict::Pass;
    out.reason = pass_reason_;
    out.symbols = render(pass_symbols_, {});
  } else {
    out.reason = note_reason_;
    out.symbols = render(notes_, {});
  }
  return out;
}

std::shared_ptr<const Pipeline> Pipeline::build(std::shared_ptr<const Config> config) {
  auto p = std::make_shared<Pipeline>();
  p->config_ = config;
  for (const SlotConfig& sc : config->pipeline) {
    const FilterInfo* info = find_filter(sc.filter);
    if (!info) throw ConfigError("pipeline.order", sc.line, "unknown filter '" + sc.filter + "'");
    FilterBuildContext b{*config, sc, *sc.options};
    Slot slot;
    slot.config = sc;
    slot.filter = info->make(b);
    slot.phase = slot.filter->phase();
    p->slots_.push_back(std::move(slot));
  }
  return p;
}

std::string Pipeline::describe() const {
  std::string out;
  int i = 1;
  for (const Slot& s : slots_) {
    out += fmt::format("{:2}. {:<20} phase={:<7} action={:<8} timeout={}ms on_error={}{}{}{}\n",
                       i++, s.config.filter, to_string(s.phase), action_name(s.config.action),
                       s.config.timeout.count(),
                       s.config.on_error == OnError::Continue ? "continue" : "tempfail",
                       s.filter->per_domain() ? " per-domain" : "",
                       s.config.dry_run ? " dry-run" : "", s.config.always ? " always" : "");
  }
  if (slots_.empty()) out = "(empty pipeline: every message is accepted)\n";
  return out;
}

std::string Verdict::tests() const {
  std::string out;
  for (const auto& s : symbols) {
    if (!s.counted) continue;
    if (!out.empty()) out += ',';
    out += s.symbol.name;
  }
  return out.empty() ? "none" : out;
}

PipelineRun::PipelineRun(std::shared_ptr<const Pipeline> pipeline, Services& services,
                         asio::any_io_executor executor)
    : pipeline_(std::move(pipeline)), services_(services), executor_(std::move(executor)) {}

void PipelineRun::reset() {
  // Connect- and helo-phase results depend only on the connection: keep them.
  for (auto it = cache_.begin(); it != cache_.end();) {
    if (pipeline_->slots()[it->first.first].phase > Phase::Helo)
      it = cache_.erase(it);
    else
      ++it;
  }
  rcpt_cache_.clear();
  rcpt_merged_.clear();
  message_.reset();
}

namespace {

// Runs hook(filter) for every slot that is not a dry run; a hook that throws is logged.
template <class Hook>
void each_hook(const std::vector<Slot>& slots, const char* name, const Hook& hook) {
  for (const Slot& slot : slots) {
    if (slot.config.dry_run) continue;
    try {
      hook(*slot.filter);
    } catch (const std::exception& e) {
      spdlog::warn("filter={} {} failed: {}", slot.config.filter, name, e.what());
    }
  }
}

}  // namespace

void PipelineRun::after_verdict(const DomainPolicy& policy, const Verdict& verdict) {
  if (!envelope_) return;
  FilterContext ctx{*envelope_, message_.get(), policy.name, policy, services_, executor_};
  each_hook(pipeline_->slots(), "after_verdict",
            [&](const Filter& f) { f.after_verdict(ctx, verdict); });
}

void PipelineRun::after_message(const DomainPolicy& policy,
                                const std::vector<const Verdict*>& verdicts) {
  if (!envelope_ || verdicts.empty()) return;
  FilterContext ctx{*envelope_, message_.get(), policy.name, policy, services_, executor_};
  each_hook(pipeline_->slots(), "after_message",
            [&](const Filter& f) { f.after_message(ctx, verdicts); });
}

void PipelineRun::forget_all(Phase phase) {
  for (auto it = cache_.begin(); it != cache_.end();) {
    if (pipeline_->slots()[it->first.first].phase == phase)
      it = cache_.erase(it);
    else
      ++it;
  }
}

void PipelineRun::forget_rcpt(const Address& rcpt) {
  rcpt_merged_.clear();  // rebuilt from the cached per-recipient results on the next evaluate
  std::string key = text::lower(rcpt.str());
  for (auto it = rcpt_cache_.begin(); it != rcpt_cache_.end();) {
    if (it->first.second == key)
      it = rcpt_cache_.erase(it);
    else
      ++it;
  }
}

asio::awaitable<PipelineRun::Cached> PipelineRun::run_rcpt_slot(size_t index,
                                                                const DomainPolicy& policy) {
  const Slot& slot = pipeline_->slots()[index];
  auto env = envelope_;  // kept alive across the awaits below
  Cached out;
  if (!env) co_return out;
  // Recipients are only ever appended to the envelope (a refused one is taken out again by
  // forget_rcpt, which drops the merges): merge the ones not merged yet.
  RcptMerged& m = rcpt_merged_[{index, slot.filter->per_domain() ? policy.name : std::string()}];
  if (m.consumed > env->rcpts.size()) m = RcptMerged{};
  for (size_t i = m.consumed; i < env->rcpts.size(); ++i) {
    const Address& r = env->rcpts[i];
    m.consumed = i + 1;
    if (slot.filter->per_domain() && !text::iequals(r.domain, policy.name)) continue;
    std::string key = text::lower(r.str());
    if (!m.keys.insert(key).second) continue;  // the same address twice
    auto cache_key = std::make_pair(index, std::move(key));
    auto it = rcpt_cache_.find(cache_key);
    if (it == rcpt_cache_.end()) {
      const Address* rp = &r;
      Cached c = co_await run_slot(slot, policy, rp);
      it = rcpt_cache_.insert_or_assign(cache_key, std::move(c)).first;
    }
    m.elapsed += it->second.elapsed;
    m.merge.add(it->second.result);
  }
  out.result = m.merge.result();
  out.elapsed = m.elapsed;
  co_return out;
}

asio::awaitable<PipelineRun::Cached> PipelineRun::run_slot(const Slot& slot,
                                                           const DomainPolicy& policy,
                                                           const Address* rcpt) {
  // The filter runs in its own coroutine so that a deadline can abandon it even when the
  // operation it awaits does not support cancellation. Everything it touches is kept alive
  // by the shared state.
  struct State {
    explicit State(asio::any_io_executor ex) : timer(ex) {}
    asio::steady_timer timer;
    std::optional<FilterResult> result;
    std::shared_ptr<const Envelope> envelope;
    std::shared_ptr<const Message> message;
    std::shared_ptr<const Config> config;  // owns `policy`
    FilterPtr filter;
    std::optional<Address> rcpt;
  };
  auto st = std::make_shared<State>(executor_);
  st->envelope = envelope_;
  st->message = message_;
  st->config = pipeline_->config_ptr();
  st->filter = slot.filter;
  if (rcpt) st->rcpt = *rcpt;
  st->timer.expires_after(slot.config.timeout);
  const DomainPolicy* pol = &policy;
  Services* services = &services_;
  auto start = std::chrono::steady_clock::now();
  slot.stats->total++;
  asio::co_spawn(
      executor_,
      [st, pol, services, ex = executor_]() -> asio::awaitable<void> {
        FilterContext ctx{*st->envelope, st->message.get(), pol->name, *pol, *services, ex};
        if (st->rcpt) ctx.rcpt = &*st->rcpt;
        try {
          st->result = co_await st->filter->check(ctx);
        } catch (const std::exception& e) {
          st->result = FilterResult::error(std::string("exception: ") + e.what());
        }
        st->timer.cancel();
      },
      asio::detached);
  // The filter may have finished inside co_spawn already (then the cancel found no waiter).
  // Filter and waiter share one single-threaded executor, so this check cannot race.
  if (!st->result) {
    boost::system::error_code ec;
    co_await st->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  Cached c;
  c.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);
  if (st->result) {
    c.result = std::move(*st->result);
  } else {
    c.result.status = FilterResult::Status::Timeout;
    c.result.reason = "no answer within " + std::to_string(slot.config.timeout.count()) + " ms";
  }
  switch (c.result.status) {
    case FilterResult::Status::Ok:
      if (c.result.verdict == FilterResult::Verdict::Hit) slot.stats->hit++;
      if (c.result.verdict == FilterResult::Verdict::Pass) slot.stats->pass++;
      break;
    case FilterResult::Status::Error: slot.stats->error++; break;
    case FilterResult::Status::Timeout: slot.stats->timeout++; break;
  }
  co_return c;
}

asio::awaitable<Verdict> PipelineRun::evaluate(const DomainPolicy& policy, Phase upto) {
  Verdict v;
  v.required = policy.required;
  v.complete = upto == Phase::Data;
  const auto& slots = pipeline_->slots();
  std::optional<size_t> top;  // index of the strongest counted hit symbol
  for (size_t i = 0; i < slots.size(); ++i) {
    const Slot& slot = slots[i];
    if (slot.phase > upto) continue;
    if (!slot.config.always && (!policy.filtering || policy.disabled_filters.count(slot.config.filter)))
      continue;
    if (slot.phase == Phase::Data && !message_) continue;
    Cached merged;
    const Cached* cached = &merged;
    if (slot.phase == Phase::Rcpt) {
      merged = co_await run_rcpt_slot(i, policy);
    } else {
      auto key = std::make_pair(i, slot.filter->per_domain() ? policy.name : std::string());
      auto it = cache_.find(key);
      if (it == cache_.end()) {
        Cached c = co_await run_slot(slot, policy);
        it = cache_.emplace(key, std::move(c)).first;
      }
      cached = &it->second;
    }
    const Cached& c = *cached;
    const FilterResult& r = c.result;
    const std::string& fname = slot.config.filter;
    v.timings.emplace_back(fname, c.elapsed);

    // Recorded for errors too: an SPF temperror is a result the message should carry.
    if (!r.trace.empty() && !slot.config.dry_run)
      v.traces.push_back({fname, r.trace, r.trace_field});
    if (r.status != FilterResult::Status::Ok) {
      bool timeout = r.status == FilterResult::Status::Timeout;
      std::string sym = upper(fname) + (timeout ? "_TIMEOUT" : "_FAIL");
      spdlog::warn("filter={} status={} reason=\"{}\" on_error={}", fname,
                   timeout ? "timeout" : "error", r.reason,
                   slot.config.on_error == OnError::Continue ? "continue" : "tempfail");
      // The filter's own symbols say what failed (RBL_REFUSED: the zones); they score nothing.
      if (r.symbols.empty()) v.symbols.push_back({{sym, 0.0, r.reason}, fname, true});
      for (const Symbol& s : r.symbols)
        v.symbols.push_back({{s.name, 0.0, s.evidence}, fname, true});
      if (slot.config.on_error == OnError::Tempfail && !slot.config.dry_run) {
        v.decision = Decision::Tempfail;
        v.deciding_filter = fname;
        v.reason = fname + " unavailable, try again later";
        co_return v;
      }
      continue;
    }

    bool counted = !slot.config.dry_run && slot.config.action != SlotAction::Log;
    for (const Symbol& s : r.symbols) {
      v.symbols.push_back({s, fname, counted});
      if (counted) {
        v.score += s.score;
        if (r.verdict == FilterResult::Verdict::Hit &&
            (!top || s.score > v.symbols[*top].symbol.score))
          top = v.symbols.size() - 1;
      }
    }
    if (r.verdict == FilterResult::Verdict::None) continue;
    if (slot.config.dry_run) {
      v.dry_run.push_back(fmt::format(
          "{} would have {}: {}", fname,
          r.verdict == FilterResult::Verdict::Pass ? "whitelisted"
                                                   : std::string("applied ") +
                                                         action_name(slot.config.action),
          r.symbols.empty() ? r.reason : r.symbols.front().evidence));
      continue;
    }
    if (r.verdict == FilterResult::Verdict::Pass) {
      v.whitelisted = true;
      v.whitelist_reason = r.symbols.empty() ? r.reason : r.symbols.front().evidence;
      v.deciding_filter = fname;
      v.decision = Decision::Accept;
      co_return v;
    }
    switch (slot.config.action) {
      case SlotAction::Spam:
        v.decision = Decision::Spam;
        break;
      case SlotAction::Reject:
        v.decision = Decision::Reject;
        break;
      case SlotAction::Tempfail:
        v.decision = Decision::Tempfail;
        break;
      case SlotAction::Score:
      case SlotAction::Log:
        continue;
    }
    v.deciding_filter = fname;
    v.reason = r.reason.empty() ? fname : r.reason;
    co_return v;
  }
  if (v.complete && v.score >= v.required) {
    v.decision = Decision::Spam;
    v.deciding_filter = top ? v.symbols[*top].filter : "score";
    v.reason = fmt::format("score {:.1f} >= {:.1f}", v.score, v.required);
  }
  co_return v;
}

}  // namespace digue
