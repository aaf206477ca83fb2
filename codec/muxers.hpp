#pragma once

// The packager's muxers: an output and the AVIOContext it writes to, one
// fragmented MP4 (CMAF) track cut into fragments, MPEG-TS segments, the
// progressive MP4 download; packets made from packet file records, and the
// audio packets kept until every output has taken them. Used by
// codec/package.cpp. Private to codec/.

#include "codec/ffmpeg_glue.hpp"
#include "codec/packet_file.hpp"

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace reel::codec {

// -- outputs -----------------------------------------------------------------

/// A muxer and the AVIOContext it writes to: none, a dynamic buffer (from
/// which fMP4 fragments are cut) or a file. The context is owned here, so
/// that a dynamic buffer is never closed as if it were a file.
class output {
public:
  output() = default;
  output(const output&) = delete;
  output& operator=(const output&) = delete;
  ~output() { drop_io(); }

  caf::error alloc(const char* format, const std::string& url);

  AVFormatContext* get() const { return ctx_.get(); }

  /// Allocates a muxer of `format` with a video stream and, when `audio` is
  /// given, an audio stream (else `a` stays null).
  caf::error alloc_av(const char* format, const std::string& url,
                      const packet_file_header& video,
                      const packet_file_header* audio, AVStream*& v,
                      AVStream*& a);

  caf::expected<AVStream*> add_stream(const packet_file_header& h);

  caf::error open_buffer();

  /// The bytes written since open_buffer(); the buffer is closed.
  std::vector<uint8_t> take_buffer();

  caf::error open_file(const std::string& path);

  /// Closes the file; its size, or an error when a write failed.
  caf::expected<int64_t> close_file(const std::string& path);

  void drop_io();

private:
  enum class io { none, buffer, file };
  output_context_ptr ctx_;
  io io_ = io::none;
};

// Writes `pkt` (timestamps in `tb`) to stream `st` of `oc`; `pkt` stays
// the caller's.
caf::error write_packet(AVFormatContext* oc, AVStream* st, const AVPacket* pkt,
                        AVRational tb, packet_ptr& scratch,
                        const std::string& what);

/// One track of fragmented MP4 (CMAF): an init segment and one fragment per
/// media segment, cut from a dynamic buffer.
class fmp4_track {
public:
  caf::error open(const packet_file_header& h, const std::string& what);

  /// The track's time scale (valid after open).
  AVRational time_base() const { return st_->time_base; }

  caf::error write(const AVPacket* pkt);

  /// Samples written since the last cut.
  int64_t pending() const { return pending_; }

  /// Cuts the samples written since the last cut into one fragment; the
  /// first cut also yields the init segment.
  caf::error cut(std::vector<uint8_t>& init, std::vector<uint8_t>& fragment);

private:
  std::string what_;
  output out_;
  AVStream* st_ = nullptr;
  AVRational in_tb_{1, 1};
  bool init_done_ = false;
  int64_t pending_ = 0;
  packet_ptr scratch_ = make_packet();
};

/// What the TS and MP4 muxers share: one output with a video stream and an
/// optional audio stream, and the writing of packets to either.
class av_muxer {
public:
  caf::error write_video(const AVPacket* pkt, AVRational tb) {
    return write_packet(out_.get(), video_, pkt, tb, scratch_, what_);
  }

  caf::error write_audio(const AVPacket* pkt, AVRational tb) {
    return write_packet(out_.get(), audio_, pkt, tb, scratch_, what_);
  }

protected:
  caf::error alloc(const char* format, const std::string& what,
                   const packet_file_header& video,
                   const packet_file_header* audio) {
    what_ = what;
    return out_.alloc_av(format, what, video, audio, video_, audio_);
  }

  std::string what_; // the file (or pattern) written, for messages
  output out_;
  AVStream* video_ = nullptr;
  AVStream* audio_ = nullptr;
  packet_ptr scratch_ = make_packet();
};

/// MPEG-TS with video and (optionally) audio, one file per segment, each
/// starting with PAT and PMT.
class ts_muxer : public av_muxer {
public:
  caf::error open(const packet_file_header& video,
                  const packet_file_header* audio, const std::string& what) {
    return alloc("mpegts", what, video, audio);
  }

  caf::error begin(const std::string& path);

  /// Ends the segment begun at `path`: flushes what the muxer holds back
  /// (audio PES) and closes the file; its size.
  caf::expected<int64_t> end(const std::string& path);

private:
  bool started_ = false;
};

/// A progressive MP4 download with the index in front (faststart).
class mp4_muxer : public av_muxer {
public:
  caf::error open(const std::string& path, const packet_file_header& video,
                  const packet_file_header* audio);

  /// Writes the index (moving it in front of the media) and closes the file.
  caf::expected<int64_t> finish();
};

// -- packets -----------------------------------------------------------------

/// An AVPacket for `rec`, its timestamps moved by `offset`.
caf::expected<packet_ptr> to_packet(const packet_record& rec, int64_t offset);

/// The audio packets, read from the audio packet file as the video needs
/// them and kept until every output has taken them: about a chunk's worth.
class audio_queue {
public:
  caf::error open(const std::string& path);

  const packet_file_header& header() const { return head_; }
  AVRational time_base() const { return {head_.tb_num, head_.tb_den}; }

  /// The first packet's dts (read with a reader of its own, so that the
  /// queue only ever holds packets with the offset applied).
  caf::expected<std::optional<int64_t>> first_dts(const std::string& path);

  void set_offset(int64_t offset) { offset_ = offset; }

  /// Packet `i` (counted from the start of the file), loading it when
  /// needed; nullptr past the end.
  caf::expected<const AVPacket*> at(int64_t i);

  /// Forgets the packets before `i`.
  void release_before(int64_t i);

private:
  caf::expected<bool> load(int64_t i);

  std::optional<packet_file_reader> reader_;
  packet_file_header head_;
  packet_record rec_;
  std::deque<packet_ptr> queue_;
  int64_t base_ = 0;
  int64_t offset_ = 0;
  bool eof_ = false;
};

} // namespace reel::codec
