#pragma once

// The node's HTTP front: every dialect's routes on one cpp-httplib server,
// plain HTTP or, with --tls-cert and --tls-key, HTTPS.

#include "actors/node.hpp"

#include <memory>

namespace reel::http {

/// With cfg.tls_cert set: whether the TLS library accepts that certificate
/// and key for a server (it refuses some that load, e.g. RSA keys under
/// 2048 bits). Without: nothing to check. Call before starting the node.
caf::error check_tls(const node_config& cfg);

class server {
public:
  explicit server(node& n);
  ~server();

  /// Binds cfg.listen_host:cfg.listen_port; fails if it cannot, or if the
  /// TLS certificate and key were refused.
  caf::error bind();
  /// Serves until stop() is called (from any thread or a signal watcher).
  void run();
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace reel::http
