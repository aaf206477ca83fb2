#pragma once

// The media pipeline's public interface: probe a source, plan its chunks,
// encode one chunk for every rung, encode the audio once, package everything
// into HLS (fMP4) and make a poster. No libav types appear here; everything
// libav lives behind RAII in the .cpp files. Nothing here knows of actors.

#include "ops/error.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace reel::codec {

/// How much libav itself prints on stderr: only errors unless `verbose`.
/// Process-wide; called once at start.
void set_libav_logging(bool verbose);

/// What the probe learned about a source file.
struct probe_result {
  std::string container;      // e.g. "mov,mp4,m4a,3gp,3g2,mj2"
  double duration_s = 0;      // of the whole file
  int64_t size_bytes = 0;
  int64_t bit_rate = 0;       // container bit rate, bits/s (0 if unknown)
  // Video (the first video stream; there must be one).
  int video_stream = -1;
  std::string video_codec;    // e.g. "h264"
  int width = 0;              // coded width and height, before rotation
  int height = 0;
  int rotation = 0;           // display rotation in degrees (0/90/180/270)
  double fps = 0;             // average frame rate
  int tb_num = 1;             // video stream time base
  int tb_den = 1;
  int64_t start_pts = 0;      // pts of the first video frame (time base above)
  int64_t end_pts = 0;        // pts just past the last video frame
  int64_t frame_count = 0;    // video packets counted by the probe
  std::vector<int64_t> keyframes; // pts of every video keyframe, ascending
  // Audio (the first audio stream; may be absent).
  int audio_stream = -1;
  std::string audio_codec;
  int audio_channels = 0;
  int audio_sample_rate = 0;
};

/// Opens `path`, reads every packet (to index keyframes and detect truncated
/// files) and fails with ec::media_error and a readable reason ("no video
/// stream", "truncated file at byte N", "not a media file: ...").
caf::expected<probe_result> probe(const std::string& path);

/// One rung of the ladder.
struct rung {
  std::string name;       // "1080p", "720p", ...
  int width = 0;          // even, aspect kept from the (rotated) source
  int height = 0;
  int max_kbps = 0;       // maxrate for the video encoder
  int crf = 23;
};

/// The rungs for a source: the documented table (codec/ladder.cpp) never
/// above the source height; a source below the lowest rung gets one rung at
/// its own size.
std::vector<rung> ladder_for(const probe_result& src);

/// One unit of transcode work: source pts in [start_pts, end_pts).
struct chunk {
  int index = 0;
  int64_t start_pts = 0;
  int64_t end_pts = 0;               // exclusive
  std::vector<int64_t> segment_starts; // pts where output keyframes go
                                       // (first == start_pts)
};

/// Cuts the timeline at source keyframes into chunks of about
/// `chunk_seconds` (never shorter unless the file ends), and inside each
/// chunk places segment starts about `segment_seconds` apart.
std::vector<chunk> plan_chunks(const probe_result& src, double chunk_seconds,
                               double segment_seconds);

/// Encoding settings shared by every task. Default: x264 veryfast, 1 thread.
struct encode_options {
  std::string preset = "veryfast";
  int threads = 1;
};

/// Everything a worker needs to encode one chunk.
struct chunk_job {
  std::string source;            // source file path
  probe_result src;              // from probe()
  chunk part;
  std::vector<rung> rungs;
  std::vector<std::string> outputs; // one packet file per rung (same order)
  encode_options options;
};

struct chunk_stats {
  int64_t frames = 0;          // frames encoded per rung
  double media_seconds = 0;    // duration of the chunk
  std::vector<int64_t> bytes;  // encoded bytes per rung
};

/// Decodes the chunk once, scales to every rung and encodes each with
/// libx264 (closed GOP, IDR at every segment start and nowhere else). Each
/// output is written to a temporary name and renamed when complete.
caf::expected<chunk_stats> encode_chunk(const chunk_job& job);

struct audio_stats {
  int64_t samples = 0;
  double media_seconds = 0;
};

/// Decodes the first audio stream of `source` whole and encodes it once to
/// AAC-LC (48 kHz, stereo, 128 kbit/s) into the packet file `output`.
caf::expected<audio_stats> encode_audio(const std::string& source,
                                        const probe_result& src,
                                        const std::string& output);

/// What packaging needs: the rungs and, per rung, its chunk packet files in
/// order; the audio packet file if the source has audio.
struct package_job {
  std::vector<rung> rungs;
  std::vector<std::vector<std::string>> chunk_files; // [rung][chunk]
  std::string audio_file;                            // empty: no audio
  std::string out_dir;     // HLS goes here (master.m3u8, <rung>/..., audio/...)
  double segment_seconds = 4;
};

struct rendition {
  std::string name;       // rung name, or "audio"
  int width = 0;
  int height = 0;
  int64_t bandwidth = 0;  // peak bits/s over segments, audio included
  int64_t average_bandwidth = 0;
  std::string codecs;     // e.g. "avc1.64001f,mp4a.40.2"
  std::string playlist;   // relative to out_dir, e.g. "720p/index.m3u8"
  int segments = 0;
  int64_t frames = 0;
};

struct package_result {
  std::vector<rendition> renditions; // video rungs, then audio if any
  std::string master;                // "master.m3u8"
  double duration_s = 0;
};

/// Remuxes (never re-encodes) the packet files into HLS with fMP4 segments,
/// one media playlist per rung and one for audio, and a master playlist with
/// BANDWIDTH, AVERAGE-BANDWIDTH, RESOLUTION and CODECS.
caf::expected<package_result> package_hls(const package_job& job);

/// Decodes the frame at about `at_seconds` (upright) and writes it as a JPEG
/// no higher than `max_height` to `output` (temporary name, then renamed).
caf::error write_poster(const std::string& source, const probe_result& src,
                        double at_seconds, int max_height,
                        const std::string& output);

} // namespace reel::codec
