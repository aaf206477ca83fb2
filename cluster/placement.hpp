#pragma once

// Placement of videos on nodes by rendezvous (highest random weight)
// hashing: every node scores every video; the best score owns the video and
// the next R-1 keep replicas. A node joining or leaving moves only the videos
// it wins or held.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace reel::cluster {

/// A stable 64-bit score of (node, video).
uint64_t placement_score(const std::string& node, const std::string& video_id);

/// The nodes for `video_id`, best first, at most `replicas` of them.
std::vector<std::string> place(const std::string& video_id,
                               std::vector<std::string> nodes,
                               size_t replicas);

} // namespace reel::cluster
