#pragma once

// The HTTP Range header, for one representation of `size` bytes.

#include <cstdint>
#include <string>

namespace reel::http {

enum class range_kind {
  none,          // no header, a malformed one or several ranges: answer 200
  single,        // one satisfiable range: answer 206
  unsatisfiable, // answer 416 with Content-Range: bytes */size
};

struct byte_range {
  range_kind kind = range_kind::none;
  uint64_t first = 0; // inclusive
  uint64_t last = 0;  // inclusive
};

/// Parses "bytes=a-b", "bytes=a-" and "bytes=-n". Malformed headers and
/// multi-range requests are ignored (RFC 9110 lets a server answer 200).
byte_range parse_range(const std::string& header, uint64_t size);

} // namespace reel::http
