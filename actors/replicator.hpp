#pragma once

#include "actors/actors.hpp"
#include "actors/context.hpp"

namespace reel {

struct replicator_state {
  static inline const char* name = "replicator";
  node_context* ctx = nullptr;
};

/// Fetches blobs from other nodes' data planes, verified by digest. Spawn
/// detached: it blocks on the network.
replicator_actor::behavior_type
replicator(replicator_actor::stateful_pointer<replicator_state> self,
           node_context* ctx);

/// The blobs of `v` this node should hold but does not: the source while
/// the video is being made, every media file once it is ready; empty when
/// this node is not one of the video's placement. (`v` as recorded.)
std::vector<fetch_item> missing_blobs(const node_context& ctx,
                                      const video_record& v);

} // namespace reel
