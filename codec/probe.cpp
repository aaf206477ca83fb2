// probe(): what a source holds, read packet by packet so that keyframes are
// indexed exactly and a cut-short upload is refused up front rather than
// half-way through a transcode.

#include "codec/codec.hpp"
#include "codec/ffmpeg_glue.hpp"

extern "C" {
#include <libavutil/display.h>
}

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <system_error>

namespace reel::codec {

namespace {

// How many video packets the probe feeds the decoder to see one picture.
constexpr int probe_decode_packets = 64;

std::string truncated_at(int64_t byte, const std::string& why) {
  return "truncated file at byte " + std::to_string(byte) + " (" + why + ")";
}

/// What a walk over the top-level boxes of an ISO BMFF (MP4/MOV) file found.
struct bmff_walk {
  bool is_bmff = false;
  bool has_moov = false;
  std::optional<std::string> truncation; // a reason when cut short
};

// MP4 and MOV files are a sequence of boxes (u32 size, 4-char type, with
// size 1 meaning a u64 size follows and 0 meaning "to the end"). A file cut
// short shows as a last box running past the end of the file, or, when the
// index ('moov') comes last, as no 'moov' at all. Reading the box headers
// costs a few reads and finds both before libavformat says something vaguer.
bmff_walk walk_bmff(const std::string& path, int64_t file_size) {
  bmff_walk result;
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return result;
  auto be = [](const unsigned char* p, int n) {
    uint64_t x = 0;
    for (int i = 0; i < n; ++i)
      x = (x << 8) | p[i];
    return x;
  };
  int64_t offset = 0;
  bool first = true;
  while (offset < file_size) {
    unsigned char head[16];
    if (file_size - offset < 8) {
      if (result.is_bmff)
        result.truncation = truncated_at(file_size, "incomplete box header");
      return result;
    }
    in.seekg(offset);
    if (!in.read(reinterpret_cast<char*>(head), 8))
      return result;
    std::string type(reinterpret_cast<char*>(head + 4), 4);
    uint64_t size = be(head, 4);
    int64_t header = 8;
    if (first) {
      static const char* starts[] = {"ftyp", "moov", "mdat", "free",
                                     "skip", "wide", "pnot"};
      result.is_bmff = std::any_of(std::begin(starts), std::end(starts),
                                   [&](const char* t) { return type == t; });
      if (!result.is_bmff)
        return result;
      first = false;
    }
    if (size == 1) {
      if (file_size - offset < 16) {
        result.truncation = truncated_at(file_size, "incomplete box header");
        return result;
      }
      if (!in.read(reinterpret_cast<char*>(head + 8), 8))
        return result;
      size = be(head + 8, 8);
      header = 16;
    } else if (size == 0) {
      size = static_cast<uint64_t>(file_size - offset); // to the end
    }
    if (size < static_cast<uint64_t>(header))
      return result; // not a box structure we understand; libav decides
    if (type == "moov")
      result.has_moov = true;
    if (size > static_cast<uint64_t>(file_size - offset)) {
      result.truncation = truncated_at(
          file_size, "'" + type + "' box needs " +
                         std::to_string(offset + static_cast<int64_t>(size)) +
                         " bytes");
      return result;
    }
    offset += static_cast<int64_t>(size);
  }
  return result;
}

// The clockwise rotation (0/90/180/270) a player applies to show `st`
// upright, from its display matrix.
int stream_rotation(const AVStream* st) {
  size_t size = 0;
  const uint8_t* matrix =
      av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
  if (matrix == nullptr || size < 9 * sizeof(int32_t))
    return 0;
  // av_display_rotation_get is counterclockwise; players rotate clockwise by
  // its negation (as ffmpeg's autorotate does).
  double theta =
      -av_display_rotation_get(reinterpret_cast<const int32_t*>(matrix));
  if (std::isnan(theta))
    return 0;
  long quarter = std::lround(theta / 90.0);
  return static_cast<int>(((quarter % 4) + 4) % 4) * 90;
}

// True when MPEG-TS data cannot end here: TS files are a whole number of
// 188-byte packets (192 for M2TS, 204 with Reed-Solomon bytes).
// Bounds on what is worth decoding at all.
constexpr unsigned max_streams = 64;
constexpr int max_dimension = 8192;
constexpr double max_fps = 1000;
constexpr double max_duration_s = 48 * 3600.0;

bool ts_size_is_odd(int64_t size) {
  return size % 188 != 0 && size % 192 != 0 && size % 204 != 0;
}

} // namespace

caf::expected<probe_result> probe(const std::string& path) {
  std::error_code fs_err;
  auto file_size =
      static_cast<int64_t>(std::filesystem::file_size(path, fs_err));
  if (fs_err)
    return make_error(ec::not_found,
                      "cannot read " + path + ": " + fs_err.message());
  auto bmff = walk_bmff(path, file_size);
  auto fmt_or = open_input(path);
  if (!fmt_or) {
    if (bmff.truncation)
      return media_error(*bmff.truncation);
    if (bmff.is_bmff && !bmff.has_moov)
      return media_error(truncated_at(file_size, "no 'moov' box"));
    return fmt_or.error();
  }
  if (bmff.truncation)
    return media_error(*bmff.truncation);
  auto& fmt = *fmt_or;

  // Files no camera or editor makes are refused before any decoding.
  if (fmt->nb_streams > max_streams)
    return media_error("too many streams (" + std::to_string(fmt->nb_streams)
                       + "; at most " + std::to_string(max_streams) + ")");
  // A still image (whatever its file is called) is not a video.
  std::string demuxer = fmt->iformat->name;
  if (demuxer == "image2" || (demuxer.size() > 5
                              && demuxer.substr(demuxer.size() - 5) == "_pipe"))
    return media_error("not a video: a still image (" + demuxer + ")");
  probe_result r;
  r.container = fmt->iformat->name;
  r.size_bytes = file_size;
  r.bit_rate = fmt->bit_rate > 0 ? fmt->bit_rate : 0;
  for (unsigned i = 0; i < fmt->nb_streams; ++i) {
    const AVStream* st = fmt->streams[i];
    auto type = st->codecpar->codec_type;
    if (type == AVMEDIA_TYPE_VIDEO && r.video_stream < 0 &&
        !(st->disposition & AV_DISPOSITION_ATTACHED_PIC))
      r.video_stream = static_cast<int>(i);
    else if (type == AVMEDIA_TYPE_AUDIO && r.audio_stream < 0)
      r.audio_stream = static_cast<int>(i);
  }
  if (r.video_stream < 0)
    return media_error(r.audio_stream < 0
                           ? "not a media file: no audio or video stream"
                           : "no video stream");

  const AVStream* vst = fmt->streams[r.video_stream];
  const AVCodecParameters* vpar = vst->codecpar;
  r.video_codec = avcodec_get_name(vpar->codec_id);
  r.width = vpar->width;
  r.height = vpar->height;
  if (r.width <= 0 || r.height <= 0)
    return media_error("video stream without a picture size");
  if (r.width > max_dimension || r.height > max_dimension)
    return media_error("picture size " + std::to_string(r.width) + "x"
                       + std::to_string(r.height) + " is too large (at most "
                       + std::to_string(max_dimension) + " a side)");
  r.rotation = stream_rotation(vst);
  AVRational rate = vst->avg_frame_rate;
  if (rate.num <= 0 || rate.den <= 0)
    rate = vst->r_frame_rate;
  r.fps = rate.num > 0 && rate.den > 0 ? av_q2d(rate) : 0;
  if (r.fps > max_fps)
    return media_error("frame rate " + std::to_string(r.fps)
                       + " is not plausible (at most "
                       + std::to_string(static_cast<int>(max_fps)) + ")");
  r.tb_num = vst->time_base.num;
  r.tb_den = vst->time_base.den;
  if (r.audio_stream >= 0) {
    const AVCodecParameters* apar = fmt->streams[r.audio_stream]->codecpar;
    r.audio_codec = avcodec_get_name(apar->codec_id);
    r.audio_channels = apar->ch_layout.nb_channels;
    r.audio_sample_rate = apar->sample_rate;
  }

  // One frame's duration in the stream's time base, for packets without one.
  int64_t frame_ticks = 1;
  if (r.fps > 0)
    frame_ticks =
        std::max<int64_t>(1, av_rescale_q(1, av_inv_q(rate), vst->time_base));

  // The frame duration when the frame rate is an exact number of ticks;
  // whether every frame sits on that grid is checked packet by packet.
  int64_t grid = 0;
  if (rate.num > 0 && rate.den > 0 && vst->time_base.num > 0) {
    int64_t num = static_cast<int64_t>(rate.den) * vst->time_base.den;
    int64_t den = static_cast<int64_t>(rate.num) * vst->time_base.num;
    if (den > 0 && num % den == 0)
      grid = num / den;
  }
  bool on_grid = grid > 0;
  int64_t grid_origin = AV_NOPTS_VALUE;

  // Decoding the first pictures proves the video is usable at all.
  auto dec = open_decoder(vst, 1);
  if (!dec)
    return media_error("video cannot be decoded: " + message_of(dec.error()));
  auto frame = make_frame();
  bool decoded = false;
  bool decoding = true;
  int fed = 0;
  int decode_err = 0;
  auto got_picture = [&](AVFrame*) {
    decoded = true;
    return false;
  };
  auto feed = [&](const AVPacket* pkt) {
    auto res = decode(dec->get(), pkt, frame.get(), got_picture);
    if (res.status == pump_status::failed)
      decode_err = res.err;
    if (decoded || pkt == nullptr || ++fed >= probe_decode_packets) {
      if (!decoded && pkt != nullptr) // give delayed pictures a chance
        decode(dec->get(), nullptr, frame.get(), got_picture);
      decoding = false;
    }
  };

  auto pkt = make_packet();
  int64_t min_pts = std::numeric_limits<int64_t>::max();
  int64_t max_end = std::numeric_limits<int64_t>::min();
  bool last_corrupt = false;
  int err = 0;
  while ((err = av_read_frame(fmt.get(), pkt.get())) >= 0) {
    last_corrupt = (pkt->flags & AV_PKT_FLAG_CORRUPT) != 0;
    if (pkt->pos >= 0 && pkt->pos + pkt->size > file_size)
      return media_error(truncated_at(file_size, "packet runs past the end"));
    if (pkt->stream_index == r.video_stream) {
      if (decoding)
        feed(pkt.get());
      if (!(pkt->flags & AV_PKT_FLAG_DISCARD)) {
        ++r.frame_count;
        int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
        if (ts != AV_NOPTS_VALUE) {
          min_pts = std::min(min_pts, ts);
          max_end = std::max(
              max_end, ts + (pkt->duration > 0 ? pkt->duration : frame_ticks));
          if (pkt->flags & AV_PKT_FLAG_KEY)
            r.keyframes.push_back(ts);
          if (grid_origin == AV_NOPTS_VALUE)
            grid_origin = ts;
          else if (on_grid && (ts - grid_origin) % grid != 0)
            on_grid = false;
        }
      }
    }
    av_packet_unref(pkt.get());
  }
  int64_t pos = fmt->pb != nullptr ? avio_tell(fmt->pb) : file_size;
  if (err != AVERROR_EOF)
    return media_error(truncated_at(pos, av_err_text(err)));
  if (fmt->pb != nullptr && fmt->pb->error < 0)
    return media_error(truncated_at(pos, av_err_text(fmt->pb->error)));
  if (last_corrupt)
    return media_error(truncated_at(file_size, "last packet incomplete"));
  if (r.container == "mpegts" && ts_size_is_odd(file_size))
    return media_error(truncated_at(file_size, "partial transport packet"));
  if (r.frame_count == 0 || min_pts > max_end)
    return media_error(truncated_at(file_size, "no video packets"));
  if (decoding)
    feed(nullptr);
  if (!decoded)
    return media_error("video cannot be decoded: " +
                       (decode_err < 0
                            ? av_err_text(decode_err)
                            : "no picture in the first " +
                                  std::to_string(probe_decode_packets) +
                                  " packets"));

  r.start_pts = min_pts;
  r.end_pts = max_end;
  if (on_grid && (max_end - min_pts) == r.frame_count * grid)
    r.frame_ticks = grid;
  std::sort(r.keyframes.begin(), r.keyframes.end());
  r.keyframes.erase(std::unique(r.keyframes.begin(), r.keyframes.end()),
                    r.keyframes.end());
  if (fmt->duration > 0 && fmt->duration != AV_NOPTS_VALUE)
    r.duration_s = static_cast<double>(fmt->duration) / AV_TIME_BASE;
  else
    r.duration_s = (r.end_pts - r.start_pts) * av_q2d(vst->time_base);
  // Timestamps that claim days of video (a crafted file) would make a
  // plan of millions of chunks; no upload is that long.
  double span = (r.end_pts - r.start_pts) * av_q2d(vst->time_base);
  if (!(r.duration_s <= max_duration_s) || !(span <= max_duration_s))
    return media_error("the timestamps claim more than "
                       + std::to_string(static_cast<int>(max_duration_s / 3600))
                       + " hours of video");
  return r;
}

} // namespace reel::codec
