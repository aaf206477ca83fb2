#pragma once

// A video's state, typed: the one list of states, their names on the wire
// and in JSON, and each dialect's view of them. A switch over video_state
// names every state (the build fails on one it forgets: -Werror=switch),
// so a state added here is mapped by every dialect before it compiles.

#include <cstdint>
#include <optional>
#include <ostream>
#include <string_view>
#include <utility>

#include <nlohmann/json_fwd.hpp>

namespace reel {

/// Where a video is on its way:
///   created -> uploaded -> probing -> transcoding -> packaging -> ready,
/// or -> failed from any of them.
enum class video_state : uint8_t {
  created,     // registered; its source has not arrived yet
  uploaded,    // the source is stored
  probing,     // the source is being read
  transcoding, // chunks are being encoded (playable once the first is in)
  packaging,   // every part is encoded; playlists and MP4s are written
  ready,       // done
  failed,      // stopped, with a reason
};

inline constexpr video_state all_video_states[] = {
  video_state::created,     video_state::uploaded, video_state::probing,
  video_state::transcoding, video_state::packaging, video_state::ready,
  video_state::failed};

/// reel's name of `s` ("created", ...), as the API and the logs show it.
const char* to_string(video_state s);

/// The state named `name`, or none.
std::optional<video_state> parse_video_state(std::string_view name);

/// True for ready and failed: nothing more happens to such a video.
bool is_terminal(video_state s);

/// Whether a value read from outside (a peer's message) is a state.
inline bool valid(video_state s) {
  return static_cast<uint8_t>(s) <= static_cast<uint8_t>(video_state::failed);
}

inline std::ostream& operator<<(std::ostream& out, video_state s) {
  return out << to_string(s);
}

// JSON: the state's name; an unknown name throws like any bad JSON value.
void to_json(nlohmann::json& j, video_state s);
void from_json(const nlohmann::json& j, video_state& s);
void to_json(nlohmann::ordered_json& j, video_state s);
void from_json(const nlohmann::ordered_json& j, video_state& s);

/// The state names reel has always used, for code that compares with them.
namespace states {
constexpr video_state created = video_state::created;
constexpr video_state uploaded = video_state::uploaded;
constexpr video_state probing = video_state::probing;
constexpr video_state transcoding = video_state::transcoding;
constexpr video_state packaging = video_state::packaging;
constexpr video_state ready = video_state::ready;
constexpr video_state failed = video_state::failed;
} // namespace states

// Each dialect's view of a state. `playable` says whether the start of the
// video plays already (its first chunk is packaged). The HTTP handlers and
// the webhook dispatcher both answer from these, so a video shows the same
// status in a GET and in the event about it.

/// Gcore Streaming's `status`: empty, pending, viewable, ready, error.
const char* gcore_status(video_state s, bool playable);

/// The Uploads API's status code and text (1 pending, 3 processing,
/// 5 uploading, 6 completed, 7 failed).
std::pair<int, const char*> upload_status(video_state s);

} // namespace reel
