// The test material in ../shared/data (see its README): its path, and reading files from it.
#pragma once

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "digue/text.hpp"

namespace digue::test {

inline const std::filesystem::path kSharedData =
    std::filesystem::path(DIGUE_SOURCE_DIR "/../shared/data");

// A file's bytes ("" when it cannot be read).
inline std::string slurp(const std::filesystem::path& p) {
  return text::read_file(p.string()).value_or("");
}

// Regular files under dir (recursively), sorted; ext ".msg" keeps only those.
inline std::vector<std::filesystem::path> files_under(const std::filesystem::path& dir,
                                                      const std::string& ext = "") {
  std::vector<std::filesystem::path> out;
  if (!std::filesystem::exists(dir)) return out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file() && (ext.empty() || e.path().extension() == ext))
      out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace digue::test
