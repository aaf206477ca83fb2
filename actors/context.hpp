#pragma once

// What every local actor of a node shares: the store, the blob files and the
// configuration. Passed by pointer at spawn; outlives every actor.

#include "ops/config.hpp"
#include "storage/blob_store.hpp"
#include "storage/db.hpp"

namespace reel {

struct node_context {
  node_config config;
  db* store = nullptr;
  blob_store* blobs = nullptr;
};

} // namespace reel
