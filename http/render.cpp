#include "http/render.hpp"

#include "ops/util.hpp"

namespace reel::http {

bool is_playable(const video_record& v) {
  return v.state == states::ready
         || (v.playable_ms > 0 && v.state != states::failed);
}

namespace {

std::string media_url(const video_record& v, const std::string& base,
                      const std::string& rel) {
  return base + "/media/" + v.id + "/" + rel;
}

// Published names: the record's once packaged, the packager's defaults
// before (they are written when packaging starts).
const codec::package_result names;

} // namespace

std::string hls_url(const video_record& v, const std::string& base) {
  if (!is_playable(v))
    return {};
  return media_url(v, base, v.master_ts.empty() ? names.master_ts : v.master_ts);
}

std::string playback_url(const video_record& v, const std::string& base) {
  if (!is_playable(v))
    return {};
  return media_url(v, base, v.master.empty() ? names.master_cmaf : v.master);
}

std::pair<const char*, int> rung_progress(const video_record& v) {
  if (v.state == states::ready)
    return {"encoded", 100};
  size_t done = 0;
  for (auto d : v.chunk_done)
    done += d ? 1 : 0;
  int pct = v.chunks.empty()
              ? 0
              : static_cast<int>(100 * done / v.chunks.size());
  if (v.state == states::failed)
    return {"failed", pct};
  if (v.state == states::packaging || (!v.chunks.empty() && done == v.chunks.size()))
    return {"encoded", pct};
  if (v.state == states::transcoding)
    return {"encoding", pct};
  return {"waiting", 0};
}

int progress_percent(const video_record& v) {
  if (v.state == states::ready)
    return 100;
  if (!v.probed || v.chunks.empty())
    return 0;
  size_t done = 0;
  for (auto d : v.chunk_done)
    done += d ? 1 : 0;
  // Transcoding is most of the work; packaging the last few percent.
  int pct = static_cast<int>(90.0 * static_cast<double>(done)
                             / static_cast<double>(v.chunks.size()));
  if (v.state == states::packaging)
    pct = 95;
  return pct;
}

nlohmann::ordered_json native_video(const video_record& v, const std::string& base) {
  using json = nlohmann::ordered_json;
  auto media = base + "/media/" + v.id + "/";
  json j = {
    {"id", v.id},
    {"tenant", v.tenant},
    {"folder", v.folder},
    {"title", v.title},
    {"filename", v.filename},
    {"state", v.state},
    {"failure_reason", v.failure_reason.empty() ? json(nullptr)
                                                : json(v.failure_reason)},
    {"waiting", v.waiting.empty() ? json(nullptr) : json(v.waiting)},
    {"created_at", iso8601_ms(v.created_ms)},
    {"updated_at", iso8601_ms(v.updated_ms)},
  };
  json source = {{"size_bytes", v.source_bytes}, {"sha256", v.source_sha256}};
  if (v.probed) {
    auto& s = v.source;
    source.update({
      {"container", s.container},
      {"duration", s.duration_s},
      {"bit_rate", s.bit_rate},
      {"video_codec", s.video_codec},
      {"width", s.width},
      {"height", s.height},
      {"rotation", s.rotation},
      {"fps", s.fps},
      {"frame_count", s.frame_count},
      {"keyframes", s.keyframes.size()},
      {"audio_codec", s.audio_stream >= 0 ? json(s.audio_codec) : json(nullptr)},
      {"audio_channels", s.audio_channels},
      {"audio_sample_rate", s.audio_sample_rate},
    });
  }
  j["source"] = source;
  j["clip"] = {{"start", v.clip_start_s},
               {"duration", v.clip_duration_s > 0 ? json(v.clip_duration_s)
                                                  : json(nullptr)}};
  j["priority"] = v.priority;
  size_t done = 0;
  for (auto d : v.chunk_done)
    done += d ? 1 : 0;
  j["progress"] = {{"percent", progress_percent(v)},
                   {"chunks_total", v.chunks.size()},
                   {"chunks_done", done},
                   {"audio_done", v.audio_done}};
  json rungs = json::array();
  auto [rung_status, rung_pct] = rung_progress(v);
  for (auto& r : v.rungs)
    rungs.push_back({{"name", r.name},
                     {"width", r.width},
                     {"height", r.height},
                     {"max_bitrate", r.max_kbps * 1000},
                     {"status", rung_status},
                     {"progress", rung_pct}});
  j["ladder"] = rungs;
  json renditions = json::array();
  for (auto& r : v.renditions) {
    json x = {{"name", r.name},
              {"bandwidth", r.bandwidth},
              {"average_bandwidth", r.average_bandwidth},
              {"codecs", r.codecs},
              {"segments", r.segments},
              {"playlist_url", media + r.playlist}};
    if (!r.ts_playlist.empty())
      x["ts_playlist_url"] = media + r.ts_playlist;
    if (r.name != "audio")
      x.update({{"width", r.width}, {"height", r.height}, {"frames", r.frames}});
    if (!r.mp4.empty())
      x.update({{"mp4_url", media + r.mp4}, {"mp4_size", r.mp4_size}});
    renditions.push_back(std::move(x));
  }
  j["renditions"] = renditions;
  j["playable_at"] = v.playable_ms ? json(iso8601_ms(v.playable_ms)) : json(nullptr);
  if (is_playable(v))
    j["playback"] = {{"hls", hls_url(v, base)},
                     {"hls_cmaf", playback_url(v, base)},
                     {"embed", base + "/embed/" + v.id}};
  else
    j["playback"] = nullptr;
  if (v.state == states::ready) {
    j["playback"]["dash"] = media + (v.dash.empty() ? "manifest.mpd" : v.dash);
    json shots = json::array();
    for (int i = 1; i <= v.screenshots; ++i)
      shots.push_back(media + "screenshots/" + std::to_string(i) + ".jpg");
    j["images"] = {{"poster", media + "poster.jpg"},
                   {"poster_thumb", media + "poster_thumb.jpg"},
                   {"poster_time", v.poster_time_s},
                   {"screenshots", shots},
                   {"sprite", media + "sprite.jpg"},
                   {"sprite_vtt", media + "sprite.vtt"},
                   {"storyboard", {{"interval", v.storyboard.interval_s},
                                   {"tiles", v.storyboard.tiles},
                                   {"tile_width", v.storyboard.tile_width},
                                   {"tile_height", v.storyboard.tile_height},
                                   {"columns", v.storyboard.columns}}},
                   {"thumbnail", media + "thumbnail.jpg?time={seconds}"}};
  } else {
    j["images"] = nullptr;
  }
  json files = json::array();
  for (auto& f : v.files)
    files.push_back({{"name", f.name}, {"size", f.size}, {"sha256", f.sha256}});
  j["files"] = files;
  json history = json::array();
  for (auto& h : v.history) {
    json x = {{"state", h.state}, {"at", iso8601_ms(h.at_ms)}};
    if (!h.reason.empty())
      x["reason"] = h.reason;
    history.push_back(std::move(x));
  }
  j["history"] = history;
  return j;
}

} // namespace reel::http
