#pragma once

// Every typed actor interface of reel, in one reviewed header, with a comment
// per handler. Handlers answer caf::result<T>; errors are reel::ec errors
// (ops/error.hpp) whose message a person can read.

#include "actors/types.hpp"

#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

namespace reel {

// Atoms are verbs.
using create_atom = caf::atom_constant<caf::atom("create")>;
using list_atom = caf::atom_constant<caf::atom("list")>;
using run_atom = caf::atom_constant<caf::atom("run")>;
using submit_atom = caf::atom_constant<caf::atom("submit")>;
using resume_atom = caf::atom_constant<caf::atom("resume")>;
using folder_atom = caf::atom_constant<caf::atom("folder")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using audio_atom = caf::atom_constant<caf::atom("audio")>;
using finish_atom = caf::atom_constant<caf::atom("finish")>;
using members_atom = caf::atom_constant<caf::atom("members")>;
using drain_atom = caf::atom_constant<caf::atom("drain")>;
using fetch_atom = caf::atom_constant<caf::atom("fetch")>;
using sync_atom = caf::atom_constant<caf::atom("sync")>;
using upload_atom = caf::atom_constant<caf::atom("upload")>;
using view_atom = caf::atom_constant<caf::atom("view")>;
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
using requeue_atom = caf::atom_constant<caf::atom("requeue")>;
using retry_atom = caf::atom_constant<caf::atom("retry")>;
using keep_atom = caf::atom_constant<caf::atom("keep")>;
using register_atom = caf::atom_constant<caf::atom("register")>;
using bootstrap_atom = caf::atom_constant<caf::atom("bootstrap")>;
using tenant_atom = caf::atom_constant<caf::atom("tenant")>;
using token_atom = caf::atom_constant<caf::atom("token")>;
using webhook_atom = caf::atom_constant<caf::atom("webhook")>;
using revoke_atom = caf::atom_constant<caf::atom("revoke")>;
using digest_atom = caf::atom_constant<caf::atom("digest")>;

/// A worker runs one CPU-bound task at a time. Spawned detached.
using worker_actor = caf::typed_actor<
  // Runs the task and answers with its result (errors are in the result).
  caf::replies_to<run_atom, task>::with<task_result>>;

/// The scheduler queues tasks by priority and hands them to idle workers.
using scheduler_actor = caf::typed_actor<
  // Queues a task; the answer comes when a worker has finished it.
  caf::replies_to<submit_atom, task>::with<task_result>,
  // Queued and running task counts.
  caf::replies_to<stats_atom>::with<int64_t, int64_t>,
  // Drops the queued tasks of a video (deleted); running ones finish.
  caf::reacts_to<caf::delete_atom, std::string>>;

/// The scheduler as operators reach it (through the node): what the
/// actors submitting tasks see, and its tasks listed, cancelled, requeued.
using scheduler_ops_actor = scheduler_actor::extend<
  // The queued and running tasks: running first, then the queue in the
  // order it is served.
  caf::replies_to<list_atom>::with<std::vector<task_info>>,
  // An operator drops queued task N (its submitter gets a failed result,
  // "cancelled by an operator"); a running one is ec::conflict.
  caf::replies_to<cancel_atom, uint64_t>::with<task_info>,
  // An operator gives up running task N and queues it again in front; a
  // new worker takes the old one's place (the old one's result is ignored
  // and it is dropped when it ends). A queued one is ec::conflict.
  caf::replies_to<requeue_atom, uint64_t>::with<task_info>>;

/// Packages one video as its parts complete (spawned detached by the video
/// actor; remuxing only, never encoding). Each answer says whether the
/// start of the video is playable yet.
using packager_actor = caf::typed_actor<
  // The audio is encoded: package it (before any chunk).
  caf::replies_to<caf::add_atom, audio_atom>::with<bool>,
  // Chunk N (the next in order) is encoded for every rung: append it.
  caf::replies_to<caf::add_atom, int32_t>::with<bool>,
  // Every chunk is in: end the playlists, write DASH and the MP4s.
  caf::replies_to<finish_atom>::with<codec::package_result>>;

/// One video's state machine; the only writer of its record.
using video_actor = caf::typed_actor<
  // The current record.
  caf::replies_to<caf::get_atom>::with<video_record>,
  // Continues from the persisted state (sent once after spawn).
  caf::reacts_to<resume_atom>,
  // Runs again a task that failed for a reason that passes (a full disk).
  caf::reacts_to<retry_atom, uint64_t>,
  // The cluster changed: chunks on nodes that are gone are sent again.
  caf::reacts_to<members_atom, std::vector<member_info>>,
  // Applies a client's change (a JSON merge patch, see apply_patch).
  caf::replies_to<caf::update_atom, std::string>::with<video_record>,
  // A play started on the embed page: answers the views so far.
  caf::replies_to<view_atom>::with<int64_t>>;

/// Owns the set of videos and folders of this node.
using video_manager_actor = caf::typed_actor<
  // The cluster's membership changed: own, resume and hand over videos
  // by placement.
  caf::reacts_to<members_atom, std::vector<member_info>>,
  // A video record replicated from its owner (newer ones win).
  caf::reacts_to<caf::put_atom, video_record>,
  // The same, answered once the record is durable here: the node that
  // received an upload keeps the owner's record before it answers 202.
  caf::replies_to<keep_atom, video_record>::with<caf::ok_atom>,
  // A video deleted on another node.
  caf::reacts_to<caf::delete_atom, video_record>,
  // Registers a new video. With its source stored (source_sha256 set) it
  // is processed at once; with an import_url it imports first; else it
  // waits in "created" for its source. One that a client names by a key
  // (info.client_key, Flare's s3Key) comes to the node that owns the key
  // by placement: that node checks the key (ec::conflict when a video of
  // the tenant has it, or a create of it is under way) and has the
  // video's owner register it (register_atom).
  caf::replies_to<create_atom, video_record>::with<video_record>,
  // Registers a new video here, as its owner, without routing it by its
  // client's key again (the key's node has checked it).
  caf::replies_to<register_atom, video_record>::with<video_record>,
  // A part of a created video's source is stored on some node: registers
  // it; the last missing part starts processing.
  caf::replies_to<upload_atom, source_part>::with<video_record>,
  // A client's change to a video: (tenant, id, JSON merge patch).
  caf::replies_to<caf::update_atom, std::string, std::string,
                  std::string>::with<video_record>,
  // A play of video `id` started: counts it, answers the views so far.
  caf::replies_to<view_atom, std::string>::with<int64_t>,
  // One video of a tenant ("" = any tenant, for admins).
  caf::replies_to<caf::get_atom, std::string, std::string>::with<video_record>,
  // A tenant's videos, newest first: (tenant, offset, limit).
  caf::replies_to<list_atom, std::string, int32_t, int32_t>::with<video_page>,
  // A tenant's videos in one state ("" any) made through one API
  // (created_via, "" any), newest first: (tenant, state, via, offset,
  // limit); the page's total counts those that match.
  caf::replies_to<list_atom, std::string, std::string, std::string, int32_t,
                  int32_t>::with<video_page>,
  // Starts a failed video again from what it has: (tenant or "" for
  // admins, id). ec::conflict unless it failed with its source stored.
  caf::replies_to<retry_atom, std::string, std::string>::with<video_record>,
  // Deletes a video and its media: (tenant, id).
  caf::replies_to<caf::delete_atom, std::string, std::string>::with<caf::ok_atom>,
  // Creates a folder (its parent must exist).
  caf::replies_to<create_atom, folder_record>::with<folder_record>,
  // Whether a tenant's folder exists: (tenant, path).
  caf::replies_to<folder_atom, std::string, std::string>::with<bool>,
  // A tenant's folders.
  caf::replies_to<list_atom, folder_atom, std::string>::with<std::vector<folder_record>>>;

/// Delivers webhook events from this node's outbox (actors/webhooks.hpp).
using webhook_actor = caf::typed_actor<
  // Sends the deliveries that are due (a periodic tick, or a new event).
  caf::reacts_to<caf::tick_atom>>;

/// The keyring: the one owner and writer of API keys, upload tokens and
/// webhook subscriptions (actors/keyring.hpp). It publishes an immutable
/// table after every change; readers use that, never a message.
using keyring_actor = caf::typed_actor<
  // The first admin key (the given one, or made) when there is no key at
  // all; "" when there are keys already.
  caf::replies_to<bootstrap_atom, std::string>::with<std::string>,
  // A new key: tenant, admin, scopes (empty: every scope).
  caf::replies_to<create_atom, std::string, bool,
                  std::vector<std::string>>::with<std::string>,
  // A tenant's first key; ec::conflict when the tenant has keys.
  caf::replies_to<create_atom, tenant_atom, std::string>::with<std::string>,
  // Revokes the key whose id (hex digits of its SHA-256) is given, on
  // behalf of the key whose SHA-256 is the second string.
  caf::replies_to<revoke_atom, std::string, std::string>::with<caf::ok_atom>,
  // An upload token of a tenant, valid for the seconds given (0: ever).
  caf::replies_to<create_atom, token_atom, std::string,
                  int64_t>::with<upload_token_record>,
  // Deletes a tenant's upload token.
  caf::replies_to<caf::delete_atom, token_atom, std::string,
                  std::string>::with<caf::ok_atom>,
  // A webhook subscription: tenant, URL, events, format.
  caf::replies_to<create_atom, webhook_atom, std::string, std::string,
                  std::vector<std::string>, std::string>::with<webhook_record>,
  // Deletes a tenant's webhook subscription by id.
  caf::replies_to<caf::delete_atom, webhook_atom, std::string,
                  std::string>::with<caf::ok_atom>,
  // A replicated row of the keys, tokens or webhooks family from another
  // node (checked by the member).
  caf::reacts_to<caf::put_atom, replicated_row>>;

/// One blob to bring to this node: from whom, what, where, and its digest.
/// (Declared in types.hpp as fetch_item.)

/// Moves blobs to this node over the data plane (detached: it blocks on
/// the network), and keeps this node's replicas complete.
using replicator_actor = caf::typed_actor<
  // Fetches every item (trying each origin in turn); ok or the first error.
  caf::replies_to<fetch_atom, std::vector<fetch_item>>::with<caf::ok_atom>,
  // Brings what this node should hold of a video (source while it is being
  // made, media once ready) to it, when it is one of the video's placement.
  caf::reacts_to<caf::put_atom, video_record>>;

/// This node in the cluster: membership, gossip, replication of records,
/// and the door through which other nodes reach this one. Published on
/// --cluster-listen through CAF's middleman.
using member_actor = caf::typed_actor<
  // A node joins through this one: answers every member known here.
  caf::replies_to<caf::join_atom, member_info>::with<std::vector<member_info>>,
  // Gossip: a member's latest own view of itself (load, disk, draining).
  caf::reacts_to<caf::update_atom, member_info>,
  // The members another member knows (after a join, and now and then):
  // this node dials those it should (one connection per pair).
  caf::reacts_to<members_atom, std::vector<member_info>>,
  // Every member as this node sees it.
  caf::replies_to<caf::get_atom, members_atom>::with<std::vector<member_info>>,
  // Records replicated to every node: videos, deletions, and the rows of
  // the small families (keys, folders, tokens).
  caf::reacts_to<caf::put_atom, video_record>,
  caf::reacts_to<caf::delete_atom, video_record>,
  caf::reacts_to<caf::put_atom, replicated_row>,
  // Requests for a video's owner (the single writer of its record),
  // forwarded there: create, a source part, a client's change, a retry.
  // A create naming a client's key goes to the key's owner instead, whose
  // manager checks the key and then registers the video with its owner.
  caf::replies_to<create_atom, video_record>::with<video_record>,
  caf::replies_to<register_atom, video_record>::with<video_record>,
  caf::replies_to<upload_atom, source_part>::with<video_record>,
  caf::replies_to<caf::update_atom, std::string, std::string,
                  std::string>::with<video_record>,
  caf::replies_to<view_atom, std::string>::with<int64_t>,
  caf::replies_to<retry_atom, std::string, std::string>::with<video_record>,
  // A client deletes a video: (tenant or "" for admins, id), done by its
  // owner, which tells every node.
  caf::replies_to<caf::delete_atom, std::string, std::string>::with<caf::ok_atom>,
  // Runs a task on this node (segment-parallel transcoding): from a peer,
  // only chunks, checked (actors/wire.hpp) before they are queued.
  caf::replies_to<submit_atom, task>::with<task_result>,
  // Sets or clears a node's draining state (forwarded to that node).
  caf::replies_to<drain_atom, std::string, bool>::with<member_info>,
  // Sends every record this node has to the sender (a node catching up).
  caf::reacts_to<sync_atom>,
  // Anti-entropy: a peer's digest of every replicated row and record; a
  // node whose own differs sends everything it has and asks for a sync.
  caf::reacts_to<digest_atom, std::string>,
  // Periodic: gossip, reconnect, failure detection.
  caf::reacts_to<caf::tick_atom>>;

} // namespace reel
