#include "actors/video_manager.hpp"

#include "actors/video.hpp"
#include "ops/log.hpp"
#include "ops/metrics.hpp"
#include "ops/util.hpp"
#include "storage/keys.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <map>

namespace reel {

namespace {

using self_ptr = video_manager_actor::stateful_pointer<video_manager_state>;

caf::error save(self_ptr self, video_record& v);

/// Starts running a video here: raises its owner epoch first (written and
/// sent to every node), so that whatever a previous owner still writes is
/// refused as stale from now on (fencing).
void start_video(self_ptr self, video_record rec) {
  auto id = rec.id;
  rec.epoch = std::max<uint64_t>(rec.epoch + 1, static_cast<uint64_t>(now_ms()));
  rec.owner_node = self->state.ctx->config.node_id;
  rec.takeovers.push_back(std::to_string(rec.epoch) + " " + rec.owner_node);
  if (rec.takeovers.size() > 32)
    rec.takeovers.erase(rec.takeovers.begin());
  if (auto err = save(self, rec)) {
    log::warn("video.not_started", {{"video", id}, {"error", message_of(err)}});
    return;
  }
  // Linked: a video actor ends with its manager (shutdown).
  auto v = self->spawn<caf::linked>(video, self->state.ctx, self->state.scheduler,
                       std::move(rec));
  self->monitor(v);
  self->state.live[id] = v;
  self->send(v, resume_atom::value);
}

/// Stops the local actor of a video (its state is persisted): another
/// node owns it now, or it was deleted.
void stop_video(self_ptr self, const std::string& id) {
  auto i = self->state.live.find(id);
  if (i == self->state.live.end())
    return;
  self->unlink_from(i->second);
  self->send_exit(i->second, caf::exit_reason::user_shutdown);
  self->state.live.erase(i);
}

/// Whether this node should run the actor of a video now: it owns it by
/// placement and sees a majority of the cluster.
bool should_run(self_ptr self, const video_record& v) {
  // A created video has work only once its source can be had.
  bool work = !is_terminal(v.state)
              && (v.state != states::created || !v.import_url.empty()
                  || upload_complete(v.upload));
  auto* view = self->state.ctx->view;
  if (!view)
    return work;
  return work && view->owns(v.id) && view->has_quorum();
}

/// Writes a record this node owns (its next version) and sends it to
/// every node.
caf::error save(self_ptr self, video_record& v) {
  ++v.version;
  if (auto err = self->state.ctx->store->put_video(v))
    return err;
  if (self->state.ctx->member)
    self->send(self->state.ctx->member, caf::put_atom::value, v);
  return {};
}

/// After a change of membership: take over the unfinished videos this node
/// now owns, hand over those it no longer owns, and bring the replicas it
/// should hold up to date.
void rebalance(self_ptr self) {
  auto& st = self->state;
  std::vector<video_record> records;
  auto err = st.ctx->store->scan(cf::videos, "", [&](auto&, auto& bytes) {
    video_record v;
    if (!decode(bytes, v))
      records.push_back(std::move(v));
    return true;
  });
  if (err) {
    log::error("videos.scan_failed", {{"error", message_of(err)}});
    return;
  }
  for (auto& v : records) {
    bool running = st.live.count(v.id) > 0;
    if (should_run(self, v) && !running) {
      log::info("video.takeover", {{"video", v.id}, {"state", to_string(v.state)}});
      metrics().failovers.Increment();
      start_video(self, std::move(v));
    } else if (running && st.ctx->view && !st.ctx->view->owns(v.id)) {
      log::info("video.handover", {{"video", v.id}});
      stop_video(self, v.id);
    } else if (running && st.ctx->view && !st.ctx->view->has_quorum()) {
      // Cut off from most of the cluster: the majority may take the video
      // over; this node stops writing it until it sees a majority again.
      log::info("video.paused_no_quorum", {{"video", v.id}});
      stop_video(self, v.id);
    } else if (v.state == states::ready && st.ctx->replicas) {
      self->send(st.ctx->replicas, caf::put_atom::value, v);
    }
  }
}

/// Stores a record replicated from its owner unless this node's copy is
/// newer (or this node runs the video: its own record is the truth), then
/// starts its actor if this node should run it, or fetches its replicas.
caf::error adopt(self_ptr self, const video_record& v) {
  auto& st = self->state;
  auto gone = st.ctx->store->deleted_at(v.id);
  if (gone && *gone)
    return {}; // deleted: a record of it is never taken back
  auto mine = st.ctx->store->get_video(v.id);
  if (mine && *mine && !supersedes(v, **mine))
    return {}; // stale, or the version this node has
  if (st.live.count(v.id)) {
    // This node runs it, and another node raised its epoch (took it over
    // while this one was cut off): this node's actor is fenced off.
    if (!mine || !*mine || v.epoch <= (*mine)->epoch)
      return {};
    log::warn("video.fenced", {{"video", v.id}, {"by", v.owner_node},
                               {"epoch", std::to_string(v.epoch)}});
    stop_video(self, v.id);
  }
  if (mine && *mine && (*mine)->state != v.state) {
    auto& gauge = metrics().videos;
    gauge.Add({{"state", to_string((*mine)->state)}}).Decrement();
    gauge.Add({{"state", to_string(v.state)}}).Increment();
  } else if (mine && !*mine) {
    metrics().videos.Add({{"state", to_string(v.state)}}).Increment();
  }
  if (auto err = st.ctx->store->put_video(v)) {
    log::error("video.replicate_failed",
               {{"video", v.id}, {"error", message_of(err)}});
    return err;
  }
  if (should_run(self, v))
    start_video(self, v);
  else if (st.ctx->replicas)
    self->send(st.ctx->replicas, caf::put_atom::value, v);
  return {};
}

caf::expected<video_record> load(self_ptr self, const std::string& tenant,
                                 const std::string& id) {
  auto v = self->state.ctx->store->get_video(id);
  if (!v)
    return v.error();
  // Another tenant's video is "not found": its existence is not revealed.
  if (!*v || (!tenant.empty() && (*v)->tenant != tenant))
    return make_error(ec::not_found, "video " + id + " not found");
  return std::move(**v);
}

bool folder_exists(self_ptr self, const std::string& tenant,
                   const std::string& path) {
  if (path == "root")
    return true;
  auto f = self->state.ctx->store->get(cf::folders, keys::folder(tenant, path));
  return f && *f;
}

/// Stores a record another node wrote, unless this node's copy is newer,
/// keeping the counts by state; starts its actor when this node should
/// run it.

caf::error key_taken(const video_record& v) {
  return make_error(ec::conflict,
                    "a video with key " + v.info.client_key + " exists");
}

/// Registers a new video with this node as its writer: its integer id
/// drawn (one no stored video has), its record saved and sent to every
/// node, its actor started when it has work.
caf::result<video_record> register_video(self_ptr self, video_record rec) {
  auto* store = self->state.ctx->store;
  if (!folder_exists(self, rec.tenant, rec.folder))
    return make_error(ec::not_found, "folder " + rec.folder + " not found");
  auto existing = store->get_video(rec.id);
  if (!existing)
    return existing.error();
  if (*existing)
    return make_error(ec::conflict, "video " + rec.id + " exists");
  // The key was checked by the key's node; checked here too (the same
  // node, or this node's copy of the records in case the two disagree).
  if (!rec.info.client_key.empty()) {
    auto holder = store->video_by_client_key(rec.tenant, rec.info.client_key);
    if (!holder)
      return holder.error();
    if (*holder)
      return key_taken(rec);
  }
  // Random, and drawn again on a clash with a stored video's: numbers of
  // two nodes' concurrent creates clash with negligible probability
  // (2^49 of them).
  rec.number = 0;
  for (int tries = 0; rec.number == 0; ++tries) {
    if (tries == 64)
      return make_error(ec::storage_error, "no free video number found");
    auto n = random_video_number();
    auto held = store->video_by_number(n);
    if (!held)
      return held.error();
    if (!*held)
      rec.number = n;
  }
  rec.state = rec.source_sha256.empty() ? states::created : states::uploaded;
  rec.created_ms = rec.updated_ms = now_ms();
  rec.history = {state_change{rec.state, rec.created_ms, {}}};
  if (auto err = save(self, rec))
    return err;
  metrics().videos.Add({{"state", to_string(rec.state)}}).Increment();
  log::info("video.created", {{"video", rec.id},
                              {"tenant", rec.tenant},
                              {"bytes", std::to_string(rec.source_bytes)}});
  if (should_run(self, rec))
    start_video(self, rec);
  return rec;
}

/// How long the key's node waits for the video's owner to register it.
constexpr auto register_timeout = std::chrono::seconds(20);

} // namespace

video_manager_actor::behavior_type
video_manager(video_manager_actor::stateful_pointer<video_manager_state> self,
              node_context* ctx, scheduler_actor scheduler) {
  self->state.ctx = ctx;
  self->state.scheduler = std::move(scheduler);
  self->set_down_handler([self](const caf::down_msg& dm) {
    for (auto i = self->state.live.begin(); i != self->state.live.end(); ++i)
      if (i->second.address() == dm.source) {
        self->state.live.erase(i);
        break;
      }
  });
  // Resume every video that was cut off, and count videos by state.
  std::vector<video_record> unfinished;
  std::map<std::string, int64_t> counts;
  auto err = ctx->store->scan(cf::videos, "", [&](const std::string&,
                                                   const std::string& bytes) {
    video_record rec;
    if (decode(bytes, rec)) {
      log::error("video.corrupt_record");
      return true;
    }
    ++counts[to_string(rec.state)];
    if (!is_terminal(rec.state))
      unfinished.push_back(std::move(rec));
    return true;
  });
  if (err)
    log::error("videos.scan_failed", {{"error", message_of(err)}});
  for (auto& [state, n] : counts)
    metrics().videos.Add({{"state", state}}).Set(static_cast<double>(n));
  // In a cluster the member says when this node knows who is there; the
  // videos it owns are resumed then (rebalance).
  bool clustered = !ctx->config.cluster_listen.empty();
  for (auto& rec : clustered ? std::vector<video_record>{} : unfinished) {
    if (!should_run(self, rec))
      continue;
    log::info("video.resume", {{"video", rec.id}, {"state", to_string(rec.state)}});
    start_video(self, std::move(rec));
  }
  return {
    [self](members_atom, std::vector<member_info>& members) {
      rebalance(self);
      for (auto& [id, actor] : self->state.live)
        self->send(actor, members_atom::value, members);
    },
    [self](caf::put_atom, video_record& v) { adopt(self, v); },
    [self](keep_atom, video_record& v) -> caf::result<caf::ok_atom> {
      if (auto err = adopt(self, v))
        return err;
      return caf::ok_atom::value;
    },
    [self](caf::delete_atom, const video_record& v) {
      stop_video(self, v.id);
      self->send(self->state.scheduler, caf::delete_atom::value, v.id);
      auto mine = self->state.ctx->store->get_video(v.id);
      if (mine && *mine)
        metrics().videos.Add({{"state", to_string((*mine)->state)}}).Decrement();
      // The tombstone is kept even when the record never came here.
      if (auto err = self->state.ctx->store->delete_video(mine && *mine ? **mine : v))
        log::error("video.delete_failed", {{"video", v.id}});
      self->state.ctx->blobs->remove_video(v.id);
    },
    [self](create_atom, video_record& rec) -> caf::result<video_record> {
      auto& st = self->state;
      if (rec.info.client_key.empty())
        return register_video(self, std::move(rec));
      // Named by a client's key (Flare's s3Key): creates of one key all
      // come to this node, the key's owner by placement (member.cpp), and
      // are decided here one after the other (docs/cluster.md).
      auto key = keys::client_key(rec.tenant, rec.info.client_key);
      if (st.pending_keys.count(key))
        return key_taken(rec);
      auto holder = st.ctx->store->video_by_client_key(rec.tenant,
                                                       rec.info.client_key);
      if (!holder)
        return holder.error();
      if (*holder)
        return key_taken(rec);
      if (!st.ctx->member || st.ctx->view->owns(rec.id))
        return register_video(self, std::move(rec));
      // The video's owner registers it (the single writer of its record);
      // the key stays taken here until its record is stored here too.
      st.pending_keys.insert(key);
      auto rp = self->make_response_promise<video_record>();
      self->request(st.ctx->member, register_timeout, register_atom::value,
                    std::move(rec))
        .then(
          [self, rp, key](video_record& v) mutable {
            adopt(self, v);
            self->state.pending_keys.erase(key);
            rp.deliver(std::move(v));
          },
          [self, rp, key](caf::error& err) mutable {
            self->state.pending_keys.erase(key);
            rp.deliver(std::move(err));
          });
      return rp;
    },
    [self](register_atom, video_record& rec) -> caf::result<video_record> {
      return register_video(self, std::move(rec));
    },
    [self](upload_atom, source_part& p) -> caf::result<video_record> {
      auto rec = load(self, p.tenant, p.video_id);
      if (!rec)
        return rec.error();
      if (rec->state != states::created || !rec->import_url.empty()
          || upload_complete(rec->upload)
          || self->state.live.count(rec->id))
        return make_error(ec::conflict, "the video already has a source");
      auto max = self->state.ctx->config.max_upload_bytes;
      if (upload_received(rec->upload) + p.part.bytes > max
          || (p.mode == "bytes" && p.total > max))
        return make_error(ec::too_large, "the source is larger than the "
                                         "maximum of "
                                           + std::to_string(max) + " bytes");
      if (auto err = add_part(rec->upload, p.mode, p.total, p.part))
        return err;
      rec->updated_ms = now_ms();
      if (auto err = save(self, *rec))
        return err;
      if (should_run(self, *rec)) {
        log::info("video.source_received",
                  {{"video", rec->id},
                   {"bytes", std::to_string(upload_received(rec->upload))},
                   {"parts", std::to_string(rec->upload.parts.size())}});
        start_video(self, *rec);
      }
      return std::move(*rec);
    },
    [self](view_atom, const std::string& id) -> caf::result<int64_t> {
      auto live = self->state.live.find(id);
      if (live != self->state.live.end()) // its actor writes its record
        return self->delegate(live->second, view_atom::value);
      auto rec = load(self, "", id);
      if (!rec)
        return rec.error();
      ++rec->info.views;
      if (auto err = save(self, *rec)) // updated_ms kept: not a change
        return err;
      return rec->info.views;
    },
    [self](caf::update_atom, const std::string& tenant, const std::string& id,
           const std::string& patch) -> caf::result<video_record> {
      auto rec = load(self, tenant, id);
      if (!rec)
        return rec.error();
      auto live = self->state.live.find(id);
      if (live != self->state.live.end()) // its actor writes its record
        return self->delegate(live->second, caf::update_atom::value, patch);
      auto j = nlohmann::json::parse(patch, nullptr, false);
      if (auto err = apply_patch(*rec, j))
        return err;
      rec->updated_ms = now_ms();
      if (auto err = save(self, *rec))
        return err;
      return std::move(*rec);
    },
    [self](caf::get_atom, const std::string& tenant,
           const std::string& id) -> caf::result<video_record> {
      auto rec = load(self, tenant, id);
      if (!rec)
        return rec.error();
      return std::move(*rec);
    },
    [self](list_atom, const std::string& tenant, int32_t offset,
           int32_t limit) -> caf::result<video_page> {
      video_page page;
      std::vector<std::string> ids;
      auto err = self->state.ctx->store->scan(
        cf::video_index, keys::video_index_prefix(tenant),
        [&](const std::string& key, const std::string&) {
          if (page.total >= offset
              && static_cast<int32_t>(ids.size()) < limit)
            ids.push_back(keys::id_of_index(key));
          ++page.total;
          return true;
        });
      if (err)
        return err;
      for (auto& id : ids) {
        auto rec = load(self, tenant, id);
        if (rec)
          page.videos.push_back(std::move(*rec));
      }
      return page;
    },
    [self](list_atom, const std::string& tenant, const std::string& state,
           const std::string& via, int32_t offset,
           int32_t limit) -> caf::result<video_page> {
      video_page page;
      std::vector<std::string> ids;
      auto* store = self->state.ctx->store;
      auto err = store->scan(
        cf::video_index, keys::video_index_prefix(tenant),
        [&](const std::string& key, const std::string&) {
          ids.push_back(keys::id_of_index(key));
          return true;
        });
      if (err)
        return err;
      for (auto& id : ids) {
        auto rec = load(self, tenant, id);
        if (!rec || (!state.empty() && to_string(rec->state) != state)
            || (!via.empty() && rec->created_via != via))
          continue;
        if (page.total >= offset
            && static_cast<int32_t>(page.videos.size()) < limit)
          page.videos.push_back(std::move(*rec));
        ++page.total;
      }
      return page;
    },
    [self](retry_atom, const std::string& tenant,
           const std::string& id) -> caf::result<video_record> {
      auto& st = self->state;
      auto rec = load(self, tenant, id);
      if (!rec)
        return rec.error();
      if (rec->state != states::failed || st.live.count(id) > 0)
        return make_error(ec::conflict, "video " + id + " is " + to_string(rec->state)
                                          + ", not failed");
      std::error_code missing;
      if (rec->source_sha256.empty()
          || (!st.ctx->member
              && !std::filesystem::exists(st.ctx->blobs->source_path(id),
                                          missing)))
        return make_error(ec::conflict, "video " + id
                                          + " has no source to start from");
      // From what it has (actors/video.cpp, resume): not probed (or its
      // probe gave nothing to encode) -> probed again from "uploaded";
      // else -> "transcoding", where the chunks, audio and images whose
      // files exist count as done and the rest is encoded.
      bool probe = !rec->probed || rec->rungs.empty() || rec->chunks.empty();
      auto to = probe ? states::uploaded : states::transcoding;
      rec->failure_reason.clear();
      apply_transition(*rec, to, "retried");
      if (auto err = save(self, *rec))
        return err;
      log::info("video.retried", {{"video", id}, {"state", to_string(to)}});
      // Tasks of the failed run still queued here would only duplicate the
      // new run's; those still running finish first (the scheduler holds
      // back a task whose outputs a running one writes).
      self->send(st.scheduler, caf::delete_atom::value, id);
      if (should_run(self, *rec))
        start_video(self, *rec);
      return std::move(*rec);
    },
    [self](caf::delete_atom, const std::string& tenant,
           const std::string& id) -> caf::result<caf::ok_atom> {
      auto rec = load(self, tenant, id);
      if (!rec)
        return rec.error();
      stop_video(self, id);
      self->send(self->state.scheduler, caf::delete_atom::value, id);
      if (self->state.ctx->member)
        self->send(self->state.ctx->member, caf::delete_atom::value, *rec);
      if (auto err = self->state.ctx->store->delete_video(*rec))
        return err;
      self->state.ctx->blobs->remove_video(id);
      metrics().videos.Add({{"state", to_string(rec->state)}}).Decrement();
      log::info("video.deleted", {{"video", id}});
      return caf::ok_atom::value;
    },
    [self](create_atom, folder_record& f) -> caf::result<folder_record> {
      if (!valid_folder_path(f.path))
        return make_error(ec::invalid_argument,
                          "folder path must be root/<name>[/<name>...] with "
                          "names of letters, digits, _ and -");
      if (folder_exists(self, f.tenant, f.path))
        return make_error(ec::conflict, "folder " + f.path + " exists");
      auto parent = f.path.substr(0, f.path.rfind('/'));
      if (!folder_exists(self, f.tenant, parent))
        return make_error(ec::not_found, "parent folder " + parent
                                           + " not found");
      f.created_ms = now_ms();
      replicated_row row{static_cast<int32_t>(cf::folders),
                         keys::folder(f.tenant, f.path), encode(f), false};
      if (auto err = self->state.ctx->store->put(cf::folders, row.key,
                                                 row.value))
        return err;
      if (self->state.ctx->member)
        self->send(self->state.ctx->member, caf::put_atom::value, row);
      return f;
    },
    [self](folder_atom, const std::string& tenant,
           const std::string& path) -> caf::result<bool> {
      return folder_exists(self, tenant, path);
    },
    [self](list_atom, folder_atom,
           const std::string& tenant) -> caf::result<std::vector<folder_record>> {
      std::vector<folder_record> out{folder_record{tenant, "root", 0}};
      auto err = self->state.ctx->store->scan(
        cf::folders, keys::folder_prefix(tenant),
        [&](const std::string&, const std::string& bytes) {
          folder_record f;
          if (!decode(bytes, f))
            out.push_back(std::move(f));
          return true;
        });
      if (err)
        return err;
      return out;
    },
  };
}

} // namespace reel
