#pragma once

// A running node, as the HTTP layer and reeld see it: a small synchronous
// facade that asks the node's actors (with a timeout) and answers
// caf::expected. It keeps CAF's heavy headers out of http/.

#include "cluster/view.hpp"
#include "ops/config.hpp"
#include "ops/error.hpp"
#include "storage/blob_store.hpp"
#include "storage/records.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace reel {

class db;
struct task_info; // actors/types.hpp

/// A tenant (the name its keys carry) with its keys and videos.
struct tenant_summary {
  std::string tenant;
  int64_t keys = 0;
  int64_t videos = 0;
};

/// What this node's store takes on disk, and its background work.
struct store_usage {
  int64_t db_bytes = 0;   // RocksDB, approximate (SST + memtables)
  int64_t compactions_running = 0;
  int64_t compaction_pending_bytes = 0;
};

/// What a garbage collection removed, per kind, in the order they ran:
/// "tmp", "tus" (when tus is served), "parts", "orphans", "replicas",
/// "deliveries".
using gc_report = std::vector<std::pair<std::string, gc_count>>;

/// An authenticated caller.
struct principal {
  std::string tenant;
  bool admin = false;
  std::vector<std::string> scopes; // empty: every scope
  std::string key_hash; // SHA-256 of the key (tokens it makes name it)

  /// Whether the key may do `scope` (e.g. "videos:write").
  bool may(const std::string& scope) const;
};

/// Client keys made from a request's Idempotency-Key header start with
/// this (Flare's s3Keys never do: they are object keys of its own).
inline constexpr const char* idempotency_prefix = "idempotency:";

/// The id of an API key that tokens carry: the first 16 hex digits of its
/// SHA-256 (node::key_by_id finds the key again).
inline std::string key_id_of(const std::string& key_hash) {
  return key_hash.substr(0, 16);
}

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
  /// The store's size and compactions.
  store_usage store_stats();
  /// The size of the blob files (sources/, work/, media/): a walk of the
  /// directories, so callers keep it a while.
  int64_t blob_bytes();

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

  /// Whether this node may change existing videos: alone, or in a
  /// cluster while it sees a majority of the members (a node cut off from
  /// them answers 503 to such writes; docs/cluster.md, "Partitions").
  bool has_quorum() const;

  /// Registers a video. With a source received at `tmp_source` (moved
  /// into the blob store) it is processed at once; with draft.import_url it
  /// is imported first; with neither it waits in "created" for its source
  /// (add_source_part). A draft whose client key is an idempotency key
  /// (idempotency_prefix) that made a video already answers that video:
  /// a retried create never makes a second one.
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

  /// Downloads the image at `url` (by the URL importer's rules: SSRF
  /// checks, --import-allow, at most `max_bytes`, `timeout_s`) into a tmp
  /// file and answers its path; in an actor of its own, never on the
  /// caller's thread.
  caf::expected<std::string> fetch_image(const std::string& url,
                                         int64_t max_bytes, int timeout_s);

  /// Makes the image at `image` (moved; JPEG or PNG) the video's poster.
  caf::expected<video_record> set_poster(const std::string& tenant,
                                         const std::string& id,
                                         const std::string& image);

  /// The secret that signs this node's tokens (the same on every node of
  /// a cluster).
  const std::string& signing_secret() const;

  /// Seals secrets kept at rest (docs/security.md): its key comes from the
  /// cluster secret, or a lone node's own random one.
  const reel::sealer& sealer() const;

  /// Upload tokens (api.video): kept on every node, sealed, in rows named
  /// by a keyed digest of the token; answered with the token opened.
  caf::expected<upload_token_record> create_upload_token(const std::string& tenant,
                                                         int64_t ttl_s);
  caf::expected<std::vector<upload_token_record>>
  list_upload_tokens(const std::string& tenant);
  /// A live (unexpired) token; ec::not_found otherwise.
  caf::expected<upload_token_record> upload_token(const std::string& token);
  caf::error delete_upload_token(const std::string& tenant,
                                 const std::string& token);

  /// Webhook subscriptions (kept on every node); `format` "native",
  /// "gcore" or "apivideo". Unknown events are ec::invalid_argument.
  caf::expected<webhook_record> create_webhook(const std::string& tenant,
                                               const std::string& url,
                                               std::vector<std::string> events,
                                               const std::string& format);
  caf::expected<std::vector<webhook_record>>
  list_webhooks(const std::string& tenant);
  caf::error delete_webhook(const std::string& tenant, const std::string& id);
  /// The deliveries in this node's outbox, newest first ("" = any tenant,
  /// any status).
  caf::expected<std::vector<delivery_record>>
  list_deliveries(const std::string& tenant, const std::string& status,
                  size_t limit);

  /// Whether the API key whose SHA-256 is `key_hash` still exists, and
  /// whom it names.
  caf::expected<principal> key_principal(const std::string& key_hash);
  /// The same for the key a token names by its id (key_id_of): the one key
  /// whose SHA-256 starts with `key_id` (16 hex digits); ec::unauthorized
  /// when it was revoked or never existed.
  caf::expected<principal> key_by_id(const std::string& key_id);
  /// `tenant` empty: any tenant (admins). `version` as db::get_video's.
  caf::expected<video_record> get_video(const std::string& tenant,
                                        const std::string& id,
                                        uint64_t* version = nullptr);
  /// The video whose integer id (Gcore's) is `number`, through the index
  /// of numbers; ec::not_found when there is none or it is another
  /// tenant's (`tenant` empty: any tenant).
  caf::expected<video_record> video_by_number(const std::string& tenant,
                                              uint64_t number);
  /// The video of `tenant` a client named `key` (Flare's s3Key), through
  /// the index of keys; ec::not_found when there is none.
  caf::expected<video_record> video_by_key(const std::string& tenant,
                                           const std::string& key);
  caf::expected<video_page> list_videos(const std::string& tenant,
                                        int32_t offset, int32_t limit);
  /// Which videos a filtered list holds ("" matches any).
  struct video_filter {
    std::string state;       // one state
    std::string created_via; // made through one API (video_record)
  };
  caf::error delete_video(const std::string& tenant, const std::string& id);

  caf::expected<folder_record> create_folder(const std::string& tenant,
                                             const std::string& path);
  caf::expected<bool> folder_exists(const std::string& tenant,
                                    const std::string& path);
  caf::expected<std::vector<folder_record>>
  list_folders(const std::string& tenant);

  /// A JPEG of the frame shown at `at_seconds` into the (clipped) video:
  /// the time is rounded down to a frame of the source (its frame rate),
  /// so times within one frame share one file. Made once, then served
  /// from its cache file (at most max_thumbnails per video, the least
  /// recently used removed first); answers the file's path.
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

  // Operators (reelctl).

  /// A tenant's videos that match `f`, newest first.
  caf::expected<video_page> list_videos(const std::string& tenant,
                                        const video_filter& f,
                                        int32_t offset, int32_t limit);

  /// Starts a failed video again from what it has, with its owner
  /// (`tenant` empty: any tenant). ec::conflict unless it failed with its
  /// source stored.
  caf::expected<video_record> retry_video(const std::string& tenant,
                                          const std::string& id);

  /// This node's transcode tasks: running ones, then the queue in order.
  caf::expected<std::vector<task_info>> tasks();
  /// Drops a queued task (its video fails: "cancelled by an operator");
  /// ec::conflict for a running one.
  caf::expected<task_info> cancel_task(uint64_t id);
  /// Gives up a running task and queues it again, first; ec::conflict for
  /// a queued one.
  caf::expected<task_info> requeue_task(uint64_t id);

  /// API keys, oldest first (`tenant` empty: every tenant's).
  caf::expected<std::vector<api_key_record>>
  list_keys(const std::string& tenant);
  /// Removes the key whose SHA-256 starts with `id` (at least 12 hex
  /// digits) on every node. ec::conflict for the key whose SHA-256 is
  /// `requester_hash` (the caller's own) or an id naming several keys.
  caf::error revoke_key(const std::string& id,
                        const std::string& requester_hash);

  /// Every tenant that has keys or videos, by name.
  caf::expected<std::vector<tenant_summary>> list_tenants();
  /// A new tenant: its first key (not admin), answered once.
  /// ec::conflict if the tenant has keys already.
  caf::expected<std::string> create_tenant(const std::string& tenant);

  /// Removes what nobody needs any more, untouched for `older_than_s`:
  /// tmp/ files (uploads cut off), parts of chunked uploads of videos still
  /// "created", blob directories of ids without a video record, in a
  /// cluster media copies of ready videos this node does not hold by
  /// placement (and did not receive the upload of), delivered or failed
  /// webhook deliveries, and what every added step removes. One at a time.
  gc_report gc(int64_t older_than_s);
  /// The same, on the calling thread (the periodic collector's).
  gc_report gc_now(int64_t older_than_s);
  /// Adds a step to gc (e.g. the tus uploads of the HTTP layer):
  /// `step(before_ms)` removes what was last touched before then.
  void add_gc_step(std::string kind,
                   std::function<gc_count(int64_t before_ms)> step);
  /// Runs gc every `every_s` seconds with `older_than_s` (until stop()),
  /// logging what each run removed.
  void start_periodic_gc(int64_t every_s, int64_t older_than_s);

  /// Stops every actor; pending requests fail.
  void stop();

  /// Thumbnails kept per video (node::thumbnail).
  static constexpr size_t max_thumbnails = 64;

private:
  node();
  /// create_video without the idempotency check.
  caf::expected<video_record> create_once(video_record draft,
                                          const std::string& tmp_source);
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace reel
