#pragma once

// reel's own HTTP front, in front of cpp-httplib's request processing.
//
// Debian's cpp-httplib is a shared library with its limits compiled in:
// 8 KiB per header line but no limit on the number or total size of the
// header lines it keeps in memory, and a blocking thread per connection
// for as long as the connection is open. The front owns the listening
// socket instead: it accepts with Asio on one I/O thread, reads each
// request head (request line and header fields) asynchronously within
// bounds and deadlines, and only hands a complete head to a worker thread,
// which runs httplib's own processing of that one request (routes,
// handlers, bodies, the error handler) over a stream of the front's
// (processor). Idle and slow connections hold no thread; a connection
// holds a buffer of at most max_request_line + max_header_bytes (plus
// slack) while its head arrives.

#include "ops/error.hpp"

#include <httplib.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace reel::http {

/// httplib's request processing, driven one request at a time by a front.
/// Configure it like any httplib::Server (routes, handlers, error handler,
/// timeouts, keep-alive limits, payload limit), except:
/// - never call httplib's set_post_routing_handler (the processor owns it:
///   it adds X-Content-Type-Options: nosniff to every answer and notes an
///   answer's Connection: close); use set_answer_hook instead;
/// - never call listen/bind_to_port: the front listens.
class processor : public httplib::Server {
public:
  processor();

  /// Runs on every answer right before its status line and headers are
  /// written (httplib's post-routing handler): 404s, errors and 400s for
  /// malformed requests included.
  void set_answer_hook(Handler h) { hook_ = std::move(h); }

  /// httplib's processing of one request whose head is readable from
  /// `strm` (the keep-alive decision is the caller's: see front.cpp).
  /// `answer_closes` is set when the answer said Connection: close.
  bool process(httplib::Stream& strm, bool close_connection,
               bool& connection_closed, bool& answer_closes,
               const std::function<void(httplib::Request&)>& setup);

  /// Marks the processor as serving (a listening socket) or shutting down
  /// (-1): httplib stops streaming content providers once shutting down.
  void set_listening(int fd) { svr_sock_ = fd; }

  /// The timeouts and keep-alive limits configured through httplib's
  /// setters.
  std::chrono::milliseconds read_timeout() const;
  std::chrono::milliseconds write_timeout() const;
  std::chrono::milliseconds keep_alive_timeout() const;
  size_t keep_alive_max_count() const { return keep_alive_max_count_; }

private:
  Handler hook_;
};

struct front_config {
  /// Where to listen. Default: 127.0.0.1, a port the OS picks.
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  /// PEM certificate (chain) and unencrypted key: HTTPS, and only HTTPS.
  /// Default: empty (plain HTTP).
  std::string tls_cert;
  std::string tls_key;
  /// Connections open at once (waiting for a request, reading one or being
  /// answered). At the cap a new connection makes room by closing the one
  /// that has waited longest for its next request head; when every open
  /// connection is being answered, it is answered 503 and closed.
  /// Default: 1024.
  size_t max_connections = 1024;
  /// Worker threads kept ready; more start while every one is busy, up to
  /// max_threads (one per request being answered). Default: 16 and 256.
  size_t min_threads = 16;
  size_t max_threads = 256;
  /// The longest request line, CRLF included (longer: 414). Default: 8192.
  size_t max_request_line = 8192;
  /// The header section after the request line, in bytes, and in fields
  /// (more: 431). Default: 32 KiB, 100.
  size_t max_header_bytes = 32 << 10;
  size_t max_header_fields = 100;
  /// How long a request head may take once its first byte came, and a TLS
  /// handshake once connected (then the connection is closed). Default:
  /// 10 s.
  std::chrono::milliseconds head_timeout{10000};
  /// The `listener` label of the front's metrics. Default: "main".
  std::string name = "main";
};

/// Whether OpenSSL accepts `cert` and `key` for a TLS server (it refuses
/// some that load, e.g. RSA keys under 2048 bits); the reason if not.
caf::error check_tls_server(const std::string& cert, const std::string& key);

/// A listener serving `proc` (see the top of this file).
class front {
public:
  front(processor& proc, front_config cfg);
  ~front();
  front(const front&) = delete;
  front& operator=(const front&) = delete;

  /// Listens on cfg.host:cfg.port (SO_REUSEADDR, never SO_REUSEPORT,
  /// backlog 1024); fails if the address is taken or the TLS files are
  /// refused.
  caf::error bind();
  /// The port bound (after bind()).
  uint16_t port() const;
  /// Serves on the calling thread until stop(); then waits for the
  /// requests being answered.
  void run();
  /// From any thread: stops accepting, closes the connections that wait
  /// for a request; requests being answered may finish (content being
  /// streamed stops, as with httplib's own stop()) for 10 s, then their
  /// connections are shut down.
  void stop();

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace reel::http
