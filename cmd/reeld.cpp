// reeld: one reel node. See `reeld --help` and README.md.

#include "actors/node.hpp"
#include "http/server.hpp"
#include "ops/config.hpp"
#include "ops/log.hpp"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <thread>

namespace {

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

} // namespace

int main(int argc, char** argv) {
  using namespace reel;
  auto cfg = parse_node_config(argc, argv);
  if (cfg && cfg->help) {
    std::fputs(node_usage().c_str(), stdout);
    return 0;
  }
  if (!cfg) {
    std::fprintf(stderr, "reeld: %s\n(see reeld --help)\n",
                 message_of(cfg.error()).c_str());
    return 2;
  }
  // A certificate OpenSSL refuses is a configuration error too: found
  // before the node opens its data or prints a key.
  if (auto err = http::check_tls(*cfg)) {
    std::fprintf(stderr, "reeld: %s\n", message_of(err).c_str());
    return 2;
  }
  // Signals are taken by a watcher thread, never by the worker threads.
  auto signals = stop_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  log::init(cfg->node_id, log::parse_level(cfg->log_level));
  auto n = node::start(*cfg);
  if (!n) {
    log::error("node.start_failed", {{"error", message_of(n.error())}});
    return 1;
  }
  auto key = (*n)->bootstrap();
  if (!key) {
    log::error("node.bootstrap_failed", {{"error", message_of(key.error())}});
    return 1;
  }
  if (!key->empty()) {
    std::printf("reel: admin API key for tenant \"default\" (shown once): %s\n",
                key->c_str());
    std::fflush(stdout);
  }
  http::server srv{**n};
  if (auto err = srv.bind()) {
    log::error("http.bind_failed", {{"error", message_of(err)}});
    return 1;
  }
  // Leftovers (abandoned uploads, orphaned blobs, spare copies, old
  // webhook deliveries) a day old are removed every hour.
  (*n)->start_periodic_gc(3600, 86400);
  std::atomic<bool> stopping{false};
  std::thread watcher{[&srv, &stopping, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    stopping = true;
    log::info("node.stopping", {{"signal", std::to_string(sig)}});
    srv.stop();
  }};
  std::printf("reel: node %s listening on %s (data in %s)\n",
              cfg->node_id.c_str(), cfg->public_url.c_str(),
              cfg->data_dir.c_str());
  std::fflush(stdout);
  log::info("node.ready", {{"listen", cfg->listen_host + ":"
                                        + std::to_string(cfg->listen_port)},
                           {"tls", cfg->tls_cert.empty() ? "off" : "on"},
                           {"public_url", cfg->public_url}});
  srv.run();
  // Wake the watcher if the server ended on its own.
  if (!stopping)
    pthread_kill(watcher.native_handle(), SIGTERM);
  watcher.join();
  (*n)->stop();
  log::info("node.stopped");
  return 0;
}
