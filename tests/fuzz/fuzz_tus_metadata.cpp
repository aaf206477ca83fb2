// tus's Upload-Metadata header (http::parse_tus_metadata, and with it
// ops' base64_decode): the input is the header's value. A header that
// parses gives unique, non-empty keys without spaces or commas, and
// writing the map back the way tus answers HEAD ("key base64", or a bare
// key for an empty value) parses to the same map.

#include "tests/fuzz/fuzz.hpp"

#include "http/tus.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace {

std::string base64(std::string_view in) {
  static const char* alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v =
        (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int shift : {18, 12, 6, 0})
      out += alphabet[(v >> shift) & 63];
  }
  if (i < in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    if (i + 1 < in.size())
      v |= uint8_t(in[i + 1]) << 8;
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? alphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string encode(const std::map<std::string, std::string>& m) {
  std::string out;
  for (auto& [k, v] : m) {
    if (!out.empty())
      out += ',';
    out += k;
    if (!v.empty())
      out += ' ' + base64(v);
  }
  return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string header(reinterpret_cast<const char*>(data), size);
  auto meta = reel::http::parse_tus_metadata(header);
  if (!meta)
    return 0;
  for (auto& [k, v] : *meta)
    FUZZ_CHECK(!k.empty() && k.find_first_of(" ,") == std::string::npos,
               "keys are non-empty, without spaces or commas");
  auto again = reel::http::parse_tus_metadata(encode(*meta));
  FUZZ_CHECK(again && *again == *meta,
             "the header written back parses to the same map");
  return 0;
}
