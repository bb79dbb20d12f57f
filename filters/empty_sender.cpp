#include "filters/empty_sender.hpp"

#include "digue/options.hpp"

namespace digue::filters {
namespace {

class EmptySender final : public Filter {
 public:
  explicit EmptySender(double score) : score_(score) {}
  std::string_view name() const override { return "empty_sender"; }
  Phase phase() const override { return Phase::Mail; }
  boost::asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
    if (!ctx.envelope.mail_from.empty()) co_return FilterResult::none();
    co_return FilterResult::hit("EMPTY_SENDER", score_, "MAIL FROM:<>", "empty sender");
  }

 private:
  double score_;
};

}  // namespace

FilterPtr make_empty_sender(const FilterBuildContext& b) {
  OptionReader r(b.options, "filters.empty_sender");
  double score = r.number("score", 3.0, -100, 100);
  r.finish();
  return std::make_shared<EmptySender>(score);
}

}  // namespace digue::filters
