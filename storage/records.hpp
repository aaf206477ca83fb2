#pragma once

// The records a node keeps in RocksDB, and their JSON encoding. The video
// record is the one model every API dialect is a view of.

#include "codec/codec.hpp"
#include "model/video_state.hpp"
#include "ops/crypto.hpp"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace reel {

enum class cf : int; // storage/db.hpp

struct file_record {
  std::string name; // relative to the video's media directory
  int64_t size = 0;
  std::string sha256;
};

struct state_change {
  video_state state = video_state::created;
  int64_t at_ms = 0;
  std::string reason; // why it failed, for the failed state
};

/// One key/value pair of a video's metadata (api.video's `metadata`).
struct meta_entry {
  std::string key;
  std::string value;
};

/// What clients say about a video, in every dialect: changed by PATCH
/// requests (apply_patch), never by the pipeline.
struct video_info {
  std::string description;
  bool is_public = true;   // false: media needs a playback token
  bool panoramic = false;
  bool mp4_support = true; // MP4 downloads offered in the assets
  std::vector<std::string> tags;
  std::vector<meta_entry> metadata;
  std::string poster;      // a poster set by the client (media-relative
                           // file name); "" = the one reel made
  double poster_at_s = -1; // where the client wants the poster taken
                           // (asked before there were frames); -1: reel
                           // chooses
  int32_t screenshot_id = -1; // the image shown as "screenshot" (Gcore):
                              // -1 the poster, 0.. a screenshot
  int64_t client_user_id = 0; // Gcore: the client's own user id (0: none)
  std::string projection = "regular"; // Gcore: regular, vr360, ...
  std::string transcribe_language;    // Gcore: asked for (not available)
  std::string origin_label;  // Flare's "source" (e.g. "composite")
  int32_t declared_width = 0;         // Flare: as the client declared
  int32_t declared_height = 0;
  double declared_duration_s = 0;
  std::string password_hash; // Flare: hash_password's form (scrypt),
                             // or the legacy "<salt>$<sha256(salt +
                             // password)>"; "" = no password
  int64_t views = 0;         // plays started on the embed page
  std::string client_key;    // Flare: the s3Key the video was made with
};

/// One piece of a source uploaded in parts (chunked uploads).
struct upload_part {
  int64_t index = 0;  // first byte (mode "bytes") or part number ("parts")
  int64_t bytes = 0;
  std::string node;   // the node that holds the part file
  std::string sha256;
};

/// How far a source upload in parts has come.
struct upload_state {
  std::string mode;   // "" (no parts yet), "bytes" or "parts"
  int64_t total = -1; // bytes or parts in all; -1 while unknown
  std::vector<upload_part> parts;
};

/// Whether every part of the upload is in.
bool upload_complete(const upload_state& u);
/// Bytes received so far.
int64_t upload_received(const upload_state& u);
/// The file name of a part under the video's source directory (its digest
/// in the name: a different part sent under the same index never replaces
/// the one accepted).
std::string part_file(const upload_part& p);
/// Registers a part. Fails with ec::invalid_argument when it does not fit
/// the parts before it (another Content-Range form, another total, past
/// the end, overlapping); the same part sent again is accepted unchanged.
caf::error add_part(upload_state& u, const std::string& mode, int64_t total,
                    const upload_part& p);

struct video_record {
  std::string id;      // UUID (random; older releases' carry their number)
  uint64_t number = 0; // the integer id (Gcore's `id`): random, set when
                       // the video is registered; records of older
                       // releases lack it and get legacy_number_of_id's
  std::string tenant;
  std::string folder; // e.g. "root/marketing"
  std::string title;
  std::string filename; // as the client named the upload
  video_state state = video_state::created; // model/video_state.hpp
  std::string failure_reason;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  int64_t source_bytes = 0;
  std::string source_sha256;
  std::string source_node;             // the node that received the upload
  bool probed = false;
  codec::probe_result source;          // valid when probed
  std::vector<codec::rung> rungs;      // the ladder, fixed after probing
  std::vector<codec::chunk> chunks;    // the plan, fixed after probing
  std::vector<uint8_t> chunk_done;     // per chunk: 1 once encoded
  bool audio_done = false;
  std::vector<codec::rendition> renditions; // after packaging
  std::string master;                  // master playlist (CMAF), relative
  std::string master_ts;               // HLS with MPEG-TS segments
  std::string dash;                    // DASH manifest
  // Ingest options.
  double clip_start_s = 0;             // cut the source from here...
  double clip_duration_s = 0;          // ...for this long (0: to the end)
  int32_t priority = 0;                // -10..10: higher is scheduled first
  // Progress.
  int64_t playable_ms = 0;             // when the start became playable
  bool images_done = false;            // poster, screenshots, storyboard
  double poster_time_s = -1;           // where the poster was taken
  int32_t screenshots = 0;
  codec::storyboard_result storyboard;
  std::vector<file_record> files;      // published media
  std::vector<state_change> history;
  // Why the video's work is waiting (a full disk, an unreachable node),
  // "" when it is not: the work is tried again, and the video does not
  // fail for it.
  std::string waiting;
  // The API a client made it through, when a view of one dialect lists only
  // its own: "uploads" (the Uploads API, whose GET /uploads lists those);
  // "" for the others.
  std::string created_via;
  video_info info;
  // How the source arrives while the video is "created": in parts, or
  // imported from a URL (with extra request headers "Name: value").
  upload_state upload;
  std::string import_url;
  std::vector<std::string> import_headers; // dropped once the import ends
  // The record's version, ordered without wall clocks (compare_versions):
  // the owner epoch, raised each time a node starts running the video (a
  // takeover, a restart), and a sequence its writer raises on every write.
  // A record of a lower epoch is a stale owner's and is refused.
  uint64_t epoch = 0;
  uint64_t version = 0;
  std::string owner_node; // the node that raised `epoch`
  // The last 32 raises of the epoch, oldest first: "<epoch> <node>".
  std::vector<std::string> takeovers;
  // Per chunk, once encoded: the node that encoded it, and the owner epoch
  // under which it was counted (GET /v1/admin/videos/{id}/chunks).
  std::vector<std::string> chunk_node;
  std::vector<uint64_t> chunk_epoch;
};

/// Orders two records of one video by (epoch, version): negative when `a`
/// is older, 0 when they are the same version, positive when `a` is newer.
int compare_versions(const video_record& a, const video_record& b);

/// Whether `incoming`, a copy of a record from another node, should replace
/// `mine`: a newer version, or the same version that sorts higher (a
/// deterministic tie-break, so every node keeps the same one).
bool supersedes(const video_record& incoming, const video_record& mine);

/// Every field of a video record, in one place: the JSON it is stored as
/// (records.cpp) and the form it crosses the cluster in (actors/types.hpp)
/// both expand this list, so a field added to the struct and here is
/// stored and replicated alike (tests/actors_test.cpp round-trips every
/// field through both).
#define REEL_VIDEO_RECORD_FIELDS(X)                                          \
  X(id) X(number) X(tenant) X(folder) X(title) X(filename) X(state)          \
  X(failure_reason) X(created_ms) X(updated_ms) X(source_bytes)              \
  X(source_sha256) X(source_node) X(probed) X(source) X(rungs) X(chunks)     \
  X(chunk_done) X(audio_done) X(renditions) X(master) X(master_ts) X(dash)   \
  X(clip_start_s) X(clip_duration_s) X(priority) X(playable_ms)              \
  X(images_done) X(poster_time_s) X(screenshots) X(storyboard) X(files)      \
  X(history) X(waiting) X(created_via) X(info) X(upload) X(import_url)      \
  X(import_headers) X(epoch) X(version) X(owner_node) X(takeovers)          \
  X(chunk_node) X(chunk_epoch)


/// Applies a JSON merge patch to the client-settable fields of a video:
/// "title", "folder" (a valid folder path, null for "root"; whether it
/// exists is the caller's to check) and those of video_info
/// ("description", "public", "panoramic", "mp4_support", "tags",
/// "metadata", "poster"). Fails with ec::invalid_argument (naming the
/// field) for another key or a wrong type.
caf::error apply_patch(video_record& v, const nlohmann::json& patch);

/// A page of a tenant's videos, newest first.
struct video_page {
  std::vector<video_record> videos;
  int64_t total = 0; // videos of the tenant in all
};

struct api_key_record {
  std::string key_hash; // SHA-256 of the key; the key itself is never stored
  std::string prefix;   // first characters, to tell keys apart in lists
  std::string tenant;
  bool admin = false;
  int64_t created_ms = 0;
  std::vector<std::string> scopes; // what it may do; empty: everything
};

/// A delegated upload token (api.video): whoever holds it may upload one
/// video to its tenant, until it expires (expires_ms 0: never).
struct upload_token_record {
  std::string token; // the token; stored sealed (at_rest_keys), under a
                     // row named by its digest
  std::string tenant;
  int64_t ttl_s = 0;
  int64_t created_ms = 0;
  int64_t expires_ms = 0;
};

/// A tenant's webhook subscription. `format` says how deliveries look and
/// are signed: "apivideo" (api.video's events and X-Api-Video-Signature),
/// "native" or "gcore" (reel's events, X-Reel-Signature).
struct webhook_record {
  std::string id;       // "webhook_" + random
  std::string tenant;
  std::string url;
  std::vector<std::string> events;
  std::string secret; // signs each delivery's body (HMAC-SHA256); stored
                      // sealed, opened by node::list_webhooks
  std::string format = "native";
  int64_t created_ms = 0;
};

/// One event on its way to one subscriber: kept (on the node that made
/// it) until delivered, retried with backoff, or given up.
struct delivery_record {
  std::string id;
  std::string webhook_id;
  std::string tenant;
  std::string url;
  std::string format;
  std::string secret; // the subscription's, sealed; opened only to sign
  std::string event;
  std::string video_id;
  std::string body;     // the JSON sent
  std::string status = "pending"; // pending, delivered, failed
  int32_t attempts = 0;
  int64_t created_ms = 0;
  int64_t next_ms = 0;  // when the next attempt is due
  int64_t done_ms = 0;  // delivered or given up
  std::string last_error;
};

struct folder_record {
  std::string tenant;
  std::string path; // "root" or "root/a/b"
  int64_t created_ms = 0;
};

void to_json(nlohmann::json& j, const video_record& x);
void from_json(const nlohmann::json& j, video_record& x);
void to_json(nlohmann::json& j, const api_key_record& x);
void from_json(const nlohmann::json& j, api_key_record& x);
void to_json(nlohmann::json& j, const folder_record& x);
void to_json(nlohmann::json& j, const upload_token_record& x);
void to_json(nlohmann::json& j, const webhook_record& x);
void from_json(const nlohmann::json& j, webhook_record& x);
void to_json(nlohmann::json& j, const delivery_record& x);
void from_json(const nlohmann::json& j, delivery_record& x);
void from_json(const nlohmann::json& j, upload_token_record& x);
void from_json(const nlohmann::json& j, folder_record& x);

/// Serialized forms as stored in RocksDB.
std::string encode(const video_record& x);
std::string encode(const api_key_record& x);
std::string encode(const folder_record& x);
std::string encode(const upload_token_record& x);
std::string encode(const webhook_record& x);
std::string encode(const delivery_record& x);
caf::error decode(const std::string& bytes, video_record& x);
caf::error decode(const std::string& bytes, api_key_record& x);
caf::error decode(const std::string& bytes, folder_record& x);
caf::error decode(const std::string& bytes, upload_token_record& x);
caf::error decode(const std::string& bytes, webhook_record& x);
caf::error decode(const std::string& bytes, delivery_record& x);

/// How secrets that must be shown again are kept at rest
/// (docs/security.md, "Secrets at rest"): sealed with AES-256-GCM, and an
/// upload token's row named by a keyed digest of the token, so that the
/// store (and what is replicated) never holds one in plain. Both from the
/// cluster's root secret, or a lone node's; the first key of each makes new
/// values, the others still open or find older ones.
struct at_rest_keys {
  sealer box;
  std::vector<std::string> digest_keys; // HMAC-SHA256 keys, 32 bytes each

  /// The hex HMAC-SHA256 of `token` under digest key `i`.
  std::string token_digest(std::string_view token, size_t i = 0) const;
  /// Whether there are keys (a node sets them at start).
  bool ready() const { return !box.empty() && !digest_keys.empty(); }
};

/// Brings a row of `family` into the form kept at rest: an upload token
/// kept under its own value (as releases before this one wrote them), a
/// webhook or a delivery with its secret in plain, or a value sealed (or a
/// row named) under a key other than the first. Answers the key and value
/// to store instead (an upload token's key changes), nothing when the row
/// is in form, of another kind, or unreadable (then kept as it is). With
/// `value` empty (a deletion) only the key is mapped.
std::optional<std::pair<std::string, std::string>>
at_rest_form(const at_rest_keys& k, cf family, const std::string& key,
             const std::string& value);

/// A folder's number (Gcore's directory_id): from its tenant and path.
int64_t folder_number(const std::string& tenant, const std::string& path);

/// A folder path is "root" or "root/" followed by segments of
/// [A-Za-z0-9_-] (1..64 chars), at most 8 deep.
bool valid_folder_path(const std::string& path);

} // namespace reel
