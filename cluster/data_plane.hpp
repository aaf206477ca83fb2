#pragma once

// The data plane: blobs move between nodes over TLS (Asio's SSL streams,
// certificates checked both ways against the cluster CA, cluster/pki.hpp),
// never through actor mailboxes. A request names a blob by area, video id
// and file name, never by path: each node maps the name to its own files.
// The answer streams the file in frames, each with its CRC-32, and ends
// with the SHA-256 of the whole file. A transfer cut off resumes from what
// the receiver already has; a received blob counts only once its digest
// matches the one the caller expected and it is on disk (fsync'd file and
// directory).
//
// Request:  "REEL" u8 version=2, u8 area, 16 bytes video UUID, u8 name
//           length, name, u64 offset
// Answer:   u8 status (0 ok, 1 not found, 2 refused), u64 file size, then
//           frames: u32 length, u32 crc32, bytes; a frame of length 0 ends
//           the file and is followed by the 32-byte SHA-256 of all of it.
//
// The server is bounded: one I/O thread, at most `max_connections` open
// connections (more are closed at once), a deadline on the handshake, the
// request and every frame written.

#include "cluster/pki.hpp"
#include "ops/error.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace reel::cluster {

/// Where a blob lives under a data directory.
enum class blob_area : uint8_t {
  source = 1, // sources/<id>/<name>: "source", "part-...", "poster-..."
  media = 2,  // media/<id>/<name>, name may have subdirectories
  work = 3,   // work/<id>/<name>: chunk and audio packet files
};

/// A blob as requests name it.
struct blob_ref {
  blob_area area = blob_area::source;
  std::string video_id; // a UUID
  std::string name;     // one to three safe segments joined by '/'
};

/// Whether `r` names a blob a node may serve: a known area, a UUID, and a
/// name of at most three segments of [A-Za-z0-9_.-] (no "." or "..", at
/// most 128 characters each, 200 in all; a source name is one segment:
/// "source", "part-*" or "poster-*").
bool valid(const blob_ref& r);

/// Its path relative to a data directory ("media/<id>/720p.mp4").
std::string relative_path(const blob_ref& r);

/// The blob a relative path names, if it names one `valid` accepts.
std::optional<blob_ref> ref_of(const std::string& rel);

/// The TLS both ends of the data plane use: this node's certificate and
/// key, and the cluster CA every peer must be signed by. Loaded once per
/// node; thread-safe.
class link_security {
public:
  ~link_security();
  /// From a node's credentials (issue_credentials).
  static caf::expected<std::shared_ptr<link_security>>
  load(const credentials& c);
  /// No TLS at all: only for benchmarks that measure what TLS costs and for
  /// unit tests of the framing. reeld never uses it.
  static std::shared_ptr<link_security> plaintext();
  bool tls() const;

  struct impl;
  impl& get() const { return *impl_; }

private:
  link_security() = default;
  std::unique_ptr<impl> impl_;
};

/// A node's blob server: where to reach it, and the node id its
/// certificate must carry.
struct blob_endpoint {
  std::string node_id; // "" = do not check the peer's name (tests)
  std::string host;
  uint16_t port = 0;
};

struct blob_server_options {
  /// Open connections at most; more are closed as they come. Default: 64.
  int max_connections = 64;
  /// Deadline for the TLS handshake and the request. Default: 5 s.
  int request_timeout_ms = 5000;
  /// Deadline for each frame written (a stalled receiver). Default: 30 s.
  int write_timeout_ms = 30000;
  /// How long a connection may wait for its next request once one was
  /// answered (peers reuse connections). Default: 15 s.
  int idle_timeout_ms = 15000;
};

class blob_server {
public:
  /// Serves files under `data_dir` to peers that pass `security`.
  blob_server(std::string data_dir, std::shared_ptr<link_security> security,
              blob_server_options opts = {});
  ~blob_server();

  /// Binds and starts serving on one background thread. Port 0 picks one.
  caf::error start(const std::string& host, uint16_t port);
  uint16_t port() const;
  void stop();

  /// Connections open now (for tests and metrics).
  int open_connections() const;

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

struct fetch_stats {
  int64_t bytes = 0;        // received in this call
  int64_t resumed_from = 0; // bytes that were already there
};

/// Fetches `ref` from `from` into `dest` (through dest + ".part", resuming
/// it), verifies the SHA-256 against `expected_sha256` (hex; empty: take
/// the sender's), makes it durable (fsync of the file and its directory)
/// and renames it into place.
caf::expected<fetch_stats>
fetch_blob(const blob_endpoint& from, const link_security& security,
           const blob_ref& ref, const std::string& dest,
           const std::string& expected_sha256, int timeout_ms = 30000);

} // namespace reel::cluster
