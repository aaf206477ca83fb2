#include "http/range.hpp"

#include <cctype>

namespace reel::http {

namespace {

bool parse_u64(const std::string& s, uint64_t& out) {
  if (s.empty() || s.size() > 19)
    return false;
  out = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c)))
      return false;
    out = out * 10 + static_cast<uint64_t>(c - '0');
  }
  return true;
}

} // namespace

byte_range parse_range(const std::string& header, uint64_t size) {
  byte_range r;
  const std::string prefix = "bytes=";
  if (header.compare(0, prefix.size(), prefix) != 0)
    return r;
  auto spec = header.substr(prefix.size());
  // Trim spaces.
  while (!spec.empty() && spec.front() == ' ')
    spec.erase(spec.begin());
  while (!spec.empty() && spec.back() == ' ')
    spec.pop_back();
  if (spec.find(',') != std::string::npos)
    return r; // several ranges: the whole representation instead
  auto dash = spec.find('-');
  if (dash == std::string::npos)
    return r;
  auto a = spec.substr(0, dash);
  auto b = spec.substr(dash + 1);
  uint64_t first = 0;
  uint64_t last = 0;
  if (a.empty()) { // suffix: the last n bytes
    uint64_t n = 0;
    if (!parse_u64(b, n))
      return r;
    if (n == 0 || size == 0) {
      r.kind = range_kind::unsatisfiable;
      return r;
    }
    first = n >= size ? 0 : size - n;
    last = size - 1;
  } else {
    if (!parse_u64(a, first))
      return r;
    if (b.empty()) {
      last = size == 0 ? 0 : size - 1;
    } else {
      if (!parse_u64(b, last))
        return r;
      if (last < first)
        return r; // reversed: malformed, ignored
    }
    if (first >= size) {
      r.kind = range_kind::unsatisfiable;
      return r;
    }
    if (last >= size)
      last = size - 1;
  }
  r.kind = range_kind::single;
  r.first = first;
  r.last = last;
  return r;
}

std::optional<content_range> parse_content_range(const std::string& h) {
  content_range r;
  if (h.empty())
    return r;
  auto num = [](const std::string& s, int64_t& out) {
    if (s.empty() || s.size() > 18
        || s.find_first_not_of("0123456789") != std::string::npos)
      return false;
    out = std::stoll(s);
    return true;
  };
  auto slash = h.find('/');
  if (slash == std::string::npos)
    return std::nullopt;
  auto total = h.substr(slash + 1);
  auto head = h.substr(0, slash);
  if (total != "*" && !num(total, r.total))
    return std::nullopt;
  if (head.rfind("bytes ", 0) == 0) {
    r.mode = "bytes";
    auto dash = head.find('-', 6);
    if (dash == std::string::npos || !num(head.substr(6, dash - 6), r.first)
        || !num(head.substr(dash + 1), r.last) || r.last < r.first)
      return std::nullopt;
    if (r.total < 0) // bytes need their total
      return std::nullopt;
  } else if (head.rfind("part ", 0) == 0) {
    r.mode = "parts";
    if (!num(head.substr(5), r.first) || r.first < 1 || r.total == 0)
      return std::nullopt;
  } else {
    return std::nullopt;
  }
  return r;
}

} // namespace reel::http
