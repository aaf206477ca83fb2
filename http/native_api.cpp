// The native API every dialect maps onto (docs/api.md).

#include "actors/types.hpp"
#include "http/render.hpp"
#include "http/routes.hpp"
#include "http/server.hpp"
#include "ops/metrics.hpp"
#include "ops/util.hpp"
#include "storage/blob_store.hpp"
#include "storage/db.hpp"

#include <cmath>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace reel::http {

namespace {

/// Rendered video models by id, each with the record version and
/// placement it was made from; bounded (cleared when full).
class render_cache {
public:
  std::optional<std::string> find(const std::string& id, uint64_t version,
                                  const std::string& placed) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = entries_.find(id);
    if (i == entries_.end() || i->second.version != version
        || i->second.placed != placed)
      return std::nullopt;
    return i->second.body;
  }
  void keep(const std::string& id, uint64_t version, const std::string& placed,
            const std::string& body) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (entries_.size() >= 4096)
      entries_.clear();
    entries_[id] = entry{version, placed, body};
  }

private:
  struct entry {
    uint64_t version;
    std::string placed;
    std::string body;
  };
  std::mutex mtx_;
  std::unordered_map<std::string, entry> entries_;
};

render_cache rendered;

/// The scopes a personal access token may be limited to.
nlohmann::ordered_json webhook_json(const webhook_record& w, bool secret) {
  nlohmann::ordered_json j = {{"id", w.id},
                              {"url", w.url},
                              {"events", w.events},
                              {"format", w.format},
                              {"created_at", iso8601(w.created_ms)}};
  if (secret) // shown once, when made
    j["secret"] = w.secret;
  return j;
}

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

bool valid_state(const std::string& s) {
  for (auto* x : {states::created, states::uploaded, states::probing,
                  states::transcoding, states::packaging, states::ready,
                  states::failed})
    if (s == x)
      return true;
  return false;
}

nlohmann::ordered_json task_json(const task_info& t) {
  auto at = [](int64_t ms) {
    return ms ? nlohmann::ordered_json(iso8601_ms(ms))
              : nlohmann::ordered_json(nullptr);
  };
  auto running_s =
    t.started_ms ? nlohmann::ordered_json(
                     std::round((now_ms() - t.started_ms) / 100.0) / 10.0)
                 : nlohmann::ordered_json(nullptr);
  return {{"id", t.id},
          {"video", t.video_id},
          {"kind", to_string(t.kind)},
          {"index", t.index},
          {"priority", t.priority},
          {"state", t.state},
          {"queued_at", at(t.queued_ms)},
          {"started_at", at(t.started_ms)},
          {"running_s", running_s}};
}

nlohmann::ordered_json key_json(const api_key_record& k) {
  return {{"id", k.key_hash.substr(0, 12)},
          {"prefix", k.prefix},
          {"tenant", k.tenant},
          {"admin", k.admin},
          {"scopes", k.scopes},
          {"created_at", k.created_ms ? nlohmann::ordered_json(
                                          iso8601_ms(k.created_ms))
                                      : nlohmann::ordered_json(nullptr)}};
}

/// A task's number in a route; nothing for one out of range.
std::optional<uint64_t> task_id(const std::string& s) {
  if (s.empty() || s.size() > 19)
    return std::nullopt;
  return std::stoull(s);
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

void add_metrics(router& r, node& n) {
  r.get("/metrics", "metrics",
        [&n](const httplib::Request&, httplib::Response& res) {
          auto& m = metrics();
          m.store_bytes.Set(static_cast<double>(n.store().size_bytes()));
          m.store_compactions_running.Set(static_cast<double>(
            n.store().int_property("rocksdb.num-running-compactions")));
          m.store_compaction_pending_bytes.Set(static_cast<double>(
            n.store().int_property("rocksdb.estimate-pending-compaction-bytes")));
          m.refresh_blob_bytes([&n] { return n.blobs().used_bytes(); });
          res.set_content(m.serialize(),
                          "text/plain; version=0.0.4; charset=utf-8");
        });
}

void add_native_api(router& r, node& n) {
  r.get("/healthz", "healthz",
        [&n](const httplib::Request&, httplib::Response& res) {
          reply_json(res, 200, {{"status", "ok"}, {"node", n.config().node_id}});
        });

  // With --metrics-listen, /metrics is served there only (add_metrics,
  // by the server) and answers 404 here.
  if (n.config().metrics_listen.empty())
    add_metrics(r, n);

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
          // ?state= lists only the videos in that state.
          auto state = req.get_param_value("state");
          if (req.has_param("state") && !valid_state(state)) {
            reply_error(d, ec::invalid_argument,
                        "state must be one of created, uploaded, probing, "
                        "transcoding, packaging, ready, failed",
                        res, "state");
            return;
          }
          auto page = req.has_param("state")
                        ? n.list_videos(acting_tenant(*who, req), state,
                                        static_cast<int32_t>(*offset),
                                        static_cast<int32_t>(*limit))
                        : n.list_videos(acting_tenant(*who, req),
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
          uint64_t version = 0;
          auto v = is_uuid(id) ? n.get_video(who->admin ? "" : who->tenant, id,
                                             &version)
                               : caf::expected<video_record>{make_error(
                                 ec::not_found, "video " + id + " not found")};
          if (!v) {
            render_error(d, v.error(), res);
            return;
          }
          // The model is made once per stored version of the record (and
          // placement): a read of an unchanged video sends the same bytes.
          auto where = n.placement(v->id);
          std::string placed;
          for (auto& w : where)
            placed += w + ",";
          if (auto body = rendered.find(id, version, placed)) {
            res.status = 200;
            res.set_content(*body, "application/json");
            return;
          }
          auto j = native_video(*v, n.config().public_url);
          j["placement"] = {{"owner", where.empty() ? nlohmann::ordered_json(nullptr)
                                                    : nlohmann::ordered_json(where.front())},
                            {"nodes", where}};
          auto body = j.dump();
          rendered.keep(id, version, placed, body);
          res.status = 200;
          res.set_content(std::move(body), "application/json");
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

  r.post(R"(/v1/webhooks)", "webhooks.create",
         [&n](const httplib::Request& req, httplib::Response& res) {
           auto who = authenticate(n, d, req, res);
           if (!who)
             return;
           auto body = json_body(d, req, res);
           if (!body)
             return;
           auto url = body->value("url", nlohmann::ordered_json{});
           auto events = body->value("events", nlohmann::ordered_json{});
           auto format = body->value("format", nlohmann::ordered_json("native"));
           bool ok = url.is_string() && events.is_array() && format.is_string()
                     && (format == "native" || format == "gcore");
           for (auto& e : ok ? events : nlohmann::ordered_json::array())
             ok = ok && e.is_string();
           if (!ok) {
             reply_error(d, ec::invalid_argument,
                         "url (string), events (list of strings) and format "
                         "(native or gcore) are needed",
                         res);
             return;
           }
           auto w = n.create_webhook(who->tenant, url.get<std::string>(),
                                     events.get<std::vector<std::string>>(),
                                     format.get<std::string>());
           if (!w) {
             render_error(d, w.error(), res);
             return;
           }
           reply_json(res, 201, webhook_json(*w, true));
         });

  r.get(R"(/v1/webhooks)", "webhooks.list",
        [&n](const httplib::Request& req, httplib::Response& res) {
          auto who = authenticate(n, d, req, res);
          if (!who)
            return;
          auto all = n.list_webhooks(who->tenant);
          if (!all) {
            render_error(d, all.error(), res);
            return;
          }
          auto data = nlohmann::ordered_json::array();
          for (auto& w : *all)
            data.push_back(webhook_json(w, false));
          reply_json(res, 200, {{"data", data}});
        });

  r.del(R"(/v1/webhooks/([^/]+))", "webhooks.delete",
        [&n](const httplib::Request& req, httplib::Response& res) {
          auto who = authenticate(n, d, req, res);
          if (!who)
            return;
          if (auto err = n.delete_webhook(who->tenant, req.matches[1]))
            render_error(d, err, res);
          else
            res.status = 204;
        });

  // This node's outbox: the tenant's deliveries (an admin's: all, or
  // ?tenant=), newest first, ?status=pending|delivered|failed.
  r.get(R"(/v1/webhooks/deliveries)", "webhooks.deliveries",
        [&n](const httplib::Request& req, httplib::Response& res) {
          auto who = authenticate(n, d, req, res);
          if (!who)
            return;
          auto tenant = who->admin ? req.get_param_value("tenant") : who->tenant;
          auto limit = query_int(req, "limit", 100, 1, 10000);
          if (!limit) {
            reply_error(d, ec::invalid_argument, "limit must be 1-10000", res,
                        "limit");
            return;
          }
          auto all = n.list_deliveries(tenant, req.get_param_value("status"),
                                       static_cast<size_t>(*limit));
          if (!all) {
            render_error(d, all.error(), res);
            return;
          }
          auto data = nlohmann::ordered_json::array();
          for (auto& x : *all)
            data.push_back({{"id", x.id},
                            {"webhook", x.webhook_id},
                            {"tenant", x.tenant},
                            {"url", x.url},
                            {"event", x.event},
                            {"video", x.video_id},
                            {"status", x.status},
                            {"attempts", x.attempts},
                            {"created_at", iso8601_ms(x.created_ms)},
                            {"next_attempt_at", x.status == "pending"
                                                  ? nlohmann::ordered_json(
                                                      iso8601_ms(x.next_ms))
                                                  : nlohmann::ordered_json()},
                            {"last_error", x.last_error}});
          reply_json(res, 200, {{"node", n.config().node_id}, {"data", data}});
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

  // Operators (reelctl): retry, tasks, keys, tenants, gc.

  r.post(R"(/v1/videos/([^/]+)/retry)", "videos.retry",
         [&n](const httplib::Request& req, httplib::Response& res) {
           auto who = authenticate(n, d, req, res);
           if (!who)
             return;
           std::string id = req.matches[1];
           auto v = is_uuid(id)
                      ? n.retry_video(who->admin ? "" : who->tenant, id)
                      : caf::expected<video_record>{make_error(
                        ec::not_found, "video " + id + " not found")};
           if (!v) {
             render_error(d, v.error(), res);
             return;
           }
           reply_json(res, 200, native_video(*v, n.config().public_url));
         });

  r.get(R"(/v1/admin/tasks)", "admin.tasks",
        [&n](const httplib::Request& req, httplib::Response& res) {
          auto who = authenticate(n, d, req, res);
          if (!who || !require_admin(*who, res))
            return;
          auto all = n.tasks();
          if (!all) {
            render_error(d, all.error(), res);
            return;
          }
          auto data = nlohmann::ordered_json::array();
          for (auto& t : *all)
            data.push_back(task_json(t));
          reply_json(res, 200, {{"node", n.config().node_id}, {"data", data}});
        });

  for (auto verb : {"cancel", "requeue"}) {
    r.post(std::string{R"(/v1/admin/tasks/(\d+)/)"} + verb,
           std::string{"admin.tasks."} + verb,
           [&n, cancel = std::string{verb} == "cancel"](
             const httplib::Request& req, httplib::Response& res) {
             auto who = authenticate(n, d, req, res);
             if (!who || !require_admin(*who, res))
               return;
             auto id = task_id(req.matches[1]);
             auto t = !id ? caf::expected<task_info>{make_error(
                              ec::not_found, "no task "
                                               + std::string{req.matches[1]})}
                          : cancel ? n.cancel_task(*id)
                                   : n.requeue_task(*id);
             if (!t) {
               render_error(d, t.error(), res);
               return;
             }
             auto j = task_json(*t);
             j["node"] = n.config().node_id;
             reply_json(res, 200, j);
           });
  }

  r.get(R"(/v1/keys)", "keys.list",
        [&n](const httplib::Request& req, httplib::Response& res) {
          auto who = authenticate(n, d, req, res);
          if (!who || !require_admin(*who, res))
            return;
          auto all = n.list_keys(req.get_param_value("tenant"));
          if (!all) {
            render_error(d, all.error(), res);
            return;
          }
          auto data = nlohmann::ordered_json::array();
          for (auto& k : *all)
            data.push_back(key_json(k));
          reply_json(res, 200, {{"data", data}});
        });

  r.del(R"(/v1/keys/([^/]+))", "keys.revoke",
        [&n](const httplib::Request& req, httplib::Response& res) {
          auto who = authenticate(n, d, req, res);
          if (!who || !require_admin(*who, res))
            return;
          if (auto err = n.revoke_key(req.matches[1],
                                      sha256_hex(bearer_token(req))))
            render_error(d, err, res);
          else
            res.status = 204;
        });

  r.get(R"(/v1/tenants)", "tenants.list",
        [&n](const httplib::Request& req, httplib::Response& res) {
          auto who = authenticate(n, d, req, res);
          if (!who || !require_admin(*who, res))
            return;
          auto all = n.list_tenants();
          if (!all) {
            render_error(d, all.error(), res);
            return;
          }
          auto data = nlohmann::ordered_json::array();
          for (auto& t : *all)
            data.push_back(
              {{"tenant", t.tenant}, {"keys", t.keys}, {"videos", t.videos}});
          reply_json(res, 200, {{"data", data}});
        });

  r.post(R"(/v1/tenants)", "tenants.create",
         [&n](const httplib::Request& req, httplib::Response& res) {
           auto who = authenticate(n, d, req, res);
           if (!who || !require_admin(*who, res))
             return;
           auto body = json_body(d, req, res);
           if (!body)
             return;
           auto tenant = body->value("tenant", nlohmann::ordered_json{});
           if (!tenant.is_string()
               || !valid_tenant_name(tenant.get<std::string>())) {
             reply_error(d, ec::invalid_argument,
                         "tenant must be 1-64 of [a-z0-9_-]", res, "tenant");
             return;
           }
           auto key = n.create_tenant(tenant.get<std::string>());
           if (!key) {
             render_error(d, key.error(), res, "tenant");
             return;
           }
           reply_json(res, 201,
                      {{"tenant", tenant}, {"key", *key}, {"admin", false}});
         });

  r.post(R"(/v1/admin/gc)", "admin.gc",
         [&n](const httplib::Request& req, httplib::Response& res) {
           auto who = authenticate(n, d, req, res);
           if (!who || !require_admin(*who, res))
             return;
           auto body = json_body(d, req, res);
           if (!body)
             return;
           constexpr int64_t max_age = int64_t{100} * 365 * 86400;
           auto age = body->value("older_than_s",
                                  nlohmann::ordered_json(86400));
           if (!age.is_number_integer() || age.get<int64_t>() < 0
               || age.get<int64_t>() > max_age) {
             reply_error(d, ec::invalid_argument,
                         "older_than_s must be a whole number of seconds "
                         "(0 or more)",
                         res, "older_than_s");
             return;
           }
           auto report = n.gc(age.get<int64_t>());
           nlohmann::ordered_json removed = nlohmann::ordered_json::object();
           gc_count total;
           for (auto& [kind, c] : report) {
             removed[kind] = {{"count", c.count}, {"bytes", c.bytes}};
             total += c;
           }
           reply_json(res, 200,
                      {{"node", n.config().node_id},
                       {"older_than_s", age},
                       {"removed", removed},
                       {"total", {{"count", total.count},
                                  {"bytes", total.bytes}}}});
         });

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
