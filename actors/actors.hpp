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

/// A worker runs one CPU-bound task at a time. Spawned detached.
using worker_actor = caf::typed_actor<
  // Runs the task and answers with its result (errors are in the result).
  caf::replies_to<run_atom, task>::with<task_result>>;

/// The scheduler queues tasks by priority and hands them to idle workers.
using scheduler_actor = caf::typed_actor<
  // Queues a task; the answer comes when a worker has finished it.
  caf::replies_to<submit_atom, task>::with<task_result>,
  // Queued and running task counts.
  caf::replies_to<stats_atom>::with<int64_t, int64_t>>;

/// One video's state machine; the only writer of its record.
using video_actor = caf::typed_actor<
  // The current record.
  caf::replies_to<caf::get_atom>::with<video_record>,
  // Continues from the persisted state (sent once after spawn).
  caf::reacts_to<resume_atom>>;

/// Owns the set of videos and folders of this node.
using video_manager_actor = caf::typed_actor<
  // Registers a new video whose source is stored, and starts processing it.
  caf::replies_to<create_atom, video_record>::with<video_record>,
  // One video of a tenant ("" = any tenant, for admins).
  caf::replies_to<caf::get_atom, std::string, std::string>::with<video_record>,
  // A tenant's videos, newest first: (tenant, offset, limit).
  caf::replies_to<list_atom, std::string, int32_t, int32_t>::with<video_page>,
  // Deletes a video and its media: (tenant, id).
  caf::replies_to<caf::delete_atom, std::string, std::string>::with<caf::ok_atom>,
  // Creates a folder (its parent must exist).
  caf::replies_to<create_atom, folder_record>::with<folder_record>,
  // Whether a tenant's folder exists: (tenant, path).
  caf::replies_to<folder_atom, std::string, std::string>::with<bool>,
  // A tenant's folders.
  caf::replies_to<list_atom, folder_atom, std::string>::with<std::vector<folder_record>>>;

} // namespace reel
