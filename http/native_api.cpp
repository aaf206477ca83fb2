// The native API every dialect maps onto (docs/api.md).

#include "actors/types.hpp"
#include "http/gate.hpp"
#include "http/render.hpp"
#include "http/routes.hpp"
#include "http/server.hpp"
#include "ops/metrics.hpp"
#include "ops/util.hpp"

#include <cmath>
#include <cstdlib>
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



constexpr auto d = dialect::native;

/// The tenant a request acts on: the key's own, or for admin keys the
/// `tenant` query parameter when given.
std::string acting_tenant(const principal& p, const httplib::Request& req) {
  if (p.admin && req.has_param("tenant"))
    return req.get_param_value("tenant");
  return p.tenant;
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
  return parse_video_state(s).has_value();
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

/// The node's metrics, as Prometheus text.
void serve_metrics(node& n, httplib::Response& res) {
  auto& m = metrics();
  auto db = n.store_stats();
  m.store_bytes.Set(static_cast<double>(db.db_bytes));
  m.store_compactions_running.Set(static_cast<double>(db.compactions_running));
  m.store_compaction_pending_bytes.Set(
    static_cast<double>(db.compaction_pending_bytes));
  m.refresh_blob_bytes([&n] { return n.blob_bytes(); });
  res.set_content(m.serialize(), "text/plain; version=0.0.4; charset=utf-8");
}

void add_metrics(route_table& t, node& n) {
  t.add({"GET", "/metrics", d, access::open, "", names_video::none,
         body_kind::none, "metrics",
         [&n](call& c) { serve_metrics(n, c.res); }});
}

void add_native_api(route_table& t, node& n) {
  t.authenticate_with(d, bearer_key);
  auto add = [&](const char* method, std::string pattern, access who,
                 const char* scope, names_video video, body_kind body,
                 std::string name, route_handler h) {
    t.add({method, std::move(pattern), d, who, scope, video, body,
           std::move(name), std::move(h)});
  };
  using nv = names_video;
  using bk = body_kind;

  add("GET", "/healthz", access::open, "", nv::none, bk::none, "healthz",
      [&n](call& c) {
        c.reply(200, {{"status", "ok"}, {"node", n.config().node_id}});
      });

  // With --metrics-listen, /metrics is served there only (add_metrics,
  // by the server) and answers 404 here.
  if (n.config().metrics_listen.empty())
    add_metrics(t, n);

  // The routes themselves, for operators and for the test that checks
  // every route against every kind of credential.
  add("GET", "/v1/admin/routes", access::admin, scopes::cluster_admin, nv::none,
      bk::none, "admin.routes", [&t](call& c) {
        auto data = nlohmann::ordered_json::array();
        for (auto& r : t.all())
          data.push_back({{"method", r.method},
                          {"pattern", r.pattern},
                          {"dialect", to_string(r.d)},
                          {"access", to_string(r.who)},
                          {"scope", r.scope.empty()
                                      ? nlohmann::ordered_json(nullptr)
                                      : nlohmann::ordered_json(r.scope)},
                          {"video", r.video == nv::none ? "none"
                                    : r.video == nv::uuid ? "uuid"
                                    : r.video == nv::gcore_number
                                      ? "gcore_number"
                                      : "flare_key"},
                          {"name", r.name}});
        c.reply(200, {{"data", data}, {"scopes", known_scopes()}});
      });

  add("GET", R"(/v1/videos)", access::key, scopes::videos_read, nv::none,
      bk::none, "videos.list", [&n](call& c) {
        auto limit = query_int(c.req, "limit", 25, 1, 100);
        auto offset = query_int(c.req, "offset", 0, 0, INT32_MAX);
        if (!limit || !offset) {
          c.fail(!limit ? limit.error() : offset.error());
          return;
        }
        // ?state= lists only the videos in that state.
        auto state = c.req.get_param_value("state");
        if (c.req.has_param("state") && !valid_state(state)) {
          c.fail(ec::invalid_argument,
                 "state must be one of created, uploaded, probing, "
                 "transcoding, packaging, ready, failed",
                 "state");
          return;
        }
        auto tenant = acting_tenant(*c.who, c.req);
        auto page = c.req.has_param("state")
                      ? n.list_videos(tenant, node::video_filter{state, ""},
                                      static_cast<int32_t>(*offset),
                                      static_cast<int32_t>(*limit))
                      : n.list_videos(tenant, static_cast<int32_t>(*offset),
                                      static_cast<int32_t>(*limit));
        if (!page) {
          c.fail(page.error());
          return;
        }
        auto data = nlohmann::ordered_json::array();
        for (auto& v : page->videos)
          data.push_back(native_video(v, n.config().public_url));
        c.reply(200, {{"data", data},
                      {"pagination",
                       {{"offset", *offset},
                        {"limit", *limit},
                        {"total", page->total}}}});
      });

  add("GET", R"(/v1/videos/([^/]+))", access::key, scopes::videos_read,
      nv::uuid, bk::none, "videos.get", [&n](call& c) {
        auto& v = *c.video;
        // The model is made once per stored version of the record (and
        // placement): a read of an unchanged video sends the same bytes.
        auto where = n.placement(v.id);
        std::string placed;
        for (auto& w : where)
          placed += w + ",";
        if (auto body = rendered.find(v.id, c.video_version, placed)) {
          c.res.status = 200;
          c.res.set_content(*body, "application/json");
          return;
        }
        auto j = native_video(v, n.config().public_url);
        j["placement"] = {{"owner", where.empty()
                                      ? nlohmann::ordered_json(nullptr)
                                      : nlohmann::ordered_json(where.front())},
                          {"nodes", where}};
        auto body = j.dump();
        rendered.keep(v.id, c.video_version, placed, body);
        c.res.status = 200;
        c.res.set_content(std::move(body), "application/json");
      });

  add("DELETE", R"(/v1/videos/([^/]+))", access::key, scopes::videos_write,
      nv::uuid, bk::none, "videos.delete", [&n](call& c) {
        if (auto err = n.delete_video(c.reach(), c.video->id))
          c.fail(err);
        else
          c.res.status = 204;
      });

  add("POST", R"(/v1/folders)", access::key, scopes::folders_write, nv::none,
      bk::json, "folders.create", [&n](call& c) {
        auto path = c.json.value("path", nlohmann::ordered_json{});
        if (!path.is_string()) {
          c.fail(ec::invalid_argument,
                 "path is required, e.g. \"root/marketing\"", "path");
          return;
        }
        auto f = n.create_folder(c.tenant(), path.get<std::string>());
        if (!f) {
          c.fail(f.error(), "path");
          return;
        }
        c.reply(201, {{"path", f->path},
                      {"id", folder_number(f->tenant, f->path)},
                      {"created_at", iso8601(f->created_ms)}});
      });

  add("GET", R"(/v1/folders)", access::key, scopes::folders_read, nv::none,
      bk::none, "folders.list", [&n](call& c) {
        auto fs = n.list_folders(c.tenant());
        if (!fs) {
          c.fail(fs.error());
          return;
        }
        auto data = nlohmann::ordered_json::array();
        for (auto& f : *fs)
          data.push_back(
            {{"path", f.path}, {"id", folder_number(f.tenant, f.path)}});
        c.reply(200, {{"data", data}});
      });

  add("POST", R"(/v1/keys)", access::admin, scopes::keys_admin, nv::none,
      bk::json, "keys.create", [&n](call& c) {
        auto tenant = c.json.value("tenant", nlohmann::ordered_json{});
        auto admin = c.json.value("admin", nlohmann::ordered_json(false));
        if (!tenant.is_string() || !valid_tenant_name(tenant.get<std::string>())
            || !admin.is_boolean()) {
          c.fail(ec::invalid_argument,
                 "tenant must be 1-64 of [a-z0-9_-]; admin a boolean",
                 "tenant");
          return;
        }
        // Scopes make a personal access token limited to them.
        std::vector<std::string> granted;
        auto given = c.json.value("scopes", nlohmann::ordered_json::array());
        bool scopes_ok = given.is_array() && given.size() <= 16;
        auto& all = known_scopes();
        for (auto& s : scopes_ok ? given : nlohmann::ordered_json::array()) {
          scopes_ok = scopes_ok && s.is_string()
                      && std::find(all.begin(), all.end(),
                                   s.get<std::string>())
                           != all.end();
          if (scopes_ok)
            granted.push_back(s);
        }
        if (!scopes_ok) {
          std::string list;
          for (auto& x : all)
            list += (list.empty() ? "" : ", ") + x;
          c.fail(ec::invalid_argument, "scopes must be a list of " + list,
                 "scopes");
          return;
        }
        auto key = n.create_key(tenant.get<std::string>(), admin.get<bool>(),
                                granted);
        if (!key) {
          c.fail(key.error());
          return;
        }
        // The id is the one GET /v1/keys lists and DELETE takes.
        nlohmann::ordered_json out = {{"id", sha256_hex(*key).substr(0, 12)},
                                      {"key", *key},
                                      {"tenant", tenant},
                                      {"admin", admin}};
        if (!granted.empty())
          out["scopes"] = granted;
        c.reply(201, out);
      });

  add("POST", R"(/v1/webhooks)", access::key, scopes::webhooks_write, nv::none,
      bk::json, "webhooks.create", [&n](call& c) {
        auto url = c.json.value("url", nlohmann::ordered_json{});
        auto events = c.json.value("events", nlohmann::ordered_json{});
        auto format = c.json.value("format", nlohmann::ordered_json("native"));
        bool ok = url.is_string() && events.is_array() && format.is_string()
                  && (format == "native" || format == "gcore");
        for (auto& e : ok ? events : nlohmann::ordered_json::array())
          ok = ok && e.is_string();
        if (!ok) {
          c.fail(ec::invalid_argument,
                 "url (string), events (list of strings) and format "
                 "(native or gcore) are needed");
          return;
        }
        auto w = n.create_webhook(c.tenant(), url.get<std::string>(),
                                  events.get<std::vector<std::string>>(),
                                  format.get<std::string>());
        if (!w) {
          c.fail(w.error());
          return;
        }
        c.reply(201, webhook_json(*w, true));
      });

  add("GET", R"(/v1/webhooks)", access::key, scopes::webhooks_read, nv::none,
      bk::none, "webhooks.list", [&n](call& c) {
        auto all = n.list_webhooks(c.tenant());
        if (!all) {
          c.fail(all.error());
          return;
        }
        auto data = nlohmann::ordered_json::array();
        for (auto& w : *all)
          data.push_back(webhook_json(w, false));
        c.reply(200, {{"data", data}});
      });

  add("DELETE", R"(/v1/webhooks/([^/]+))", access::key, scopes::webhooks_write,
      nv::none, bk::none, "webhooks.delete", [&n](call& c) {
        if (auto err = n.delete_webhook(c.tenant(), c.arg(1)))
          c.fail(err);
        else
          c.res.status = 204;
      });

  // This node's outbox: the tenant's deliveries (an admin's: all, or
  // ?tenant=), newest first, ?status=pending|delivered|failed.
  add("GET", R"(/v1/webhooks/deliveries)", access::key, scopes::webhooks_read,
      nv::none, bk::none, "webhooks.deliveries", [&n](call& c) {
        auto tenant =
          c.who->admin ? c.req.get_param_value("tenant") : c.tenant();
        auto limit = query_int(c.req, "limit", 100, 1, 10000);
        if (!limit) {
          c.fail(ec::invalid_argument, "limit must be 1-10000", "limit");
          return;
        }
        auto all = n.list_deliveries(tenant, c.req.get_param_value("status"),
                                     static_cast<size_t>(*limit));
        if (!all) {
          c.fail(all.error());
          return;
        }
        auto data = nlohmann::ordered_json::array();
        for (auto& x : *all)
          data.push_back(
            {{"id", x.id},
             {"webhook", x.webhook_id},
             {"tenant", x.tenant},
             {"url", x.url},
             {"event", x.event},
             {"video", x.video_id},
             {"status", x.status},
             {"attempts", x.attempts},
             {"created_at", iso8601_ms(x.created_ms)},
             {"next_attempt_at", x.status == "pending"
                                   ? nlohmann::ordered_json(iso8601_ms(x.next_ms))
                                   : nlohmann::ordered_json()},
             {"last_error", x.last_error}});
        c.reply(200, {{"node", n.config().node_id}, {"data", data}});
      });

  // Who made each chunk of a video, and under which owner: the owner
  // epoch and its node when each chunk was counted, and the epoch's raises.
  add("GET", R"(/v1/admin/videos/([^/]+)/chunks)", access::admin,
      scopes::cluster_admin, nv::uuid, bk::none, "admin.video_chunks",
      [](call& c) {
        auto& v = *c.video;
        auto takeovers = nlohmann::ordered_json::array();
        for (auto& t : v.takeovers) {
          auto sp = t.find(' ');
          takeovers.push_back(
            {{"epoch", std::strtoull(t.c_str(), nullptr, 10)},
             {"node", sp == std::string::npos ? "" : t.substr(sp + 1)}});
        }
        auto chunks = nlohmann::ordered_json::array();
        for (size_t i = 0; i < v.chunks.size(); ++i) {
          bool done = i < v.chunk_done.size() && v.chunk_done[i];
          auto by = i < v.chunk_node.size() ? v.chunk_node[i] : std::string{};
          auto epoch = i < v.chunk_epoch.size() ? v.chunk_epoch[i] : 0;
          chunks.push_back({{"index", i},
                            {"done", done},
                            {"node", by.empty() ? nlohmann::ordered_json()
                                                : nlohmann::ordered_json(by)},
                            {"epoch", epoch}});
        }
        c.reply(200, {{"id", v.id},
                      {"epoch", v.epoch},
                      {"version", v.version},
                      {"owner", v.owner_node},
                      {"takeovers", takeovers},
                      {"chunks", chunks}});
      });

  add("GET", R"(/v1/admin/nodes)", access::admin, scopes::cluster_admin,
      nv::none, bk::none, "admin.nodes", [&n](call& c) {
        auto ms = n.members();
        if (!ms) {
          c.fail(ms.error());
          return;
        }
        auto data = nlohmann::ordered_json::array();
        for (auto& m : *ms)
          data.push_back(member_json(m, n.config().node_id));
        c.reply(200, {{"data", data}});
      });

  for (auto [verb, on] :
       {std::pair{"drain", true}, std::pair{"undrain", false}}) {
    add("POST", std::string{R"(/v1/admin/nodes/([\w.-]+)/)"} + verb,
        access::admin, scopes::cluster_admin, nv::none, bk::none,
        std::string{"admin."} + verb, [&n, on = on](call& c) {
          auto m = n.drain(c.arg(1), on);
          if (!m) {
            c.fail(m.error());
            return;
          }
          c.reply(200, member_json(*m, n.config().node_id));
        });
  }

  // Operators (reelctl): retry, tasks, keys, tenants, gc.

  add("POST", R"(/v1/videos/([^/]+)/retry)", access::key, scopes::videos_write,
      nv::uuid, bk::none, "videos.retry", [&n](call& c) {
        auto v = n.retry_video(c.reach(), c.video->id);
        if (!v) {
          c.fail(v.error());
          return;
        }
        c.reply(200, native_video(*v, n.config().public_url));
      });

  add("GET", R"(/v1/admin/tasks)", access::admin, scopes::cluster_admin,
      nv::none, bk::none, "admin.tasks", [&n](call& c) {
        auto all = n.tasks();
        if (!all) {
          c.fail(all.error());
          return;
        }
        auto data = nlohmann::ordered_json::array();
        for (auto& t : *all)
          data.push_back(task_json(t));
        c.reply(200, {{"node", n.config().node_id}, {"data", data}});
      });

  for (auto verb : {"cancel", "requeue"}) {
    add("POST", std::string{R"(/v1/admin/tasks/(\d+)/)"} + verb, access::admin,
        scopes::cluster_admin, nv::none, bk::none,
        std::string{"admin.tasks."} + verb,
        [&n, cancel = std::string{verb} == "cancel"](call& c) {
          auto id = task_id(c.arg(1));
          auto t = !id ? caf::expected<task_info>{make_error(
                           ec::not_found, "no task " + c.arg(1))}
                   : cancel ? n.cancel_task(*id)
                            : n.requeue_task(*id);
          if (!t) {
            c.fail(t.error());
            return;
          }
          auto j = task_json(*t);
          j["node"] = n.config().node_id;
          c.reply(200, j);
        });
  }

  add("GET", R"(/v1/keys)", access::admin, scopes::keys_admin, nv::none,
      bk::none, "keys.list", [&n](call& c) {
        auto all = n.list_keys(c.req.get_param_value("tenant"));
        if (!all) {
          c.fail(all.error());
          return;
        }
        auto data = nlohmann::ordered_json::array();
        for (auto& k : *all)
          data.push_back(key_json(k));
        c.reply(200, {{"data", data}});
      });

  add("DELETE", R"(/v1/keys/([^/]+))", access::admin, scopes::keys_admin,
      nv::none, bk::none, "keys.revoke", [&n](call& c) {
        if (auto err = n.revoke_key(c.arg(1), c.who->key_hash))
          c.fail(err);
        else
          c.res.status = 204;
      });

  add("GET", R"(/v1/tenants)", access::admin, scopes::keys_admin, nv::none,
      bk::none, "tenants.list", [&n](call& c) {
        auto all = n.list_tenants();
        if (!all) {
          c.fail(all.error());
          return;
        }
        auto data = nlohmann::ordered_json::array();
        for (auto& x : *all)
          data.push_back(
            {{"tenant", x.tenant}, {"keys", x.keys}, {"videos", x.videos}});
        c.reply(200, {{"data", data}});
      });

  add("POST", R"(/v1/tenants)", access::admin, scopes::keys_admin, nv::none,
      bk::json, "tenants.create", [&n](call& c) {
        auto tenant = c.json.value("tenant", nlohmann::ordered_json{});
        if (!tenant.is_string()
            || !valid_tenant_name(tenant.get<std::string>())) {
          c.fail(ec::invalid_argument, "tenant must be 1-64 of [a-z0-9_-]",
                 "tenant");
          return;
        }
        auto key = n.create_tenant(tenant.get<std::string>());
        if (!key) {
          c.fail(key.error(), "tenant");
          return;
        }
        c.reply(201, {{"tenant", tenant}, {"key", *key}, {"admin", false}});
      });

  add("POST", R"(/v1/admin/gc)", access::admin, scopes::cluster_admin,
      nv::none, bk::json, "admin.gc", [&n](call& c) {
        constexpr int64_t max_age = int64_t{100} * 365 * 86400;
        auto age = c.json.value("older_than_s", nlohmann::ordered_json(86400));
        if (!age.is_number_integer() || age.get<int64_t>() < 0
            || age.get<int64_t>() > max_age) {
          c.fail(ec::invalid_argument,
                 "older_than_s must be a whole number of seconds (0 or more)",
                 "older_than_s");
          return;
        }
        auto report = n.gc(age.get<int64_t>());
        nlohmann::ordered_json removed = nlohmann::ordered_json::object();
        gc_count total;
        for (auto& [kind, x] : report) {
          removed[kind] = {{"count", x.count}, {"bytes", x.bytes}};
          total += x;
        }
        c.reply(200, {{"node", n.config().node_id},
                      {"older_than_s", age},
                      {"removed", removed},
                      {"total", {{"count", total.count},
                                 {"bytes", total.bytes}}}});
      });

  add("GET", R"(/v1/admin/status)", access::admin, scopes::cluster_admin,
      nv::none, bk::none, "admin.status", [&n](call& c) {
        auto tasks = n.task_counts();
        if (!tasks) {
          c.fail(tasks.error());
          return;
        }
        auto counts = n.video_counts();
        if (!counts) {
          c.fail(counts.error());
          return;
        }
        nlohmann::ordered_json by_state = nlohmann::ordered_json::object();
        for (auto& [state, count] : *counts)
          by_state[state] = count;
        c.reply(200, {{"node", n.config().node_id},
                      {"status", "up"},
                      {"public_url", n.config().public_url},
                      {"workers", n.config().workers},
                      {"videos", by_state},
                      {"tasks", {{"queued", tasks->first},
                                 {"running", tasks->second}}},
                      {"disk", {{"blob_bytes", n.blob_bytes()},
                                {"db_bytes", n.store_stats().db_bytes}}}});
      });
}

} // namespace reel::http
