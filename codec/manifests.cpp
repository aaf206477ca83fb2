// The packager's text: the media playlists (fMP4 and TS, EVENT while the
// video grows, VOD once finished), the two HLS master playlists (CMAF with
// the audio as an EXT-X-MEDIA group; MPEG-TS with the audio muxed in) and
// the static DASH manifest, all written from the segments as published.

#include "codec/package_impl.hpp"

#include <cstdio>
#include <string>
#include <tuple>

namespace reel::codec {

namespace {

constexpr int64_t nominal_audio_bps = 128000;

std::string format_fixed(double s, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, s);
  return buf;
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

std::string numbered(const char* format, int n) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, n);
  return buf;
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

} // namespace reel::codec
