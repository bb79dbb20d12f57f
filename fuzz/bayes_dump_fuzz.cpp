// libFuzzer target for the files `diguectl bayes` reads: any bytes must split as an mbox and
// restore as a Bayes dump without a crash, a leak or undefined behaviour. A restore either
// refuses the input (std::runtime_error, nothing written) or succeeds; then dumping the model
// and restoring that dump into a fresh model must give the same dump back.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

#include "digue/bayes.hpp"
#include "digue/mbox.hpp"
#include "digue/store.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  // mbox: no message is longer than the input; in an mbox (its first line an envelope), no
  // message starts with an envelope line (it would have been split there) unless that line
  // was quoted in the input (">From ...", unquoted by split: mboxrd).
  const bool mbox = digue::mbox::is_envelope(input.substr(0, input.find('\n') + 1));
  for (const auto& m : digue::mbox::split(input)) {
    if (m.size() > input.size()) __builtin_trap();
    const std::string first = m.substr(0, m.find('\n') + 1);
    if (mbox && !m.empty() && digue::mbox::is_envelope(first) &&
        input.find(">" + first) == std::string::npos)
      __builtin_trap();
  }
  digue::mbox::looks_like_message(input);

  auto store = digue::make_memory_store();
  digue::bayes::Classifier c(*store);
  std::istringstream in(input);
  try {
    c.restore(in);
  } catch (const std::runtime_error&) {
    // Refused: nothing may have been written.
    auto st = c.stats();
    if (st.tokens + st.seen + st.spam_messages + st.ham_messages + st.gram_lists) __builtin_trap();
    return 0;
  }
  std::ostringstream first;
  c.dump(first);
  auto again = digue::make_memory_store();
  digue::bayes::Classifier c2(*again);
  std::istringstream in2(first.str());
  c2.restore(in2);  // a dump of ours must always restore
  std::ostringstream second;
  c2.dump(second);
  if (second.str() != first.str()) __builtin_trap();
  return 0;
}
