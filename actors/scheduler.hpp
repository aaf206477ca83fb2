#pragma once

#include "actors/actors.hpp"
#include "actors/worker.hpp"

#include <caf/actor_addr.hpp>
#include <caf/typed_response_promise.hpp>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace reel {

struct scheduler_config {
  /// Workers to spawn (detached). Default: 1.
  int workers = 1;
  /// What each worker is given: the data directory (where every task's
  /// files are derived, also for a requeued task's private outputs) and
  /// the cluster. Required.
  worker_config worker;
};

struct scheduler_state {
  static inline const char* name = "scheduler";
  struct pending {
    task t;
    caf::typed_response_promise<task_result> rp;
    uint64_t seq = 0;  // the task's number for operators (task_info.id)
    int attempts = 0;  // runs that ended with the worker dying
    int64_t queued_ms = 0;
    // Requeued by an operator: served before every other task, and its
    // outputs are written under names of its own, then moved into place
    // (the worker it was taken from may still be writing the usual ones).
    bool requeued = false;
  };
  struct active {
    pending job;
    worker_actor worker;
    int64_t started_ms = 0;
    // A requeued task's outputs: (private path, where it goes on success).
    std::vector<std::pair<std::string, std::string>> moves;
  };
  std::vector<pending> queue; // served by priority, then submission order
  std::map<uint64_t, active> running; // by seq
  std::vector<worker_actor> idle;
  std::vector<caf::actor_addr> workers; // every worker ever spawned
  // Workers whose task an operator requeued: replaced already, so each is
  // dropped (not made idle) when it finally ends its task.
  std::set<caf::actor_addr> given_up;
  uint64_t next_seq = 0;
  uint64_t private_runs = 0; // names the private outputs of requeued runs
  scheduler_config cfg;
};

/// Queues tasks and runs them on `cfg.workers` detached workers it spawns
/// (linked: they end with it). A worker that dies is replaced and its task
/// run once more, then reported failed. A queued task waits while a task
/// with the same outputs (video, kind, index) runs. Operators list, cancel
/// (queued) and requeue (running) tasks.
scheduler_ops_actor::behavior_type
scheduler(scheduler_ops_actor::stateful_pointer<scheduler_state> self,
          scheduler_config cfg);

} // namespace reel
