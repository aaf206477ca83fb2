#include "ops/error.hpp"

#include <cerrno>
#include <cstring>

#include <caf/atom.hpp>
#include <caf/message.hpp>
#include <caf/make_message.hpp>
#include <caf/sec.hpp>

namespace reel {

namespace {
constexpr caf::atom_value category = caf::atom("reel");
} // namespace

const char* to_string(ec x) {
  switch (x) {
    case ec::none: return "none";
    case ec::unspecified: return "unspecified";
    case ec::invalid_argument: return "invalid_argument";
    case ec::unauthorized: return "unauthorized";
    case ec::forbidden: return "forbidden";
    case ec::not_found: return "not_found";
    case ec::conflict: return "conflict";
    case ec::too_large: return "too_large";
    case ec::range_not_satisfiable: return "range_not_satisfiable";
    case ec::storage_error: return "storage_error";
    case ec::media_error: return "media_error";
    case ec::timeout: return "timeout";
    case ec::unavailable: return "unavailable";
    case ec::no_space: return "no_space";
    case ec::rate_limited: return "rate_limited";
  }
  return "unknown";
}

caf::error make_error(ec code, std::string what) {
  return caf::error{static_cast<uint8_t>(code), category,
                    caf::make_message(std::move(what))};
}

ec code_of(const caf::error& err) {
  if (!err)
    return ec::none;
  if (err.category() == category)
    return static_cast<ec>(err.code());
  if (err.category() == caf::atom("system")) {
    auto s = static_cast<caf::sec>(err.code());
    if (s == caf::sec::request_timeout)
      return ec::timeout;
    return ec::unavailable;
  }
  return ec::unspecified;
}

std::string message_of(const caf::error& err) {
  if (!err)
    return {};
  const auto& ctx = err.context();
  if (ctx.size() == 1 && ctx.match_element<std::string>(0))
    return ctx.get_as<std::string>(0);
  if (err.category() == caf::atom("system"))
    return "internal error: " + caf::to_string(static_cast<caf::sec>(err.code()));
  return "error " + std::to_string(err.code());
}

caf::error file_error(int errnum, const std::string& what) {
  auto code = errnum == ENOSPC || errnum == EDQUOT ? ec::no_space
                                                   : ec::storage_error;
  return make_error(code, what + ": " + std::strerror(errnum));
}

bool is_transient(const caf::error& err) {
  switch (code_of(err)) {
    case ec::no_space:
    case ec::unavailable:
    case ec::timeout:
      return true;
    default:
      return false;
  }
}

} // namespace reel
