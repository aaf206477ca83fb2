#pragma once

#include "actors/actors.hpp"

namespace reel {

struct worker_state {
  static inline const char* name = "worker";
};

/// Runs codec work; spawn it `detached` (it blocks its thread while encoding).
worker_actor::behavior_type
worker(worker_actor::stateful_pointer<worker_state> self);

/// Runs one task in the calling thread (what a worker does with each task).
task_result execute(const task& t);

} // namespace reel
