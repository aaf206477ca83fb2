#pragma once

// What a node knows of the cluster: its members and their states, and the
// placement of videos over the live ones. Thread-safe: the member actor
// writes it, actors and HTTP threads read it. A node without a cluster is a
// cluster of one, so every placement question has the same answer path.

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace reel {

/// A node of the cluster, as it describes itself (and as others saw it).
struct member_info {
  std::string node_id;
  std::string public_url;   // its HTTP base
  std::string cluster_host; // where its member actor is published
  uint16_t cluster_port = 0;
  uint16_t data_port = 0;   // its blob server (data plane)
  std::string state = "up"; // up, suspect, down, draining
  int64_t queued = 0;       // transcode tasks waiting there
  int64_t running = 0;      // and running
  int32_t workers = 0;
  int64_t disk_bytes = 0;   // blobs it stores
  int64_t version = 0;      // grows with every update it sends
  int64_t seen_ms = 0;      // when this node last heard from it
};

/// Where a blob can be fetched from: a node's data plane.
struct blob_origin {
  std::string node_id;
  std::string host;
  uint16_t port = 0;
};

class cluster_view {
public:
  cluster_view(member_info self, size_t replicas);

  /// Replaces what is known of the other members (self is kept).
  void set_members(std::vector<member_info> members);
  void update_self(const member_info& self);

  member_info self() const;
  std::vector<member_info> members() const; // self included, sorted by id
  std::optional<member_info> find(const std::string& node_id) const;
  size_t replicas() const { return replicas_; }

  /// Nodes that take work and ownership: "up" or "suspect".
  std::vector<std::string> live() const;
  /// The owner then the replicas of a video, over the live nodes.
  std::vector<std::string> placement(const std::string& video_id) const;
  std::string owner(const std::string& video_id) const;
  bool owns(const std::string& video_id) const;
  /// More than half of the known members are live (a node cut off from
  /// the others does not take their videos over).
  bool has_quorum() const;
  /// Data planes to try for a blob: `preferred` first, then every other
  /// reachable member (up or draining), self excluded.
  std::vector<blob_origin> fetch_order(const std::vector<std::string>& preferred) const;
  /// The live member with the least work per worker.
  member_info least_loaded() const;

private:
  mutable std::mutex mtx_;
  member_info self_;
  std::vector<member_info> others_;
  size_t replicas_;
};

} // namespace reel
