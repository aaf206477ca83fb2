// The tus Upload-Metadata header (http/tus.hpp), apart from the rest of
// tus so that a fuzz target (tests/fuzz/) links it on its own.

#include "http/tus.hpp"

#include "ops/util.hpp"

namespace reel::http {

std::optional<std::map<std::string, std::string>>
parse_tus_metadata(const std::string& h) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start < h.size()) {
    auto end = h.find(',', start);
    if (end == std::string::npos)
      end = h.size();
    auto pair = h.substr(start, end - start);
    start = end + 1;
    auto b = pair.find_first_not_of(' ');
    auto e = pair.find_last_not_of(' ');
    if (b == std::string::npos)
      return std::nullopt; // an empty pair
    pair = pair.substr(b, e - b + 1);
    auto space = pair.find(' ');
    auto key = pair.substr(0, space);
    std::string value;
    if (space != std::string::npos) {
      auto v = pair.substr(pair.find_first_not_of(' ', space));
      if (v.find(' ') != std::string::npos)
        return std::nullopt;
      auto decoded = base64_decode(v);
      if (!decoded)
        return std::nullopt;
      value = std::move(*decoded);
    }
    if (out.count(key) != 0)
      return std::nullopt; // keys are unique
    out[key] = std::move(value);
  }
  return out;
}

} // namespace reel::http
