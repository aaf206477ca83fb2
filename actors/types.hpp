#pragma once

// Message payloads: plain structs with a CAF 0.17 inspect() each, and the
// project's type-ID block. Registered on every node with
// `cfg.add_message_types<caf::id_block::reel>()`.

#include "cluster/view.hpp"
#include "codec/codec.hpp"
#include "storage/records.hpp"

#include <caf/meta/type_name.hpp>
#include <caf/type_id.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace reel {

/// What a worker is asked to do.
enum class task_kind : uint8_t {
  probe, chunk, audio, images, storyboard,
  import,   // downloads a source from a URL
  assemble, // joins the parts of a source uploaded in parts
};

const char* to_string(task_kind k);

/// One unit of work for a worker. Only the fields of its kind are set.
///
/// A task names a video and a part of it, never a file: every node derives
/// the paths it reads and writes from these (files_of, actors/worker.hpp)
/// under its own data directory. Only chunks ever run on another node; the
/// fields marked "local" are left out of inspect(), so they never leave the
/// node that made the task.
struct task {
  uint64_t id = 0;
  std::string video_id;
  task_kind kind = task_kind::probe;
  int32_t index = 0;    // chunk index
  int32_t priority = 0; // higher runs first
  codec::probe_result src;        // the probe (every kind but probe)
  codec::chunk part;              // kind chunk: its part of the timeline
  std::vector<codec::rung> rungs; // kind chunk: the ladder
  codec::encode_options options;  // kind chunk
  codec::clip_range clip;         // kinds audio and images
  // The source's digest, and a node that holds it, for a worker on a node
  // that does not have it yet ("": none needed).
  std::string source_sha256;
  std::string origin_node;
  std::string target_node; // the node to run it on ("": this one)
  // Local: kind storyboard, the media file (the lowest rung's MP4) it is
  // made from.
  std::string rendition;
  // Local: kind import, the URL, request headers ("Name: value"), bounds
  // and the hosts or networks exempt from the private-address rule.
  std::string url;
  std::vector<std::string> headers;
  int64_t max_bytes = 0;
  int32_t timeout_s = 0;
  std::vector<std::string> allow;
  // Local: kind assemble, the parts to join, in order.
  std::vector<upload_part> parts;
  double poster_at_s = -1; // local: kind images, the poster's time (-1: choose)
  // Local: set by the scheduler for a requeued run, whose outputs go to
  // names of their own first (files_of appends it).
  std::string output_tag;
};

/// What the images task made.
struct images_result {
  double poster_time_s = 0;
  int32_t screenshots = 0;
  codec::storyboard_result storyboard;
};

/// A blob to fetch over the data plane: its path relative to the data
/// directory (the same on every node), the SHA-256 it must have, and the
/// nodes to try in order.
struct fetch_item {
  std::string rel;
  std::string sha256;
  std::vector<blob_origin> origins;
};

/// What came of a task; `error` is empty on success.
struct task_result {
  uint64_t id = 0;
  std::string video_id;
  task_kind kind = task_kind::probe;
  int32_t index = 0;
  std::string error;
  // What kind of failure it was (ec::none on success): a full disk or an
  // unavailable peer is waited out and the task run again; bad media fails
  // the video at once (ops/error.hpp, is_transient).
  ec code = ec::none;
  codec::probe_result probe;    // kind probe
  codec::chunk_stats stats;     // kind chunk
  images_result images;          // kind images
  std::string node_id;           // the node that ran it
  std::vector<std::string> output_sha256; // chunk: per rung output
  // Kinds import and assemble: the source written.
  int64_t bytes = 0;
  std::string sha256;
  std::string filename; // import: named by the URL
};

/// A row of a small replicated family (keys, folders, tokens), as it is
/// stored: every node keeps every row. `erase`: the row was deleted.
struct replicated_row {
  int32_t family = 0; // a reel::cf
  std::string key;
  std::string value;
  bool erase = false;
};

/// A task as an operator sees it (the scheduler's list): `id` is the
/// scheduler's own number for it (its submission sequence), not the task's
/// id within its video.
struct task_info {
  uint64_t id = 0;
  std::string video_id;
  task_kind kind = task_kind::probe;
  int32_t index = 0;
  int32_t priority = 0;
  std::string state;      // "queued", "running"; "cancelled" in an answer
  int64_t queued_ms = 0;  // when it was (last) queued
  int64_t started_ms = 0; // when a worker took it; 0 while queued
};

/// A part of a video's source that a node has stored, for the video's
/// owner to register: (tenant, video, upload mode, total, the part).
struct source_part {
  std::string tenant;
  std::string video_id;
  std::string mode;   // "bytes" or "parts"
  int64_t total = -1; // -1: not known yet
  upload_part part;
};

} // namespace reel

namespace reel::codec {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, probe_result& x) {
  return f(caf::meta::type_name("probe_result"), x.container, x.duration_s,
           x.size_bytes, x.bit_rate, x.video_stream, x.video_codec, x.width,
           x.height, x.rotation, x.fps, x.tb_num, x.tb_den, x.start_pts,
           x.end_pts, x.frame_count, x.frame_ticks, x.keyframes, x.audio_stream,
           x.audio_codec, x.audio_channels, x.audio_sample_rate);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, rung& x) {
  return f(caf::meta::type_name("rung"), x.name, x.width, x.height,
           x.max_kbps, x.crf);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, chunk& x) {
  return f(caf::meta::type_name("chunk"), x.index, x.start_pts, x.end_pts,
           x.segment_starts);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, encode_options& x) {
  return f(caf::meta::type_name("encode_options"), x.preset, x.threads);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, chunk_job& x) {
  return f(caf::meta::type_name("chunk_job"), x.source, x.src, x.part,
           x.rungs, x.outputs, x.options);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, chunk_stats& x) {
  return f(caf::meta::type_name("chunk_stats"), x.frames, x.media_seconds,
           x.bytes);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, package_job& x) {
  return f(caf::meta::type_name("package_job"), x.rungs, x.chunk_files,
           x.audio_file, x.out_dir, x.segment_seconds, x.mp4);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, clip_range& x) {
  return f(caf::meta::type_name("clip_range"), x.start_s, x.duration_s);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, storyboard_result& x) {
  return f(caf::meta::type_name("storyboard_result"), x.interval_s, x.tiles,
           x.tile_width, x.tile_height, x.columns);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, rendition& x) {
  return f(caf::meta::type_name("rendition"), x.name, x.width, x.height,
           x.bandwidth, x.average_bandwidth, x.codecs, x.playlist, x.segments,
           x.frames, x.mp4, x.mp4_size, x.ts_playlist);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, package_result& x) {
  return f(caf::meta::type_name("package_result"), x.renditions, x.master,
           x.duration_s, x.master_ts, x.master_cmaf, x.dash);
}

} // namespace reel::codec

namespace reel {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, file_record& x) {
  return f(caf::meta::type_name("file_record"), x.name, x.size, x.sha256);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, state_change& x) {
  return f(caf::meta::type_name("state_change"), x.state, x.at_ms, x.reason);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, video_record& x) {
  // Every field, from the one list of them (storage/records.hpp).
#define REEL_CAF_FIELD(name) , x.name
  return f(caf::meta::type_name("video_record")
             REEL_VIDEO_RECORD_FIELDS(REEL_CAF_FIELD));
#undef REEL_CAF_FIELD
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, folder_record& x) {
  return f(caf::meta::type_name("folder_record"), x.tenant, x.path,
           x.created_ms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, member_info& x) {
  return f(caf::meta::type_name("member_info"), x.node_id, x.public_url,
           x.cluster_host, x.cluster_port, x.data_port, x.state, x.queued,
           x.running, x.workers, x.disk_bytes, x.version, x.seen_ms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, blob_origin& x) {
  return f(caf::meta::type_name("blob_origin"), x.node_id, x.host, x.port);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, fetch_item& x) {
  return f(caf::meta::type_name("fetch_item"), x.rel, x.sha256, x.origins);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, api_key_record& x) {
  return f(caf::meta::type_name("api_key_record"), x.key_hash, x.prefix,
           x.tenant, x.admin, x.created_ms, x.scopes);
}

// Upload tokens and webhook subscriptions are answers of the keyring, a
// local actor; no interface between nodes carries them (rows travel as
// replicated_row, sealed).
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, upload_token_record& x) {
  return f(caf::meta::type_name("upload_token_record"), x.token, x.tenant,
           x.ttl_s, x.created_ms, x.expires_ms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, webhook_record& x) {
  return f(caf::meta::type_name("webhook_record"), x.id, x.tenant, x.url,
           x.events, x.secret, x.format, x.created_ms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, task& x) {
  // What a task may carry to another node: ids, numbers, the probe and the
  // plan. The local fields (rendition, import, parts, poster time, output
  // tag) are left out on purpose: see task.
  return f(caf::meta::type_name("task"), x.id, x.video_id, x.kind, x.index,
           x.priority, x.src, x.part, x.rungs, x.options, x.clip,
           x.source_sha256, x.origin_node, x.target_node);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, task_result& x) {
  return f(caf::meta::type_name("task_result"), x.id, x.video_id, x.kind,
           x.index, x.error, x.code, x.probe, x.stats, x.images, x.node_id,
           x.output_sha256, x.bytes, x.sha256, x.filename);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replicated_row& x) {
  return f(caf::meta::type_name("replicated_row"), x.family, x.key, x.value,
           x.erase);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, meta_entry& x) {
  return f(caf::meta::type_name("meta_entry"), x.key, x.value);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, video_info& x) {
  return f(caf::meta::type_name("video_info"), x.description, x.is_public,
           x.panoramic, x.mp4_support, x.tags, x.metadata, x.poster,
           x.poster_at_s, x.screenshot_id, x.client_user_id, x.projection,
           x.transcribe_language, x.origin_label, x.declared_width,
           x.declared_height, x.declared_duration_s, x.password_hash,
           x.views, x.client_key);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, upload_part& x) {
  return f(caf::meta::type_name("upload_part"), x.index, x.bytes, x.node,
           x.sha256);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, upload_state& x) {
  return f(caf::meta::type_name("upload_state"), x.mode, x.total, x.parts);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, source_part& x) {
  return f(caf::meta::type_name("source_part"), x.tenant, x.video_id, x.mode,
           x.total, x.part);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, images_result& x) {
  return f(caf::meta::type_name("images_result"), x.poster_time_s,
           x.screenshots, x.storyboard);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, video_page& x) {
  return f(caf::meta::type_name("video_page"), x.videos, x.total);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, task_info& x) {
  return f(caf::meta::type_name("task_info"), x.id, x.video_id, x.kind,
           x.index, x.priority, x.state, x.queued_ms, x.started_ms);
}

} // namespace reel

CAF_BEGIN_TYPE_ID_BLOCK(reel, caf::first_custom_type_id)
  CAF_ADD_TYPE_ID(reel, (reel::task))
  CAF_ADD_TYPE_ID(reel, (reel::task_result))
  CAF_ADD_TYPE_ID(reel, (reel::video_record))
  CAF_ADD_TYPE_ID(reel, (reel::video_page))
  CAF_ADD_TYPE_ID(reel, (reel::folder_record))
  CAF_ADD_TYPE_ID(reel, (std::vector<reel::folder_record>))
  CAF_ADD_TYPE_ID(reel, (reel::codec::package_result))
  CAF_ADD_TYPE_ID(reel, (reel::member_info))
  CAF_ADD_TYPE_ID(reel, (std::vector<reel::member_info>))
  CAF_ADD_TYPE_ID(reel, (reel::api_key_record))
  CAF_ADD_TYPE_ID(reel, (reel::fetch_item))
  CAF_ADD_TYPE_ID(reel, (std::vector<reel::fetch_item>))
  CAF_ADD_TYPE_ID(reel, (reel::replicated_row))
  CAF_ADD_TYPE_ID(reel, (reel::source_part))
  CAF_ADD_TYPE_ID(reel, (reel::task_info))
  CAF_ADD_TYPE_ID(reel, (std::vector<reel::task_info>))
  CAF_ADD_TYPE_ID(reel, (reel::upload_token_record))
  CAF_ADD_TYPE_ID(reel, (reel::webhook_record))
CAF_END_TYPE_ID_BLOCK(reel)
