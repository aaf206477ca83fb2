// package_hls(): remux the packet files into HLS with fMP4 segments and
// write the master playlist.

#include "codec/codec.hpp"
#include "codec/ffmpeg_glue.hpp"
#include "codec/packet_file.hpp"

extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/dict.h>
}

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <system_error>

namespace fs = std::filesystem;

namespace reel::codec {

namespace {

/// Owns an AVDictionary of muxer options.
struct options_dict {
  AVDictionary* dict = nullptr;
  options_dict() = default;
  options_dict(const options_dict&) = delete;
  options_dict& operator=(const options_dict&) = delete;
  ~options_dict() { av_dict_free(&dict); }
  void set(const char* key, const std::string& value) {
    av_dict_set(&dict, key, value.c_str(), 0);
  }
};

/// What muxing one playlist wrote, and what its playlist says.
struct playlist_stats {
  int64_t packets = 0;
  int64_t media_ticks = 0; // from the first pts to the end of the last packet
  AVRational tb{1, 1};
  int segments = 0;
  double duration_s = 0;     // sum of the segments' durations
  int64_t segment_bytes = 0; // sum of the segments' sizes
  int64_t peak_bps = 0;      // largest segment bits / duration
  int64_t average_bps = 0;
};

std::string format_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", s);
  return buf;
}

// The earliest dts of a packet file in microseconds (packet files are in
// decode order, so that is the first record's), or nothing when empty.
caf::expected<std::optional<int64_t>> first_dts_us(const std::string& path) {
  auto reader = packet_file_reader::open(path);
  if (!reader)
    return reader.error();
  packet_record rec;
  auto more = reader->next(rec);
  if (!more)
    return more.error();
  if (!*more)
    return std::optional<int64_t>{};
  AVRational tb{reader->header().tb_num, reader->header().tb_den};
  return std::optional<int64_t>{
      av_rescale_q_rnd(rec.dts, tb, AV_TIME_BASE_Q, AV_ROUND_DOWN)};
}

// Reads the media playlist `dir`/index.m3u8 and the sizes of its segments.
caf::error measure_playlist(const fs::path& dir, playlist_stats& st) {
  std::ifstream in{dir / "index.m3u8"};
  if (!in)
    return make_error(ec::storage_error,
                      "cannot read " + (dir / "index.m3u8").string());
  std::string line;
  double pending_duration = -1;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.rfind("#EXTINF:", 0) == 0) {
      pending_duration = std::strtod(line.c_str() + 8, nullptr);
      continue;
    }
    if (line.empty() || line[0] == '#' || pending_duration < 0)
      continue;
    std::error_code ec;
    auto size = fs::file_size(dir / line, ec);
    if (ec)
      return make_error(ec::storage_error,
                        "missing segment " + (dir / line).string());
    st.segments += 1;
    st.duration_s += pending_duration;
    st.segment_bytes += static_cast<int64_t>(size);
    if (pending_duration > 0)
      st.peak_bps = std::max(st.peak_bps, static_cast<int64_t>(std::ceil(
                                              size * 8.0 / pending_duration)));
    pending_duration = -1;
  }
  if (st.segments == 0)
    return media_error("no segments in " + (dir / "index.m3u8").string());
  if (st.duration_s > 0)
    st.average_bps =
        static_cast<int64_t>(std::ceil(st.segment_bytes * 8.0 / st.duration_s));
  return {};
}

// Muxes the packet files `files` (one stream, in order) into an HLS fMP4
// playlist in `dir`, shifting every timestamp by `offset_us`.
caf::expected<playlist_stats>
mux_playlist(const fs::path& dir, const std::vector<std::string>& files,
             int64_t offset_us, double hls_time) {
  std::error_code fs_err;
  fs::create_directories(dir, fs_err);
  if (fs_err)
    return make_error(ec::storage_error, "cannot create " + dir.string() +
                                             ": " + fs_err.message());
  auto first = packet_file_reader::open(files.front());
  if (!first)
    return first.error();
  const packet_file_header head = first->header();
  const AVCodecDescriptor* desc =
      avcodec_descriptor_get_by_name(head.codec.c_str());
  if (desc == nullptr)
    return media_error("unknown codec " + head.codec + " in " + files.front());
  const bool video = desc->type == AVMEDIA_TYPE_VIDEO;

  AVFormatContext* raw = nullptr;
  auto playlist = (dir / "index.m3u8").string();
  if (int err = avformat_alloc_output_context2(&raw, nullptr, "hls",
                                               playlist.c_str());
      err < 0)
    return av_error(err, "creating the HLS muxer");
  output_context_ptr oc{raw};
  AVStream* st = avformat_new_stream(oc.get(), nullptr);
  if (st == nullptr)
    return media_error("cannot add a stream to the HLS muxer");
  const AVRational tb{head.tb_num, head.tb_den};
  st->time_base = tb;
  AVCodecParameters* par = st->codecpar;
  par->codec_type = desc->type;
  par->codec_id = desc->id;
  if (video) {
    par->width = head.width;
    par->height = head.height;
    par->format = AV_PIX_FMT_YUV420P;
    par->sample_aspect_ratio = AVRational{1, 1};
  } else {
    par->sample_rate = head.sample_rate;
    av_channel_layout_default(&par->ch_layout, head.channels);
    par->frame_size = 1024;
  }
  if (!head.extradata.empty()) {
    par->extradata = static_cast<uint8_t*>(
        av_mallocz(head.extradata.size() + AV_INPUT_BUFFER_PADDING_SIZE));
    if (par->extradata == nullptr)
      return media_error("out of memory");
    std::copy(head.extradata.begin(), head.extradata.end(), par->extradata);
    par->extradata_size = static_cast<int>(head.extradata.size());
  }

  options_dict opts;
  opts.set("hls_segment_type", "fmp4");
  opts.set("hls_time", format_seconds(hls_time));
  opts.set("hls_playlist_type", "vod");
  opts.set("hls_fmp4_init_filename", "init.mp4");
  opts.set("hls_segment_filename", (dir / "seg_%05d.m4s").string());
  opts.set("hls_flags", "independent_segments+temp_file");
  if (int err = avformat_write_header(oc.get(), &opts.dict); err < 0)
    return av_error(err, "writing " + playlist);
  if (auto* left = av_dict_get(opts.dict, "", nullptr, AV_DICT_IGNORE_SUFFIX))
    return media_error(std::string{"the HLS muxer ignored option "} +
                       left->key);

  playlist_stats stats;
  stats.tb = tb;
  const int64_t offset =
      av_rescale_q_rnd(offset_us, AV_TIME_BASE_Q, tb, AV_ROUND_UP);
  int64_t first_pts = std::numeric_limits<int64_t>::max();
  int64_t end = std::numeric_limits<int64_t>::min();
  int64_t last_dts = std::numeric_limits<int64_t>::min();
  auto pkt = make_packet();
  packet_record rec;
  for (size_t i = 0; i < files.size(); ++i) {
    auto reader = packet_file_reader::open(files[i]);
    if (!reader)
      return reader.error();
    const auto& h = reader->header();
    if (h.codec != head.codec || h.tb_num != head.tb_num ||
        h.tb_den != head.tb_den || h.width != head.width ||
        h.height != head.height)
      return media_error(files[i] + " does not match " + files.front());
    for (;;) {
      auto more = reader->next(rec);
      if (!more)
        return more.error();
      if (!*more)
        break;
      if (rec.dts <= last_dts)
        return media_error("timestamps go backwards in " + files[i]);
      last_dts = rec.dts;
      first_pts = std::min(first_pts, rec.pts);
      end = std::max(end, rec.pts + rec.duration);
      if (int err = av_new_packet(pkt.get(), static_cast<int>(rec.data.size()));
          err < 0)
        return av_error(err, "allocating a packet");
      std::copy(rec.data.begin(), rec.data.end(), pkt->data);
      pkt->pts = rec.pts + offset;
      pkt->dts = rec.dts + offset;
      pkt->duration = rec.duration;
      pkt->flags = (rec.flags & packet_key) ? AV_PKT_FLAG_KEY : 0;
      pkt->stream_index = st->index;
      av_packet_rescale_ts(pkt.get(), tb, st->time_base);
      if (int err = av_interleaved_write_frame(oc.get(), pkt.get()); err < 0)
        return av_error(err, "writing " + playlist);
      ++stats.packets;
    }
  }
  if (stats.packets == 0)
    return media_error("nothing to package in " + dir.string());
  if (int err = av_write_trailer(oc.get()); err < 0)
    return av_error(err, "finishing " + playlist);
  oc.reset();
  stats.media_ticks = end - first_pts;
  if (auto err = measure_playlist(dir, stats))
    return err;
  return stats;
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

} // namespace

caf::expected<package_result> package_hls(const package_job& job) {
  if (job.rungs.empty() || job.rungs.size() != job.chunk_files.size())
    return make_error(ec::invalid_argument,
                      "packaging needs the chunk files of every rung");
  for (size_t i = 0; i < job.rungs.size(); ++i)
    if (job.chunk_files[i].empty())
      return make_error(ec::invalid_argument,
                        "no chunk files for " + job.rungs[i].name);
  const fs::path out{job.out_dir};
  const bool has_audio = !job.audio_file.empty();

  // One offset for every stream, so that renditions stay aligned and the
  // audio stays in sync: it moves the earliest dts of all (x264's B-frames
  // put the first dts before the first pts; AAC priming starts early too)
  // to zero.
  int64_t min_dts = std::numeric_limits<int64_t>::max();
  auto consider = [&](const std::string& path) -> caf::error {
    auto dts = first_dts_us(path);
    if (!dts)
      return dts.error();
    if (*dts)
      min_dts = std::min(min_dts, **dts);
    return {};
  };
  for (const auto& files : job.chunk_files)
    for (const auto& f : files)
      if (auto err = consider(f))
        return err;
  if (has_audio)
    if (auto err = consider(job.audio_file))
      return err;
  if (min_dts == std::numeric_limits<int64_t>::max())
    return media_error("the packet files are empty");
  const int64_t offset_us = -min_dts;

  // Our encoder puts keyframes only at segment starts, so a tiny target
  // duration makes the muxer cut at every keyframe: every rendition's
  // segments start at the same instants.
  const double video_hls_time = 0.01;
  const double audio_hls_time =
      job.segment_seconds > 0 ? job.segment_seconds : 4.0;

  package_result result;
  result.master = "master.m3u8";
  std::optional<playlist_stats> audio;
  if (has_audio) {
    auto a = mux_playlist(out / "audio", {job.audio_file}, offset_us,
                          audio_hls_time);
    if (!a)
      return a.error();
    audio = *a;
  }

  std::string master =
      "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n";
  if (has_audio)
    master += "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"default\","
              "DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\","
              "URI=\"audio/index.m3u8\"\n";
  for (size_t i = 0; i < job.rungs.size(); ++i) {
    const auto& r = job.rungs[i];
    auto v = mux_playlist(out / r.name, job.chunk_files[i], offset_us,
                          video_hls_time);
    if (!v)
      return v.error();
    auto head = packet_file_reader::open(job.chunk_files[i].front());
    if (!head)
      return head.error();
    rendition rend;
    rend.name = r.name;
    rend.width = head->header().width;
    rend.height = head->header().height;
    rend.bandwidth = v->peak_bps + (audio ? audio->peak_bps : 0);
    rend.average_bandwidth = v->average_bps + (audio ? audio->average_bps : 0);
    rend.codecs = avc1_codecs(head->header().extradata);
    if (has_audio)
      rend.codecs += ",mp4a.40.2";
    rend.playlist = r.name + "/index.m3u8";
    rend.segments = v->segments;
    rend.frames = v->packets;
    result.duration_s = std::max(result.duration_s, v->duration_s);
    double media_s = v->media_ticks * av_q2d(v->tb);
    double fps = media_s > 0 ? v->packets / media_s : 0;

    master += "#EXT-X-STREAM-INF:BANDWIDTH=" + std::to_string(rend.bandwidth) +
              ",AVERAGE-BANDWIDTH=" + std::to_string(rend.average_bandwidth) +
              ",RESOLUTION=" + std::to_string(rend.width) + "x" +
              std::to_string(rend.height) + ",CODECS=\"" + rend.codecs + "\"";
    if (fps > 0)
      master += ",FRAME-RATE=" + format_seconds(fps);
    if (has_audio)
      master += ",AUDIO=\"audio\"";
    master += "\n" + rend.playlist + "\n";
    result.renditions.push_back(std::move(rend));
  }
  if (audio) {
    rendition rend;
    rend.name = "audio";
    rend.bandwidth = audio->peak_bps;
    rend.average_bandwidth = audio->average_bps;
    rend.codecs = "mp4a.40.2";
    rend.playlist = "audio/index.m3u8";
    rend.segments = audio->segments;
    rend.frames = audio->packets;
    result.renditions.push_back(std::move(rend));
  }
  if (auto err = write_file_atomically((out / result.master).string(),
                                       master.data(), master.size()))
    return err;
  return result;
}

} // namespace reel::codec
