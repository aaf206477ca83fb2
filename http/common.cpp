#include "http/common.hpp"

#include "ops/log.hpp"
#include "ops/metrics.hpp"

#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>

namespace reel::http {

const char* to_string(dialect d) {
  switch (d) {
    case dialect::native: return "native";
    case dialect::uploads: return "uploads";
    case dialect::apivideo: return "apivideo";
    case dialect::gcore: return "gcore";
    case dialect::flare: return "flare";
    case dialect::plain: return "plain";
  }
  return "?";
}

int status_of(ec code) {
  switch (code) {
    case ec::none: return 200;
    case ec::invalid_argument: return 400;
    case ec::unauthorized: return 401;
    case ec::forbidden: return 403;
    case ec::not_found: return 404;
    case ec::conflict: return 409;
    case ec::too_large: return 413;
    case ec::range_not_satisfiable: return 416;
    case ec::media_error: return 422;
    case ec::timeout: return 503;
    case ec::unavailable: return 503;
    case ec::no_space: return 507;
    case ec::rate_limited: return 429;
    case ec::storage_error:
    case ec::unspecified: return 500;
  }
  return 500;
}

void render_error(dialect d, const caf::error& err, httplib::Response& res,
                  const std::string& field) {
  auto code = code_of(err);
  auto msg = message_of(err);
  int status = status_of(code);
  nlohmann::ordered_json body;
  switch (d) {
    case dialect::native:
      body = {{"error", {{"code", to_string(code)}, {"message", msg}}}};
      if (!field.empty())
        body["error"]["field"] = field;
      break;
    case dialect::uploads:
      body = {{"message", msg}};
      if (!field.empty())
        body["errors"] = {{field, nlohmann::ordered_json::array({msg})}};
      break;
    case dialect::gcore:
      body = {{"error", msg}};
      if (!field.empty())
        body["field"] = field;
      break;
    case dialect::flare:
      body = {{"success", false}, {"error", msg}};
      break;
    case dialect::plain: // media and the player page: a line of text
      res.status = status;
      res.set_content(msg + "\n", "text/plain");
      if (status == 401)
        res.set_header("WWW-Authenticate", "Bearer");
      return;
    case dialect::apivideo: {
      // api.video's documented problem types; the detail says what exactly.
      auto [slug, title] =
        code == ec::invalid_argument ? std::pair{"invalid-attribute",
                                                 "An attribute is invalid."}
        : code == ec::unauthorized
          ? std::pair{"authentication-invalid-api-key", "The API key is invalid."}
        : code == ec::forbidden
          ? std::pair{"authorization-forbidden", "Access to this resource is forbidden."}
        : code == ec::not_found
          ? std::pair{"resource-not-found", "The requested resource was not found."}
        : code == ec::too_large
          ? std::pair{"uploaded-file-too-large", "The uploaded file is too large."}
        : code == ec::conflict
          ? std::pair{"conflict", "The request conflicts with the resource's state."}
        : code == ec::rate_limited
          ? std::pair{"too-many-requests", "Too many requests."}
          : std::pair{"server-error", "Server error"};
      if (code == ec::too_large)
        status = 400; // as api.video answers it
      body = {{"type", std::string{"https://docs.api.video/reference/"} + slug},
              {"title", title},
              {"name", field},
              {"status", status},
              {"detail", msg}};
      if (status == 400)
        body["problems"] = nlohmann::ordered_json::array(
          {{{"type", body["type"]}, {"title", title}, {"name", field}}});
      break;
    }
  }
  if (status == 401)
    res.set_header("WWW-Authenticate", d == dialect::apivideo ? "Basic"
                                                              : "Bearer");
  reply_json(res, status, body);
}

void reply_error(dialect d, ec code, const std::string& msg,
                 httplib::Response& res, const std::string& field) {
  render_error(d, make_error(code, msg), res, field);
}

void reply_json(httplib::Response& res, int status, const nlohmann::ordered_json& j) {
  res.status = status;
  res.set_content(j.dump(), "application/json");
}

std::string bearer_token(const httplib::Request& req) {
  auto h = req.get_header_value("Authorization");
  if (h.size() > 7 && (h.compare(0, 7, "Bearer ") == 0
                       || h.compare(0, 7, "bearer ") == 0)) {
    auto token = h.substr(7);
    auto b = token.find_first_not_of(' ');
    auto e = token.find_last_not_of(' ');
    return b == std::string::npos ? std::string{} : token.substr(b, e - b + 1);
  }
  return {};
}

caf::expected<int64_t> query_int(const httplib::Request& req,
                                 const std::string& name, int64_t fallback,
                                 int64_t lo, int64_t hi) {
  if (!req.has_param(name.c_str()))
    return fallback;
  auto v = req.get_param_value(name.c_str());
  try {
    size_t pos = 0;
    auto x = std::stoll(v, &pos);
    if (pos == v.size() && x >= lo && x <= hi)
      return static_cast<int64_t>(x);
  } catch (...) {
  }
  return make_error(ec::invalid_argument,
                    name + " must be an integer from " + std::to_string(lo)
                      + " to " + std::to_string(hi));
}

void observe(const std::string& route, const httplib::Response& res,
             double seconds) {
  struct route_metrics {
    prometheus::Histogram* duration;
    prometheus::Counter* bytes;
  };
  static std::mutex mtx;
  static std::map<std::string, route_metrics> cache;
  auto& m = metrics();
  route_metrics* rm;
  {
    std::lock_guard<std::mutex> guard{mtx};
    auto i = cache.find(route);
    if (i == cache.end()) {
      auto& h = m.http_duration.Add(
        {{"route", route}},
        prometheus::Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.025,
                                                0.05, 0.1, 0.25, 0.5, 1, 2.5,
                                                5, 10, 30});
      auto& b = m.http_response_bytes.Add({{"route", route}});
      i = cache.emplace(route, route_metrics{&h, &b}).first;
    }
    rm = &i->second;
  }
  rm->duration->Observe(seconds);
  // Streamed bodies (media) count themselves as they are sent.
  rm->bytes->Increment(static_cast<double>(res.body.size()));
  // httplib fills in 200 only after the handler, for handlers that set none.
  auto status = res.status == -1 ? 200 : res.status;
  m.http_requests.Add({{"route", route}, {"code", std::to_string(status)}})
    .Increment();
}

} // namespace reel::http
