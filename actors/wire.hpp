#pragma once

// Everything that arrives from another node is checked here before any
// actor acts on it: ids are UUIDs, names are plain names, sizes are bounded,
// records and rows are well formed. A message that fails is dropped and
// counted (reel_cluster_messages_dropped_total{message,reason}).
//
// These checks stop bugs, stale owners and corrupt messages. They are not
// what keeps strangers out: only nodes holding the cluster secret complete
// a TLS handshake with a member at all (cluster/pki.hpp). Within the
// cluster CAF says only which node sent a message, and a node names itself:
// an authenticated member that turned malicious could still write what a
// member may write (docs/security.md says so).

#include "actors/types.hpp"
#include "storage/db.hpp"

#include <string>

namespace reel::wire {

/// A node id, rung or file name: 1..n of [A-Za-z0-9_.-], not "." or "..".
bool plain_name(const std::string& s, size_t n = 64);

/// A SHA-256 in lower-case hex (64 digits).
bool hex_digest(const std::string& s);

/// A tenant name: 1..64 of [a-z0-9_-].
bool tenant_name(const std::string& s);

/// A member's description of itself (join, gossip).
caf::error check(const member_info& m);

/// A video record (replicated, or a create for its owner).
caf::error check(const video_record& v);

/// A row of a replicated family: only keys, folders, tokens and webhooks,
/// each key in its family's layout and each value decodable.
caf::error check(const replicated_row& row);

/// A part of a source stored on some node.
caf::error check(const source_part& p);

/// A task. `from_peer`: it came from another node, which may only ask for
/// chunks.
caf::error check(const task& t, bool from_peer);

/// Counts a message dropped for `reason` (a short fixed word) and logs it.
void dropped(const char* message, const char* reason, const std::string& from,
             const std::string& detail = {});

} // namespace reel::wire
