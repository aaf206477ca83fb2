#include "http/server.hpp"

#include "http/routes.hpp"
#include "http/tus.hpp"
#include "ops/log.hpp"

#include <openssl/err.h>
#include <sys/socket.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace reel::http {

namespace {

/// An HTTPS server when the configuration names a certificate, else a
/// plain one. Either may be invalid (is_valid()) if OpenSSL refused them.
std::unique_ptr<httplib::Server> make_server(const node_config& cfg) {
  if (cfg.tls_cert.empty())
    return std::make_unique<httplib::Server>();
  return std::make_unique<httplib::SSLServer>(cfg.tls_cert.c_str(),
                                              cfg.tls_key.c_str());
}

caf::error tls_refused(const node_config& cfg) {
  // OpenSSL's queue (this thread's) says why; httplib does not.
  auto code = ERR_peek_last_error();
  const char* reason = code != 0 ? ERR_reason_error_string(code) : nullptr;
  ERR_clear_error();
  return make_error(ec::invalid_argument,
                    "--tls-cert/--tls-key: cannot serve TLS with "
                      + cfg.tls_cert + " and " + cfg.tls_key + ": "
                      + (reason != nullptr ? reason : "refused by OpenSSL"));
}

} // namespace

caf::error check_tls(const node_config& cfg) {
  if (cfg.tls_cert.empty())
    return {};
  ERR_clear_error();
  return make_server(cfg)->is_valid() ? caf::error{} : tls_refused(cfg);
}

/// httplib's fixed thread pool lets a few slow clients (a connection holds
/// its thread until it is done) stall every other one. This pool starts a
/// thread whenever a connection finds none idle, up to `most`: slow
/// clients then cost a thread each, not the whole server.
class elastic_pool : public httplib::TaskQueue {
public:
  elastic_pool(size_t least, size_t most) : most_(most) {
    std::lock_guard<std::mutex> guard{mtx_};
    for (size_t i = 0; i < least; ++i)
      start();
  }
  ~elastic_pool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::lock_guard<std::mutex> guard{mtx_};
    jobs_.push_back(std::move(fn));
    if (idle_ < jobs_.size() && threads_.size() < most_)
      start();
    cv_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (stopping_)
        return;
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_)
      t.join();
  }

private:
  void start() { // with mtx_ held
    threads_.emplace_back([this] { work(); });
  }

  void work() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock{mtx_};
        ++idle_;
        cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        --idle_;
        if (jobs_.empty())
          return; // stopping
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      fn();
    }
  }

  const size_t most_;
  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;
  bool stopping_ = false;
};

struct server::impl {
  node& n;
  // httplib::SSLServer derives from httplib::Server: every setting below
  // applies to both alike.
  std::unique_ptr<httplib::Server> svr;
  socket_t listener = -1; // the listening socket, once made
  explicit impl(node& nd) : n(nd), svr(make_server(nd.config())) {}
};

server::server(node& n) : impl_(std::make_unique<impl>(n)) {
  auto& svr = *impl_->svr;
  auto& cfg = n.config();
  auto threads = static_cast<size_t>(cfg.http_threads);
  auto most = static_cast<size_t>(std::max(cfg.http_threads,
                                           cfg.http_max_connections));
  svr.new_task_queue = [threads, most] {
    return new elastic_pool(threads, most);
  };
  // SO_REUSEADDR only: httplib's default also sets SO_REUSEPORT, which
  // would let a second node bind the same port and take half its traffic.
  svr.set_socket_options([this](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    impl_->listener = sock; // its backlog is raised once it listens
  });
  // Small answers go out at once, not after the client's delayed ACK
  // (accepted sockets inherit it from the listening one).
  svr.set_tcp_nodelay(true);
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
  if (!impl_->svr->is_valid())
    return tls_refused(cfg);
  if (!impl_->svr->bind_to_port(cfg.listen_host.c_str(), cfg.listen_port))
    return make_error(ec::unavailable, "cannot listen on " + cfg.listen_host
                                         + ":"
                                         + std::to_string(cfg.listen_port));
  // Debian's cpp-httplib listens with a backlog of 5: a burst of new
  // connections would see SYNs dropped and retried seconds later.
  if (impl_->listener >= 0)
    ::listen(impl_->listener, 1024);
  return {};
}

void server::run() {
  impl_->svr->listen_after_bind();
}

void server::stop() {
  impl_->svr->stop();
}

} // namespace reel::http
