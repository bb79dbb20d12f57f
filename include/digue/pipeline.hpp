// Pipeline: the operator's ordered filter slots, built once from config through the explicit
// registry, immutable, shared by sessions, swapped as a whole on reload (a session keeps the
// pipeline it started with).
//
// PipelineRun evaluates the chain for one message and one recipient domain at a time, up to
// an SMTP phase: at RCPT it runs the slots whose inputs are known (connect..rcpt) so cheap
// checks can refuse before DATA; after DATA it walks the whole chain again, re-using cached
// results. Rcpt-phase filters run once per recipient (FilterContext::rcpt), each on its own
// RCPT, never again for that recipient; a domain's result for such a slot merges its
// recipients' results incrementally (RecipientMerge: a hit of any one wins, then an error; a
// whitelist pass only when every recipient passed; symbols kept, same names joined). So n
// recipients cost n checks and O(n) work, not n²/2 checks. Decisions are taken strictly in
// configured order:
//   - a whitelist pass stops the chain: not spam;
//   - a hit applies the slot's action: spam (stops; this slot is the deciding filter),
//     reject (5xx, stops), tempfail (4xx, stops), score (adds to the score), log;
//   - a dry-run slot only logs what it would have done;
//   - a filter error or timeout applies the slot's on_error: continue with a NAME_FAIL
//     symbol, or the error result's own symbols (RBL_REFUSED, SPF_TEMPERROR), scoring 0
//     (logged and counted, never silent), or tempfail. An error's trace header is kept.
// At the end the score is compared with the domain's `required`.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "digue/config.hpp"
#include "digue/filter.hpp"
#include "digue/message.hpp"

namespace digue {

struct SlotStats {
  std::atomic<uint64_t> total{0}, hit{0}, pass{0}, error{0}, timeout{0};
};

struct Slot {
  SlotConfig config;
  FilterPtr filter;
  Phase phase = Phase::Data;
  std::unique_ptr<SlotStats> stats = std::make_unique<SlotStats>();
};

class Pipeline {
 public:
  // Throws ConfigError (naming the filter's key and line) when a filter cannot be built.
  static std::shared_ptr<const Pipeline> build(std::shared_ptr<const Config> config);
  const std::vector<Slot>& slots() const { return slots_; }
  const Config& config() const { return *config_; }
  std::shared_ptr<const Config> config_ptr() const { return config_; }
  // The effective order, one slot per line (for --print-pipeline).
  std::string describe() const;

 private:
  std::shared_ptr<const Config> config_;
  std::vector<Slot> slots_;
};

enum class Decision : uint8_t { Accept, Spam, Reject, Tempfail };
const char* to_string(Decision d);

struct RanSymbol {
  Symbol symbol;
  std::string filter;
  bool counted = true;  // false for dry-run and log slots: shown, not scored
};

struct Verdict {
  Decision decision = Decision::Accept;
  double score = 0.0;
  double required = 7.5;
  std::vector<RanSymbol> symbols;  // in run order
  std::string deciding_filter;     // the slot that classed it spam / refused it
  std::string reason;              // human text (SMTP reply text on refusal)
  bool whitelisted = false;
  std::string whitelist_reason;    // the pass symbol's evidence
  std::vector<std::pair<std::string, std::chrono::microseconds>> timings;
  std::vector<std::string> dry_run;  // "rbl would have classed as spam: ..."
  bool complete = false;             // the whole chain ran (data phase reached)
  // The trace headers of the slots that ran and gave one (errors included), in run order.
  struct Trace {
    std::string filter;
    std::string line;   // FilterResult::trace
    std::string field;  // FilterResult::trace_field; empty: X-Digue-<Filter>
  };
  std::vector<Trace> traces;

  // "SYM1,SYM2" of the counted symbols, for X-Spam-Status.
  std::string tests() const;
};

// The merged result of one rcpt-phase slot over a domain's recipients, built one recipient
// at a time: a hit of any recipient is the domain's hit (its reason; the hits' symbols first,
// then the other recipients' notes); else the first error or timeout; else a whitelist pass
// if every recipient passed; else nothing found, with the notes. Symbols of the same name
// are kept once (the first's score), their evidence joined up to a bound.
class RecipientMerge {
 public:
  void add(const FilterResult& r);
  FilterResult result() const;
  size_t size() const { return count_; }

 private:
  struct Joined {
    Symbol symbol;
    size_t omitted = 0;
  };
  static void join(std::vector<Joined>& into, const std::vector<Symbol>& symbols);
  static std::vector<Symbol> render(const std::vector<Joined>& a, const std::vector<Joined>& b);

  size_t count_ = 0, passes_ = 0;
  std::optional<FilterResult> only_;  // the first result: the merge of one is that result
  bool hit_ = false;
  std::string hit_reason_, pass_reason_, note_reason_;
  std::optional<FilterResult> error_;
  std::vector<Joined> hit_symbols_, notes_, pass_symbols_;
};

// One message's evaluation state. The inputs are shared so that a filter that outlives its
// deadline (abandoned, still running) never touches freed memory.
class PipelineRun {
 public:
  PipelineRun(std::shared_ptr<const Pipeline> pipeline, Services& services,
              boost::asio::any_io_executor executor);

  void set_envelope(std::shared_ptr<const Envelope> env) { envelope_ = std::move(env); }
  void set_message(std::shared_ptr<const Message> msg) { message_ = std::move(msg); }
  // Forget cached results that depend on the envelope (after RSET or a new transaction).
  void reset();
  // Forget the rcpt-phase results of one recipient (refused: no longer in the transaction,
  // and checked afresh if the client names it again).
  void forget_rcpt(const Address& rcpt);
  // Forget every cached result of one phase (a new EHLO/HELO changes helo-phase inputs).
  void forget_all(Phase phase);

  boost::asio::awaitable<Verdict> evaluate(const DomainPolicy& policy, Phase upto);
  // Runs every slot's after_verdict hook for this domain's final verdict.
  void after_verdict(const DomainPolicy& policy, const Verdict& verdict);
  // Runs every slot's after_message hook once, with every domain's verdict (policy: the
  // first domain's).
  void after_message(const DomainPolicy& policy, const std::vector<const Verdict*>& verdicts);

  const Pipeline& pipeline() const { return *pipeline_; }

 private:
  struct Cached {
    FilterResult result;
    std::chrono::microseconds elapsed{0};
  };
  boost::asio::awaitable<Cached> run_slot(const Slot& slot, const DomainPolicy& policy,
                                          const Address* rcpt = nullptr);
  // A rcpt-phase slot's result for a domain: each recipient's (run once, cached), merged.
  boost::asio::awaitable<Cached> run_rcpt_slot(size_t index, const DomainPolicy& policy);

  std::shared_ptr<const Pipeline> pipeline_;
  Services& services_;
  boost::asio::any_io_executor executor_;
  std::shared_ptr<const Envelope> envelope_;
  std::shared_ptr<const Message> message_;
  std::map<std::pair<size_t, std::string>, Cached> cache_;  // (slot, domain or "")
  std::map<std::pair<size_t, std::string>, Cached> rcpt_cache_;  // (slot, lower-case address)
  // Per (slot, domain or ""): how many envelope recipients are merged, which, and the merge.
  struct RcptMerged {
    size_t consumed = 0;
    std::unordered_set<std::string> keys;
    RecipientMerge merge;
    std::chrono::microseconds elapsed{0};
  };
  std::map<std::pair<size_t, std::string>, RcptMerged> rcpt_merged_;
};

}  // namespace digue
