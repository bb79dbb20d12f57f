// The explicit list of filters the pipeline can build by name (no static self-registration:
// static libraries drop it). Adding a filter = one line in src/filter_registry.cpp.
#pragma once

#include <span>
#include <string_view>

#include "digue/config.hpp"
#include "digue/filter.hpp"

namespace digue {

struct FilterBuildContext {
  const Config& config;
  const SlotConfig& slot;
  const toml::table& options;  // [filters.NAME]; empty when absent
};

// Builds the filter from its options; throws ConfigError naming the key and line on a bad
// option (use OptionReader from digue/options.hpp).
using FilterFactory = FilterPtr (*)(const FilterBuildContext&);

struct FilterInfo {
  std::string_view name;
  FilterFactory make;
};

std::span<const FilterInfo> filter_registry();
const FilterInfo* find_filter(std::string_view name);

}  // namespace digue
