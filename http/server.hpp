#pragma once

// The node's HTTP server: every dialect's routes on cpp-httplib's request
// processing behind reel's own front (http/front.hpp), plain HTTP or, with
// --tls-cert and --tls-key, HTTPS; with --metrics-listen a second, plain
// listener for /metrics.

#include "actors/node.hpp"

#include <memory>

namespace reel::http {

class route_table;

/// With cfg.tls_cert set: whether the TLS library accepts that certificate
/// and key for a server (it refuses some that load, e.g. RSA keys under
/// 2048 bits). Without: nothing to check. Call before starting the node.
caf::error check_tls(const node_config& cfg);

/// GET /metrics: the Prometheus text of every metric (ops/metrics.hpp),
/// storage gauges refreshed first. Defined with the native API
/// (native_api.cpp), which registers it itself unless --metrics-listen
/// moves it to its own listener.
void add_metrics(route_table& t, node& n);

class server {
public:
  explicit server(node& n);
  ~server();

  /// Binds cfg.listen_host:cfg.listen_port (and cfg.metrics_listen); fails
  /// if it cannot, or if the TLS certificate and key were refused.
  caf::error bind();
  /// Serves until stop() is called (from any thread or a signal watcher).
  void run();
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace reel::http
