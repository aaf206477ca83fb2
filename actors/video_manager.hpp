#pragma once

#include "actors/actors.hpp"
#include "actors/context.hpp"

#include <string>
#include <unordered_map>
#include <unordered_set>

namespace reel {

struct video_manager_state {
  static inline const char* name = "video_manager";
  node_context* ctx = nullptr;
  scheduler_actor scheduler;
  std::unordered_map<std::string, video_actor> live; // non-terminal videos
  // Client keys (keys::client_key) of creates this node checked and is
  // having registered by the video's owner: another create of one of them
  // is a conflict until the answer is stored here.
  std::unordered_set<std::string> pending_keys;
};

/// Owns this node's videos and folders. On start it spawns a video actor for
/// every video that is not ready or failed, which resumes it.
video_manager_actor::behavior_type
video_manager(video_manager_actor::stateful_pointer<video_manager_state> self,
              node_context* ctx, scheduler_actor scheduler);

} // namespace reel
