#pragma once

// What every HTTP handler shares: the API dialects and their error bodies,
// authentication, JSON answers and route registration with metrics.

#include "actors/node.hpp"
#include "ops/error.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>

namespace reel::http {

/// The API dialects a node speaks; each has its own error body.
enum class dialect {
  native,  // /v1/...: {"error": {"code", "message"}}
  uploads, // /api/client/v1/...: {"message", "errors"?}
  apivideo, // api.video: {"type", "title", "name", "status", "detail"?}
  gcore,    // /streaming/...: {"error": message}
  flare,    // /api/video...: {"success": false, "error": message}
  plain,    // media, the player page: a line of text
};

/// The dialect's name: native, uploads, apivideo, gcore, flare, plain.
const char* to_string(dialect d);

/// The HTTP status for an error code.
int status_of(ec code);

/// Answers `err` in the dialect's own error format, with its status.
/// `field` names the request field at fault, for validation errors.
void render_error(dialect d, const caf::error& err, httplib::Response& res,
                  const std::string& field = {});

/// Shorthand: render_error(d, make_error(code, msg), res, field).
void reply_error(dialect d, ec code, const std::string& msg,
                 httplib::Response& res, const std::string& field = {});

/// Answers a JSON document.
void reply_json(httplib::Response& res, int status, const nlohmann::ordered_json& j);

/// The bearer token of the request, or "" if none.
std::string bearer_token(const httplib::Request& req);

/// An integer query parameter within [lo, hi], or `fallback` when absent.
/// Fails for anything that is not such an integer.
caf::expected<int64_t> query_int(const httplib::Request& req,
                                 const std::string& name, int64_t fallback,
                                 int64_t lo, int64_t hi);

/// The largest body a JSON endpoint reads.
constexpr size_t max_json_body = 2 << 20;

/// Records one answered request in the metrics.
void observe(const std::string& route, const httplib::Response& res,
             double seconds);

} // namespace reel::http
