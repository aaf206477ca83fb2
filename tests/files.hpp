#pragma once

// Helpers of the Boost.Test binaries that look at what a node left on disk.

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace reel::testing {

/// Whether any file under `dir` holds `text` (a secret must not be found
/// in plain anywhere a node writes).
inline bool any_file_holds(const std::string& dir, const std::string& text) {
  for (auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    std::error_code ignored;
    if (!e.is_regular_file(ignored))
      continue;
    std::ifstream in{e.path(), std::ios::binary};
    std::string bytes{std::istreambuf_iterator<char>{in}, {}};
    if (bytes.find(text) != std::string::npos) {
      BOOST_TEST_MESSAGE(e.path().string() + " holds " + text);
      return true;
    }
  }
  return false;
}

} // namespace reel::testing
