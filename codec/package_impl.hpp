#pragma once

// The packager's state, packager::impl, and the segments it publishes:
// what codec/package.cpp (adding chunks, the public face) and
// codec/manifests.cpp (the playlists and the MPD) share. Private to codec/.

#include "codec/codec.hpp"
#include "codec/muxers.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace reel::codec {

constexpr const char* fmp4_segment_format = "seg_%05d.m4s";
constexpr const char* ts_segment_format = "ts_%05d.ts";

/// The file name of segment `n` in `format` (one of the two above).
std::string numbered(const char* format, int n);

/// One published segment.
struct segment {
  int64_t start = 0;  // first pts (output ticks of the stream's time base)
  int64_t length = 0; // to the next segment's start
  int64_t bytes = 0;
};

inline double seconds_of(int64_t ticks, AVRational tb) {
  return static_cast<double>(ticks) * av_q2d(tb);
}

// Peak (largest segment) and average bits per second of `segs`.
std::pair<int64_t, int64_t> bit_rates(const std::vector<segment>& segs,
                                      AVRational tb);

// -- the packager ----------------------------------------------------------

struct packager::impl {
  /// Everything about one rung's outputs.
  struct rung_state {
    packet_file_header head; // from chunk 0
    std::string codecs;      // avc1.xxxxxx
    fmp4_track fmp4;
    ts_muxer ts;
    std::optional<mp4_muxer> mp4;
    std::vector<segment> segments; // the same instants in both flavours
    std::vector<int64_t> ts_bytes;
    int64_t frames = 0;
    int64_t first_pts = 0;
    int64_t end = 0; // where the last frame ends (output ticks)
    int64_t last_dts = std::numeric_limits<int64_t>::min();
    int64_t ts_audio = 0;  // next audio packet for the TS
    int64_t mp4_audio = 0; // next audio packet for the MP4
    int64_t mp4_size = 0;
    // The segment being written.
    bool open = false;
    int64_t seg_start = 0;
    std::string ts_tmp;
  };

  package_job job;
  std::filesystem::path out;
  bool has_audio = false;
  bool audio_added = false;
  bool started = false; // chunk 0 seen: offsets known, muxers open
  bool finished = false;
  caf::error broken; // a failure leaves the packager unusable
  int chunk_count = 0;
  int added = 0;
  int target = 1; // EXT-X-TARGETDURATION, never lowered
  AVRational vtb{1, 1};
  int64_t voff = 0; // added to every video timestamp
  /// rung_state holds muxers, which do not move: a vector of pointers.
  struct rung_list {
    std::vector<std::unique_ptr<rung_state>> items;
    void resize(size_t n) {
      while (items.size() < n)
        items.push_back(std::make_unique<rung_state>());
    }
    size_t size() const { return items.size(); }
    rung_state& operator[](size_t i) { return *items[i]; }
    const rung_state& operator[](size_t i) const { return *items[i]; }
  };
  rung_list rungs;
  // Audio.
  audio_queue audio;
  fmp4_track audio_fmp4;
  std::vector<segment> audio_segments;
  int64_t audio_next = 0; // next audio packet for the fMP4 track
  int64_t audio_packets = 0;
  // Decode timestamps, made here rather than taken from the encoder: x264
  // extrapolates the first ones of every chunk from that chunk alone, which
  // for a variable frame rate does not continue the chunk before, and an
  // fMP4 fragment must start where the previous one's durations end.
  // The k-th packet (decode order) gets the k-th of the presentation times
  // in order, `reorder` behind (x264's B-frame delay), so the times run on
  // across chunks and every duration is known when the chunk is cut.
  int reorder = -1;                  // from chunk 0
  int64_t dts_shift = 0;             // first pts - first dts (chunk 0)
  std::vector<int64_t> dts_history;  // the next chunk's first `reorder` dts
  std::vector<int64_t> chunk_dts;    // this chunk's, by decode index
  std::vector<int64_t> chunk_length; // decode durations, likewise

  std::filesystem::path path(const std::string& rel) const { return out / rel; }

  caf::error fail(caf::error err) {
    broken = err;
    return err;
  }

  // -- adding chunks ---------------------------------------------------------

  // At chunk 0: the headers, the common offset, the muxers.
  caf::error start();
  caf::error add(int index);
  // Reads rung 0's chunk for its timestamps: chunk_dts and chunk_length.
  caf::error plan_dts(int index, bool last_chunk);
  caf::error add_rung(size_t r, int index, bool last_chunk,
                      std::vector<int64_t>& starts, int64_t& chunk_end);
  caf::error begin_segment(rung_state& rs, size_t r, int64_t pts);
  caf::error end_segment(rung_state& rs, size_t r, int64_t boundary,
                         bool all_audio);
  caf::error audio_segments_until(int64_t boundary, bool all);
  // The TS's audio up to `limit` (video ticks): by dts before a video
  // packet, by pts at the end of a segment; everything when `all`.
  caf::error write_ts_audio(rung_state& rs, int64_t limit, bool by_pts,
                            bool all);
  caf::error write_mp4_audio(rung_state& rs, int64_t video_dts, bool all);
  void note_length(double seconds) {
    target = std::max<int>(target, static_cast<int>(std::llround(seconds)));
  }

  // -- text -------------------------------------------------------------------

  std::string media_playlist(const std::vector<segment>& segs, AVRational tb,
                             const char* format, bool fmp4, bool ended) const;
  std::string master_cmaf(bool measured) const;
  std::string master_ts(bool measured) const;
  // One #EXT-X-STREAM-INF line of rung `r` (without its URI).
  std::string stream_inf(size_t r, int64_t bandwidth, int64_t average,
                         bool audio_group) const;
  std::string dash() const;
  caf::error write_text(const std::string& rel, const std::string& text) const {
    return write_file_atomically(path(rel).string(), text.data(), text.size());
  }
  caf::error write_playlists(bool ended) const;
  AVRational audio_tb() const {
    return audio_added ? audio.time_base() : AVRational{1, 48000};
  }
  double fps_of(const rung_state& rs) const {
    double d = seconds_of(rs.end - rs.first_pts, vtb);
    return d > 0 ? static_cast<double>(rs.frames) / d : 0;
  }
};

} // namespace reel::codec
