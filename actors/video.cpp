#include "actors/video.hpp"

#include "ops/log.hpp"
#include "ops/metrics.hpp"
#include "ops/util.hpp"

#include <caf/all.hpp>

#include <cstdio>
#include <filesystem>

namespace fs = std::filesystem;

namespace reel {

namespace {

using self_ptr = video_actor::stateful_pointer<video_state>;

std::string chunk_file(self_ptr self, int chunk, const codec::rung& r) {
  char name[64];
  std::snprintf(name, sizeof(name), "/c%05d-%s.pkt", chunk, r.name.c_str());
  return self->state.ctx->blobs->work_dir(self->state.rec.id) + name;
}

std::string audio_file(self_ptr self) {
  return self->state.ctx->blobs->work_dir(self->state.rec.id) + "/audio.pkt";
}

/// Writes the record; a video whose record cannot be written stops here.
bool persist(self_ptr self) {
  auto& rec = self->state.rec;
  rec.updated_ms = now_ms();
  if (auto err = self->state.ctx->store->put_video(rec)) {
    log::error("video.persist_failed",
               {{"video", rec.id}, {"error", message_of(err)}});
    return false;
  }
  return true;
}

void transition(self_ptr self, const std::string& to,
                const std::string& reason = {}) {
  auto& rec = self->state.rec;
  auto& gauge = metrics().videos;
  gauge.Add({{"state", rec.state}}).Decrement();
  gauge.Add({{"state", to}}).Increment();
  rec.state = to;
  rec.history.push_back(state_change{to, now_ms(), reason});
  if (!persist(self)) {
    self->quit();
    return;
  }
  log::info("video.state", {{"video", rec.id}, {"state", to}});
}

void fail(self_ptr self, const std::string& reason) {
  auto& rec = self->state.rec;
  metrics().video_failures.Add({{"stage", rec.state}}).Increment();
  rec.failure_reason = reason;
  log::warn("video.failed", {{"video", rec.id}, {"reason", reason}});
  transition(self, states::failed, reason);
  self->quit();
}

task make_task(self_ptr self, task_kind kind) {
  task t;
  t.id = ++self->state.next_task;
  t.video_id = self->state.rec.id;
  t.kind = kind;
  t.source = self->state.ctx->blobs->source_path(self->state.rec.id);
  t.src = self->state.rec.source;
  return t;
}

void start_probe(self_ptr self);
void start_transcode(self_ptr self);
void start_package(self_ptr self);

/// Sends `t` to the scheduler; `on_done` runs with a successful result.
template <class F>
void submit(self_ptr self, task t, F on_done) {
  auto kind = t.kind;
  auto index = t.index;
  self->request(self->state.scheduler, caf::infinite, submit_atom::value,
                std::move(t))
    .then(
      [self, on_done, kind, index](task_result& r) mutable {
        if (!r.error.empty()) {
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
        on_done(r);
      },
      [self](caf::error& err) {
        fail(self, "scheduler unavailable: " + message_of(err));
      });
}

void start_probe(self_ptr self) {
  if (self->state.rec.state != states::probing)
    transition(self, states::probing);
  submit(self, make_task(self, task_kind::probe), [self](task_result& r) {
    auto& rec = self->state.rec;
    auto& cfg = self->state.ctx->config;
    rec.source = std::move(r.probe);
    rec.probed = true;
    rec.rungs = codec::ladder_for(rec.source);
    rec.chunks = codec::plan_chunks(rec.source, cfg.chunk_seconds,
                                    cfg.segment_seconds);
    rec.chunk_done.assign(rec.chunks.size(), 0);
    rec.audio_done = rec.source.audio_stream < 0;
    if (rec.rungs.empty() || rec.chunks.empty()) {
      fail(self, "the video has no frames to encode");
      return;
    }
    transition(self, states::transcoding);
    start_transcode(self);
  });
}

bool all_done(const video_record& rec) {
  for (auto d : rec.chunk_done)
    if (!d)
      return false;
  return rec.audio_done;
}

void on_part_done(self_ptr self) {
  if (!persist(self)) {
    self->quit();
    return;
  }
  if (all_done(self->state.rec))
    start_package(self);
}

void start_transcode(self_ptr self) {
  auto& rec = self->state.rec;
  auto& cfg = self->state.ctx->config;
  std::error_code ec_;
  fs::create_directories(self->state.ctx->blobs->work_dir(rec.id), ec_);
  if (ec_) {
    fail(self, "cannot create work directory: " + ec_.message());
    return;
  }
  // After a restart, a chunk counts as done only if its files are there.
  for (size_t i = 0; i < rec.chunks.size(); ++i)
    if (rec.chunk_done[i])
      for (auto& r : rec.rungs)
        if (!fs::exists(chunk_file(self, static_cast<int>(i), r)))
          rec.chunk_done[i] = 0;
  if (rec.audio_done && rec.source.audio_stream >= 0
      && !fs::exists(audio_file(self)))
    rec.audio_done = false;
  if (all_done(rec)) {
    start_package(self);
    return;
  }
  if (!rec.audio_done) {
    auto t = make_task(self, task_kind::audio);
    t.audio_output = audio_file(self);
    submit(self, std::move(t), [self](task_result&) {
      self->state.rec.audio_done = true;
      on_part_done(self);
    });
  }
  // Chunks in order: the scheduler serves equal priorities first come first
  // served, so the start of the video is encoded first.
  for (size_t i = 0; i < rec.chunks.size(); ++i) {
    if (rec.chunk_done[i])
      continue;
    auto t = make_task(self, task_kind::chunk);
    t.index = static_cast<int32_t>(i);
    t.chunk.source = t.source;
    t.chunk.src = rec.source;
    t.chunk.part = rec.chunks[i];
    t.chunk.rungs = rec.rungs;
    t.chunk.options.preset = cfg.preset;
    t.chunk.options.threads = 1;
    for (auto& r : rec.rungs)
      t.chunk.outputs.push_back(chunk_file(self, static_cast<int>(i), r));
    submit(self, std::move(t), [self, i](task_result& r) {
      auto& rec = self->state.rec;
      rec.chunk_done[i] = 1;
      for (size_t k = 0; k < rec.rungs.size(); ++k) {
        auto& m = metrics();
        m.transcode_frames.Add({{"rung", rec.rungs[k].name}})
          .Increment(static_cast<double>(r.stats.frames));
        m.transcode_seconds.Add({{"rung", rec.rungs[k].name}})
          .Increment(r.stats.media_seconds);
      }
      on_part_done(self);
    });
  }
}

void start_package(self_ptr self) {
  auto& rec = self->state.rec;
  if (rec.state != states::packaging)
    transition(self, states::packaging);
  auto* blobs = self->state.ctx->blobs;
  auto out = blobs->media_dir(rec.id);
  std::error_code ec_;
  fs::remove_all(out, ec_); // a packaging cut off by a crash starts over
  fs::create_directories(out, ec_);
  if (ec_) {
    fail(self, "cannot create media directory: " + ec_.message());
    return;
  }
  auto t = make_task(self, task_kind::package);
  t.package.rungs = rec.rungs;
  t.package.out_dir = out;
  t.package.segment_seconds = self->state.ctx->config.segment_seconds;
  for (auto& r : rec.rungs) {
    std::vector<std::string> files;
    for (size_t i = 0; i < rec.chunks.size(); ++i)
      files.push_back(chunk_file(self, static_cast<int>(i), r));
    t.package.chunk_files.push_back(std::move(files));
  }
  if (rec.source.audio_stream >= 0)
    t.package.audio_file = audio_file(self);
  t.poster_output = out + "/poster.jpg";
  submit(self, std::move(t), [self, blobs](task_result& r) {
    auto& rec = self->state.rec;
    rec.renditions = std::move(r.package.renditions);
    rec.master = r.package.master;
    auto files = blobs->index_media(rec.id);
    if (!files) {
      fail(self, message_of(files.error()));
      return;
    }
    for (auto& f : *files)
      if (auto err = fsync_path(blobs->media_dir(rec.id) + "/" + f.name)) {
        fail(self, message_of(err));
        return;
      }
    rec.files = std::move(*files);
    transition(self, states::ready);
    std::error_code ec_;
    fs::remove_all(blobs->work_dir(rec.id), ec_); // intermediate files
    self->quit();
  });
}

} // namespace

video_actor::behavior_type video(video_actor::stateful_pointer<video_state> self,
                                 node_context* ctx, scheduler_actor scheduler,
                                 video_record rec) {
  self->state.ctx = ctx;
  self->state.scheduler = std::move(scheduler);
  self->state.rec = std::move(rec);
  return {
    [self](caf::get_atom) -> caf::result<video_record> {
      return self->state.rec;
    },
    [self](resume_atom) {
      auto& rec = self->state.rec;
      if (rec.state == states::created || rec.state == states::uploaded
          || rec.state == states::probing || !rec.probed)
        start_probe(self);
      else if (rec.state == states::transcoding)
        start_transcode(self);
      else if (rec.state == states::packaging)
        start_package(self);
      else
        self->quit();
    },
  };
}

} // namespace reel
