#pragma once

// The media pipeline's public interface: probe a source, plan its chunks
// (optionally clipped), encode one chunk for every rung, encode the audio
// once, package everything incrementally into HLS (fMP4 and MPEG-TS), DASH
// and MP4 downloads, and make a poster and a storyboard. No libav types
// appear here; everything libav lives behind RAII in the .cpp files.
// Nothing here knows of actors.
//
// Times: a "source time" in seconds counts from the first video frame of the
// source (probe_result::start_pts), so 0 is the first picture.

#include "ops/error.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace reel::codec {

/// How much libav itself prints on stderr: only errors unless `verbose`.
/// Process-wide; called once at start.
void set_libav_logging(bool verbose);

/// What the probe learned about a source file.
struct probe_result {
  std::string container; // e.g. "mov,mp4,m4a,3gp,3g2,mj2"
  double duration_s = 0; // of the whole file
  int64_t size_bytes = 0;
  int64_t bit_rate = 0; // container bit rate, bits/s (0 if unknown)
  // Video (the first video stream; there must be one).
  int video_stream = -1;
  std::string video_codec; // e.g. "h264"
  int width = 0;           // coded width and height, before rotation
  int height = 0;
  int rotation = 0; // display rotation in degrees (0/90/180/270)
  double fps = 0;   // average frame rate
  int tb_num = 1;   // video stream time base
  int tb_den = 1;
  int64_t start_pts = 0;   // pts of the first video frame (time base above)
  int64_t end_pts = 0;     // pts just past the last video frame
  int64_t frame_count = 0; // video packets counted by the probe
  std::vector<int64_t> keyframes; // pts of every video keyframe, ascending
  // Every frame lasts exactly this many ticks (a constant frame rate);
  // 0: variable or unknown.
  int64_t frame_ticks = 0;
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
  std::string name; // "1080p", "720p", ...
  int width = 0;    // even, aspect kept from the (rotated) source
  int height = 0;
  int max_kbps = 0; // maxrate for the video encoder
  int crf = 23;
};

/// The rungs for a source: the documented table (codec/ladder.cpp: 2160p,
/// 1440p, 1080p, 720p, 480p, 360p, 240p) never above the source's short side;
/// a source below the lowest rung gets one rung at its own size.
std::vector<rung> ladder_for(const probe_result& src);

/// The part of a source to publish, in source time (seconds from the first
/// frame). Default: all of it.
struct clip_range {
  double start_s = 0;
  double duration_s = 0; // 0: to the end
};

/// Why `clip` cannot be cut from `src` (ec::media_error with a readable
/// reason, e.g. "clip_start 137 s is beyond the video's 60.0 s"), or no
/// error. A duration running past the end is not an error: the clip ends
/// with the video.
caf::error validate_clip(const probe_result& src, const clip_range& clip);

/// One unit of transcode work: source pts in [start_pts, end_pts).
struct chunk {
  int index = 0;
  int64_t start_pts = 0;
  int64_t end_pts = 0;                 // exclusive
  std::vector<int64_t> segment_starts; // pts where output keyframes go
                                       // (first == start_pts)
};

/// Cuts the timeline at source keyframes into chunks of about
/// `chunk_seconds` (never shorter unless the file ends), and inside each
/// chunk places segment starts about `segment_seconds` apart.
///
/// With a clip the first chunk starts at the first frame at or after the
/// clip's start (not necessarily a keyframe: encode_chunk decodes from the
/// keyframe before it) and the last chunk ends exactly at the clip's end;
/// inner boundaries stay at source keyframes. `first_chunk_seconds` > 0
/// makes the first chunk about that long (at least one segment, ending at a
/// keyframe) so that the start of the video is encoded first and quickly;
/// 0: as long as the others. An invalid clip (see validate_clip) gives an
/// empty plan.
std::vector<chunk> plan_chunks(const probe_result& src, double chunk_seconds,
                               double segment_seconds,
                               const clip_range& clip = {},
                               double first_chunk_seconds = 0);

/// Splits the last `chunks` chunks of a plan (never the first) at every
/// source keyframe inside them: a video ends in small pieces, so the last
/// ones keep every worker busy instead of one worker finishing a whole
/// chunk alone. The cuts become segment boundaries too (the same in every
/// rung).
void split_tail(std::vector<chunk>& plan, const probe_result& src,
                size_t chunks);

/// Encoding settings shared by every task. Default: x264 veryfast, 1 thread.
struct encode_options {
  std::string preset = "veryfast";
  int threads = 1;
};

/// Everything a worker needs to encode one chunk.
struct chunk_job {
  std::string source; // source file path
  probe_result src;   // from probe()
  chunk part;
  std::vector<rung> rungs;
  std::vector<std::string> outputs; // one packet file per rung (same order)
  encode_options options;
};

struct chunk_stats {
  int64_t frames = 0;         // frames encoded per rung
  double media_seconds = 0;   // duration of the chunk
  std::vector<int64_t> bytes; // encoded bytes per rung
};

/// Decodes the chunk once, scales to every rung and encodes each with
/// libx264 (closed GOP, IDR at every segment start and nowhere else). Each
/// output is written to a temporary name and renamed when complete.
/// Sources above 60 fps are brought to at most 60 fps by keeping every n-th
/// frame of a grid fixed in source time (the same whatever the chunking);
/// variable frame rate sources keep their timestamps.
caf::expected<chunk_stats> encode_chunk(const chunk_job& job);

struct audio_stats {
  int64_t samples = 0;
  double media_seconds = 0;
};

/// Decodes the first audio stream of `source` and encodes it once to AAC-LC
/// (48 kHz, stereo, 128 kbit/s) into the packet file `output`: with a clip,
/// exactly the samples inside it (to the 48 kHz sample). Timestamps are
/// source time, on the same clock as the video's.
caf::expected<audio_stats> encode_audio(const std::string& source,
                                        const probe_result& src,
                                        const std::string& output,
                                        const clip_range& clip = {});

/// What packaging needs: the rungs and, per rung, its chunk packet files in
/// order; the audio packet file if the source has audio.
struct package_job {
  std::vector<rung> rungs;
  std::vector<std::vector<std::string>> chunk_files; // [rung][chunk]
  std::string audio_file;                            // empty: no audio
  std::string out_dir;        // everything goes here (see packager)
  double segment_seconds = 4; // of the plan; bounds EXT-X-TARGETDURATION
  bool mp4 = true;            // also write <rung>.mp4 downloads
};

struct rendition {
  std::string name; // rung name, or "audio"
  int width = 0;
  int height = 0;
  int64_t bandwidth = 0; // peak bits/s over segments, audio included
  int64_t average_bandwidth = 0;
  std::string codecs;   // e.g. "avc1.64001f,mp4a.40.2"
  std::string playlist; // fMP4 media playlist, relative to out_dir,
                        // e.g. "720p/index.m3u8"
  int segments = 0;
  int64_t frames = 0;
  std::string ts_playlist; // MPEG-TS media playlist, e.g. "720p/ts.m3u8"
                           // (empty for audio)
  std::string mp4;         // download, e.g. "720p.mp4" (empty: none)
  int64_t mp4_size = 0;
};

struct package_result {
  std::vector<rendition> renditions;       // video rungs, then audio if any
  std::string master = "master-cmaf.m3u8"; // = master_cmaf (compatibility)
  double duration_s = 0;
  std::string master_ts = "master.m3u8";
  std::string master_cmaf = "master-cmaf.m3u8";
  std::string dash = "manifest.mpd";
};

/// Packages the encoded chunks as they complete, so that a video plays
/// while the rest of it is still being encoded. Remuxes, never re-encodes;
/// streams packets from the packet files, holding about one segment per
/// output in memory.
///
/// Under out_dir:
///   <rung>/init.mp4, <rung>/seg_00000.m4s..., <rung>/index.m3u8  (CMAF)
///   <rung>/ts_00000.ts..., <rung>/ts.m3u8  (MPEG-TS, audio muxed in)
///   audio/init.mp4, audio/seg_00000.m4s..., audio/index.m3u8
///   master-cmaf.m3u8 (audio as an EXT-X-MEDIA group), master.m3u8 (TS)
///   manifest.mpd (static DASH over the CMAF files), <rung>.mp4 (finish)
/// Segments start at the encoder's forced keyframes: the same instants in
/// every rung, in both flavours. Media playlists are EVENT playlists (with
/// EXT-X-START at 0) while growing and VOD with EXT-X-ENDLIST once finished.
/// Every playlist and segment is written to a temporary name and renamed.
class packager {
public:
  /// Empties (or creates) out_dir and writes both master playlists at once
  /// with nominal BANDWIDTH (rung max_kbps*1000 + 128000 for audio) and
  /// empty EVENT media playlists.
  static caf::expected<std::unique_ptr<packager>> open(package_job job);

  ~packager();
  packager(const packager&) = delete;
  packager& operator=(const packager&) = delete;

  /// job.audio_file is complete. Must come before add_chunk(0) when the job
  /// has audio.
  caf::error add_audio();

  /// Chunk `index` (== chunks_added()) is complete for every rung: append
  /// its segments to every playlist.
  caf::error add_chunk(int index);

  int chunks_added() const;

  /// The start of the video is published: at least one complete segment in
  /// every media playlist (audio included).
  bool playable() const;

  /// After the last chunk: ENDLIST on every media playlist, final master
  /// playlists with measured BANDWIDTH and AVERAGE-BANDWIDTH, manifest.mpd
  /// and the MP4 downloads (when job.mp4).
  caf::expected<package_result> finish();

private:
  struct impl;
  explicit packager(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// The whole job in one call: open, add_audio, every chunk, finish.
caf::expected<package_result> package_hls(const package_job& job);

/// Decodes the frame at about `at_seconds` (source time, upright) and
/// writes it as a JPEG no higher than `max_height` to `output` (temporary
/// name, then renamed).
caf::error write_poster(const std::string& source, const probe_result& src,
                        double at_seconds, int max_height,
                        const std::string& output);

/// The time (source seconds) of the last keyframe at or before `at_s` that
/// is not before `not_before_s`; `at_s` itself when there is none. A still
/// taken there decodes one frame instead of a run from the keyframe.
double keyframe_time_before(const probe_result& src, double at_s,
                            double not_before_s);

/// A representative frame for the poster, in source time inside the clip:
/// of five candidates in the first half of the clip (never its first frame)
/// the one with the most luma variance, so not a black or flat picture.
caf::expected<double> choose_poster_time(const std::string& source,
                                         const probe_result& src,
                                         const clip_range& clip = {});

struct storyboard_result {
  double interval_s = 0; // between tiles
  int tiles = 0;
  int tile_width = 0;
  int tile_height = 0;
  int columns = 0; // tiles per row of the image
};

/// A storyboard (scrubbing thumbnails) of the clipped video: one tile every
/// `interval_s` seconds of the clip (0: chosen so there are at most 100
/// tiles, at least 1 s apart), `tile_width` wide (even, aspect kept), up to
/// `columns` per row, all in one JPEG `out_jpg`; and its WebVTT `out_vtt`
/// with one cue per tile, times from the clip's start:
///   00:00:00.000 --> 00:00:05.000
///   <image_name>#xywh=x,y,w,h
/// Decodes forward through the video once, seeking only past keyframes
/// between tiles.
caf::expected<storyboard_result>
write_storyboard(const std::string& source, const probe_result& src,
                 const clip_range& clip, const std::string& out_jpg,
                 const std::string& out_vtt, const std::string& image_name,
                 double interval_s = 0, int tile_width = 160, int columns = 10);

} // namespace reel::codec
