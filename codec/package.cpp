// The packager: remuxes the packet files, chunk by chunk as they complete,
// into CMAF (fMP4) and MPEG-TS HLS, static DASH over the CMAF files and MP4
// downloads. Playlists are written here rather than by libavformat's hls
// muxer: every segment's duration is known exactly, segments of every
// rendition and flavour are cut at the same keyframes, and a playlist can
// grow (EVENT) while the rest of the video is encoded.

#include "codec/codec.hpp"
#include "codec/ffmpeg_glue.hpp"
#include "codec/packet_file.hpp"

extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/dict.h>
#include <libavutil/opt.h>
}

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <limits>
#include <optional>
#include <system_error>

namespace fs = std::filesystem;

namespace reel::codec {

namespace {

constexpr int64_t nominal_audio_bps = 128000;
constexpr const char* fmp4_segment_format = "seg_%05d.m4s";
constexpr const char* ts_segment_format = "ts_%05d.ts";
// The MP4 movie time scale (edit lists, track durations): a multiple of
// 48000 and 90000, so that audio starting at any sample and video in the
// usual time bases start exactly where they should (the default, 1000,
// moves the audio by up to a millisecond).
constexpr const char* movie_timescale = "720000";

std::string format_fixed(double s, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, s);
  return buf;
}

std::string numbered(const char* format, int n) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, n);
  return buf;
}

caf::error storage_failure(const std::string& what, const std::error_code& e) {
  return make_error(ec::storage_error, what + ": " + e.message());
}

// The RFC 6381 name of the H.264 stream whose SPS is in `extradata`, e.g.
// "avc1.64001f". Extradata is either Annex B (start codes, as x264 writes
// it) or an avcC record.
std::string avc1_codecs(const std::vector<uint8_t>& ed) {
  auto name = [](uint8_t profile, uint8_t constraints, uint8_t level) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "avc1.%02x%02x%02x", profile, constraints,
                  level);
    return std::string{buf};
  };
  if (ed.size() >= 4 && ed[0] == 1) // avcC: version, profile, compat, level
    return name(ed[1], ed[2], ed[3]);
  for (size_t i = 0; i + 3 < ed.size(); ++i) {
    if (ed[i] != 0 || ed[i + 1] != 0 || ed[i + 2] != 1)
      continue;
    size_t nal = i + 3;
    if ((ed[nal] & 0x1f) == 7 && nal + 3 < ed.size())
      return name(ed[nal + 1], ed[nal + 2], ed[nal + 3]);
  }
  return "avc1.640028"; // High 4.0: what a player assumes is safe
}

// Before the first chunk is known: High profile at a level that fits the
// rung at up to 60 fps.
std::string nominal_avc1(const rung& r) {
  int64_t pixels = static_cast<int64_t>(r.width) * r.height;
  if (pixels > 2048LL * 1088)
    return "avc1.640033"; // 5.1
  if (pixels > 1280LL * 720)
    return "avc1.64002a"; // 4.2
  return "avc1.64001f";   // 3.1
}

// Describes the stream of a packet file to a muxer.
caf::error set_stream_params(AVStream* st, const packet_file_header& h) {
  const AVCodecDescriptor* desc =
      avcodec_descriptor_get_by_name(h.codec.c_str());
  if (desc == nullptr)
    return media_error("unknown codec " + h.codec + " in a packet file");
  st->time_base = AVRational{h.tb_num, h.tb_den};
  AVCodecParameters* par = st->codecpar;
  par->codec_type = desc->type;
  par->codec_id = desc->id;
  par->codec_tag = 0;
  if (desc->type == AVMEDIA_TYPE_VIDEO) {
    par->width = h.width;
    par->height = h.height;
    par->format = AV_PIX_FMT_YUV420P;
    par->sample_aspect_ratio = AVRational{1, 1};
  } else {
    par->sample_rate = h.sample_rate;
    av_channel_layout_default(&par->ch_layout, h.channels);
    par->frame_size = 1024;
  }
  if (!h.extradata.empty()) {
    par->extradata = static_cast<uint8_t*>(
        av_mallocz(h.extradata.size() + AV_INPUT_BUFFER_PADDING_SIZE));
    if (par->extradata == nullptr)
      return media_error("out of memory");
    std::copy(h.extradata.begin(), h.extradata.end(), par->extradata);
    par->extradata_size = static_cast<int>(h.extradata.size());
  }
  return {};
}

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

  caf::error alloc(const char* format, const std::string& url) {
    AVFormatContext* raw = nullptr;
    if (int err =
            avformat_alloc_output_context2(&raw, nullptr, format, url.c_str());
        err < 0)
      return av_error(err, std::string{"creating the "} + format + " muxer");
    ctx_.reset(raw);
    return {};
  }

  AVFormatContext* get() const { return ctx_.get(); }

  /// Allocates a muxer of `format` with a video stream and, when `audio` is
  /// given, an audio stream (else `a` stays null).
  caf::error alloc_av(const char* format, const std::string& url,
                      const packet_file_header& video,
                      const packet_file_header* audio, AVStream*& v,
                      AVStream*& a) {
    if (auto err = alloc(format, url))
      return err;
    auto vs = add_stream(video);
    if (!vs)
      return vs.error();
    v = *vs;
    if (audio != nullptr) {
      auto as = add_stream(*audio);
      if (!as)
        return as.error();
      a = *as;
    }
    return {};
  }

  caf::expected<AVStream*> add_stream(const packet_file_header& h) {
    AVStream* st = avformat_new_stream(ctx_.get(), nullptr);
    if (st == nullptr)
      return media_error("cannot add a stream to a muxer");
    if (auto err = set_stream_params(st, h))
      return err;
    return st;
  }

  caf::error open_buffer() {
    drop_io();
    if (int err = avio_open_dyn_buf(&ctx_->pb); err < 0)
      return av_error(err, "allocating a buffer");
    io_ = io::buffer;
    return {};
  }

  /// The bytes written since open_buffer(); the buffer is closed.
  std::vector<uint8_t> take_buffer() {
    std::vector<uint8_t> bytes;
    if (io_ != io::buffer)
      return bytes;
    uint8_t* data = nullptr;
    int size = avio_close_dyn_buf(ctx_->pb, &data);
    ctx_->pb = nullptr;
    io_ = io::none;
    if (size > 0)
      bytes.assign(data, data + size);
    av_free(data);
    return bytes;
  }

  caf::error open_file(const std::string& path) {
    drop_io();
    if (int err = avio_open(&ctx_->pb, path.c_str(), AVIO_FLAG_WRITE); err < 0)
      return av_error(err, "creating " + path);
    io_ = io::file;
    return {};
  }

  /// Closes the file; its size, or an error when a write failed.
  caf::expected<int64_t> close_file(const std::string& path) {
    if (io_ != io::file)
      return media_error("no file open for " + path);
    avio_flush(ctx_->pb);
    int64_t size = avio_tell(ctx_->pb);
    int failed = ctx_->pb->error;
    int err = avio_closep(&ctx_->pb);
    io_ = io::none;
    if (failed < 0 || err < 0)
      return av_error(failed < 0 ? failed : err, "writing " + path);
    return size;
  }

  void drop_io() {
    if (!ctx_)
      return;
    if (io_ == io::buffer) {
      uint8_t* data = nullptr;
      avio_close_dyn_buf(ctx_->pb, &data);
      av_free(data);
    } else if (io_ == io::file) {
      avio_closep(&ctx_->pb);
    }
    ctx_->pb = nullptr;
    io_ = io::none;
  }

private:
  enum class io { none, buffer, file };
  output_context_ptr ctx_;
  io io_ = io::none;
};

// Writes `pkt` (timestamps in `tb`) to stream `st` of `oc`; `pkt` stays
// the caller's.
caf::error write_packet(AVFormatContext* oc, AVStream* st, const AVPacket* pkt,
                        AVRational tb, packet_ptr& scratch,
                        const std::string& what) {
  if (int err = av_packet_ref(scratch.get(), pkt); err < 0)
    return av_error(err, "referencing a packet");
  scratch->stream_index = st->index;
  av_packet_rescale_ts(scratch.get(), tb, st->time_base);
  int err = av_write_frame(oc, scratch.get());
  av_packet_unref(scratch.get());
  if (err < 0)
    return av_error(err, "writing " + what);
  return {};
}

/// One track of fragmented MP4 (CMAF): an init segment and one fragment per
/// media segment, cut from a dynamic buffer.
class fmp4_track {
public:
  caf::error open(const packet_file_header& h, const std::string& what) {
    what_ = what;
    in_tb_ = AVRational{h.tb_num, h.tb_den};
    if (auto err = out_.alloc("mp4", what))
      return err;
    auto st = out_.add_stream(h);
    if (!st)
      return st.error();
    st_ = *st;
    if (auto err = out_.open_buffer())
      return err;
    AVDictionary* opts = nullptr;
    // As libavformat's own HLS and DASH muxers: fragments only when asked,
    // tfdt in every fragment, the moov (init segment) written with the
    // first fragment so that edit lists know the first timestamps.
    av_dict_set(&opts, "movflags",
                "+frag_custom+dash+delay_moov+skip_sidx+skip_trailer", 0);
    av_dict_set(&opts, "movie_timescale", movie_timescale, 0);
    int err = avformat_write_header(out_.get(), &opts);
    av_dict_free(&opts);
    if (err < 0)
      return av_error(err, "starting " + what);
    return {};
  }

  /// The track's time scale (valid after open).
  AVRational time_base() const { return st_->time_base; }

  caf::error write(const AVPacket* pkt) {
    if (auto err = write_packet(out_.get(), st_, pkt, in_tb_, scratch_, what_))
      return err;
    ++pending_;
    return {};
  }

  /// Samples written since the last cut.
  int64_t pending() const { return pending_; }

  /// Cuts the samples written since the last cut into one fragment; the
  /// first cut also yields the init segment.
  caf::error cut(std::vector<uint8_t>& init, std::vector<uint8_t>& fragment) {
    init.clear();
    if (!init_done_) {
      // With delay_moov the first flush writes ftyp and moov only.
      if (int err = av_write_frame(out_.get(), nullptr); err < 0)
        return av_error(err, "writing the init segment of " + what_);
      init = out_.take_buffer();
      if (auto err = out_.open_buffer())
        return err;
      init_done_ = true;
    }
    if (int err = av_write_frame(out_.get(), nullptr); err < 0)
      return av_error(err, "writing a fragment of " + what_);
    fragment = out_.take_buffer();
    pending_ = 0;
    if (init.empty() && !init_done_)
      return media_error("no init segment for " + what_);
    return out_.open_buffer();
  }

private:
  std::string what_;
  output out_;
  AVStream* st_ = nullptr;
  AVRational in_tb_{1, 1};
  bool init_done_ = false;
  int64_t pending_ = 0;
  packet_ptr scratch_ = make_packet();
};

/// MPEG-TS with video and (optionally) audio, one file per segment, each
/// starting with PAT and PMT.
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

class ts_muxer : public av_muxer {
public:
  caf::error open(const packet_file_header& video,
                  const packet_file_header* audio, const std::string& what) {
    return alloc("mpegts", what, video, audio);
  }

  caf::error begin(const std::string& path) {
    if (auto err = out_.open_file(path))
      return err;
    if (!started_) {
      AVDictionary* opts = nullptr;
      // Timestamps as given: the same instants as the fMP4 segments.
      av_dict_set(&opts, "mpegts_copyts", "1", 0);
      int err = avformat_write_header(out_.get(), &opts);
      av_dict_free(&opts);
      if (err < 0)
        return av_error(err, "starting " + what_);
      started_ = true;
    } else {
      // A segment must be decodable on its own: PAT and PMT first.
      av_opt_set(out_.get()->priv_data, "mpegts_flags", "resend_headers", 0);
    }
    return {};
  }

  /// Ends the segment begun at `path`: flushes what the muxer holds back
  /// (audio PES) and closes the file; its size.
  caf::expected<int64_t> end(const std::string& path) {
    if (int err = av_write_frame(out_.get(), nullptr); err < 0)
      return av_error(err, "flushing " + what_);
    return out_.close_file(path);
  }

private:
  bool started_ = false;
};

/// A progressive MP4 download with the index in front (faststart).
class mp4_muxer : public av_muxer {
public:
  caf::error open(const std::string& path, const packet_file_header& video,
                  const packet_file_header* audio) {
    if (auto err = alloc("mp4", path, video, audio))
      return err;
    if (auto err = out_.open_file(path))
      return err;
    AVDictionary* opts = nullptr;
    av_dict_set(&opts, "movflags", "+faststart", 0);
    av_dict_set(&opts, "movie_timescale", movie_timescale, 0);
    int err = avformat_write_header(out_.get(), &opts);
    av_dict_free(&opts);
    if (err < 0)
      return av_error(err, "starting " + path);
    return {};
  }

  /// Writes the index (moving it in front of the media) and closes the file.
  caf::expected<int64_t> finish() {
    if (int err = av_write_trailer(out_.get()); err < 0)
      return av_error(err, "finishing " + what_);
    return out_.close_file(what_);
  }

};

// -- packets -----------------------------------------------------------------

/// An AVPacket for `rec`, its timestamps moved by `offset`.
caf::expected<packet_ptr> to_packet(const packet_record& rec, int64_t offset) {
  auto pkt = make_packet();
  if (int err = av_new_packet(pkt.get(), static_cast<int>(rec.data.size()));
      err < 0)
    return av_error(err, "allocating a packet");
  std::copy(rec.data.begin(), rec.data.end(), pkt->data);
  pkt->pts = rec.pts + offset;
  pkt->dts = rec.dts + offset;
  pkt->duration = rec.duration;
  pkt->flags = (rec.flags & packet_key) ? AV_PKT_FLAG_KEY : 0;
  return pkt;
}

/// The audio packets, read from the audio packet file as the video needs
/// them and kept until every output has taken them: about a chunk's worth.
class audio_queue {
public:
  caf::error open(const std::string& path) {
    auto r = packet_file_reader::open(path);
    if (!r)
      return r.error();
    reader_.emplace(std::move(*r));
    head_ = reader_->header();
    return {};
  }

  const packet_file_header& header() const { return head_; }
  AVRational time_base() const { return {head_.tb_num, head_.tb_den}; }

  /// The first packet's dts (read with a reader of its own, so that the
  /// queue only ever holds packets with the offset applied).
  caf::expected<std::optional<int64_t>> first_dts(const std::string& path) {
    auto r = packet_file_reader::open(path);
    if (!r)
      return r.error();
    packet_record rec;
    auto more = r->next(rec);
    if (!more)
      return more.error();
    if (!*more)
      return std::optional<int64_t>{};
    return std::optional<int64_t>{rec.dts};
  }

  void set_offset(int64_t offset) { offset_ = offset; }

  /// Packet `i` (counted from the start of the file), loading it when
  /// needed; nullptr past the end.
  caf::expected<const AVPacket*> at(int64_t i) {
    auto has = load(i);
    if (!has)
      return has.error();
    if (!*has)
      return static_cast<const AVPacket*>(nullptr);
    return static_cast<const AVPacket*>(queue_[i - base_].get());
  }

  /// Forgets the packets before `i`.
  void release_before(int64_t i) {
    while (base_ < i && !queue_.empty()) {
      queue_.pop_front();
      ++base_;
    }
  }

private:
  caf::expected<bool> load(int64_t i) {
    while (base_ + static_cast<int64_t>(queue_.size()) <= i) {
      if (eof_)
        return false;
      auto more = reader_->next(rec_);
      if (!more)
        return more.error();
      if (!*more) {
        eof_ = true;
        return false;
      }
      auto pkt = to_packet(rec_, offset_);
      if (!pkt)
        return pkt.error();
      queue_.push_back(std::move(*pkt));
    }
    return true;
  }

  std::optional<packet_file_reader> reader_;
  packet_file_header head_;
  packet_record rec_;
  std::deque<packet_ptr> queue_;
  int64_t base_ = 0;
  int64_t offset_ = 0;
  bool eof_ = false;
};

/// One published segment.
struct segment {
  int64_t start = 0;  // first pts (output ticks of the stream's time base)
  int64_t length = 0; // to the next segment's start
  int64_t bytes = 0;
};

double seconds_of(int64_t ticks, AVRational tb) {
  return static_cast<double>(ticks) * av_q2d(tb);
}

// Peak (largest segment) and average bits per second of `segs`.
std::pair<int64_t, int64_t> bit_rates(const std::vector<segment>& segs,
                                      AVRational tb) {
  int64_t peak = 0;
  int64_t bytes = 0;
  double seconds = 0;
  for (const auto& s : segs) {
    double d = seconds_of(s.length, tb);
    bytes += s.bytes;
    seconds += d;
    if (d > 0)
      peak = std::max(peak, static_cast<int64_t>(std::ceil(s.bytes * 8.0 / d)));
  }
  int64_t average =
      seconds > 0 ? static_cast<int64_t>(std::ceil(bytes * 8.0 / seconds)) : 0;
  return {peak, average};
}

/// The frame rate as DASH writes it: "25", "30000/1001".
std::string rate_text(double fps) {
  AVRational q = av_d2q(fps, 1001000);
  if (q.den == 1)
    return std::to_string(q.num);
  return std::to_string(q.num) + "/" + std::to_string(q.den);
}

std::string iso_duration(double seconds) {
  return "PT" + format_fixed(seconds, 3) + "S";
}

} // namespace

// -- the packager
// --------------------------------------------------------------

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
  fs::path out;
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

  fs::path path(const std::string& rel) const { return out / rel; }

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

namespace {

// Compares an audio timestamp with a video one (both output ticks).
bool audio_before(int64_t a, AVRational atb, int64_t v, AVRational vtb) {
  return av_compare_ts(a, atb, v, vtb) < 0;
}

bool audio_not_after(int64_t a, AVRational atb, int64_t v, AVRational vtb) {
  return av_compare_ts(a, atb, v, vtb) <= 0;
}

} // namespace

caf::error packager::impl::start() {
  // Headers of chunk 0, and the one offset for every stream: it moves the
  // earliest dts of all (x264's B-frames put the first dts before the
  // first pts; AAC priming starts early too) to zero.
  int64_t min_us = std::numeric_limits<int64_t>::max();
  for (size_t r = 0; r < rungs.size(); ++r) {
    auto reader = packet_file_reader::open(job.chunk_files[r][0]);
    if (!reader)
      return reader.error();
    rungs[r].head = reader->header();
    packet_record rec;
    auto more = reader->next(rec);
    if (!more)
      return more.error();
    if (!*more)
      return media_error("chunk 0 of " + job.rungs[r].name + " is empty");
    AVRational tb{rungs[r].head.tb_num, rungs[r].head.tb_den};
    if (r == 0)
      vtb = tb;
    else if (av_cmp_q(tb, vtb) != 0)
      return media_error("the rungs have different time bases");
    min_us = std::min(
        min_us, av_rescale_q_rnd(rec.dts, tb, AV_TIME_BASE_Q, AV_ROUND_DOWN));
  }
  if (has_audio) {
    auto first = audio.first_dts(job.audio_file);
    if (!first)
      return first.error();
    if (*first)
      min_us =
          std::min(min_us, av_rescale_q_rnd(**first, audio.time_base(),
                                            AV_TIME_BASE_Q, AV_ROUND_DOWN));
  }
  const int64_t offset_us = -min_us;
  voff = av_rescale_q_rnd(offset_us, AV_TIME_BASE_Q, vtb, AV_ROUND_UP);
  if (has_audio) {
    audio.set_offset(av_rescale_q_rnd(offset_us, AV_TIME_BASE_Q,
                                      audio.time_base(), AV_ROUND_UP));
    if (auto err = audio_fmp4.open(audio.header(), "audio"))
      return err;
  }
  for (size_t r = 0; r < rungs.size(); ++r) {
    auto& rs = rungs[r];
    const auto& name = job.rungs[r].name;
    rs.codecs = avc1_codecs(rs.head.extradata);
    if (auto err = rs.fmp4.open(rs.head, name))
      return err;
    if (auto err = rs.ts.open(rs.head, has_audio ? &audio.header() : nullptr,
                              name + " (MPEG-TS)"))
      return err;
    if (job.mp4) {
      rs.mp4.emplace();
      if (auto err = rs.mp4->open(path(name + ".mp4.tmp").string(), rs.head,
                                  has_audio ? &audio.header() : nullptr))
        return err;
    }
  }
  started = true;
  return {};
}

caf::error packager::impl::write_ts_audio(rung_state& rs, int64_t limit,
                                          bool by_pts, bool all) {
  if (!has_audio)
    return {};
  for (;;) {
    auto pkt = audio.at(rs.ts_audio);
    if (!pkt)
      return pkt.error();
    if (*pkt == nullptr)
      return {};
    const AVPacket* p = *pkt;
    if (!all) {
      // Before a video packet: the audio up to its dts; at the end of a
      // segment: the audio that starts before the next segment.
      bool take = by_pts
                      ? audio_before(p->pts, audio.time_base(), limit, vtb)
                      : audio_not_after(p->dts, audio.time_base(), limit, vtb);
      if (!take)
        return {};
    }
    if (auto err = rs.ts.write_audio(p, audio.time_base()))
      return err;
    ++rs.ts_audio;
  }
}

caf::error packager::impl::write_mp4_audio(rung_state& rs, int64_t video_dts,
                                           bool all) {
  if (!has_audio || !rs.mp4)
    return {};
  for (;;) {
    auto pkt = audio.at(rs.mp4_audio);
    if (!pkt)
      return pkt.error();
    if (*pkt == nullptr)
      return {};
    const AVPacket* p = *pkt;
    if (!all && !audio_not_after(p->dts, audio.time_base(), video_dts, vtb))
      return {};
    if (auto err = rs.mp4->write_audio(p, audio.time_base()))
      return err;
    ++rs.mp4_audio;
  }
}

caf::error packager::impl::begin_segment(rung_state& rs, size_t r,
                                         int64_t pts) {
  const auto& name = job.rungs[r].name;
  int n = static_cast<int>(rs.segments.size());
  rs.ts_tmp =
      path(name + "/" + numbered(ts_segment_format, n) + ".tmp").string();
  if (auto err = rs.ts.begin(rs.ts_tmp))
    return err;
  rs.open = true;
  rs.seg_start = pts;
  return {};
}

caf::error packager::impl::end_segment(rung_state& rs, size_t r,
                                       int64_t boundary, bool all_audio) {
  const auto& name = job.rungs[r].name;
  int n = static_cast<int>(rs.segments.size());
  if (auto err = write_ts_audio(rs, boundary, true, all_audio))
    return err;
  auto ts_size = rs.ts.end(rs.ts_tmp);
  if (!ts_size)
    return ts_size.error();
  auto ts_path = path(name + "/" + numbered(ts_segment_format, n)).string();
  if (auto err = commit_file(rs.ts_tmp, ts_path))
    return err;
  std::vector<uint8_t> init;
  std::vector<uint8_t> fragment;
  if (auto err = rs.fmp4.cut(init, fragment))
    return err;
  if (!init.empty())
    if (auto err = write_file_atomically(path(name + "/init.mp4").string(),
                                         init.data(), init.size()))
      return err;
  if (auto err = write_file_atomically(
          path(name + "/" + numbered(fmp4_segment_format, n)).string(),
          fragment.data(), fragment.size()))
    return err;
  segment s;
  s.start = rs.seg_start;
  s.length = boundary - rs.seg_start;
  s.bytes = static_cast<int64_t>(fragment.size());
  rs.segments.push_back(s);
  rs.ts_bytes.push_back(*ts_size);
  rs.open = false;
  note_length(seconds_of(s.length, vtb));
  return {};
}

caf::error packager::impl::add_rung(size_t r, int index, bool last_chunk,
                                    std::vector<int64_t>& starts,
                                    int64_t& chunk_end) {
  auto& rs = rungs[r];
  const auto& name = job.rungs[r].name;
  const std::string& file = job.chunk_files[r][index];
  auto reader = packet_file_reader::open(file);
  if (!reader)
    return reader.error();
  const auto& h = reader->header();
  if (h.codec != rs.head.codec || h.tb_num != rs.head.tb_num ||
      h.tb_den != rs.head.tb_den || h.width != rs.head.width ||
      h.height != rs.head.height || h.extradata != rs.head.extradata)
    return media_error("chunk " + std::to_string(index) + " of " + name +
                       " was encoded with other settings than chunk 0");
  packet_record rec;
  bool first = true;
  size_t k = 0; // decode index in the chunk
  chunk_end = std::numeric_limits<int64_t>::min();
  for (;;) {
    auto more = reader->next(rec);
    if (!more)
      return more.error();
    if (!*more)
      break;
    auto pkt = to_packet(rec, voff);
    if (!pkt)
      return pkt.error();
    AVPacket* p = pkt->get();
    const bool key = (p->flags & AV_PKT_FLAG_KEY) != 0;
    if (first && !key)
      return media_error("chunk " + std::to_string(index) + " of " + name +
                         " does not start with a keyframe");
    first = false;
    if (k >= chunk_dts.size())
      return media_error("chunk " + std::to_string(index) + " of " + name +
                         " has more frames than " + job.rungs[0].name);
    chunk_end = std::max(chunk_end, p->pts + p->duration);
    p->dts = chunk_dts[k];
    p->duration = chunk_length[k];
    ++k;
    if (p->dts > p->pts || p->dts <= rs.last_dts)
      return media_error("chunk " + std::to_string(index) + " of " + name +
                         " reorders frames deeper than chunk 0");
    rs.last_dts = p->dts;
    if (key) {
      // A segment ends where the next keyframe starts.
      if (rs.open)
        if (auto err = end_segment(rs, r, p->pts, false))
          return err;
      if (auto err = begin_segment(rs, r, p->pts))
        return err;
      starts.push_back(p->pts);
    }
    if (rs.frames == 0)
      rs.first_pts = p->pts;
    if (auto err = write_ts_audio(rs, p->dts, false, false))
      return err;
    if (auto err = write_mp4_audio(rs, p->dts, false))
      return err;
    if (auto err = rs.fmp4.write(p))
      return err;
    if (auto err = rs.ts.write_video(p, vtb))
      return err;
    if (rs.mp4)
      if (auto err = rs.mp4->write_video(p, vtb))
        return err;
    ++rs.frames;
  }
  if (first)
    return media_error("chunk " + std::to_string(index) + " of " + name +
                       " is empty");
  if (k != chunk_dts.size())
    return media_error("chunk " + std::to_string(index) + " of " + name +
                       " has fewer frames than " + job.rungs[0].name);
  rs.end = chunk_end;
  if (auto err = end_segment(rs, r, chunk_end, last_chunk))
    return err;
  if (last_chunk)
    if (auto err = write_mp4_audio(rs, 0, true))
      return err;
  return {};
}

// Cuts the audio fMP4 track at the video's segment boundary `boundary`:
// the audio packets starting before it (all of them when `all`) make one
// segment. No packets: no segment (a very short video segment).
caf::error packager::impl::audio_segments_until(int64_t boundary, bool all) {
  const AVRational atb = audio.time_base();
  int64_t first_pts = 0;
  int64_t end = 0;
  int64_t count = 0;
  for (;;) {
    auto pkt = audio.at(audio_next);
    if (!pkt)
      return pkt.error();
    if (*pkt == nullptr)
      break;
    const AVPacket* p = *pkt;
    if (!all && !audio_before(p->pts, atb, boundary, vtb))
      break;
    if (count == 0)
      first_pts = p->pts;
    end = std::max(end, p->pts + p->duration);
    if (auto err = audio_fmp4.write(p))
      return err;
    ++count;
    ++audio_next;
  }
  if (count == 0)
    return {};
  std::vector<uint8_t> init;
  std::vector<uint8_t> fragment;
  if (auto err = audio_fmp4.cut(init, fragment))
    return err;
  if (!init.empty())
    if (auto err = write_file_atomically(path("audio/init.mp4").string(),
                                         init.data(), init.size()))
      return err;
  int n = static_cast<int>(audio_segments.size());
  if (auto err = write_file_atomically(
          path("audio/" + numbered(fmp4_segment_format, n)).string(),
          fragment.data(), fragment.size()))
    return err;
  segment s;
  s.start = first_pts;
  s.length = end - first_pts;
  s.bytes = static_cast<int64_t>(fragment.size());
  // Audio is contiguous: a segment lasts until the next one starts.
  if (!audio_segments.empty()) {
    auto& prev = audio_segments.back();
    prev.length = s.start - prev.start;
  }
  audio_segments.push_back(s);
  audio_packets += count;
  note_length(seconds_of(s.length, atb));
  return {};
}

caf::error packager::impl::plan_dts(int index, bool last_chunk) {
  auto reader = packet_file_reader::open(job.chunk_files[0][index]);
  if (!reader)
    return reader.error();
  std::vector<int64_t> pts;
  std::vector<int64_t> dts;
  int64_t end = std::numeric_limits<int64_t>::min();
  packet_record rec;
  for (;;) {
    auto more = reader->next(rec);
    if (!more)
      return more.error();
    if (!*more)
      break;
    pts.push_back(rec.pts + voff);
    dts.push_back(rec.dts + voff);
    end = std::max(end, rec.pts + voff + rec.duration);
  }
  if (pts.empty())
    return media_error("chunk " + std::to_string(index) + " of " +
                       job.rungs[0].name + " is empty");
  const size_t n = pts.size();
  std::vector<int64_t> sorted = pts;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
    return media_error("chunk " + std::to_string(index) + " of " +
                       job.rungs[0].name + " repeats a timestamp");
  if (reorder < 0) {
    // The encoder's delay: its decode times before the first picture.
    reorder = static_cast<int>(std::count_if(
        dts.begin(), dts.end(), [&](int64_t d) { return d < sorted.front(); }));
    dts_history.assign(dts.begin(), dts.begin() + reorder);
    std::sort(dts_history.begin(), dts_history.end());
    dts_shift =
        sorted.front() - (reorder > 0 ? dts_history.front() : sorted.front());
  }
  // All decode times from here on: the history, then this chunk's
  // presentation times in order; for no delay, the chunk's end closes it.
  std::vector<int64_t> times = dts_history;
  times.insert(times.end(), sorted.begin(), sorted.end());
  if (reorder == 0)
    times.push_back(end);
  chunk_dts.assign(times.begin(), times.begin() + static_cast<long>(n));
  chunk_length.resize(n);
  for (size_t k = 0; k < n; ++k)
    chunk_length[k] = times[k + 1] - times[k];
  if (last_chunk) // the track lasts as long as the pictures
    chunk_length[n - 1] =
        std::max<int64_t>(1, end - dts_shift - chunk_dts[n - 1]);
  dts_history.assign(times.begin() + static_cast<long>(n),
                     times.begin() + static_cast<long>(n) + reorder);
  return {};
}

caf::error packager::impl::add(int index) {
  if (!started)
    if (auto err = start())
      return err;
  const bool last = index + 1 == chunk_count;
  if (auto err = plan_dts(index, last))
    return err;
  std::vector<int64_t> first_starts;
  int64_t first_end = 0;
  for (size_t r = 0; r < rungs.size(); ++r) {
    std::vector<int64_t> starts;
    int64_t end = 0;
    if (auto err = add_rung(r, index, last, starts, end))
      return err;
    if (r == 0) {
      first_starts = std::move(starts);
      first_end = end;
    } else if (starts != first_starts || end != first_end) {
      return media_error("chunk " + std::to_string(index) + " of " +
                         job.rungs[r].name +
                         " has other segment boundaries "
                         "than " +
                         job.rungs[0].name);
    }
  }
  if (has_audio) {
    for (size_t k = 1; k < first_starts.size(); ++k)
      if (auto err = audio_segments_until(first_starts[k], false))
        return err;
    if (auto err = audio_segments_until(first_end, last))
      return err;
    int64_t done = audio_next;
    for (size_t r = 0; r < rungs.size(); ++r)
      done = std::min(
          {done, rungs[r].ts_audio, rungs[r].mp4 ? rungs[r].mp4_audio : done});
    audio.release_before(done);
  }
  ++added;
  if (auto err = write_playlists(false))
    return err;
  if (index == 0) // the exact CODECS and FRAME-RATE are known now
    for (bool cmaf : {true, false})
      if (auto err = write_text(cmaf ? "master-cmaf.m3u8" : "master.m3u8",
                                cmaf ? master_cmaf(false) : master_ts(false)))
        return err;
  return {};
}

std::string packager::impl::media_playlist(const std::vector<segment>& segs,
                                           AVRational tb, const char* format,
                                           bool fmp4, bool ended) const {
  std::string s = "#EXTM3U\n";
  s += fmp4 ? "#EXT-X-VERSION:7\n" : "#EXT-X-VERSION:3\n";
  s += "#EXT-X-TARGETDURATION:" + std::to_string(target) + "\n";
  s += "#EXT-X-MEDIA-SEQUENCE:0\n";
  s += ended ? "#EXT-X-PLAYLIST-TYPE:VOD\n" : "#EXT-X-PLAYLIST-TYPE:EVENT\n";
  if (!ended)
    s += "#EXT-X-START:TIME-OFFSET=0\n";
  s += "#EXT-X-INDEPENDENT-SEGMENTS\n";
  if (fmp4 && !segs.empty())
    s += "#EXT-X-MAP:URI=\"init.mp4\"\n";
  for (size_t i = 0; i < segs.size(); ++i) {
    s += "#EXTINF:" + format_fixed(seconds_of(segs[i].length, tb), 6) + ",\n";
    s += numbered(format, static_cast<int>(i)) + "\n";
  }
  if (ended)
    s += "#EXT-X-ENDLIST\n";
  return s;
}

caf::error packager::impl::write_playlists(bool ended) const {
  for (size_t r = 0; r < rungs.size(); ++r) {
    const auto& name = job.rungs[r].name;
    const auto& segs = rungs[r].segments;
    if (auto err = write_text(
            name + "/index.m3u8",
            media_playlist(segs, vtb, fmp4_segment_format, true, ended)))
      return err;
    if (auto err = write_text(
            name + "/ts.m3u8",
            media_playlist(segs, vtb, ts_segment_format, false, ended)))
      return err;
  }
  if (has_audio)
    if (auto err = write_text("audio/index.m3u8",
                              media_playlist(audio_segments, audio_tb(),
                                             fmp4_segment_format, true, ended)))
      return err;
  return {};
}

std::string packager::impl::master_cmaf(bool measured) const {
  std::string s = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n";
  std::pair<int64_t, int64_t> audio_rates{nominal_audio_bps, 0};
  if (has_audio) {
    s += "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"default\","
         "DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\","
         "URI=\"audio/index.m3u8\"\n";
    if (measured)
      audio_rates = bit_rates(audio_segments, audio_tb());
  }
  for (size_t r = 0; r < rungs.size(); ++r) {
    const auto& spec = job.rungs[r];
    const auto& rs = rungs[r];
    int64_t bandwidth = static_cast<int64_t>(spec.max_kbps) * 1000 +
                        (has_audio ? audio_rates.first : 0);
    int64_t average = 0;
    if (measured) {
      auto v = bit_rates(rs.segments, vtb);
      bandwidth = v.first + (has_audio ? audio_rates.first : 0);
      average = v.second + (has_audio ? audio_rates.second : 0);
    }
    s += stream_inf(r, bandwidth, average, has_audio) + "\n" + spec.name
         + "/index.m3u8\n";
  }
  return s;
}

std::string packager::impl::stream_inf(size_t r, int64_t bandwidth,
                                       int64_t average,
                                       bool audio_group) const {
  const auto& spec = job.rungs[r];
  const auto& rs = rungs[r];
  std::string s = "#EXT-X-STREAM-INF:BANDWIDTH=" + std::to_string(bandwidth);
  if (average > 0)
    s += ",AVERAGE-BANDWIDTH=" + std::to_string(average);
  int w = started ? rs.head.width : spec.width;
  int h = started ? rs.head.height : spec.height;
  s += ",RESOLUTION=" + std::to_string(w) + "x" + std::to_string(h);
  s += ",CODECS=\"" + (started ? rs.codecs : nominal_avc1(spec)) +
       (has_audio ? ",mp4a.40.2" : "") + "\"";
  if (started && fps_of(rs) > 0)
    s += ",FRAME-RATE=" + format_fixed(fps_of(rs), 3);
  if (audio_group)
    s += ",AUDIO=\"audio\"";
  return s;
}

std::string packager::impl::master_ts(bool measured) const {
  std::string s = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n";
  for (size_t r = 0; r < rungs.size(); ++r) {
    const auto& spec = job.rungs[r];
    const auto& rs = rungs[r];
    int64_t bandwidth = static_cast<int64_t>(spec.max_kbps) * 1000 +
                        (has_audio ? nominal_audio_bps : 0);
    int64_t average = 0;
    if (measured) {
      std::vector<segment> ts = rs.segments;
      for (size_t i = 0; i < ts.size(); ++i)
        ts[i].bytes = rs.ts_bytes[i];
      std::tie(bandwidth, average) = bit_rates(ts, vtb);
    }
    s += stream_inf(r, bandwidth, average, false) + "\n" + spec.name
         + "/ts.m3u8\n";
  }
  return s;
}

namespace {

// A SegmentTimeline over `segs` (timestamps in `tb`) in the track's
// time scale `track`, runs of equal durations folded into r="n".
std::string segment_timeline(const std::vector<segment>& segs, AVRational tb,
                             AVRational track, const std::string& indent) {
  std::string s = indent + "<SegmentTimeline>\n";
  size_t i = 0;
  while (i < segs.size()) {
    auto t = [&](size_t k) { return av_rescale_q(segs[k].start, tb, track); };
    auto end = [&](size_t k) {
      return av_rescale_q(segs[k].start + segs[k].length, tb, track);
    };
    int64_t d = end(i) - t(i);
    size_t j = i + 1;
    while (j < segs.size() && end(j) - t(j) == d && t(j) == end(j - 1))
      ++j;
    s += indent + "  <S t=\"" + std::to_string(t(i)) + "\" d=\"" +
         std::to_string(d) + "\"";
    if (j - i > 1)
      s += " r=\"" + std::to_string(j - i - 1) + "\"";
    s += "/>\n";
    i = j;
  }
  return s + indent + "</SegmentTimeline>\n";
}

} // namespace

std::string packager::impl::dash() const {
  double duration = 0;
  for (size_t r = 0; r < rungs.size(); ++r)
    if (!rungs[r].segments.empty())
      duration = std::max(
          duration,
          seconds_of(rungs[r].end - rungs[r].segments.front().start, vtb));
  std::string s = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";
  s += "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" "
       "profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" type=\"static\" "
       "mediaPresentationDuration=\"" +
       iso_duration(duration) + "\" minBufferTime=\"" + iso_duration(target) +
       "\">\n";
  s += "  <Period id=\"0\" start=\"PT0S\">\n";
  s += "    <AdaptationSet id=\"0\" contentType=\"video\" "
       "mimeType=\"video/mp4\" segmentAlignment=\"true\" "
       "startWithSAP=\"1\">\n";
  for (size_t r = 0; r < rungs.size(); ++r) {
    const auto& rs = rungs[r];
    const auto& name = job.rungs[r].name;
    auto rates = bit_rates(rs.segments, vtb);
    AVRational track = rs.fmp4.time_base();
    s += "      <Representation id=\"" + name + "\" bandwidth=\"" +
         std::to_string(rates.first) + "\" width=\"" +
         std::to_string(rs.head.width) + "\" height=\"" +
         std::to_string(rs.head.height) + "\" codecs=\"" + rs.codecs +
         "\" frameRate=\"" + rate_text(fps_of(rs)) + "\" sar=\"1:1\">\n";
    s += "        <SegmentTemplate timescale=\"" + std::to_string(track.den) +
         "\" initialization=\"" + name + "/init.mp4\" media=\"" + name +
         "/seg_$Number%05d$.m4s\" startNumber=\"0\">\n";
    s += segment_timeline(rs.segments, vtb, track, "          ");
    s += "        </SegmentTemplate>\n      </Representation>\n";
  }
  s += "    </AdaptationSet>\n";
  if (has_audio && !audio_segments.empty()) {
    auto rates = bit_rates(audio_segments, audio_tb());
    AVRational track = audio_fmp4.time_base();
    s += "    <AdaptationSet id=\"1\" contentType=\"audio\" "
         "mimeType=\"audio/mp4\" segmentAlignment=\"true\" "
         "startWithSAP=\"1\" lang=\"und\">\n";
    s += "      <Representation id=\"audio\" bandwidth=\"" +
         std::to_string(rates.first) +
         "\" codecs=\"mp4a.40.2\" audioSamplingRate=\"" +
         std::to_string(audio.header().sample_rate) + "\">\n";
    s += "        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:"
         "23003:3:audio_channel_configuration:2011\" value=\"" +
         std::to_string(audio.header().channels) + "\"/>\n";
    s += "        <SegmentTemplate timescale=\"" + std::to_string(track.den) +
         "\" initialization=\"audio/init.mp4\" "
         "media=\"audio/seg_$Number%05d$.m4s\" startNumber=\"0\">\n";
    s += segment_timeline(audio_segments, audio_tb(), track, "          ");
    s += "        </SegmentTemplate>\n      </Representation>\n";
    s += "    </AdaptationSet>\n";
  }
  s += "  </Period>\n</MPD>\n";
  return s;
}

// -- the public face
// -----------------------------------------------------------

packager::packager(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

packager::~packager() {
  // Unfinished: no half-written files stay behind.
  if (impl_ && !impl_->finished) {
    std::error_code ignored;
    for (size_t r = 0; r < impl_->rungs.size(); ++r) {
      auto& rs = impl_->rungs[r];
      rs.mp4.reset();
      fs::remove(impl_->path(impl_->job.rungs[r].name + ".mp4.tmp"), ignored);
      if (rs.open)
        fs::remove(rs.ts_tmp, ignored);
    }
  }
}

caf::expected<std::unique_ptr<packager>> packager::open(package_job job) {
  if (job.rungs.empty() || job.rungs.size() != job.chunk_files.size())
    return make_error(ec::invalid_argument,
                      "packaging needs the chunk files of every rung");
  for (size_t i = 0; i < job.rungs.size(); ++i) {
    if (job.chunk_files[i].empty())
      return make_error(ec::invalid_argument,
                        "no chunk files for " + job.rungs[i].name);
    if (job.chunk_files[i].size() != job.chunk_files[0].size())
      return make_error(ec::invalid_argument,
                        "every rung needs the same number of chunks");
  }
  if (job.out_dir.empty())
    return make_error(ec::invalid_argument, "packaging needs an out_dir");
  auto p = std::make_unique<impl>();
  p->out = job.out_dir;
  p->has_audio = !job.audio_file.empty();
  p->chunk_count = static_cast<int>(job.chunk_files[0].size());
  if (job.segment_seconds > 0)
    p->target =
        std::max(1, static_cast<int>(std::ceil(1.5 * job.segment_seconds)));
  p->rungs.resize(job.rungs.size());
  p->job = std::move(job);

  std::error_code err;
  fs::remove_all(p->out, err);
  if (err)
    return storage_failure("cannot empty " + p->out.string(), err);
  for (const auto& r : p->job.rungs) {
    fs::create_directories(p->out / r.name, err);
    if (err)
      return storage_failure("cannot create " + (p->out / r.name).string(),
                             err);
  }
  if (p->has_audio) {
    fs::create_directories(p->out / "audio", err);
    if (err)
      return storage_failure("cannot create " + (p->out / "audio").string(),
                             err);
  }
  if (auto e = p->write_playlists(false))
    return e;
  if (auto e = p->write_text("master-cmaf.m3u8", p->master_cmaf(false)))
    return e;
  if (auto e = p->write_text("master.m3u8", p->master_ts(false)))
    return e;
  return std::unique_ptr<packager>{new packager{std::move(p)}};
}

caf::error packager::add_audio() {
  auto& p = *impl_;
  if (p.broken)
    return p.broken;
  if (!p.has_audio)
    return make_error(ec::invalid_argument, "the package job has no audio");
  if (p.audio_added)
    return make_error(ec::invalid_argument, "the audio was added already");
  if (p.started)
    return make_error(ec::invalid_argument,
                      "the audio must be added before the first chunk");
  if (auto err = p.audio.open(p.job.audio_file))
    return p.fail(err);
  p.audio_added = true;
  return {};
}

caf::error packager::add_chunk(int index) {
  auto& p = *impl_;
  if (p.broken)
    return p.broken;
  if (p.finished)
    return make_error(ec::invalid_argument, "the package is finished");
  if (index != p.added || index >= p.chunk_count)
    return make_error(ec::invalid_argument,
                      "chunk " + std::to_string(index) +
                          " added out of order (" + std::to_string(p.added) +
                          " of " + std::to_string(p.chunk_count) + " added)");
  if (p.has_audio && !p.audio_added)
    return make_error(ec::invalid_argument,
                      "the audio must be added before the first chunk");
  if (auto err = p.add(index))
    return p.fail(err);
  return {};
}

int packager::chunks_added() const {
  return impl_->added;
}

bool packager::playable() const {
  const auto& p = *impl_;
  if (p.added == 0)
    return false;
  for (size_t r = 0; r < p.rungs.size(); ++r)
    if (p.rungs[r].segments.empty())
      return false;
  return !p.has_audio || !p.audio_segments.empty();
}

caf::expected<package_result> packager::finish() {
  auto& p = *impl_;
  if (p.broken)
    return p.broken;
  if (p.finished)
    return make_error(ec::invalid_argument, "the package is finished");
  if (p.added != p.chunk_count)
    return make_error(ec::invalid_argument,
                      "finish after " + std::to_string(p.added) + " of " +
                          std::to_string(p.chunk_count) + " chunks");
  package_result result;
  for (size_t r = 0; r < p.rungs.size(); ++r) {
    auto& rs = p.rungs[r];
    const auto& name = p.job.rungs[r].name;
    if (rs.mp4) {
      auto size = rs.mp4->finish();
      if (!size)
        return p.fail(size.error());
      if (auto err = commit_file(p.path(name + ".mp4.tmp").string(),
                                 p.path(name + ".mp4").string()))
        return p.fail(err);
      // (The muxer's position is where it rewrote the index, not the end.)
      std::error_code ignored;
      auto bytes = fs::file_size(p.path(name + ".mp4"), ignored);
      rs.mp4_size = ignored ? *size : static_cast<int64_t>(bytes);
      rs.mp4.reset();
    }
  }
  if (auto err = p.write_playlists(true))
    return p.fail(err);
  if (auto err = p.write_text(result.dash, p.dash()))
    return p.fail(err);
  if (auto err = p.write_text(result.master_cmaf, p.master_cmaf(true)))
    return p.fail(err);
  if (auto err = p.write_text(result.master_ts, p.master_ts(true)))
    return p.fail(err);
  p.finished = true;

  std::pair<int64_t, int64_t> audio_rates{0, 0};
  if (p.has_audio)
    audio_rates = bit_rates(p.audio_segments, p.audio_tb());
  for (size_t r = 0; r < p.rungs.size(); ++r) {
    const auto& rs = p.rungs[r];
    const auto& name = p.job.rungs[r].name;
    auto v = bit_rates(rs.segments, p.vtb);
    rendition rend;
    rend.name = name;
    rend.width = rs.head.width;
    rend.height = rs.head.height;
    rend.bandwidth = v.first + audio_rates.first;
    rend.average_bandwidth = v.second + audio_rates.second;
    rend.codecs = rs.codecs + (p.has_audio ? ",mp4a.40.2" : "");
    rend.playlist = name + "/index.m3u8";
    rend.ts_playlist = name + "/ts.m3u8";
    rend.segments = static_cast<int>(rs.segments.size());
    rend.frames = rs.frames;
    if (p.job.mp4) {
      rend.mp4 = name + ".mp4";
      rend.mp4_size = rs.mp4_size;
    }
    double duration = 0;
    for (const auto& s : rs.segments)
      duration += seconds_of(s.length, p.vtb);
    result.duration_s = std::max(result.duration_s, duration);
    result.renditions.push_back(std::move(rend));
  }
  if (p.has_audio) {
    rendition rend;
    rend.name = "audio";
    rend.bandwidth = audio_rates.first;
    rend.average_bandwidth = audio_rates.second;
    rend.codecs = "mp4a.40.2";
    rend.playlist = "audio/index.m3u8";
    rend.segments = static_cast<int>(p.audio_segments.size());
    rend.frames = p.audio_packets;
    result.renditions.push_back(std::move(rend));
  }
  return result;
}

caf::expected<package_result> package_hls(const package_job& job) {
  auto p = packager::open(job);
  if (!p)
    return p.error();
  if (!job.audio_file.empty())
    if (auto err = (*p)->add_audio())
      return err;
  for (size_t i = 0; i < job.chunk_files.front().size(); ++i)
    if (auto err = (*p)->add_chunk(static_cast<int>(i)))
      return err;
  return (*p)->finish();
}

} // namespace reel::codec
