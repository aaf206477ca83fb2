#pragma once

#include "actors/actors.hpp"
#include "actors/context.hpp"

namespace reel {

struct video_state {
  static inline const char* name = "video";
  node_context* ctx = nullptr;
  scheduler_actor scheduler;
  video_record rec;
  uint64_t next_task = 0;
};

/// The state machine of one video:
///   uploaded -> probing -> transcoding -> packaging -> ready, or -> failed.
/// Every transition (and every finished chunk) is persisted before the next
/// step starts; `resume` continues from whatever was persisted. The actor
/// quits once the video is ready or failed.
video_actor::behavior_type video(video_actor::stateful_pointer<video_state> self,
                                 node_context* ctx, scheduler_actor scheduler,
                                 video_record rec);

} // namespace reel
