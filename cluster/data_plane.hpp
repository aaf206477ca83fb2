#pragma once

// The data plane: blobs move between nodes over plain TCP (Asio), never
// through actor mailboxes. One request names a file under the data
// directory and an offset; the answer streams it in frames, each with its
// CRC-32, and ends with the SHA-256 of the whole file. A transfer cut off
// resumes from what the receiver already has; a received blob counts only
// once its digest matches the one the caller expected.
//
// Request:  "REEL" u8 version=1, u16 path length, path, u64 offset,
//           32-byte HMAC-SHA256(secret, path | offset)
// Answer:   u8 status (0 ok, 1 not found, 2 refused), u64 file size, then
//           frames: u32 length, u32 crc32, bytes; a frame of length 0 ends
//           the file and is followed by the 32-byte SHA-256 of all of it.

#include "ops/error.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

namespace reel::cluster {

/// True for the relative paths the data plane serves: sources/<id>/source,
/// media/<id>/<file>, work/<id>/<file>, with safe names and no "..".
bool servable_path(const std::string& rel);

class blob_server {
public:
  /// Serves files under `data_dir` on host:port. `secret` authenticates
  /// requests (every node of a cluster has the same one).
  blob_server(std::string data_dir, std::string secret);
  ~blob_server();

  /// Binds and starts serving in background threads. Port 0 picks one.
  caf::error start(const std::string& host, uint16_t port);
  uint16_t port() const;
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

struct fetch_stats {
  int64_t bytes = 0;        // received in this call
  int64_t resumed_from = 0; // bytes that were already there
};

/// Fetches `rel` from the node at host:port into `dest` (through
/// dest + ".part", resuming it), verifies the SHA-256 against
/// `expected_sha256` (hex; empty: take the sender's) and renames.
caf::expected<fetch_stats> fetch_blob(const std::string& host, uint16_t port,
                                      const std::string& secret,
                                      const std::string& rel,
                                      const std::string& dest,
                                      const std::string& expected_sha256,
                                      int timeout_ms = 30000);

} // namespace reel::cluster
