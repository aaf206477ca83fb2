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

/// URL of the master playlist (empty until the video is ready).
std::string hls_url(const video_record& v, const std::string& base);

/// What a player should load: the master playlist once the video is
/// playable (possibly before it is ready), else empty.
std::string playback_url(const video_record& v, const std::string& base);

/// The Uploads API's status code and text for a state:
/// 1 pending, 3 processing, 5 uploading, 6 completed, 7 failed.
std::pair<int, const char*> upload_status(const std::string& state);

/// Percent of the work done, 0-100.
int progress_percent(const video_record& v);

} // namespace reel::http
