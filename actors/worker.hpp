#pragma once

#include "actors/actors.hpp"

#include <memory>
#include <string>
#include <vector>

namespace reel {

class blob_store;
class cluster_view;
namespace cluster {
class link_security;
}

/// What a worker needs besides its tasks: where this node keeps its files,
/// and (in a cluster) how to fetch a source another node holds.
struct worker_config {
  const blob_store* blobs = nullptr;
  const cluster_view* view = nullptr;           // null: no cluster
  std::shared_ptr<cluster::link_security> link; // null: no cluster
};

struct worker_state {
  static inline const char* name = "worker";
};

/// The files a task reads and writes on this node.
struct task_files {
  std::string source;               // what it reads (kind storyboard: the
                                    // rendition's MP4; import, assemble: what
                                    // they write)
  std::vector<std::string> outputs; // kind chunk: one per rung
  std::string audio;                // kind audio
  std::string images_dir;           // kinds images and storyboard
  std::vector<std::string> inputs;  // kind assemble: the parts, in order
};

/// Derives a task's files from what it names (video id, chunk index, rung
/// and rendition names, upload parts) under this node's data directory;
/// ec::invalid_argument when a name could leave it.
caf::expected<task_files> files_of(const blob_store& blobs, const task& t);

/// Checks a task before anything acts on it: a UUID video id, a known
/// kind, a chunk plan and ladder of sane sizes with plain rung names, and
/// bounded strings. `from_peer`: it came from another node, which may only
/// ask for chunks. ec::invalid_argument says what is wrong.
caf::error check_task(const task& t, bool from_peer);

/// Runs codec work; spawn it `detached` (it blocks its thread while encoding).
worker_actor::behavior_type
worker(worker_actor::stateful_pointer<worker_state> self, worker_config cfg);

/// Runs one task in the calling thread (what a worker does with each task).
task_result execute(const task& t, const worker_config& cfg);

} // namespace reel
