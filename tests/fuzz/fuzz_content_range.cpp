// The Content-Range header of api.video's chunked uploads and what follows
// from it: each input line is one request's header (an empty line: a whole
// source without the header), parsed with http::parse_content_range and,
// when it parses, registered with storage's add_part the way
// apivideo.cpp's receive_source does. Checks the parser's promises, that a
// canonical rendering parses to the same range, that a refused part
// changes nothing, and that the parts accepted so far always fit together
// (sorted, no overlaps, inside the total, upload_complete and
// upload_received agreeing with an independent count).

#include "tests/fuzz/fuzz.hpp"

#include "http/range.hpp"
#include "ops/util.hpp"
#include "storage/records.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

using namespace reel;

namespace {

constexpr int64_t max_number = 999999999999999999; // 18 digits

std::string render(const http::content_range& r) {
  auto total = r.total < 0 ? std::string{"*"} : std::to_string(r.total);
  if (r.mode == "bytes")
    return "bytes " + std::to_string(r.first) + "-" + std::to_string(r.last) +
           "/" + total;
  return "part " + std::to_string(r.first) + "/" + total;
}

void check_range(const std::string& line, const http::content_range& r) {
  if (line.empty()) {
    FUZZ_CHECK(r.mode.empty(), "an empty header gives mode \"\"");
    return;
  }
  FUZZ_CHECK(r.mode == "bytes" || r.mode == "parts", "mode bytes or parts");
  FUZZ_CHECK(r.first <= max_number && r.total <= max_number,
             "numbers have at most 18 digits");
  if (r.mode == "bytes") {
    FUZZ_CHECK(0 <= r.first && r.first <= r.last && r.last <= max_number,
               "bytes a-b with a <= b");
    FUZZ_CHECK(r.total >= 0, "bytes need their total");
  } else {
    FUZZ_CHECK(r.first >= 1, "parts count from 1");
    FUZZ_CHECK(r.total == -1 || r.total >= 1, "parts total is * or > 0");
  }
  auto again = http::parse_content_range(render(r));
  FUZZ_CHECK(again && again->mode == r.mode && again->first == r.first &&
                 again->total == r.total &&
                 (r.mode != "bytes" || again->last == r.last),
             "the canonical rendering parses to the same range");
}

bool same(const upload_state& a, const upload_state& b) {
  if (a.mode != b.mode || a.total != b.total ||
      a.parts.size() != b.parts.size())
    return false;
  for (size_t i = 0; i < a.parts.size(); ++i)
    if (a.parts[i].index != b.parts[i].index ||
        a.parts[i].bytes != b.parts[i].bytes ||
        a.parts[i].sha256 != b.parts[i].sha256)
      return false;
  return true;
}

void check_upload(const upload_state& u) {
  int64_t sum = 0;
  for (size_t i = 0; i < u.parts.size(); ++i) {
    auto& p = u.parts[i];
    FUZZ_CHECK(p.bytes > 0, "accepted parts are not empty");
    sum += p.bytes;
    if (i > 0)
      FUZZ_CHECK(u.parts[i - 1].index < p.index, "parts sorted by index");
    if (u.mode == "bytes") {
      FUZZ_CHECK(p.index >= 0, "bytes start at 0");
      if (i > 0)
        FUZZ_CHECK(u.parts[i - 1].index + u.parts[i - 1].bytes <= p.index,
                   "byte ranges do not overlap");
      if (u.total >= 0)
        FUZZ_CHECK(p.index + p.bytes <= u.total, "bytes inside the total");
    } else {
      FUZZ_CHECK(p.index >= 1, "parts count from 1");
      if (u.total >= 0)
        FUZZ_CHECK(p.index <= u.total, "parts inside the total");
    }
  }
  FUZZ_CHECK(upload_received(u) == sum, "upload_received sums the parts");
  bool complete = false;
  if (u.total >= 0 && !u.parts.empty()) {
    if (u.mode == "bytes")
      complete = u.parts.front().index == 0 && sum == u.total; // no overlaps
    else
      complete = static_cast<int64_t>(u.parts.size()) == u.total; // 1..total
  }
  FUZZ_CHECK(upload_complete(u) == complete, "upload_complete agrees");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  upload_state u;
  size_t start = 0;
  while (start <= input.size()) {
    auto end = input.find('\n', start);
    if (end == std::string::npos)
      end = input.size();
    auto line = input.substr(start, end - start);
    start = end + 1;
    auto r = http::parse_content_range(line);
    if (!r)
      continue;
    check_range(line, *r);
    // As receive_source: a bytes chunk must carry last - first + 1 bytes;
    // a part, or a whole source, any positive number (here from the line).
    auto digest = sha256_hex(line);
    upload_part p;
    p.sha256 = digest;
    p.index = r->mode.empty() ? 0 : r->first;
    p.bytes = r->mode == "bytes" ? r->last - r->first + 1
                                 : 1 + static_cast<int64_t>(std::stoul(
                                           digest.substr(0, 4), nullptr, 16));
    auto mode = r->mode.empty() ? std::string{"bytes"} : r->mode;
    auto total = r->mode.empty() ? p.bytes : r->total;
    auto before = u;
    if (auto err = add_part(u, mode, total, p))
      FUZZ_CHECK(same(before, u), "a refused part changes nothing");
    check_upload(u);
  }
  return 0;
}
