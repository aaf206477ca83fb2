#include "actors/video.hpp"

#include "actors/webhooks.hpp"
#include "ops/log.hpp"
#include "ops/metrics.hpp"
#include "ops/util.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>

namespace fs = std::filesystem;

namespace reel {

namespace {

using self_ptr = video_actor::stateful_pointer<video_actor_state>;

// Scheduler priorities relative to the video's own (-10..10): the probe and
// the audio (needed before anything plays) first, then the chunks in order,
// then the images, which nothing waits for until the end.
constexpr int32_t probe_boost = 5;
constexpr int32_t audio_boost = 2;
constexpr int32_t images_boost = -1;

std::string chunk_file(self_ptr self, int chunk, const codec::rung& r) {
  return self->state.ctx->blobs->chunk_file(self->state.rec.id, chunk, r.name);
}

std::string audio_file(self_ptr self) {
  return self->state.ctx->blobs->audio_file(self->state.rec.id);
}

std::string images_dir(self_ptr self) {
  return self->state.ctx->blobs->images_dir(self->state.rec.id);
}

codec::clip_range clip_of(const video_record& rec) {
  return codec::clip_range{rec.clip_start_s, rec.clip_duration_s};
}

/// Writes the record, with the webhook deliveries of `event` (if any) in
/// the same batch; a video whose record cannot be written stops here.
bool persist(self_ptr self, const std::string& event = {}) {
  auto& rec = self->state.rec;
  auto* ctx = self->state.ctx;
  rec.updated_ms = now_ms();
  ++rec.version;
  auto rows = event.empty() ? std::vector<db::row_write>{}
                            : event_rows(ctx, rec, event);
  if (auto err = ctx->store->put_video(rec, rows)) {
    log::error("video.persist_failed",
               {{"video", rec.id}, {"error", message_of(err)}});
    self->quit();
    return false;
  }
  if (!rows.empty())
    wake_webhooks(ctx);
  // Every node keeps every record: any of them answers for this video, and
  // the next owner resumes from here if this node goes away.
  if (ctx->member)
    self->send(ctx->member, caf::put_atom::value, rec);
  return true;
}

bool transition(self_ptr self, video_state to,
                const std::string& reason = {}) {
  auto& rec = self->state.rec;
  apply_transition(rec, to, reason);
  // The events a transition makes (video.playable is not a state: it is
  // sent when the first chunk is packaged).
  const char* event = nullptr;
  switch (to) {
    case video_state::uploaded:
      event = "video.uploaded";
      break;
    case video_state::ready:
      event = "video.ready";
      break;
    case video_state::failed:
      event = "video.failed";
      break;
    case video_state::created:
    case video_state::probing:
    case video_state::transcoding:
    case video_state::packaging:
      break;
  }
  if (!persist(self, event ? std::string{event} : std::string{}))
    return false;
  log::info("video.state", {{"video", rec.id}, {"state", to_string(to)}});
  return true;
}

void fail(self_ptr self, const std::string& reason) {
  auto& rec = self->state.rec;
  metrics().video_failures.Add({{"stage", to_string(rec.state)}}).Increment();
  rec.failure_reason = reason;
  rec.import_headers.clear(); // an import that failed is not tried again
  log::warn("video.failed", {{"video", rec.id}, {"reason", reason}});
  transition(self, states::failed, reason);
  self->quit();
}

task make_task(self_ptr self, task_kind kind, int32_t boost) {
  auto& rec = self->state.rec;
  task t;
  t.id = ++self->state.next_task;
  t.video_id = rec.id;
  t.kind = kind;
  t.priority = rec.priority * 10 + boost;
  t.src = rec.source;
  t.clip = clip_of(rec);
  t.source_sha256 = rec.source_sha256;
  // Who has the source, for a worker that does not (this node after a
  // failover, or another node running a chunk): named by id, each node
  // finds its data plane in its own view.
  auto* view = self->state.ctx->view;
  std::error_code err;
  if (view) {
    if (fs::exists(self->state.ctx->blobs->source_path(rec.id), err)) {
      t.origin_node = view->self().node_id;
    } else {
      auto holders = view->fetch_order({rec.source_node});
      if (!holders.empty())
        t.origin_node = holders.front().node_id;
    }
  }
  return t;
}

void start_probe(self_ptr self);
void start_transcode(self_ptr self);
void advance(self_ptr self);

/// Sends `t` to the scheduler; `on_done` runs with a successful result.
/// How long a task that failed for a reason that passes waits before it
/// runs again: 5 s, doubling, at most a minute; after `max_waits` tries the
/// video fails with the reason.
constexpr int max_waits = 240; // about four hours at a minute each
std::chrono::seconds wait_before(int attempt) {
  return std::chrono::seconds(std::min(60, 5 << std::min(attempt, 4)));
}

/// Says in the record why the video waits (or that it no longer does).
void set_waiting(self_ptr self, const std::string& why) {
  auto& rec = self->state.rec;
  if (rec.waiting == why)
    return;
  rec.waiting = why;
  log::info("video.waiting", {{"video", rec.id}, {"reason", why}});
  persist(self);
}

/// A step succeeded: when nothing waits any more, the note goes (persisted
/// with the next step). Another part's success while one waits keeps it.
void moved_on(self_ptr self) {
  if (self->state.parked.empty() && !self->state.rec.waiting.empty())
    self->state.rec.waiting.clear();
}

/// Sends `t` to the scheduler; `on_done` runs with a successful result. A
/// failure that passes (a full disk, an unreachable node) is waited out:
/// the task runs again later and the video says why it waits; any other
/// fails the video at once with the reason.
template <class F>
void submit(self_ptr self, task t, F on_done, int attempt = 0) {
  auto kind = t.kind;
  auto index = t.index;
  auto copy = t;
  self->request(self->state.scheduler, caf::infinite, submit_atom::value,
                std::move(t))
    .then(
      [self, on_done, kind, index, copy, attempt](task_result& r) mutable {
        if (!r.error.empty()) {
          auto why = kind == task_kind::chunk
                       ? "transcoding chunk " + std::to_string(index) + ": "
                           + r.error
                       : std::string{to_string(kind)} + ": " + r.error;
          // An import fails for what its origin answers (a 404, a host
          // that does not resolve): that is the client's URL, not a
          // passing state of this cluster; only a full disk waits there.
          bool passes = kind == task_kind::import
                          ? r.code == ec::no_space
                          : is_transient(make_error(r.code, r.error));
          if (passes && attempt < max_waits) {
            set_waiting(self, why);
            log::info("video.retry",
                      {{"video", self->state.rec.id},
                       {"step", to_string(kind)},
                       {"after_s",
                        std::to_string(wait_before(attempt).count())}});
            auto key = ++self->state.next_park;
            self->state.parked[key] = [self, copy, on_done, attempt]() mutable {
              submit(self, std::move(copy), on_done, attempt + 1);
            };
            self->delayed_send(self, wait_before(attempt), retry_atom::value,
                               key);
            return;
          }
          // A probe's reason speaks for itself ("no video stream"); later
          // stages say where they stopped.
          if (kind == task_kind::probe)
            fail(self, r.error);
          else if (kind == task_kind::chunk)
            fail(self, "transcoding chunk " + std::to_string(index)
                         + " failed: " + r.error);
          else
            fail(self, std::string{to_string(kind)} + " failed: " + r.error);
          return;
        }
        moved_on(self);
        on_done(r);
      },
      [self](caf::error& err) {
        fail(self, "scheduler unavailable: " + message_of(err));
      });
}

/// The source is stored: record it and go on to probing.
void source_stored(self_ptr self, const task_result& r) {
  auto& rec = self->state.rec;
  rec.source_bytes = r.bytes;
  rec.source_sha256 = r.sha256;
  rec.import_headers.clear(); // an origin's credentials: not kept after use
  if (rec.filename.empty())
    rec.filename = r.filename;
  if (self->state.ctx->view)
    rec.source_node = self->state.ctx->view->self().node_id;
  if (transition(self, states::uploaded))
    start_probe(self);
}

/// A created video gets its source: imported from its URL, or joined from
/// the parts uploaded (those on other nodes fetched first).
void acquire_source(self_ptr self) {
  auto& rec = self->state.rec;
  auto* ctx = self->state.ctx;
  auto t = make_task(self, task_kind::import, probe_boost);
  t.origin_node.clear();
  if (!rec.import_url.empty()) {
    auto& cfg = ctx->config;
    t.url = rec.import_url;
    t.headers = rec.import_headers;
    t.max_bytes = cfg.import_max_bytes;
    t.timeout_s = cfg.import_timeout;
    t.allow = cfg.import_allow;
    submit(self, std::move(t),
           [self](task_result& r) { source_stored(self, r); });
    return;
  }
  if (!upload_complete(rec.upload)) {
    self->quit(); // nothing to do until the source is complete
    return;
  }
  t.kind = task_kind::assemble;
  t.parts = rec.upload.parts;
  std::vector<fetch_item> missing;
  for (auto& p : rec.upload.parts) {
    auto path = ctx->blobs->source_file(rec.id, part_file(p));
    std::error_code err;
    if (ctx->view && !fs::exists(path, err))
      missing.push_back(fetch_item{"sources/" + rec.id + "/" + part_file(p),
                                   p.sha256, ctx->view->fetch_order({p.node})});
  }
  if (missing.empty() || !ctx->replicator) {
    submit(self, std::move(t),
           [self](task_result& r) { source_stored(self, r); });
    return;
  }
  self->request(ctx->replicator, caf::infinite, fetch_atom::value,
                std::move(missing))
    .then(
      [self, t](caf::ok_atom) mutable {
        submit(self, std::move(t),
               [self](task_result& r) { source_stored(self, r); });
      },
      [self](caf::error& err) {
        fail(self, "cannot gather the uploaded chunks: " + message_of(err));
      });
}

void start_probe(self_ptr self) {
  if (self->state.rec.state != states::probing
      && !transition(self, states::probing))
    return;
  submit(self, make_task(self, task_kind::probe, probe_boost),
         [self](task_result& r) {
           auto& rec = self->state.rec;
           auto& cfg = self->state.ctx->config;
           rec.source = std::move(r.probe);
           rec.probed = true;
           if (auto err = codec::validate_clip(rec.source, clip_of(rec))) {
             fail(self, message_of(err));
             return;
           }
           rec.rungs = codec::ladder_for(rec.source);
           // A short first chunk: the start of the video plays early.
           rec.chunks = codec::plan_chunks(rec.source, cfg.chunk_seconds,
                                           cfg.segment_seconds, clip_of(rec),
                                           cfg.segment_seconds);
           // The end in small pieces, as many chunks as there are workers.
           codec::split_tail(rec.chunks, rec.source,
                             static_cast<size_t>(cfg.workers));
           rec.chunk_done.assign(rec.chunks.size(), 0);
           rec.audio_done = rec.source.audio_stream < 0;
           if (rec.rungs.empty() || rec.chunks.empty()) {
             fail(self, "the video has no frames to encode");
             return;
           }
           if (transition(self, states::transcoding))
             start_transcode(self);
         });
}

void on_part_done(self_ptr self) {
  if (persist(self))
    advance(self);
}

void set_playable(self_ptr self, bool playable) {
  auto& rec = self->state.rec;
  if (!playable || rec.playable_ms != 0)
    return;
  rec.playable_ms = now_ms();
  log::info("video.playable", {{"video", rec.id}});
  persist(self, "video.playable");
}

void finish(self_ptr self);
void start_packager(self_ptr self);

/// The packager stopped. For a reason that passes (a full disk), the video
/// waits and then a new packager starts over from the encoded parts
/// (nothing is encoded twice); for any other, it fails.
void packaging_failed(self_ptr self, const caf::error& err) {
  auto& st = self->state;
  if (!is_transient(err) || st.packaging_waits >= max_waits) {
    fail(self, "packaging failed: " + message_of(err));
    return;
  }
  set_waiting(self, "packaging: " + message_of(err));
  // The packager stops for good (it is linked: unlinked first, so its end
  // is not the video's); the next one starts over from the parts.
  self->unlink_from(st.packager);
  self->send_exit(st.packager, caf::exit_reason::user_shutdown);
  st.packager = nullptr;
  st.feeding = false;
  auto after = wait_before(st.packaging_waits++);
  log::info("video.retry", {{"video", st.rec.id},
                            {"step", "packaging"},
                            {"after_s", std::to_string(after.count())}});
  auto key = ++st.next_park;
  st.parked[key] = [self] { start_packager(self); };
  self->delayed_send(self, after, retry_atom::value, key);
}

/// Hands the packager whatever is next in order: the audio first, then each
/// chunk once it and every chunk before it are encoded; finishes when all
/// parts are in. One request at a time, so the order holds.
void advance(self_ptr self) {
  auto& st = self->state;
  auto& rec = st.rec;
  if (st.feeding || !st.packager)
    return;
  auto on_error = [self](caf::error& err) { packaging_failed(self, err); };
  if (!st.audio_packaged) {
    if (!rec.audio_done)
      return;
    st.feeding = true;
    self->request(st.packager, caf::infinite, caf::add_atom::value,
                  audio_atom::value)
      .then(
        [self](bool playable) {
          self->state.feeding = false;
          self->state.audio_packaged = true;
          moved_on(self);
          set_playable(self, playable);
          advance(self);
        },
        on_error);
    return;
  }
  auto n = static_cast<int32_t>(rec.chunks.size());
  if (st.next_to_package < n) {
    if (!rec.chunk_done[st.next_to_package])
      return;
    st.feeding = true;
    self->request(st.packager, caf::infinite, caf::add_atom::value,
                  st.next_to_package)
      .then(
        [self](bool playable) {
          self->state.feeding = false;
          ++self->state.next_to_package;
          moved_on(self);
          set_playable(self, playable);
          advance(self);
        },
        on_error);
    return;
  }
  if (rec.images_done)
    finish(self);
}

void dispatch_chunks(self_ptr self);

void chunk_done(self_ptr self, int32_t i, const task_result& r) {
  auto& rec = self->state.rec;
  self->state.in_flight.erase(i);
  dispatch_chunks(self);
  rec.chunk_done[i] = 1;
  // Who made it, and under which owner epoch it was counted.
  rec.chunk_node.resize(rec.chunks.size());
  rec.chunk_epoch.resize(rec.chunks.size());
  rec.chunk_node[i] = r.node_id.empty() ? self->state.ctx->config.node_id
                                         : r.node_id;
  rec.chunk_epoch[i] = rec.epoch;
  auto& m = metrics();
  for (auto& rung : rec.rungs) {
    m.transcode_frames.Add({{"rung", rung.name}})
      .Increment(static_cast<double>(r.stats.frames));
    m.transcode_seconds.Add({{"rung", rung.name}})
      .Increment(r.stats.media_seconds);
  }
  on_part_done(self);
}

void submit_chunk(self_ptr self, int32_t i, std::string node);

/// Hands out waiting chunks. On a node alone, all of them go to the local
/// scheduler at once (it orders them). In a cluster they are pulled: each
/// live node gets at most its workers + 1 of this video's chunks at a time,
/// the least busy first, and the next chunk goes out when one comes back,
/// so a node that also packages, or is slower, simply takes fewer. The first
/// chunk is always encoded here (the start plays without a transfer).
void dispatch_chunks(self_ptr self) {
  auto& st = self->state;
  auto* view = st.ctx->view;
  auto live = view ? view->live() : std::vector<std::string>{};
  if (live.size() < 2) {
    while (!st.waiting.empty()) {
      auto i = st.waiting.front();
      st.waiting.pop_front();
      submit_chunk(self, i, {});
    }
    return;
  }
  auto me = view->self().node_id;
  std::map<std::string, int> busy;
  for (auto& [chunk, where] : st.in_flight)
    ++busy[where.first.empty() ? me : where.first];
  while (!st.waiting.empty()) {
    auto i = st.waiting.front();
    std::string best;
    double best_load = 0;
    for (auto& node : live) {
      auto info = view->find(node);
      int workers = info && info->workers > 0 ? info->workers : 1;
      if (busy[node] >= workers + 1 || (i == 0 && node != me))
        continue;
      double load = static_cast<double>(busy[node]) / workers;
      if (best.empty() || load < best_load) {
        best = node;
        best_load = load;
      }
    }
    if (best.empty())
      return; // every node has enough; more go out as chunks come back
    st.waiting.pop_front();
    ++busy[best];
    submit_chunk(self, i, best == me ? std::string{} : best);
  }
}

/// Encodes chunk `i` on some node; a chunk encoded elsewhere is fetched
/// (verified) before it counts.
void submit_chunk(self_ptr self, int32_t i, std::string node) {
  auto& rec = self->state.rec;
  auto& cfg = self->state.ctx->config;
  auto t = make_task(self, task_kind::chunk, 0);
  t.index = i;
  t.target_node = node;
  t.part = rec.chunks[i];
  t.rungs = rec.rungs;
  t.options.preset = cfg.preset;
  t.options.threads = 1;
  std::vector<std::string> outputs;
  for (auto& r : rec.rungs)
    outputs.push_back(chunk_file(self, i, r));
  auto token = t.id;
  self->state.in_flight[i] = {node, token};
  auto on_result = [self, i, token, node, outputs](task_result& r) {
    auto& st = self->state;
    auto cur = st.in_flight.find(i);
    if (cur == st.in_flight.end() || cur->second.second != token)
      return; // sent again meanwhile; this answer is stale
    if (node.empty()) {
      chunk_done(self, i, r);
      return;
    }
    // Encoded on another node: bring its outputs here first.
    auto where = st.ctx->view->find(node);
    std::vector<fetch_item> items;
    for (size_t k = 0; k < outputs.size() && k < r.output_sha256.size(); ++k) {
      auto rel = outputs[k].substr(st.ctx->blobs->root().size() + 1);
      items.push_back(fetch_item{rel, r.output_sha256[k],
                                 {blob_origin{node, where ? where->cluster_host
                                                          : std::string{},
                                              where ? where->data_port
                                                    : uint16_t{0}}}});
    }
    self->request(st.ctx->replicator, caf::infinite, fetch_atom::value, items)
      .then([self, i, r](caf::ok_atom) mutable { chunk_done(self, i, r); },
            [self, i, node](caf::error& err) {
              log::warn("chunk.fetch_failed",
                        {{"video", self->state.rec.id},
                         {"chunk", std::to_string(i)},
                         {"from", node},
                         {"error", message_of(err)}});
              submit_chunk(self, i, {}); // encode it here instead
            });
  };
  if (node.empty()) {
    submit(self, std::move(t), on_result);
    return;
  }
  self->request(self->state.ctx->member, caf::infinite, submit_atom::value,
                std::move(t))
    .then(
      [self, i, token, on_result](task_result& r) mutable {
        if (!r.error.empty()) {
          auto& st = self->state;
          auto cur = st.in_flight.find(i);
          if (cur != st.in_flight.end() && cur->second.second == token)
            submit_chunk(self, i, {}); // try it here
          return;
        }
        on_result(r);
      },
      [self, i, token](caf::error&) {
        auto& st = self->state;
        auto cur = st.in_flight.find(i);
        if (cur != st.in_flight.end() && cur->second.second == token)
          submit_chunk(self, i, {});
      });
}

/// A packager starts over: it rewrites the media directory from the parts,
/// in order (remuxing only), as they are (or become) encoded.
void start_packager(self_ptr self) {
  auto& st = self->state;
  auto& rec = st.rec;
  auto& cfg = st.ctx->config;
  auto* blobs = st.ctx->blobs;
  codec::package_job job;
  job.rungs = rec.rungs;
  job.out_dir = blobs->media_dir(rec.id);
  job.segment_seconds = cfg.segment_seconds;
  for (auto& r : rec.rungs) {
    std::vector<std::string> files;
    for (size_t i = 0; i < rec.chunks.size(); ++i)
      files.push_back(chunk_file(self, static_cast<int>(i), r));
    job.chunk_files.push_back(std::move(files));
  }
  if (rec.source.audio_stream >= 0)
    job.audio_file = audio_file(self);
  st.packager = st.ctx->make_packager(self, std::move(job));
  st.next_to_package = 0;
  st.audio_packaged = rec.source.audio_stream < 0;
  advance(self);
}

void start_transcode(self_ptr self) {
  auto& st = self->state;
  auto& rec = st.rec;
  auto* blobs = st.ctx->blobs;
  std::error_code ec_;
  fs::create_directories(blobs->work_dir(rec.id), ec_);
  if (ec_) {
    fail(self, "cannot create work directory: " + ec_.message());
    return;
  }
  // After a restart, a part counts as done only if its files are there.
  for (size_t i = 0; i < rec.chunks.size(); ++i)
    if (rec.chunk_done[i])
      for (auto& r : rec.rungs)
        if (!fs::exists(chunk_file(self, static_cast<int>(i), r)))
          rec.chunk_done[i] = 0;
  if (rec.audio_done && rec.source.audio_stream >= 0
      && !fs::exists(audio_file(self)))
    rec.audio_done = false;
  if (rec.images_done && !fs::exists(images_dir(self) + "/poster.jpg"))
    rec.images_done = false;
  start_packager(self);
  if (!rec.audio_done) {
    auto t = make_task(self, task_kind::audio, audio_boost);
    submit(self, std::move(t), [self](task_result&) {
      self->state.rec.audio_done = true;
      on_part_done(self);
    });
  }
  // Chunks in order: the scheduler serves equal priorities first come first
  // served, so the start of the video is encoded first.
  st.waiting.clear();
  for (size_t i = 0; i < rec.chunks.size(); ++i)
    if (!rec.chunk_done[i])
      st.waiting.push_back(static_cast<int32_t>(i));
  dispatch_chunks(self);
  if (!rec.images_done) {
    auto t = make_task(self, task_kind::images, images_boost);
    t.poster_at_s = rec.info.poster_at_s;
    submit(self, std::move(t), [self](task_result& r) {
      auto& rec = self->state.rec;
      rec.images_done = true;
      rec.poster_time_s = r.images.poster_time_s;
      rec.screenshots = r.images.screenshots;
      on_part_done(self);
    });
  }
}

/// Moves the images made in the work directory into the media directory.
caf::error publish_images(self_ptr self) {
  auto from = fs::path{images_dir(self)};
  auto to = fs::path{self->state.ctx->blobs->media_dir(self->state.rec.id)};
  std::error_code ec_;
  for (auto it = fs::recursive_directory_iterator(from, ec_);
       !ec_ && it != fs::recursive_directory_iterator(); it.increment(ec_)) {
    auto rel = fs::relative(it->path(), from);
    if (it->is_directory())
      fs::create_directories(to / rel, ec_);
    else
      fs::rename(it->path(), to / rel, ec_);
    if (ec_)
      break;
  }
  if (ec_)
    return make_error(ec::storage_error,
                      "cannot publish images: " + ec_.message());
  return {};
}

/// Everything is made: the images join the media, every file is indexed
/// and synced, and the video is ready.
void publish(self_ptr self) {
  auto& rec = self->state.rec;
  auto* blobs = self->state.ctx->blobs;
  if (auto err = publish_images(self)) {
    fail(self, message_of(err));
    return;
  }
  auto files = blobs->index_media(rec.id);
  if (!files) {
    fail(self, message_of(files.error()));
    return;
  }
  if (auto err = blobs->sync_media(rec.id)) {
    fail(self, message_of(err));
    return;
  }
  rec.files = std::move(*files);
  if (rec.playable_ms == 0)
    rec.playable_ms = now_ms();
  if (!transition(self, states::ready))
    return;
  std::error_code ec_;
  fs::remove_all(blobs->work_dir(rec.id), ec_); // intermediate files
  self->quit();
}

void finish(self_ptr self) {
  auto& st = self->state;
  if (st.rec.state != states::packaging
      && !transition(self, states::packaging))
    return;
  st.feeding = true;
  self->request(st.packager, caf::infinite, finish_atom::value)
    .then(
      [self](codec::package_result& r) {
        auto& rec = self->state.rec;
        rec.renditions = std::move(r.renditions);
        rec.master = r.master_cmaf;
        rec.master_ts = r.master_ts;
        rec.dash = r.dash;
        // The storyboard, from the lowest rung's download.
        std::string low;
        int low_height = 0;
        for (auto& rend : rec.renditions)
          if (!rend.mp4.empty() && (low.empty() || rend.height < low_height)) {
            low = rend.mp4;
            low_height = rend.height;
          }
        if (low.empty()) {
          publish(self);
          return;
        }
        auto t = make_task(self, task_kind::storyboard, probe_boost);
        t.rendition = low;
        t.origin_node.clear();
        submit(self, std::move(t), [self](task_result& r) {
          self->state.rec.storyboard = r.images.storyboard;
          publish(self);
        });
      },
      [self](caf::error& err) { packaging_failed(self, err); });
}

} // namespace

void apply_transition(video_record& rec, video_state to,
                      const std::string& reason) {
  auto& gauge = metrics().videos;
  gauge.Add({{"state", to_string(rec.state)}}).Decrement();
  gauge.Add({{"state", to_string(to)}}).Increment();
  rec.state = to;
  rec.updated_ms = now_ms();
  rec.history.push_back(state_change{to, rec.updated_ms, reason});
}

video_actor::behavior_type video(video_actor::stateful_pointer<video_actor_state> self,
                                 node_context* ctx, scheduler_actor scheduler,
                                 video_record rec) {
  self->state.ctx = ctx;
  self->state.scheduler = std::move(scheduler);
  self->state.rec = std::move(rec);
  return {
    [self](caf::get_atom) -> caf::result<video_record> {
      return self->state.rec;
    },
    [self](members_atom, const std::vector<member_info>&) {
      // Chunks on nodes that are no longer up are encoded here instead.
      auto* view = self->state.ctx->view;
      if (!view)
        return;
      auto live = view->live();
      std::vector<int32_t> lost;
      for (auto& [i, where] : self->state.in_flight)
        if (!where.first.empty()
            && std::find(live.begin(), live.end(), where.first) == live.end())
          lost.push_back(i);
      for (auto i = lost.rbegin(); i != lost.rend(); ++i) {
        log::info("chunk.rescheduled", {{"video", self->state.rec.id},
                                        {"chunk", std::to_string(*i)}});
        self->state.in_flight.erase(*i);
        self->state.waiting.push_front(*i);
      }
      dispatch_chunks(self);
    },
    [self](caf::update_atom,
           const std::string& patch) -> caf::result<video_record> {
      auto& rec = self->state.rec;
      auto changed = rec;
      if (auto err = apply_patch(changed, nlohmann::json::parse(patch, nullptr,
                                                                false)))
        return err;
      rec.title = changed.title;
      rec.info = changed.info;
      if (!persist(self))
        return make_error(ec::storage_error, "cannot store the change");
      return rec;
    },
    [self](view_atom) -> caf::result<int64_t> {
      auto& rec = self->state.rec;
      ++rec.info.views;
      if (!persist(self))
        return make_error(ec::storage_error, "cannot store the view");
      return rec.info.views;
    },
    [self](retry_atom, uint64_t key) {
      auto i = self->state.parked.find(key);
      if (i == self->state.parked.end())
        return;
      auto run = std::move(i->second);
      self->state.parked.erase(i);
      run();
    },
    [self](resume_atom) {
      auto& rec = self->state.rec;
      if (rec.state == states::created)
        acquire_source(self);
      else if (rec.state == states::uploaded
          || rec.state == states::probing || !rec.probed)
        start_probe(self);
      else if (rec.state == states::transcoding
               || rec.state == states::packaging)
        start_transcode(self);
      else
        self->quit();
    },
  };
}

} // namespace reel
