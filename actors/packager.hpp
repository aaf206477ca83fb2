#pragma once

#include "actors/actors.hpp"

#include <memory>

namespace reel {

struct packager_state {
  static inline const char* name = "packager";
  codec::package_job job;
  std::unique_ptr<codec::packager> impl; // opened at the first message
};

/// Owns one video's incremental packager (codec::packager). Spawn detached:
/// its handlers write files.
packager_actor::behavior_type
packager(packager_actor::stateful_pointer<packager_state> self,
         codec::package_job job);

} // namespace reel
