#pragma once

// Message payloads: plain structs with a CAF 0.17 inspect() each, and the
// project's type-ID block. Registered on every node with
// `cfg.add_message_types<caf::id_block::reel>()`.

#include "codec/codec.hpp"
#include "storage/records.hpp"

#include <caf/meta/type_name.hpp>
#include <caf/type_id.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace reel {

/// What a worker is asked to do.
enum class task_kind : uint8_t { probe, chunk, audio, package };

const char* to_string(task_kind k);

/// One unit of work for a worker. Only the fields of its kind are set.
struct task {
  uint64_t id = 0;
  std::string video_id;
  task_kind kind = task_kind::probe;
  int32_t index = 0;    // chunk index
  int32_t priority = 0; // higher runs first
  std::string source;   // source file
  codec::probe_result src;    // the probe (every kind but probe)
  codec::chunk_job chunk;     // kind chunk
  std::string audio_output;   // kind audio
  codec::package_job package; // kind package
  std::string poster_output;  // kind package
};

/// What came of a task; `error` is empty on success.
struct task_result {
  uint64_t id = 0;
  std::string video_id;
  task_kind kind = task_kind::probe;
  int32_t index = 0;
  std::string error;
  codec::probe_result probe;    // kind probe
  codec::chunk_stats stats;     // kind chunk
  codec::package_result package; // kind package
};

} // namespace reel

namespace reel::codec {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, probe_result& x) {
  return f(caf::meta::type_name("probe_result"), x.container, x.duration_s,
           x.size_bytes, x.bit_rate, x.video_stream, x.video_codec, x.width,
           x.height, x.rotation, x.fps, x.tb_num, x.tb_den, x.start_pts,
           x.end_pts, x.frame_count, x.keyframes, x.audio_stream,
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
           x.audio_file, x.out_dir, x.segment_seconds);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, rendition& x) {
  return f(caf::meta::type_name("rendition"), x.name, x.width, x.height,
           x.bandwidth, x.average_bandwidth, x.codecs, x.playlist, x.segments,
           x.frames);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, package_result& x) {
  return f(caf::meta::type_name("package_result"), x.renditions, x.master,
           x.duration_s);
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
  return f(caf::meta::type_name("video_record"), x.id, x.tenant, x.folder,
           x.title, x.filename, x.state, x.failure_reason, x.created_ms,
           x.updated_ms, x.source_bytes, x.source_sha256, x.probed, x.source,
           x.rungs, x.chunks, x.chunk_done, x.audio_done, x.renditions,
           x.master, x.files, x.history);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, folder_record& x) {
  return f(caf::meta::type_name("folder_record"), x.tenant, x.path,
           x.created_ms);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, task& x) {
  return f(caf::meta::type_name("task"), x.id, x.video_id, x.kind, x.index,
           x.priority, x.source, x.src, x.chunk, x.audio_output, x.package,
           x.poster_output);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, task_result& x) {
  return f(caf::meta::type_name("task_result"), x.id, x.video_id, x.kind,
           x.index, x.error, x.probe, x.stats, x.package);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, video_page& x) {
  return f(caf::meta::type_name("video_page"), x.videos, x.total);
}

} // namespace reel

CAF_BEGIN_TYPE_ID_BLOCK(reel, caf::first_custom_type_id)
  CAF_ADD_TYPE_ID(reel, (reel::task))
  CAF_ADD_TYPE_ID(reel, (reel::task_result))
  CAF_ADD_TYPE_ID(reel, (reel::video_record))
  CAF_ADD_TYPE_ID(reel, (reel::video_page))
  CAF_ADD_TYPE_ID(reel, (reel::folder_record))
  CAF_ADD_TYPE_ID(reel, (std::vector<reel::folder_record>))
CAF_END_TYPE_ID_BLOCK(reel)
