#pragma once

#include "actors/actors.hpp"
#include "actors/context.hpp"

#include <caf/node_id.hpp>

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace reel {

struct member_state {
  static inline const char* name = "member";
  node_context* ctx = nullptr;
  video_manager_actor manager;
  scheduler_actor scheduler;
  member_info me;
  std::map<std::string, member_info> known;  // the other nodes, by id
  std::map<std::string, member_actor> peers; // connected ones
  // The CAF node each member speaks from, bound when it joined here or
  // when this node connected to it: a message from that node speaks for
  // that member, and for no other.
  std::map<std::string, caf::node_id> node_of;
  std::set<std::string> connecting;          // "host:port" under way
  std::vector<std::pair<std::string, uint16_t>> seeds; // --join
  int64_t last_disk_scan_ms = 0;
  uint64_t ticks = 0;
  // Until a node has met the cluster (or waited a moment for it), it does
  // not tell the video manager that it is alone: it would take every
  // unfinished video over after a whole-cluster restart.
  bool settled = false;
  int64_t started_ms = 0;
};

/// This node's member of the cluster: joins through the seeds, gossips its
/// load every tick, watches the others (CAF monitors and heartbeats: a
/// killed or hung node is down within seconds), reconnects to those that
/// come back, replicates records to every node and publishes the
/// membership to the cluster view and the video manager.
member_actor::behavior_type
member(member_actor::stateful_pointer<member_state> self, node_context* ctx,
       video_manager_actor manager, scheduler_actor scheduler,
       member_info me, std::vector<std::pair<std::string, uint16_t>> seeds);

} // namespace reel
