#pragma once

// reeld's configuration: every option in one struct, defaults in the struct.
// Read from the command line (`--name VALUE` or `--name=VALUE`) and from an
// optional file (`--config FILE`, lines `name = value`, `#` comments); the
// command line wins.

#include "ops/error.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace reel {

struct node_config {
  /// HTTP listen address. Default: 127.0.0.1:8080.
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8080;
  /// Data directory (RocksDB, sources, media). Default: ./data.
  std::string data_dir = "./data";
  /// This node's name. Default: "node-" + the listen port.
  std::string node_id;
  /// Base of every URL handed out. Default: http://<listen>, or
  /// https://<listen> when tls_cert is set.
  std::string public_url;
  /// Serve HTTPS with this PEM certificate (chain); needs tls_key. Default:
  /// empty (plain HTTP).
  std::string tls_cert;
  /// The certificate's PEM private key, unencrypted; needs tls_cert.
  /// Default: empty.
  std::string tls_key;
  /// On an empty data directory, register this as an admin key of tenant
  /// "default". Default: empty (a key is generated and printed once).
  std::string bootstrap_key;
  /// Where this node's member actor listens for the others (HOST:PORT);
  /// empty: a node on its own. Its data plane listens on the same host, on
  /// a port the OS picks (announced to the others).
  std::string cluster_listen;
  /// Members to join through (any one is enough).
  std::vector<std::string> join;
  /// Shared by every node of a cluster (--cluster-secret or
  /// --cluster-secret-file): members prove they hold it, and it keys tokens
  /// and secrets at rest. Required with cluster_listen. Default: empty.
  std::string cluster_secret;
  /// Copies of every video's media (owner included). Default: 2.
  int replicas = 2;
  /// Largest accepted upload. Default: 20 GiB.
  int64_t max_upload_bytes = int64_t{20} << 30;
  /// Exempt from the URL importer's private-address rule: CIDRs
  /// (127.0.0.0/8, fd00::/8), single addresses or exact host names.
  /// Default: none.
  std::vector<std::string> import_allow;
  /// Largest source imported from a URL. Default: max_upload_bytes.
  int64_t import_max_bytes = 0;
  /// Seconds a whole URL import may take. Default: 600.
  int import_timeout = 600;
  /// Seconds before the first retry of a failed webhook delivery (then
  /// doubling). Default: 5.
  int webhook_retry_seconds = 5;
  /// Seconds an access token from /auth/api-key is valid. Default: 3600.
  int64_t access_token_ttl = 3600;
  /// Transcode workers on this node. Default: number of cores.
  int workers = 0;
  /// Target chunk length (cut at source keyframes). Default: 4 s: small
  /// enough that the last chunks of a video keep every worker busy.
  double chunk_seconds = 4;
  /// Target HLS segment length. Default: 4 s.
  double segment_seconds = 4;
  /// x264 preset. Default: veryfast.
  std::string preset = "veryfast";
  /// HTTP worker threads kept ready; more start while every one is busy,
  /// up to max(http_threads, 256). A worker answers one request at a time
  /// (a long upload or download holds one while it runs); connections
  /// waiting for a request hold none. Default: 16.
  int http_threads = 16;
  /// HTTP connections open at once, idle ones included. At the cap a new
  /// connection closes the one that has waited longest for its next
  /// request; when every open one is being answered, it gets 503 and is
  /// closed. Default: 1024.
  int http_max_connections = 1024;
  /// Serve GET /metrics (and /healthz) on this HOST:PORT, plain HTTP, and
  /// no longer on the main listener. Default: empty (/metrics on the main
  /// listener).
  std::string metrics_listen;
  /// API requests a second each API key may make (its tenant's limit, as
  /// many at once); past it the answer is 429 with Retry-After. Every API
  /// answer carries X-RateLimit-Limit, -Remaining and -Retry-After. 0: no
  /// limit. Default: 100.
  int64_t rate_limit = 100;
  /// The limit of one tenant's keys instead (--tenant-rate-limit T=N,
  /// repeatable). Default: none.
  std::map<std::string, int64_t> tenant_rate_limits;
  /// Directory holding the web player's hls.min.js. Default: the
  /// node_modules/hls.js/dist beside the build directory, found at start.
  std::string player_dir;
  /// debug, info, warn or error. Default: info.
  std::string log_level = "info";
  /// --help was given: print node_usage() and exit.
  bool help = false;
};

/// Parses argv (and the --config file it names). With --tls-cert and
/// --tls-key, also reads both files: a certificate or key that cannot be
/// loaded, or a key that does not match the certificate, is an error here.
caf::expected<node_config> parse_node_config(int argc, char** argv);

/// The usage text of reeld.
std::string node_usage();

/// "host:port" -> parts; fails for anything else.
caf::error parse_host_port(const std::string& s, std::string& host,
                           uint16_t& port);

} // namespace reel
