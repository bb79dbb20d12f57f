// Store: the parts shared by every implementation; see include/digue/store.hpp.
#include "digue/store.hpp"

namespace digue {

std::vector<std::optional<std::string>> Store::get_many(const std::vector<std::string>& keys) {
  // Fallback for stores without a batched read: correct, one lookup per key.
  std::vector<std::optional<std::string>> out;
  out.reserve(keys.size());
  for (const auto& k : keys) out.push_back(get(k));
  return out;
}

void Store::visit_many(const std::vector<std::string_view>& keys,
                       const std::function<void(size_t, std::string_view)>& found) {
  std::vector<std::string> copies(keys.begin(), keys.end());
  auto values = get_many(copies);
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i]) found(i, *values[i]);
}

void Store::update(const std::vector<std::string>& keys, const UpdateFn& fn) {
  // Not atomic against a concurrent writer; stores that can do better override this.
  auto ops = fn(get_many(keys));
  if (!ops.empty()) apply(ops);
}

}  // namespace digue
