#pragma once

// The HTTP Range header, for one representation of `size` bytes, and the
// Content-Range header of a chunk a client uploads.

#include <cstdint>
#include <optional>
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

/// The Content-Range of an uploaded chunk (api.video's chunked sources).
struct content_range {
  std::string mode;   // "bytes" or "parts"; "" when absent
  int64_t first = 0;  // first byte, or the part number
  int64_t last = -1;  // last byte (bytes)
  int64_t total = -1; // bytes or parts in all; -1 for "*"
};

/// Parses "bytes a-b/total" (a <= b, total required) or "part n/total"
/// and "part n/*" (n >= 1, total > 0). Numbers are decimal, at most 18
/// digits. An empty header gives mode ""; anything else malformed gives
/// nothing.
std::optional<content_range> parse_content_range(const std::string& h);

} // namespace reel::http
