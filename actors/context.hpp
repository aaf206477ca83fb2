#pragma once

// What every local actor of a node shares: the store, the blob files, the
// configuration, and how a video's packager is made. Passed by pointer at
// spawn; outlives every actor.

#include "actors/actors.hpp"
#include "actors/snapshot.hpp"
#include "ops/config.hpp"
#include "storage/blob_store.hpp"
#include "storage/db.hpp"

#include <atomic>
#include <functional>
#include <memory>

namespace reel::cluster {
class link_security;
}

namespace caf {
class local_actor;
}

namespace reel {

struct key_table; // actors/keyring.hpp

/// Spawns the packager of one video as a child of `parent`.
using packager_factory =
  std::function<packager_actor(caf::local_actor* parent, codec::package_job)>;

/// The real packager (actors/packager.hpp), detached and linked to `parent`.
packager_actor spawn_packager(caf::local_actor* parent, codec::package_job job);

struct node_context {
  node_config config;
  db* store = nullptr;
  blob_store* blobs = nullptr;
  cluster_view* view = nullptr;     // this node and the others
  member_actor member;              // null without a cluster
  replicator_actor replicator;      // null without a cluster: fetches
                                    // what a request or a video needs now
  replicator_actor replicas;        // null without a cluster: keeps this
                                    // node's copies (background; a long
                                    // queue here never delays `replicator`)
  // TLS of the data plane (this node's certificate, the cluster CA); null
  // without a cluster.
  std::shared_ptr<cluster::link_security> link;
  webhook_actor webhooks;           // delivers events
  // Owns API keys, upload tokens and webhook subscriptions; what it
  // publishes is read through `keys` (actors/keyring.hpp).
  keyring_actor keyring;
  const published<key_table>* keys = nullptr;
  at_rest_keys secrets;             // seal secrets kept at rest (set at
                                    // start, before any actor)
  packager_factory make_packager = spawn_packager; // tests put a mock here
  // Set by node::stop() before it ends the actors: the member accepts an
  // exit message only then (or from a local actor).
  std::atomic<bool> stopping{false};
};

} // namespace reel
