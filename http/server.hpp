#pragma once

// The node's HTTP front: every dialect's routes on one cpp-httplib server.

#include "actors/node.hpp"

#include <memory>

namespace reel::http {

class server {
public:
  explicit server(node& n);
  ~server();

  /// Binds cfg.listen_host:cfg.listen_port; fails if it cannot.
  caf::error bind();
  /// Serves until stop() is called (from any thread or a signal watcher).
  void run();
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace reel::http
