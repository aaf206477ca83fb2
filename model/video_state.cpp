#include "model/video_state.hpp"

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

namespace reel {

const char* to_string(video_state s) {
  switch (s) {
    case video_state::created:
      return "created";
    case video_state::uploaded:
      return "uploaded";
    case video_state::probing:
      return "probing";
    case video_state::transcoding:
      return "transcoding";
    case video_state::packaging:
      return "packaging";
    case video_state::ready:
      return "ready";
    case video_state::failed:
      return "failed";
  }
  return "invalid";
}

std::optional<video_state> parse_video_state(std::string_view name) {
  for (auto s : all_video_states)
    if (name == to_string(s))
      return s;
  return std::nullopt;
}

bool is_terminal(video_state s) {
  switch (s) {
    case video_state::ready:
    case video_state::failed:
      return true;
    case video_state::created:
    case video_state::uploaded:
    case video_state::probing:
    case video_state::transcoding:
    case video_state::packaging:
      return false;
  }
  return false;
}

namespace {

template <class Json>
void read_state(const Json& j, video_state& s) {
  auto name = j.template get<std::string>();
  auto parsed = parse_video_state(name);
  if (!parsed)
    throw std::invalid_argument("unknown video state: " + name);
  s = *parsed;
}

} // namespace

void to_json(nlohmann::json& j, video_state s) {
  j = to_string(s);
}

void from_json(const nlohmann::json& j, video_state& s) {
  read_state(j, s);
}

void to_json(nlohmann::ordered_json& j, video_state s) {
  j = to_string(s);
}

void from_json(const nlohmann::ordered_json& j, video_state& s) {
  read_state(j, s);
}

const char* gcore_status(video_state s, bool playable) {
  switch (s) {
    case video_state::failed:
      return "error";
    case video_state::ready:
      return "ready";
    case video_state::created:
      return "empty";
    case video_state::uploaded:
    case video_state::probing:
    case video_state::transcoding:
    case video_state::packaging:
      return playable ? "viewable" : "pending";
  }
  return "pending";
}

std::pair<int, const char*> upload_status(video_state s) {
  switch (s) {
    case video_state::created:
    case video_state::uploaded:
    case video_state::probing:
      return {1, "pending"};
    case video_state::transcoding:
      return {3, "processing"};
    case video_state::packaging:
      return {5, "uploading"};
    case video_state::ready:
      return {6, "completed"};
    case video_state::failed:
      return {7, "failed"};
  }
  return {1, "pending"};
}

} // namespace reel
