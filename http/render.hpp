#pragma once

// The one model rendered for clients: the native view of a video record,
// and the mappings each dialect makes of its state.

#include "storage/records.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <utility>

namespace reel::http {

/// The whole native model of a video (docs/api.md). `base` is the public
/// URL of the node (no trailing slash).
nlohmann::ordered_json native_video(const video_record& v, const std::string& base);

/// True once the start of the video plays (before or when it is ready).
bool is_playable(const video_record& v);

/// URL of the HLS master playlist with MPEG-TS segments (empty until
/// playable).
std::string hls_url(const video_record& v, const std::string& base);

/// What a player should load: the HLS master with fMP4/CMAF segments once
/// the video is playable, else empty.
std::string playback_url(const video_record& v, const std::string& base);

/// A rung's encoding status (waiting, encoding, encoded, failed) and
/// progress 0-100.
std::pair<const char*, int> rung_progress(const video_record& v);

/// Percent of the work done, 0-100.
int progress_percent(const video_record& v);

} // namespace reel::http
