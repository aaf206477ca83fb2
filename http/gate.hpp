#pragma once

// One gate for every request. Every route of every dialect is declared once
// in a route table: its method and pattern, its dialect, who may call it
// (open to anyone, or a key holding a scope, or an admin key, or a
// capability such as an upload token), whether it names a video and how,
// and what body it takes. The gate runs the same steps for all of them:
//
//   1. authenticate, the dialect's way (Bearer keys, api.video's Basic and
//      access tokens, Gcore's APIKey, Flare's personal access tokens);
//   2. limit the key's rate (X-RateLimit-* on every answer, 429 past it);
//   3. check the scope (403 naming it) and, for admin routes, the admin flag;
//   4. resolve the video the route names (UUID, Gcore number, Flare s3Key)
//      within the key's tenant (404 for another tenant's);
//   5. read the body within its limits (JSON object, form, or a stream the
//      handler reads), refusing what is too large or malformed;
//   6. call the handler;
//   7. render any error, the gate's or the handler's, in the dialect's own
//      shape, and count the request in the metrics.
//
// A route that needs a key but names no scope cannot be added: the table
// refuses it at start (std::logic_error), so no route can forget its rule.
// Paths no route matches answer in the dialect their prefix belongs to
// (api.video's problem JSON outside /v1, /streaming, /api and /media),
// without reading a body. docs/api.md lists the routes and their scopes.

#include "http/common.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace reel::http {

/// Who may call a route.
enum class access : uint8_t {
  open,       // anyone: said explicitly (media, the player page, health)
  key,        // an API key or token of the route's dialect, with `scope`
  admin,      // an admin key, with `scope`
  capability, // a token in the request itself grants it (upload token,
              // tus upload, presigned URL): the handler checks it
};

/// How a route's first capture names a video.
enum class names_video : uint8_t {
  none,
  uuid,         // the video's id
  gcore_number, // Gcore's integer id
  flare_key,    // Flare's videoId: the s3Key the video was made with, or
                // its UUID
};

/// The body a route takes.
enum class body_kind : uint8_t {
  none,   // no body (one sent anyway is drained or the connection closed)
  json,   // a JSON object of at most max_json_body bytes, 64 levels deep
  form,   // application/x-www-form-urlencoded, at most 8 KiB
  stream, // the handler streams it (uploads); call::reader reads it
};

/// The scopes a key may hold (docs/api.md#scopes). A key without scopes
/// ("sk-...") holds every one; a personal access token only those it was
/// made with. Admin routes need an admin key as well.
namespace scopes {
inline constexpr const char* videos_read = "videos:read";
inline constexpr const char* videos_write = "videos:write";
inline constexpr const char* uploads_write = "uploads:write";
inline constexpr const char* folders_read = "folders:read";
inline constexpr const char* folders_write = "folders:write";
inline constexpr const char* webhooks_read = "webhooks:read";
inline constexpr const char* webhooks_write = "webhooks:write";
inline constexpr const char* keys_admin = "keys:admin";
inline constexpr const char* cluster_admin = "cluster:admin";
} // namespace scopes

/// Every scope there is, in the order docs/api.md lists them.
const std::vector<std::string>& known_scopes();

struct route;

/// What a handler is given: everything the gate resolved.
struct call {
  const httplib::Request& req;
  httplib::Response& res;
  const route& r;
  node& n;
  std::optional<principal> who;     // access::key and access::admin
  std::optional<video_record> video; // when the route names one
  uint64_t video_version = 0;       // of the stored record (db::get_video)
  nlohmann::ordered_json json;      // body_kind::json: an object
  httplib::Params form;             // body_kind::form
  const httplib::ContentReader* reader = nullptr; // body_kind::stream
  // The request's Idempotency-Key header (checked by the gate), "" without.
  std::string idempotency_key;

  /// Makes `draft` idempotent under the request's Idempotency-Key, when
  /// it has one: a retry of the create answers the video the first made
  /// (node::create_video).
  void idempotent(video_record& draft) const;

  /// The route pattern's capture `i` (1-based, as req.matches).
  std::string arg(size_t i) const;
  /// The principal's tenant.
  const std::string& tenant() const;
  /// The tenant a lookup is limited to: "" for admin keys (any tenant).
  std::string reach() const;
  /// Answers `err` in the route's dialect.
  void fail(const caf::error& err, const std::string& field = {});
  void fail(ec code, const std::string& message, const std::string& field = {});
  /// Answers a JSON document.
  void reply(int status, const nlohmann::ordered_json& j);
};

using route_handler = std::function<void(call&)>;

struct route {
  std::string method; // GET, POST, PUT, PATCH, DELETE, OPTIONS
  std::string pattern; // a std::regex over the path
  dialect d;
  access who;
  std::string scope; // required unless who is open or capability
  names_video video = names_video::none;
  body_kind body = body_kind::none;
  std::string name; // the metrics label (reel_http_requests_total{route})
  route_handler handle;
};

/// A dialect's own way to say who is calling: the principal, or an error
/// rendered by the dialect (api.video names each failure its own way).
using authenticator = std::function<caf::expected<principal>(
  node&, const httplib::Request&, httplib::Response&)>;

/// The steps of the gate that refuse a request by themselves.
enum class step : uint8_t {
  authenticate, // an error the authenticator did not render itself
  rate,         // past the key's rate (429)
  rights,       // no admin key, or not the route's scope (403)
  video,        // the video the route names is not the caller's (404)
  body,         // a body too large, malformed or nested too deep
};

/// A dialect's own words for the gate's refusals: renders `err`, the
/// refusal at step `s`, into the answer. A dialect without one gets
/// render_error (api.video's has a field name for a missing video and
/// calls a bad body an invalid payload).
using refusal =
  std::function<void(step s, const caf::error& err, httplib::Response& res)>;

/// Every route of a node, declared once.
class route_table {
public:
  /// Adds a route. A key or admin route without a known scope, an open or
  /// capability route with one, a route naming a video without a capture,
  /// or a second route with the same method and pattern is a logic_error.
  void add(route r);
  /// The authenticator of a dialect (every dialect with key routes needs
  /// one before install).
  void authenticate_with(dialect d, authenticator a);
  const std::vector<route>& all() const { return routes_; }
  const authenticator* authenticator_of(dialect d) const;
  /// How a dialect words the gate's refusals (optional).
  void refuse_with(dialect d, refusal f);
  const refusal* refusal_of(dialect d) const;

private:
  std::vector<route> routes_;
  std::vector<std::pair<dialect, authenticator>> auth_;
  std::vector<std::pair<dialect, refusal>> refusals_;
};

/// Installs the table on the server: every route through the gate's steps.
/// The table must not change afterwards (handlers point into it).
void install(httplib::Server& svr, node& n, const route_table& table);

/// Installs the answers for paths no route matches (after every route):
/// a 404 in the dialect the path's prefix belongs to, the body unread.
void install_unmatched(httplib::Server& svr);

/// Bearer keys (native, Uploads API, Flare): the key of
/// "Authorization: Bearer <key>".
caf::expected<principal> bearer_key(node& n, const httplib::Request& req,
                                    httplib::Response& res);

/// The dialect a path belongs to, by its prefix, for paths no route
/// matches.
dialect dialect_of_path(const std::string& path);

const char* to_string(access a);

} // namespace reel::http
