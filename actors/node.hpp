#pragma once

// A running node, as the HTTP layer and reeld see it: a small synchronous
// facade that asks the node's actors (with a timeout) and answers
// caf::expected. It keeps CAF's heavy headers out of http/.

#include "cluster/view.hpp"
#include "ops/config.hpp"
#include "ops/error.hpp"
#include "storage/records.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace reel {

class blob_store;
class db;

/// An authenticated caller.
struct principal {
  std::string tenant;
  bool admin = false;
  std::vector<std::string> scopes; // empty: every scope

  /// Whether the key may do `scope` (e.g. "videos:write").
  bool may(const std::string& scope) const;
};

class node {
public:
  ~node();

  /// Opens the store under cfg.data_dir, starts the actor system, the
  /// scheduler with its workers and the video manager (which resumes every
  /// unfinished video).
  static caf::expected<std::unique_ptr<node>> start(node_config cfg);

  const node_config& config() const;
  blob_store& blobs();
  db& store();

  /// On a store without keys, registers an admin key of tenant "default":
  /// cfg.bootstrap_key if given, else a generated one. Answers the key when
  /// one was registered now, an empty string when keys existed already.
  caf::expected<std::string> bootstrap();

  /// Registers a new API key for `tenant` and answers it (shown once).
  /// A key limited to `scopes` is a personal access token "flr_pat_...";
  /// one without scopes may do everything ("sk-...").
  caf::expected<std::string> create_key(const std::string& tenant, bool admin,
                                        std::vector<std::string> scopes = {});

  /// The principal a key belongs to; ec::unauthorized if none.
  caf::expected<principal> authenticate(const std::string& key);

  /// Registers a video. With a source received at `tmp_source` (moved
  /// into the blob store) it is processed at once; with draft.import_url it
  /// is imported first; with neither it waits in "created" for its source
  /// (add_source_part).
  caf::expected<video_record> create_video(video_record draft,
                                           const std::string& tmp_source);

  /// Stores a part of a created video's source received at `tmp` (on this
  /// node) and registers it with the video's owner; the last missing part
  /// starts processing. `mode` "bytes" (part.index = first byte) or
  /// "parts" (part.index = part number); `total` -1 while unknown.
  /// ec::conflict once the video has its source.
  caf::expected<video_record> add_source_part(const std::string& tenant,
                                              const std::string& id,
                                              const std::string& mode,
                                              int64_t total, upload_part part,
                                              const std::string& tmp);

  /// Counts a play of video `id` (with its owner); answers the views.
  caf::expected<int64_t> count_view(const std::string& id);

  /// Applies a client's change to a video (JSON merge patch, apply_patch).
  caf::expected<video_record> update_video(const std::string& tenant,
                                           const std::string& id,
                                           const std::string& patch);

  /// A copy of a video's source under tmp/ (a hard link), for a new video
  /// made from it; fetched from another node when it is not here.
  caf::expected<std::string> copy_source(const std::string& tenant,
                                         const std::string& id);

  /// The path of a video's source on this node (fetched from another
  /// node first when it is not here).
  caf::expected<std::string> source_file(const std::string& id);

  /// The file of the poster a client set for video `v` (fetched from
  /// another node when it is not here).
  caf::expected<std::string> poster_file(const video_record& v);

  /// Makes the image at `image` (moved; JPEG or PNG) the video's poster.
  caf::expected<video_record> set_poster(const std::string& tenant,
                                         const std::string& id,
                                         const std::string& image);

  /// The secret that signs this node's tokens (the same on every node of
  /// a cluster).
  const std::string& signing_secret() const;

  /// Upload tokens (api.video): kept on every node.
  caf::expected<upload_token_record> create_upload_token(const std::string& tenant,
                                                         int64_t ttl_s);
  caf::expected<std::vector<upload_token_record>>
  list_upload_tokens(const std::string& tenant);
  /// A live (unexpired) token; ec::not_found otherwise.
  caf::expected<upload_token_record> upload_token(const std::string& token);
  caf::error delete_upload_token(const std::string& tenant,
                                 const std::string& token);

  /// Whether the API key whose SHA-256 is `key_hash` still exists, and
  /// whom it names.
  caf::expected<principal> key_principal(const std::string& key_hash);
  /// `tenant` empty: any tenant (admins).
  caf::expected<video_record> get_video(const std::string& tenant,
                                        const std::string& id);
  caf::expected<video_page> list_videos(const std::string& tenant,
                                        int32_t offset, int32_t limit);
  caf::error delete_video(const std::string& tenant, const std::string& id);

  caf::expected<folder_record> create_folder(const std::string& tenant,
                                             const std::string& path);
  caf::expected<bool> folder_exists(const std::string& tenant,
                                    const std::string& path);
  caf::expected<std::vector<folder_record>>
  list_folders(const std::string& tenant);

  /// A JPEG of the frame at `at_seconds` into the (clipped) video, made once
  /// and then served from its cache file; answers the file's path.
  caf::expected<std::string> thumbnail(const std::string& id, double at_seconds);

  /// The nodes of a video by placement: its owner, then its replicas.
  std::vector<std::string> placement(const std::string& id) const;

  /// Every member of the cluster (this node alone without one).
  caf::expected<std::vector<member_info>> members();

  /// Starts or ends the draining of a node (any member, by id).
  caf::expected<member_info> drain(const std::string& node_id, bool on);

  /// A media file of a video: the local copy, or one fetched from a node
  /// that holds it (verified, then kept). `rel` as in media_file().
  caf::expected<std::string> media_file(const std::string& id,
                                        const std::string& rel);

  /// Videos of every tenant by state.
  caf::expected<std::map<std::string, int64_t>> video_counts();

  /// (queued, running) transcode tasks.
  caf::expected<std::pair<int64_t, int64_t>> task_counts();

  /// Stops every actor; pending requests fail.
  void stop();

private:
  node();
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace reel
