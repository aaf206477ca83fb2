#include "http/server.hpp"

#include "http/routes.hpp"
#include "http/tus.hpp"
#include "ops/log.hpp"

namespace reel::http {

struct server::impl {
  node& n;
  httplib::Server svr;
  explicit impl(node& nd) : n(nd) {}
};

server::server(node& n) : impl_(std::make_unique<impl>(n)) {
  auto& svr = impl_->svr;
  auto& cfg = n.config();
  auto threads = static_cast<size_t>(cfg.http_threads);
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // SO_REUSEADDR only: httplib's default also sets SO_REUSEPORT, which
  // would let a second node bind the same port and take half its traffic.
  svr.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  svr.set_read_timeout(30, 0);
  svr.set_write_timeout(30, 0);
  svr.set_keep_alive_max_count(1000);
  svr.set_keep_alive_timeout(10);
  // Bodies are limited by each handler (uploads stream with their own
  // limit); this bounds what httplib itself would buffer.
  svr.set_payload_max_length(static_cast<size_t>(cfg.max_upload_bytes)
                             + (size_t{1} << 20));
  svr.set_post_routing_handler(
    [](const httplib::Request& req, httplib::Response& res) {
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
  router r{svr};
  add_native_api(r, n);
  add_uploads_api(r, n);
  add_media(r, n);
  add_apivideo_api(r, n);
  add_gcore_api(r, n);
  add_flare_api(r, n);
  add_embed(r, n);
  add_tus(r, n);
  // Every other path's OPTIONS (CORS preflights): registered after the
  // routes, so that a route may answer its own (tus on /upload/).
  svr.Options(R"(.*)", [](const httplib::Request&, httplib::Response& res) {
    res.status = 204;
  });
}

server::~server() = default;

caf::error server::bind() {
  auto& cfg = impl_->n.config();
  if (!impl_->svr.bind_to_port(cfg.listen_host.c_str(), cfg.listen_port))
    return make_error(ec::unavailable, "cannot listen on " + cfg.listen_host
                                         + ":"
                                         + std::to_string(cfg.listen_port));
  return {};
}

void server::run() {
  impl_->svr.listen_after_bind();
}

void server::stop() {
  impl_->svr.stop();
}

} // namespace reel::http
