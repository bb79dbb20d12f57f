#include "filters/same_sender_rcpt.hpp"

#include "digue/options.hpp"
#include "digue/text.hpp"

namespace digue::filters {
namespace {

class SameSenderRcpt final : public Filter {
 public:
  explicit SameSenderRcpt(double score) : score_(score) {}
  std::string_view name() const override { return "same_sender_rcpt"; }
  Phase phase() const override { return Phase::Rcpt; }
  bool per_domain() const override { return true; }
  boost::asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
    const Address& from = ctx.envelope.mail_from;
    if (from.empty()) co_return FilterResult::none();
    for (const Address* rcpt : ctx.recipients()) {
      if (!text::iequals(rcpt->domain, ctx.domain)) continue;
      if (text::iequals(rcpt->domain, from.domain) && text::iequals(rcpt->local, from.local))
        co_return FilterResult::hit("SAME_SENDER_RCPT", score_, from.str(),
                                    "sender and recipient are the same");
    }
    co_return FilterResult::none();
  }

 private:
  double score_;
};

}  // namespace

FilterPtr make_same_sender_rcpt(const FilterBuildContext& b) {
  OptionReader r(b.options, "filters.same_sender_rcpt");
  double score = r.number("score", 4.0, -100, 100);
  r.finish();
  return std::make_shared<SameSenderRcpt>(score);
}

}  // namespace digue::filters
