#include "http/render.hpp"

#include "ops/util.hpp"

namespace reel::http {

std::string hls_url(const video_record& v, const std::string& base) {
  if (v.state != states::ready || v.master.empty())
    return {};
  return base + "/media/" + v.id + "/" + v.master;
}

std::string playback_url(const video_record& v, const std::string& base) {
  return hls_url(v, base);
}

std::pair<int, const char*> upload_status(const std::string& state) {
  if (state == states::transcoding)
    return {3, "processing"};
  if (state == states::packaging)
    return {5, "uploading"};
  if (state == states::ready)
    return {6, "completed"};
  if (state == states::failed)
    return {7, "failed"};
  return {1, "pending"}; // created, uploaded, probing
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
    {"created_at", iso8601(v.created_ms)},
    {"updated_at", iso8601(v.updated_ms)},
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
  size_t done = 0;
  for (auto d : v.chunk_done)
    done += d ? 1 : 0;
  j["progress"] = {{"percent", progress_percent(v)},
                   {"chunks_total", v.chunks.size()},
                   {"chunks_done", done},
                   {"audio_done", v.audio_done}};
  json rungs = json::array();
  for (auto& r : v.rungs)
    rungs.push_back({{"name", r.name},
                     {"width", r.width},
                     {"height", r.height},
                     {"max_bitrate", r.max_kbps * 1000}});
  j["ladder"] = rungs;
  json renditions = json::array();
  for (auto& r : v.renditions) {
    json x = {{"name", r.name},
              {"bandwidth", r.bandwidth},
              {"average_bandwidth", r.average_bandwidth},
              {"codecs", r.codecs},
              {"segments", r.segments},
              {"playlist_url", media + r.playlist}};
    if (r.name != "audio")
      x.update({{"width", r.width}, {"height", r.height}, {"frames", r.frames}});
    renditions.push_back(std::move(x));
  }
  j["renditions"] = renditions;
  if (v.state == states::ready)
    j["playback"] = {{"hls", hls_url(v, base)}, {"poster", media + "poster.jpg"}};
  else
    j["playback"] = nullptr;
  json files = json::array();
  for (auto& f : v.files)
    files.push_back({{"name", f.name}, {"size", f.size}, {"sha256", f.sha256}});
  j["files"] = files;
  json history = json::array();
  for (auto& h : v.history) {
    json x = {{"state", h.state}, {"at", iso8601(h.at_ms)}};
    if (!h.reason.empty())
      x["reason"] = h.reason;
    history.push_back(std::move(x));
  }
  j["history"] = history;
  return j;
}

} // namespace reel::http
