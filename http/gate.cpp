#include "http/gate.hpp"

#include "ops/log.hpp"
#include "ops/metrics.hpp"
#include "ops/util.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>
#include <regex>
#include <stdexcept>
#include <unordered_map>

namespace reel::http {

namespace {

/// Per-key token buckets: `limit` requests a second, as many at once.
/// Bounded: past `max_keys` buckets the idle ones are forgotten.
class rate_limiter {
public:
  struct verdict {
    bool allowed = true;
    int64_t limit = 0;
    int64_t remaining = 0;
    int64_t retry_after_s = 0; // until one request may pass again
  };

  verdict take(const std::string& key, int64_t limit) {
    using clock = std::chrono::steady_clock;
    auto now = clock::now();
    std::lock_guard<std::mutex> guard{mtx_};
    if (buckets_.size() >= max_keys)
      prune(now);
    auto& b = buckets_[key];
    if (b.last == clock::time_point{})
      b.tokens = static_cast<double>(limit);
    else
      b.tokens = std::min(static_cast<double>(limit),
                          b.tokens
                            + std::chrono::duration<double>(now - b.last).count()
                                * static_cast<double>(limit));
    b.last = now;
    verdict v;
    v.limit = limit;
    if (b.tokens >= 1) {
      b.tokens -= 1;
    } else {
      v.allowed = false;
      v.retry_after_s = static_cast<int64_t>(
        std::ceil((1 - b.tokens) / static_cast<double>(limit)));
      if (v.retry_after_s < 1)
        v.retry_after_s = 1;
    }
    v.remaining = static_cast<int64_t>(std::floor(b.tokens));
    return v;
  }

private:
  struct bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point last{};
  };
  static constexpr size_t max_keys = 100000;

  void prune(std::chrono::steady_clock::time_point now) {
    for (auto i = buckets_.begin(); i != buckets_.end();)
      i = now - i->second.last > std::chrono::seconds(10) ? buckets_.erase(i)
                                                          : std::next(i);
    if (buckets_.size() >= max_keys)
      buckets_.clear(); // every bucket busy: start over rather than grow
  }

  std::mutex mtx_;
  std::unordered_map<std::string, bucket> buckets_;
};

rate_limiter& limiter() {
  static rate_limiter l;
  return l;
}

/// The rate limit of a tenant's keys, requests a second (0: none).
int64_t rate_limit_of(const node_config& cfg, const std::string& tenant) {
  auto i = cfg.tenant_rate_limits.find(tenant);
  return i != cfg.tenant_rate_limits.end() ? i->second : cfg.rate_limit;
}

void set_rate_headers(httplib::Response& res,
                      const rate_limiter::verdict& v) {
  res.set_header("X-RateLimit-Limit", std::to_string(v.limit));
  res.set_header("X-RateLimit-Remaining", std::to_string(v.remaining));
  res.set_header("X-RateLimit-Retry-After", std::to_string(v.retry_after_s));
}

/// How deeply a JSON text nests its arrays and objects (strings skipped):
/// handlers copy and merge parsed bodies recursively, so a body nested a
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
constexpr size_t max_form_body = 8 << 10;
/// The largest body a refusal reads and drops before answering; past it
/// the connection is closed instead.
constexpr size_t max_drained_body = 16 << 20;

bool has_body(const httplib::Request& req) {
  return req.get_header_value("Transfer-Encoding") == "chunked"
         || std::strtoll(req.get_header_value("Content-Length").c_str(),
                         nullptr, 10)
              > 0;
}

/// Reads a small body whole: nothing past `limit` bytes is kept.
/// ec::too_large past it (the rest is left unread: the connection closes).
caf::expected<std::string> read_small(const httplib::Request& req,
                                      const httplib::ContentReader& reader,
                                      size_t limit) {
  std::string body;
  if (!has_body(req))
    return body;
  bool too_large = false;
  bool ok = reader([&](const char* data, size_t len) {
    if (body.size() + len > limit) {
      too_large = true;
      return false;
    }
    body.append(data, len);
    return true;
  });
  if (too_large)
    return make_error(ec::too_large, "request body over "
                                       + std::to_string(limit) + " bytes");
  if (!ok)
    return make_error(ec::invalid_argument, "unreadable body");
  return body;
}

/// A body no route reads (a refusal before it was read, or a route that
/// takes none): read and dropped, so the connection can serve the next
/// request, or, when large, the connection is closed after the answer.
void drain(const httplib::Request& req, httplib::Response& res,
           const httplib::ContentReader& reader) {
  if (!has_body(req))
    return;
  size_t dropped = 0;
  auto drop = [&](const char*, size_t len) {
    dropped += len;
    return dropped <= max_drained_body;
  };
  auto status = res.status;
  // (httplib reads a multipart body only through its multipart reader.)
  bool drained =
    req.is_multipart_form_data()
      ? reader([](const httplib::MultipartFormData&) { return true; }, drop)
      : reader(drop);
  res.status = status; // a failed read must not change the answer
  if (!drained)
    res.set_header("Connection", "close");
}

/// Resolves the video a route names within `reach` ("" = any tenant).
caf::expected<video_record> resolve(call& c, names_video how,
                                    const std::string& ref, uint64_t* version) {
  auto missing = make_error(ec::not_found, "video " + ref + " not found");
  switch (how) {
    case names_video::none:
      return missing;
    case names_video::uuid:
      if (!is_uuid(ref))
        return missing;
      return c.n.get_video(c.reach(), ref, version);
    case names_video::gcore_number: {
      if (ref.empty() || ref.size() > 19
          || ref.find_first_not_of("0123456789") != std::string::npos)
        return missing;
      return c.n.video_by_number(c.reach(), std::stoull(ref));
    }
    case names_video::flare_key: {
      if (is_uuid(ref))
        return c.n.get_video(c.reach(), ref, version);
      if (ref.empty() || ref.size() > 1024)
        return missing;
      return c.n.video_by_key(c.tenant(), ref);
    }
  }
  return missing;
}

/// Runs the steps of the gate for one request of route `r`.
void pass(node& n, const route_table& table, const route& r,
          const httplib::Request& req, httplib::Response& res,
          const httplib::ContentReader& reader) {
  call c{req, res, r, n};
  bool read = false;
  httplib::ContentReader tracked{
    [&](httplib::ContentReceiver receiver) {
      read = true;
      return reader(std::move(receiver));
    },
    [&](httplib::MultipartContentHeader header,
        httplib::ContentReceiver receiver) {
      read = true;
      return reader(std::move(header), std::move(receiver));
    }};
  // The gate's own refusals, in the dialect's words.
  auto refuse = [&](step s, const caf::error& err) {
    if (auto* f = table.refusal_of(r.d))
      (*f)(s, err, res);
    else
      c.fail(err);
  };
  auto run = [&] {
    // 1. Who is calling.
    if (r.who == access::key || r.who == access::admin) {
      auto* auth = table.authenticator_of(r.d);
      auto who = (*auth)(n, req, res);
      if (!who) {
        if (res.body.empty())
          refuse(step::authenticate, who.error());
        return;
      }
      c.who = std::move(*who);
      // 2. Their rate.
      auto limit = rate_limit_of(n.config(), c.who->tenant);
      if (limit > 0) {
        auto v = limiter().take(c.who->key_hash, limit);
        set_rate_headers(res, v);
        if (!v.allowed) {
          res.set_header("Retry-After", std::to_string(v.retry_after_s));
          refuse(step::rate,
                 make_error(ec::rate_limited,
                            "too many requests: this key may make "
                              + std::to_string(limit) + " a second; retry in "
                              + std::to_string(v.retry_after_s) + " s"));
          return;
        }
      }
      // 3. Their rights.
      if (r.who == access::admin && !c.who->admin) {
        refuse(step::rights, make_error(ec::forbidden, "this needs an admin key"));
        return;
      }
      if (!c.who->may(r.scope)) {
        refuse(step::rights, make_error(ec::forbidden, "this key lacks the "
                                                          + r.scope + " scope"));
        return;
      }
    }
    // 4. The video it names.
    if (r.video != names_video::none) {
      auto v = resolve(c, r.video, c.arg(1), &c.video_version);
      if (!v) {
        refuse(step::video, v.error());
        return;
      }
      c.video = std::move(*v);
    }
    // 5. Writes this node may not commit now: a change to a video while
    // cut off from most of the cluster (the majority may be changing it
    // too; docs/cluster.md, "Partitions").
    bool write = r.method != "GET" && r.method != "HEAD" && r.method != "OPTIONS";
    if (write && r.video != names_video::none && !n.has_quorum()) {
      res.set_header("Retry-After", "5");
      refuse(step::video,
             make_error(ec::unavailable,
                        "this node is cut off from most of the cluster: "
                        "retry in 5 s, or ask another node"));
      return;
    }
    // An Idempotency-Key: 1 to 255 visible ASCII characters.
    if (write && req.has_header("Idempotency-Key")) {
      auto key = req.get_header_value("Idempotency-Key");
      bool ok = !key.empty() && key.size() <= 255
                && std::all_of(key.begin(), key.end(),
                               [](char ch) { return ch > 32 && ch < 127; });
      if (!ok) {
        refuse(step::body, make_error(ec::invalid_argument,
                                      "Idempotency-Key must be 1 to 255 "
                                      "visible ASCII characters"));
        return;
      }
      c.idempotency_key = key;
    }
    // 6. The body.
    switch (r.body) {
      case body_kind::none:
      case body_kind::stream:
        break;
      case body_kind::json: {
        auto text = read_small(req, tracked, max_json_body);
        if (!text) {
          if (code_of(text.error()) == ec::too_large)
            res.set_header("Connection", "close"); // the rest is unread
          refuse(step::body, text.error());
          return;
        }
        if (json_depth(*text) > max_json_depth) {
          refuse(step::body,
                 make_error(ec::invalid_argument,
                            "the JSON body is nested deeper than "
                              + std::to_string(max_json_depth) + " levels"));
          return;
        }
        c.json = text->empty() ? nlohmann::ordered_json::object()
                               : nlohmann::ordered_json::parse(*text, nullptr,
                                                               false);
        if (c.json.is_discarded() || !c.json.is_object()) {
          refuse(step::body, make_error(ec::invalid_argument,
                                        "the body must be a JSON object"));
          return;
        }
        break;
      }
      case body_kind::form: {
        auto text = read_small(req, tracked, max_form_body);
        if (!text) {
          if (code_of(text.error()) == ec::too_large)
            res.set_header("Connection", "close");
          refuse(step::body, text.error());
          return;
        }
        httplib::detail::parse_query_text(*text, c.form);
        break;
      }
    }
    c.reader = &tracked;
    // 7. The handler.
    r.handle(c);
  };
  auto start = std::chrono::steady_clock::now();
  try {
    run();
  } catch (const std::exception& e) {
    log::error("http.exception", {{"route", r.name}, {"error", e.what()}});
    res.body.clear();
    c.fail(ec::unspecified, "internal error");
  }
  if (!read)
    drain(req, res, reader);
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  observe(r.name, res, took.count());
}

/// Paths no route matches: the dialect's 404, the body left unread.
void unmatched(const httplib::Request& req, httplib::Response& res,
               const httplib::ContentReader* reader) {
  auto d = dialect_of_path(req.path);
  render_error(d, make_error(ec::not_found, "no such route: " + req.method
                                              + " " + req.path),
               res);
  if (reader)
    drain(req, res, *reader);
  observe("unmatched", res, 0);
}

} // namespace

const std::vector<std::string>& known_scopes() {
  static const std::vector<std::string> all{
    scopes::videos_read,   scopes::videos_write,   scopes::uploads_write,
    scopes::folders_read,  scopes::folders_write,  scopes::webhooks_read,
    scopes::webhooks_write, scopes::keys_admin,    scopes::cluster_admin};
  return all;
}

const char* to_string(access a) {
  switch (a) {
    case access::open: return "open";
    case access::key: return "key";
    case access::admin: return "admin";
    case access::capability: return "capability";
  }
  return "?";
}

std::string call::arg(size_t i) const {
  return i < req.matches.size() ? std::string{req.matches[i]} : std::string{};
}

void call::idempotent(video_record& draft) const {
  if (!idempotency_key.empty())
    draft.info.client_key = idempotency_prefix + idempotency_key;
}

const std::string& call::tenant() const {
  static const std::string none;
  return who ? who->tenant : none;
}

std::string call::reach() const {
  return who && who->admin ? std::string{} : tenant();
}

void call::fail(const caf::error& err, const std::string& field) {
  render_error(r.d, err, res, field);
}

void call::fail(ec code, const std::string& message, const std::string& field) {
  render_error(r.d, make_error(code, message), res, field);
}

void call::reply(int status, const nlohmann::ordered_json& j) {
  reply_json(res, status, j);
}

void route_table::add(route r) {
  auto bad = [&](const std::string& why) {
    throw std::logic_error("route " + r.method + " " + r.pattern + ": " + why);
  };
  bool keyed = r.who == access::key || r.who == access::admin;
  auto& all = known_scopes();
  if (keyed && std::find(all.begin(), all.end(), r.scope) == all.end())
    bad("a route for keys must name a known scope, not \"" + r.scope + "\"");
  if (!keyed && !r.scope.empty())
    bad("an open or capability route names no scope");
  if (r.video != names_video::none && std::regex{r.pattern}.mark_count() < 1)
    bad("a route that names a video captures it first");
  if (r.name.empty() || !r.handle)
    bad("a route needs a name and a handler");
  for (auto& x : routes_)
    if (x.method == r.method && x.pattern == r.pattern)
      bad("declared twice");
  routes_.push_back(std::move(r));
}

void route_table::authenticate_with(dialect d, authenticator a) {
  auth_.emplace_back(d, std::move(a));
}

const authenticator* route_table::authenticator_of(dialect d) const {
  for (auto& [x, a] : auth_)
    if (x == d)
      return &a;
  return nullptr;
}

void route_table::refuse_with(dialect d, refusal f) {
  refusals_.emplace_back(d, std::move(f));
}

const refusal* route_table::refusal_of(dialect d) const {
  for (auto& [x, f] : refusals_)
    if (x == d)
      return &f;
  return nullptr;
}

void install(httplib::Server& svr, node& n, const route_table& table) {
  for (auto& r : table.all()) {
    if ((r.who == access::key || r.who == access::admin)
        && !table.authenticator_of(r.d))
      throw std::logic_error("no authenticator for the dialect of "
                             + r.pattern);
    auto with_reader = [&n, &table, &r](const httplib::Request& req,
                                        httplib::Response& res,
                                        const httplib::ContentReader& reader) {
      pass(n, table, r, req, res, reader);
    };
    // GET, DELETE and OPTIONS have no content reader in httplib: a body
    // they carry is read by httplib itself (bounded by the payload limit).
    auto without = [&n, &table, &r](const httplib::Request& req,
                                    httplib::Response& res) {
      httplib::ContentReader none{
        [](httplib::ContentReceiver) { return true; },
        [](httplib::MultipartContentHeader, httplib::ContentReceiver) {
          return true;
        }};
      pass(n, table, r, req, res, none);
    };
    if (r.method == "GET")
      svr.Get(r.pattern, without);
    else if (r.method == "POST")
      svr.Post(r.pattern, with_reader);
    else if (r.method == "PUT")
      svr.Put(r.pattern, with_reader);
    else if (r.method == "PATCH")
      svr.Patch(r.pattern, with_reader);
    else if (r.method == "DELETE")
      svr.Delete(r.pattern, with_reader);
    else if (r.method == "OPTIONS")
      svr.Options(r.pattern, without);
    else
      throw std::logic_error("unknown method " + r.method);
  }
}

void install_unmatched(httplib::Server& svr) {
  // Every other path: a 404 in its dialect, and a body nobody asked for
  // is not read into memory.
  auto reading = [](const httplib::Request& req, httplib::Response& res,
                    const httplib::ContentReader& reader) {
    unmatched(req, res, &reader);
  };
  svr.Post(".*", reading);
  svr.Put(".*", reading);
  svr.Patch(".*", reading);
  svr.Delete(".*", reading);
  svr.Get(".*", [](const httplib::Request& req, httplib::Response& res) {
    unmatched(req, res, nullptr);
  });
}

caf::expected<principal> bearer_key(node& n, const httplib::Request& req,
                                    httplib::Response&) {
  auto token = bearer_token(req);
  if (token.empty())
    return make_error(ec::unauthorized, "missing credentials: send "
                                        "Authorization: Bearer <api key>");
  auto p = n.authenticate(token);
  if (!p && code_of(p.error()) == ec::unauthorized)
    return make_error(ec::unauthorized, "invalid API key");
  return p;
}

dialect dialect_of_path(const std::string& path) {
  auto under = [&](const char* prefix) {
    auto n = std::char_traits<char>::length(prefix);
    return path.compare(0, n, prefix) == 0
           && (path.size() == n || path[n] == '/');
  };
  if (under("/v1"))
    return dialect::native;
  if (under("/api/client"))
    return dialect::uploads;
  if (under("/streaming"))
    return dialect::gcore;
  if (under("/api"))
    return dialect::flare;
  if (under("/media") || under("/embed") || under("/player"))
    return dialect::plain;
  return dialect::apivideo;
}

} // namespace reel::http
