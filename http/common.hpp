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

/// Authenticates the request's bearer key; on failure answers 401 in the
/// dialect's format and returns nothing.
std::optional<principal> authenticate(node& n, dialect d,
                                      const httplib::Request& req,
                                      httplib::Response& res);

/// An integer query parameter within [lo, hi], or `fallback` when absent.
/// Fails for anything that is not such an integer.
caf::expected<int64_t> query_int(const httplib::Request& req,
                                 const std::string& name, int64_t fallback,
                                 int64_t lo, int64_t hi);

/// Parses a JSON request body; answers 400 itself and returns nothing when
/// it is not a JSON object.
std::optional<nlohmann::ordered_json> json_body(dialect d, const httplib::Request& req,
                                        httplib::Response& res);

/// The largest body a JSON endpoint reads.
constexpr size_t max_json_body = 2 << 20;

/// Registers routes with per-route metrics (requests by code, durations)
/// and a last-resort 500 for anything a handler throws.
class router {
public:
  using handler = std::function<void(const httplib::Request&,
                                     httplib::Response&)>;
  using reader_handler = std::function<void(
    const httplib::Request&, httplib::Response&, const httplib::ContentReader&)>;

  explicit router(httplib::Server& svr) : svr_(svr) {}

  void get(const std::string& pattern, const std::string& name, handler h);
  void del(const std::string& pattern, const std::string& name, handler h);
  void post(const std::string& pattern, const std::string& name, handler h);
  /// A POST whose body the handler streams itself.
  void post(const std::string& pattern, const std::string& name,
            reader_handler h);
  /// A PATCH with a small document body (read like post's).
  void patch(const std::string& pattern, const std::string& name, handler h);
  /// A PATCH whose body the handler streams itself.
  void patch(const std::string& pattern, const std::string& name,
             reader_handler h);
  /// An OPTIONS answer of a route's own (the server answers every other
  /// path's OPTIONS itself, after all routes).
  void options(const std::string& pattern, const std::string& name,
               handler h);
  /// A PUT whose body the handler streams itself.
  void put(const std::string& pattern, const std::string& name,
           reader_handler h);

private:
  httplib::Server& svr_;
};

/// Records one answered request in the metrics.
void observe(const std::string& route, const httplib::Response& res,
             double seconds);

} // namespace reel::http
