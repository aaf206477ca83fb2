#pragma once

#include "actors/actors.hpp"
#include "actors/context.hpp"

#include <deque>
#include <functional>
#include <map>
#include <string>
#include <utility>

namespace reel {

struct video_actor_state {
  static inline const char* name = "video";
  node_context* ctx = nullptr;
  scheduler_actor scheduler;
  video_record rec;
  uint64_t next_task = 0;
  packager_actor packager;   // while transcoding and packaging
  int32_t next_to_package = 0; // chunks handed to the packager so far
  bool audio_packaged = false;
  bool feeding = false;        // a request to the packager is under way
  // Chunks being encoded: on which node, by which task (a chunk sent again
  // after its node was lost gets a new task; the old answer is ignored).
  std::map<int32_t, std::pair<std::string, uint64_t>> in_flight;
  std::deque<int32_t> waiting; // chunks not handed out yet, in order
  // Tasks that failed for a reason that passes (ops/error.hpp,
  // is_transient), run again when their retry message comes.
  std::map<uint64_t, std::function<void()>> parked;
  uint64_t next_park = 0;
  int packaging_waits = 0; // times packaging stopped on a full disk
};

/// The state machine of one video:
///   uploaded -> probing -> transcoding -> packaging -> ready, or -> failed.
/// Every transition (and every finished part) is persisted before the next
/// step starts; `resume` continues from whatever was persisted. While
/// transcoding, finished chunks go to a packager actor in order, so the
/// start of the video plays before the whole ladder is done. The actor quits
/// once the video is ready or failed.
/// The one transition of a video's record: its state becomes `to`, the
/// history says when (and why, for a failure or a retry), and the gauge of
/// videos by state follows. Only the record's writer calls it: the video
/// actor, and its manager for a video no actor runs (a retry of a failed
/// one); the caller persists the record.
void apply_transition(video_record& rec, video_state to,
                      const std::string& reason = {});

video_actor::behavior_type video(video_actor::stateful_pointer<video_actor_state> self,
                                 node_context* ctx, scheduler_actor scheduler,
                                 video_record rec);

} // namespace reel
