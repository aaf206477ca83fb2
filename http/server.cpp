#include "http/server.hpp"

#include "http/front.hpp"
#include "http/gate.hpp"
#include "http/routes.hpp"
#include "http/tus.hpp"
#include "ops/log.hpp"

#include <algorithm>
#include <thread>

namespace reel::http {

caf::error check_tls(const node_config& cfg) {
  if (cfg.tls_cert.empty())
    return {};
  return check_tls_server(cfg.tls_cert, cfg.tls_key);
}

namespace {

/// Worker threads of the main listener grow up to this (or --http-threads
/// when larger): each answers one request at a time, and long uploads and
/// downloads hold one while they run.
constexpr int max_http_threads = 256;

/// Timeouts and keep-alive limits, the same on both listeners.
void set_limits(processor& svr) {
  svr.set_read_timeout(30, 0);
  svr.set_write_timeout(30, 0);
  svr.set_keep_alive_max_count(1000);
  svr.set_keep_alive_timeout(10);
}

/// A JSON body for an error answer that has none (404 for a path no route
/// matches, 413, httplib's own 400s).
void set_error_body(processor& svr) {
  svr.set_error_handler([](const httplib::Request& req,
                           httplib::Response& res) {
    if (!res.body.empty())
      return;
    std::string msg = res.status == 404 ? "no such route: " + req.path
                      : res.status == 413 ? "request body too large"
                                          : "request failed";
    reply_json(res, res.status,
               {{"error", {{"code", res.status == 404   ? "not_found"
                                    : res.status == 413 ? "too_large"
                                                        : "invalid_argument"},
                           {"message", msg}}}});
  });
}

} // namespace

struct server::impl {
  node& n;
  // Every route, declared once (http/gate.hpp); the servers' handlers
  // point into them, so they outlive the servers (declared first).
  route_table table;
  route_table metrics_table;
  processor svr;
  std::unique_ptr<front> main;
  // With --metrics-listen.
  processor metrics_svr;
  std::unique_ptr<front> metrics;
  explicit impl(node& nd) : n(nd) {}
};

server::server(node& n) : impl_(std::make_unique<impl>(n)) {
  auto& svr = impl_->svr;
  auto& cfg = n.config();
  set_limits(svr);
  // Bodies are limited by each handler (uploads stream with their own
  // limit); this bounds what httplib itself would buffer.
  svr.set_payload_max_length(static_cast<size_t>(cfg.max_upload_bytes) +
                             (size_t{1} << 20));
  svr.set_answer_hook([](const httplib::Request& req, httplib::Response& res) {
    res.set_header("Access-Control-Allow-Origin", "*");
    // tus clients in browsers read the upload's state from these.
    res.set_header("Access-Control-Expose-Headers",
                   "Content-Length, Content-Range, Accept-Ranges, "
                   "Location, Tus-Resumable, Tus-Version, Tus-Max-Size, "
                   "Tus-Extension, Upload-Offset, Upload-Length, "
                   "Upload-Metadata, Upload-Expires");
    // A CORS preflight, whichever route answers it.
    if (req.method == "OPTIONS") {
      res.set_header("Access-Control-Allow-Methods",
                     "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
      res.set_header("Access-Control-Allow-Headers",
                     "Authorization, Content-Type, Range, Content-Range, "
                     "Tus-Resumable, Upload-Length, Upload-Metadata, "
                     "Upload-Offset, Upload-Defer-Length");
      res.set_header("Access-Control-Max-Age", "86400");
    }
  });
  set_error_body(svr);
  // The gate's routes (http/gate.hpp), declared once in the table.
  auto& table = impl_->table;
  add_native_api(table, n);
  add_uploads_api(table, n);
  add_gcore_api(table, n);
  add_tus(table, n);
  add_apivideo_api(table, n);
  // Flare before media: its publicUrl, /media/flare/..., would otherwise
  // be taken for /media/<id>/... (httplib tries routes in order).
  add_flare_api(table, n);
  add_media(table, n);
  add_embed(table, n);
  install(svr, n, table);
  // Every other path's OPTIONS (CORS preflights): registered after the
  // routes, so that a route may answer its own (tus on /upload/).
  svr.Options(R"(.*)", [](const httplib::Request&, httplib::Response& res) {
    res.status = 204;
  });
  install_unmatched(svr);

  front_config fc;
  fc.host = cfg.listen_host;
  fc.port = cfg.listen_port;
  fc.tls_cert = cfg.tls_cert;
  fc.tls_key = cfg.tls_key;
  fc.max_connections = static_cast<size_t>(cfg.http_max_connections);
  fc.min_threads = static_cast<size_t>(cfg.http_threads);
  fc.max_threads =
      static_cast<size_t>(std::max(cfg.http_threads, max_http_threads));
  fc.name = "main";
  impl_->main = std::make_unique<front>(svr, std::move(fc));

  if (!cfg.metrics_listen.empty()) {
    auto& ms = impl_->metrics_svr;
    set_limits(ms);
    ms.set_payload_max_length(max_json_body);
    set_error_body(ms);
    auto& mt = impl_->metrics_table;
    add_metrics(mt, n);
    mt.add({"GET", "/healthz", dialect::native, access::open, "",
            names_video::none, body_kind::none, "healthz", [&n](call& c) {
              c.reply(200, {{"status", "ok"}, {"node", n.config().node_id}});
            }});
    install(ms, n, mt);
    install_unmatched(ms);
    front_config mc;
    // Checked when the configuration was read.
    (void)parse_host_port(cfg.metrics_listen, mc.host, mc.port);
    mc.max_connections = 64;
    mc.min_threads = 1;
    mc.max_threads = 4;
    mc.name = "metrics";
    impl_->metrics = std::make_unique<front>(ms, std::move(mc));
  }
}

server::~server() = default;

caf::error server::bind() {
  if (auto err = impl_->main->bind())
    return err;
  if (impl_->metrics)
    if (auto err = impl_->metrics->bind())
      return make_error(ec::unavailable,
                        "--metrics-listen: " + message_of(err));
  return {};
}

void server::run() {
  std::thread side;
  if (impl_->metrics)
    side = std::thread{[this] { impl_->metrics->run(); }};
  impl_->main->run();
  if (impl_->metrics) {
    impl_->metrics->stop();
    side.join();
  }
}

void server::stop() {
  impl_->main->stop();
  if (impl_->metrics)
    impl_->metrics->stop();
}

} // namespace reel::http
