#pragma once

#include "actors/actors.hpp"

namespace reel {

/// What a worker needs besides its tasks: how to fetch a source that is on
/// another node.
struct worker_config {
  std::string cluster_secret;
};

struct worker_state {
  static inline const char* name = "worker";
};

/// Runs codec work; spawn it `detached` (it blocks its thread while encoding).
worker_actor::behavior_type
worker(worker_actor::stateful_pointer<worker_state> self, worker_config cfg);

/// Runs one task in the calling thread (what a worker does with each task).
task_result execute(const task& t, const worker_config& cfg = {});

} // namespace reel
