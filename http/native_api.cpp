// The native API every dialect maps onto (docs/api.md).

#include "actors/types.hpp"
#include "http/render.hpp"
#include "http/routes.hpp"
#include "ops/metrics.hpp"
#include "ops/util.hpp"
#include "storage/blob_store.hpp"
#include "storage/db.hpp"

namespace reel::http {

namespace {

/// The scopes a personal access token may be limited to.
bool known_scope(const std::string& s) {
  return s == "videos:read" || s == "videos:write" || s == "uploads:write";
}


constexpr auto d = dialect::native;

/// The tenant a request acts on: the key's own, or for admin keys the
/// `tenant` query parameter when given.
std::string acting_tenant(const principal& p, const httplib::Request& req) {
  if (p.admin && req.has_param("tenant"))
    return req.get_param_value("tenant");
  return p.tenant;
}

bool require_admin(const principal& p, httplib::Response& res) {
  if (p.admin)
    return true;
  reply_error(d, ec::forbidden, "this needs an admin key", res);
  return false;
}

bool valid_tenant_name(const std::string& t) {
  if (t.empty() || t.size() > 64)
    return false;
  for (char c : t)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'
          || c == '_'))
      return false;
  return true;
}

nlohmann::ordered_json member_json(const member_info& m,
                                   const std::string& self) {
  return {{"node", m.node_id},
          {"state", m.state},
          {"self", m.node_id == self},
          {"url", m.public_url},
          {"cluster", m.cluster_host.empty()
                        ? nlohmann::ordered_json(nullptr)
                        : nlohmann::ordered_json(m.cluster_host + ":"
                                                 + std::to_string(m.cluster_port))},
          {"workers", m.workers},
          {"tasks", {{"queued", m.queued}, {"running", m.running}}},
          {"disk_bytes", m.disk_bytes},
          {"last_seen", m.seen_ms ? nlohmann::ordered_json(iso8601_ms(m.seen_ms))
                                  : nlohmann::ordered_json(nullptr)}};
}

} // namespace

void add_native_api(router& r, node& n) {
  r.get("/healthz", "healthz",
        [&n](const httplib::Request&, httplib::Response& res) {
          reply_json(res, 200, {{"status", "ok"}, {"node", n.config().node_id}});
        });

  r.get("/metrics", "metrics",
        [](const httplib::Request&, httplib::Response& res) {
          res.set_content(metrics().serialize(),
                          "text/plain; version=0.0.4; charset=utf-8");
        });

  r.get(R"(/v1/videos)", "videos.list",
        [&n](const httplib::Request& req, httplib::Response& res) {
          auto who = authenticate(n, d, req, res);
          if (!who)
            return;
          auto limit = query_int(req, "limit", 25, 1, 100);
          auto offset = query_int(req, "offset", 0, 0, INT32_MAX);
          if (!limit || !offset) {
            render_error(d, !limit ? limit.error() : offset.error(), res);
            return;
          }
          auto page = n.list_videos(acting_tenant(*who, req),
                                    static_cast<int32_t>(*offset),
                                    static_cast<int32_t>(*limit));
          if (!page) {
            render_error(d, page.error(), res);
            return;
          }
          auto data = nlohmann::ordered_json::array();
          for (auto& v : page->videos)
            data.push_back(native_video(v, n.config().public_url));
          reply_json(res, 200,
                     {{"data", data},
                      {"pagination",
                       {{"offset", *offset},
                        {"limit", *limit},
                        {"total", page->total}}}});
        });

  r.get(R"(/v1/videos/([^/]+))", "videos.get",
        [&n](const httplib::Request& req, httplib::Response& res) {
          auto who = authenticate(n, d, req, res);
          if (!who)
            return;
          std::string id = req.matches[1];
          auto v = is_uuid(id) ? n.get_video(who->admin ? "" : who->tenant, id)
                               : caf::expected<video_record>{make_error(
                                 ec::not_found, "video " + id + " not found")};
          if (!v) {
            render_error(d, v.error(), res);
            return;
          }
          auto j = native_video(*v, n.config().public_url);
          auto where = n.placement(v->id);
          j["placement"] = {{"owner", where.empty() ? nlohmann::ordered_json(nullptr)
                                                    : nlohmann::ordered_json(where.front())},
                            {"nodes", where}};
          reply_json(res, 200, j);
        });

  r.del(R"(/v1/videos/([^/]+))", "videos.delete",
        [&n](const httplib::Request& req, httplib::Response& res) {
          auto who = authenticate(n, d, req, res);
          if (!who)
            return;
          std::string id = req.matches[1];
          if (!is_uuid(id)) {
            reply_error(d, ec::not_found, "video " + id + " not found", res);
            return;
          }
          if (auto err = n.delete_video(who->admin ? "" : who->tenant, id)) {
            render_error(d, err, res);
            return;
          }
          res.status = 204;
        });

  r.post(R"(/v1/folders)", "folders.create",
         [&n](const httplib::Request& req, httplib::Response& res) {
           auto who = authenticate(n, d, req, res);
           if (!who)
             return;
           auto body = json_body(d, req, res);
           if (!body)
             return;
           auto path = body->value("path", nlohmann::ordered_json{});
           if (!path.is_string()) {
             reply_error(d, ec::invalid_argument,
                         "path is required, e.g. \"root/marketing\"", res,
                         "path");
             return;
           }
           auto f = n.create_folder(who->tenant, path.get<std::string>());
           if (!f) {
             render_error(d, f.error(), res, "path");
             return;
           }
           reply_json(res, 201,
                      {{"path", f->path},
                       {"id", folder_number(f->tenant, f->path)},
                       {"created_at", iso8601(f->created_ms)}});
         });

  r.get(R"(/v1/folders)", "folders.list",
        [&n](const httplib::Request& req, httplib::Response& res) {
          auto who = authenticate(n, d, req, res);
          if (!who)
            return;
          auto fs = n.list_folders(who->tenant);
          if (!fs) {
            render_error(d, fs.error(), res);
            return;
          }
          auto data = nlohmann::ordered_json::array();
          for (auto& f : *fs)
            data.push_back({{"path", f.path},
                            {"id", folder_number(f.tenant, f.path)}});
          reply_json(res, 200, {{"data", data}});
        });

  r.post(R"(/v1/keys)", "keys.create",
         [&n](const httplib::Request& req, httplib::Response& res) {
           auto who = authenticate(n, d, req, res);
           if (!who || !require_admin(*who, res))
             return;
           auto body = json_body(d, req, res);
           if (!body)
             return;
           auto tenant = body->value("tenant", nlohmann::ordered_json{});
           auto admin = body->value("admin", nlohmann::ordered_json(false));
           if (!tenant.is_string() || !valid_tenant_name(tenant.get<std::string>())
               || !admin.is_boolean()) {
             reply_error(d, ec::invalid_argument,
                         "tenant must be 1-64 of [a-z0-9_-]; admin a boolean",
                         res, "tenant");
             return;
           }
           // Scopes make a personal access token limited to them.
           std::vector<std::string> scopes;
           auto given = body->value("scopes", nlohmann::ordered_json::array());
           bool scopes_ok = given.is_array() && given.size() <= 16;
           for (auto& s : scopes_ok ? given : nlohmann::ordered_json::array()) {
             scopes_ok = scopes_ok && s.is_string() && known_scope(s);
             if (scopes_ok)
               scopes.push_back(s);
           }
           if (!scopes_ok) {
             reply_error(d, ec::invalid_argument,
                         "scopes must be a list of videos:read, videos:write, "
                         "uploads:write",
                         res, "scopes");
             return;
           }
           auto key = n.create_key(tenant.get<std::string>(), admin.get<bool>(),
                                   scopes);
           if (!key) {
             render_error(d, key.error(), res);
             return;
           }
           nlohmann::ordered_json out = {{"key", *key},
                                         {"tenant", tenant},
                                         {"admin", admin}};
           if (!scopes.empty())
             out["scopes"] = scopes;
           reply_json(res, 201, out);
         });

  r.get(R"(/v1/admin/nodes)", "admin.nodes",
        [&n](const httplib::Request& req, httplib::Response& res) {
          auto who = authenticate(n, d, req, res);
          if (!who || !require_admin(*who, res))
            return;
          auto ms = n.members();
          if (!ms) {
            render_error(d, ms.error(), res);
            return;
          }
          auto data = nlohmann::ordered_json::array();
          for (auto& m : *ms)
            data.push_back(member_json(m, n.config().node_id));
          reply_json(res, 200, {{"data", data}});
        });

  for (auto [verb, on] : {std::pair{"drain", true}, std::pair{"undrain", false}}) {
    r.post(std::string{R"(/v1/admin/nodes/([\w.-]+)/)"} + verb,
           std::string{"admin."} + verb,
           [&n, on = on](const httplib::Request& req, httplib::Response& res) {
             auto who = authenticate(n, d, req, res);
             if (!who || !require_admin(*who, res))
               return;
             auto m = n.drain(req.matches[1], on);
             if (!m) {
               render_error(d, m.error(), res);
               return;
             }
             reply_json(res, 200, member_json(*m, n.config().node_id));
           });
  }

  r.get(R"(/v1/admin/status)", "admin.status",
        [&n](const httplib::Request& req, httplib::Response& res) {
          auto who = authenticate(n, d, req, res);
          if (!who || !require_admin(*who, res))
            return;
          auto tasks = n.task_counts();
          if (!tasks) {
            render_error(d, tasks.error(), res);
            return;
          }
          auto counts = n.video_counts();
          if (!counts) {
            render_error(d, counts.error(), res);
            return;
          }
          nlohmann::ordered_json by_state = nlohmann::ordered_json::object();
          for (auto& [state, count] : *counts)
            by_state[state] = count;
          reply_json(res, 200,
                     {{"node", n.config().node_id},
                      {"status", "up"},
                      {"public_url", n.config().public_url},
                      {"workers", n.config().workers},
                      {"videos", by_state},
                      {"tasks", {{"queued", tasks->first},
                                 {"running", tasks->second}}},
                      {"disk", {{"blob_bytes", n.blobs().used_bytes()},
                                {"db_bytes", n.store().size_bytes()}}}});
        });
}

} // namespace reel::http
