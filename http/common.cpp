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

std::optional<principal> authenticate(node& n, dialect d,
                                      const httplib::Request& req,
                                      httplib::Response& res) {
  auto token = bearer_token(req);
  if (token.empty()) {
    reply_error(d, ec::unauthorized,
                d == dialect::uploads
                  ? "Unauthenticated: send Authorization: Bearer <api key>."
                  : "missing credentials: send Authorization: Bearer <api key>",
                res);
    return std::nullopt;
  }
  auto p = n.authenticate(token);
  if (!p) {
    if (code_of(p.error()) == ec::unauthorized)
      reply_error(d, ec::unauthorized,
                  d == dialect::uploads ? "Unauthenticated: invalid API key."
                                        : "invalid API key",
                  res);
    else
      render_error(d, p.error(), res);
    return std::nullopt;
  }
  return *p;
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

std::optional<nlohmann::ordered_json> json_body(dialect d, const httplib::Request& req,
                                        httplib::Response& res) {
  auto j = nlohmann::ordered_json::parse(req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    reply_error(d, ec::invalid_argument, "the body must be a JSON object", res);
    return std::nullopt;
  }
  return j;
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

namespace {

template <class Fn>
void guarded(const std::string& name, const httplib::Request& req,
             httplib::Response& res, Fn&& fn) {
  auto start = std::chrono::steady_clock::now();
  try {
    fn();
  } catch (const std::exception& e) {
    log::error("http.exception", {{"route", name}, {"error", e.what()}});
    reply_json(res, 500,
               {{"error", {{"code", "unspecified"},
                           {"message", "internal error"}}}});
  }
  std::chrono::duration<double> d = std::chrono::steady_clock::now() - start;
  observe(name, res, d.count());
}

/// The largest body a refusal reads and drops before answering; past it
/// the connection is closed instead.
constexpr size_t max_drained_body = 16 << 20;

/// Calls a handler that may stream the body. A handler that answers
/// without reading it (a refusal: bad key, wrong video) leaves it on the
/// connection, where it would be read as the next request: it is read
/// and dropped then (the client, still sending, gets the answer), or, when
/// large, the connection is closed after the answer.
void with_reader(const std::string& name, const httplib::Request& req,
                 httplib::Response& res, const httplib::ContentReader& reader,
                 const router::reader_handler& h) {
  bool used = false;
  httplib::ContentReader tracked{
    [&](httplib::ContentReceiver receiver) {
      used = true;
      return reader(std::move(receiver));
    },
    [&](httplib::MultipartContentHeader header,
        httplib::ContentReceiver receiver) {
      used = true;
      return reader(std::move(header), std::move(receiver));
    }};
  guarded(name, req, res, [&] { h(req, res, tracked); });
  bool has_body = req.get_header_value("Transfer-Encoding") == "chunked"
                  || std::strtoll(req.get_header_value("Content-Length").c_str(),
                                  nullptr, 10) > 0;
  if (used || !has_body)
    return;
  // (httplib reads a multipart body only through its multipart reader.)
  size_t dropped = 0;
  auto drop = [&](const char*, size_t len) {
    dropped += len;
    return dropped <= max_drained_body;
  };
  auto status = res.status;
  bool drained = req.is_multipart_form_data()
                   ? reader([](const httplib::MultipartFormData&) { return true; },
                            drop)
                   : reader(drop);
  res.status = status; // a failed read must not change the answer
  if (!drained)
    res.set_header("Connection", "close");
}

} // namespace

void router::get(const std::string& pattern, const std::string& name,
                 handler h) {
  svr_.Get(pattern, [name, h](const httplib::Request& req,
                              httplib::Response& res) {
    guarded(name, req, res, [&] { h(req, res); });
  });
}

void router::del(const std::string& pattern, const std::string& name,
                 handler h) {
  // With a content reader, like every DELETE of the gate: httplib tries
  // those first, so a plain handler would come after the gate's answer
  // for unmatched paths.
  svr_.Delete(pattern, [name, h](const httplib::Request& req,
                                 httplib::Response& res,
                                 const httplib::ContentReader& reader) {
    with_reader(name, req, res, reader,
                [&h](const httplib::Request& rq, httplib::Response& rs,
                     const httplib::ContentReader&) { h(rq, rs); });
  });
}

namespace {

/// How deeply a JSON text nests its arrays and objects (strings skipped).
/// Handlers copy and merge parsed bodies recursively: a body nested a
/// million levels deep would overflow a thread's stack.
size_t json_depth(const std::string& text) {
  size_t depth = 0;
  size_t most = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      most = std::max(most, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return most;
}

constexpr size_t max_json_depth = 64;

/// A handler that reads a small document body (up to max_json_body, so
/// that no client can make the node buffer more) before calling `h`.
httplib::Server::HandlerWithContentReader
with_small_body(const std::string& name, router::handler h) {
  return [name, h](const httplib::Request& req, httplib::Response& res,
                   const httplib::ContentReader& reader) {
    guarded(name, req, res, [&] {
      std::string body;
      bool too_large = false;
      // No Content-Length and not chunked: there is no body to wait for.
      bool has_body = req.has_header("Content-Length")
                      || req.get_header_value("Transfer-Encoding") == "chunked";
      bool ok = !has_body || reader([&](const char* data, size_t len) {
        if (body.size() + len > max_json_body) {
          too_large = true;
          return false;
        }
        body.append(data, len);
        return true;
      });
      if (too_large) {
        res.set_header("Connection", "close"); // the rest is still unread
        reply_json(res, 413,
                   {{"error", {{"code", "too_large"},
                               {"message", "request body over "
                                             + std::to_string(max_json_body)
                                             + " bytes"}}}});
        return;
      }
      if (!ok) {
        reply_json(res, 400, {{"error", {{"code", "invalid_argument"},
                                         {"message", "unreadable body"}}}});
        return;
      }
      if (json_depth(body) > max_json_depth) {
        reply_json(res, 400,
                   {{"error", {{"code", "invalid_argument"},
                               {"message", "the JSON body is nested deeper than "
                                             + std::to_string(max_json_depth)
                                             + " levels"}}}});
        return;
      }
      httplib::Request copy = req; // its matches still point into req
      copy.body = std::move(body);
      h(copy, res);
    });
  };
}

} // namespace

void router::post(const std::string& pattern, const std::string& name,
                  handler h) {
  svr_.Post(pattern, with_small_body(name, std::move(h)));
}

void router::patch(const std::string& pattern, const std::string& name,
                   handler h) {
  svr_.Patch(pattern, with_small_body(name, std::move(h)));
}

void router::put(const std::string& pattern, const std::string& name,
                 reader_handler h) {
  svr_.Put(pattern, [name, h](const httplib::Request& req,
                              httplib::Response& res,
                              const httplib::ContentReader& reader) {
    with_reader(name, req, res, reader, h);
  });
}

void router::patch(const std::string& pattern, const std::string& name,
                   reader_handler h) {
  svr_.Patch(pattern, [name, h](const httplib::Request& req,
                                httplib::Response& res,
                                const httplib::ContentReader& reader) {
    with_reader(name, req, res, reader, h);
  });
}

void router::options(const std::string& pattern, const std::string& name,
                     handler h) {
  svr_.Options(pattern, [name, h](const httplib::Request& req,
                                  httplib::Response& res) {
    guarded(name, req, res, [&] { h(req, res); });
  });
}

void router::post(const std::string& pattern, const std::string& name,
                  reader_handler h) {
  svr_.Post(pattern, [name, h](const httplib::Request& req,
                               httplib::Response& res,
                               const httplib::ContentReader& reader) {
    with_reader(name, req, res, reader, h);
  });
}

} // namespace reel::http
