#include "filters/empty_email.hpp"

#include "digue/message.hpp"
#include "digue/options.hpp"

namespace digue::filters {
namespace {

class EmptyEmail final : public Filter {
 public:
  EmptyEmail(double score, size_t min_chars, bool ignore_subject)
      : score_(score), min_chars_(min_chars), ignore_subject_(ignore_subject) {}
  std::string_view name() const override { return "empty_email"; }
  Phase phase() const override { return Phase::Data; }

  boost::asio::awaitable<FilterResult> check(FilterContext& ctx) const override {
    if (!ctx.message) co_return FilterResult::error("empty_email: no message");
    const mime::Parsed& f = ctx.message->facts();
    if (!f.attachments.empty()) co_return FilterResult::none();
    size_t chars = 0;
    for (char c : f.text) {
      if (c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '\f' && c != '\v') ++chars;
      if (chars >= min_chars_) co_return FilterResult::none();
    }
    bool has_subject = false;
    for (char c : f.subject) has_subject = has_subject || (c != ' ' && c != '\t');
    if (has_subject && !ignore_subject_) co_return FilterResult::none();
    co_return FilterResult::hit("EMPTY_EMAIL", score_,
                                std::string("no text, no attachment") +
                                    (has_subject ? ", subject present" : ", no subject"),
                                "empty message");
  }

 private:
  double score_;
  size_t min_chars_;
  bool ignore_subject_;
};

}  // namespace

FilterPtr make_empty_email(const FilterBuildContext& b) {
  OptionReader r(b.options, "filters.empty_email");
  double score = r.number("score", 2.0, -100, 100);
  auto min_chars = static_cast<size_t>(r.integer("min_chars", 1, 1, 100000));
  bool ignore_subject = r.boolean("ignore_subject", true);
  r.finish();
  return std::make_shared<EmptyEmail>(score, min_chars, ignore_subject);
}

}  // namespace digue::filters
