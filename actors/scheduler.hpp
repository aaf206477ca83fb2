#pragma once

#include "actors/actors.hpp"

#include <caf/actor_addr.hpp>
#include <caf/typed_response_promise.hpp>

#include <cstdint>
#include <vector>

namespace reel {

struct scheduler_config {
  /// Workers to spawn (detached). Default: 1.
  int workers = 1;
  /// Authenticates fetches of sources from other nodes. Default: empty.
  std::string cluster_secret;
};

struct scheduler_state {
  static inline const char* name = "scheduler";
  struct pending {
    task t;
    caf::typed_response_promise<task_result> rp;
    uint64_t seq = 0;
    int attempts = 0; // runs that ended with the worker dying
  };
  std::vector<pending> queue; // served by priority, then submission order
  std::vector<worker_actor> idle;
  std::vector<caf::actor_addr> workers; // every worker ever spawned
  int64_t running = 0;
  uint64_t next_seq = 0;
  scheduler_config cfg;
};

/// Queues tasks and runs them on `cfg.workers` detached workers it spawns
/// (linked: they end with it)///. A worker that dies is replaced and its task reported
/// failed.
scheduler_actor::behavior_type
scheduler(scheduler_actor::stateful_pointer<scheduler_state> self,
          scheduler_config cfg);

} // namespace reel
