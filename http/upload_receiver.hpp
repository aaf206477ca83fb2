#pragma once

// Streams an upload body to a file under the blob store's tmp/ directory,
// checksumming as it goes; memory use is one buffer, whatever the size.

#include "ops/error.hpp"

#include <httplib.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace reel {
class blob_store;
}

namespace reel::http {

struct received_upload {
  std::string tmp_path; // remove it (or adopt it) when done
  std::string filename; // as the client named it
  int64_t bytes = 0;
  std::string sha256;
  bool has_file = false;
  int extra_files = 0; // file parts after the first (not stored)
  std::map<std::string, std::string> fields; // the other (small) parts
};

/// Removes a temporary upload file when it goes out of scope, unless
/// released (adopted into the blob store).
struct tmp_guard {
  std::string path;
  tmp_guard(const tmp_guard&) = delete;
  tmp_guard& operator=(const tmp_guard&) = delete;
  ~tmp_guard();
  void release() { path.clear(); }
};

/// Called with each small field as soon as it is complete; an error stops
/// the upload there (a field sent before the file refuses a bad request
/// before any of the file is read).
using field_check =
  std::function<caf::error(const std::string& name, const std::string& value)>;

/// Reads a multipart/form-data body: the part named `file_field` (or, with
/// `file_field` empty, the first part with a file name) goes to a
/// temporary file, every other part (at most 32, 8 KiB each) into `fields`.
/// Fails with ec::too_large past `max_bytes` (also for chunked bodies),
/// ec::invalid_argument for a malformed body, or `check`'s error; no file is
/// left behind then.
caf::expected<received_upload>
receive_multipart(const httplib::Request& req,
                  const httplib::ContentReader& reader, blob_store& blobs,
                  const std::string& file_field, int64_t max_bytes,
                  const field_check& check = {});

/// Reads a raw body (e.g. a presigned PUT) into a temporary file, with
/// the same limits and guarantees; `filename` is left empty.
caf::expected<received_upload> receive_body(const httplib::Request& req,
                                            const httplib::ContentReader& reader,
                                            blob_store& blobs, int64_t max_bytes);

} // namespace reel::http
