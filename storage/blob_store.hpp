#pragma once

// Blob files under the data directory:
//   sources/<id>/source      the uploaded file, as received
//   sources/<id>/part-*      parts of a source uploaded in parts
//   work/<id>/               chunk and audio packet files (intermediate)
//   media/<id>/              published outputs (HLS, poster)
//   tmp/                     uploads being received
// Files are written to a temporary name, fsync'd and renamed; every path a
// client names is checked to stay inside its video's directory.

#include "ops/error.hpp"
#include "storage/records.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace reel {

/// Things removed (or found) and their bytes: what garbage collection
/// reports for each kind of leftover.
struct gc_count {
  int64_t count = 0;
  int64_t bytes = 0;
  gc_count& operator+=(const gc_count& x) {
    count += x.count;
    bytes += x.bytes;
    return *this;
  }
};

/// One entry directly under sources/, work/ or media/: normally a video's
/// directory, named by its id.
struct blob_dir {
  std::string area; // "sources", "work" or "media"
  std::string name;
  int64_t bytes = 0;     // every file below it
  int64_t newest_ms = 0; // its latest modification, or of anything below
};

class blob_store {
public:
  explicit blob_store(std::string data_dir);

  /// Creates the directory layout.
  caf::error init();

  const std::string& root() const { return root_; }
  // Paths of a video's files. Every one is built from a video id only when
  // it is a UUID; for anything else (an id from the wire such as "../db")
  // each answers a path under a directory that never exists, so no file
  // outside the data directory is ever named.
  std::string source_path(const std::string& id) const;
  std::string work_dir(const std::string& id) const;
  std::string media_dir(const std::string& id) const;
  /// work/<id>/c00003-720p.pkt: chunk `index` encoded for rung `rung`.
  std::string chunk_file(const std::string& id, int32_t index,
                         const std::string& rung) const;
  /// work/<id>/audio.pkt: the video's encoded audio.
  std::string audio_file(const std::string& id) const;
  /// work/<id>/images: poster and screenshots before they are published.
  std::string images_dir(const std::string& id) const;
  /// A fresh unique path under tmp/ for an upload in progress.
  std::string new_tmp_path() const;

  /// A file next to the source: sources/<id>/<name> (e.g. a part).
  std::string source_file(const std::string& id, const std::string& name) const;

  /// Moves a finished upload from tmp/ to sources/<id>/<name> (fsync'd).
  caf::error adopt_source(const std::string& tmp, const std::string& id,
                          const std::string& name = "source");

  /// Resolves `rel` (e.g. "720p/seg_00001.m4s") inside the media directory
  /// of `id`; fails with not_found for anything that would leave it.
  caf::expected<std::string> media_file(const std::string& id,
                                        const std::string& rel) const;

  /// Every regular file under media/<id>/ with its size and SHA-256.
  caf::expected<std::vector<file_record>> index_media(const std::string& id) const;

  /// Makes every file of a video's media durable (one syncfs).
  caf::error sync_media(const std::string& id) const;

  /// Removes everything stored for a video (nothing for an id that is not
  /// a UUID).
  void remove_video(const std::string& id) const;

  /// Removes tmp/ leftovers (uploads cut off by a crash).
  void clean_tmp() const;

  /// Bytes used by every blob.
  int64_t used_bytes() const;

  // Garbage collection (node::gc decides what is garbage).

  /// Removes the entries of tmp/ (uploads being received) last written
  /// before `before_ms` (ms since the epoch).
  gc_count remove_tmp_before(int64_t before_ms) const;

  /// Every entry under sources/, work/ and media/.
  std::vector<blob_dir> video_dirs() const;

  /// Removes one of them, whole.
  gc_count remove_dir(const blob_dir& d) const;

  /// Removes the part files (part-*) of a video's source upload.
  gc_count remove_parts(const std::string& id) const;

private:
  std::string root_;
};

/// fsync a file or a directory by path.
caf::error fsync_path(const std::string& path);

/// syncfs: flushes the whole file system that holds `path` (a directory).
caf::error syncfs_path(const std::string& path);

} // namespace reel
