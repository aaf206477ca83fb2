// The packager: remuxes the packet files, chunk by chunk as they complete,
// into CMAF (fMP4) and MPEG-TS HLS, static DASH over the CMAF files and MP4
// downloads. Playlists are written here rather than by libavformat's hls
// muxer: every segment's duration is known exactly, segments of every
// rendition and flavour are cut at the same keyframes, and a playlist can
// grow (EVENT) while the rest of the video is encoded.
//
// This file adds the audio and the chunks (cutting every rung's segments,
// both flavours, at the same keyframes) and is the packager's public face.
// The muxers are in codec/muxers.{hpp,cpp}, the playlists and the MPD in
// codec/manifests.cpp, the state these share in codec/package_impl.hpp.

#include "codec/codec.hpp"
#include "codec/ffmpeg_glue.hpp"
#include "codec/package_impl.hpp"
#include "codec/packet_file.hpp"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <system_error>

namespace fs = std::filesystem;

namespace reel::codec {

namespace {

caf::error storage_failure(const std::string& what, const std::error_code& e) {
  return file_error(e.value(), what);
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
