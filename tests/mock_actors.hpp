#pragma once

// A scheduler and a packager with the real typed interfaces, for tests of
// the video actor and its manager (actors_test on a real actor system,
// actors_dsl_test on CAF's test coordinator). A `script` says how they
// answer and keeps what they saw; the files a real worker would write are
// written where files_of() puts them, so the video actor finds its parts.

#include "actors/actors.hpp"
#include "actors/context.hpp"
#include "actors/worker.hpp"
#include "codec/codec.hpp"
#include "ops/error.hpp"

#include <caf/all.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace reel::testing {

/// A 6 s 640x360 25 fps source with a keyframe every second and an AAC
/// track (audio_stream -1 for none).
inline codec::probe_result sample_probe(int audio_stream = 1) {
  codec::probe_result p;
  p.container = "mov,mp4";
  p.duration_s = 6;
  p.width = 640;
  p.height = 360;
  p.fps = 25;
  p.tb_num = 1;
  p.tb_den = 25;
  p.start_pts = 0;
  p.end_pts = 150;
  p.frame_count = 150;
  p.keyframes = {0, 25, 50, 75, 100, 125};
  p.video_stream = 0;
  p.audio_stream = audio_stream;
  if (audio_stream >= 0)
    p.audio_codec = "aac";
  return p;
}

/// How the mocks answer, and what they saw (thread-safe: actors_test runs
/// them on a real actor system).
struct script {
  std::mutex mtx;
  const blob_store* blobs = nullptr; // where the tasks' files are
  int audio_stream = 1;              // of the probe's answer
  int fail_chunk = -1;               // this chunk's task always fails ("boom")
  std::map<int32_t, ec> chunk_fails_once; // chunk -> its first attempt's error
  bool hold_first = false; // chunk 0 is answered only after chunk 2
  int32_t packager_full_at = -1; // the packager finds the disk full here once
  std::vector<task> seen;
  std::map<int32_t, int> chunk_attempts;
  std::vector<std::string> packaged; // what the packager was handed, in order
  int packagers = 0;                 // packagers started

  std::vector<task> all() {
    std::lock_guard<std::mutex> g{mtx};
    return seen;
  }
  std::vector<std::string> packager_log() {
    std::lock_guard<std::mutex> g{mtx};
    return packaged;
  }
  void note(std::string what) {
    std::lock_guard<std::mutex> g{mtx};
    packaged.push_back(std::move(what));
  }
};

struct mock_scheduler_state {
  static inline const char* name = "mock_scheduler";
  caf::typed_response_promise<task_result> held;
  task_result held_result;
};

inline scheduler_actor::behavior_type
mock_scheduler(scheduler_actor::stateful_pointer<mock_scheduler_state> self,
               std::shared_ptr<script> s) {
  namespace fs = std::filesystem;
  return {
    [self, s](submit_atom, task& t) -> caf::result<task_result> {
      int attempt = 0;
      {
        std::lock_guard<std::mutex> g{s->mtx};
        s->seen.push_back(t);
        if (t.kind == task_kind::chunk)
          attempt = ++s->chunk_attempts[t.index];
      }
      task_result r;
      r.id = t.id;
      r.video_id = t.video_id;
      r.kind = t.kind;
      r.index = t.index;
      auto f = files_of(*s->blobs, t);
      if (!f) {
        r.error = message_of(f.error());
        return r;
      }
      switch (t.kind) {
        case task_kind::probe:
          r.probe = sample_probe(s->audio_stream);
          break;
        case task_kind::chunk: {
          if (t.index == s->fail_chunk) {
            r.error = "boom";
            break;
          }
          auto once = s->chunk_fails_once.find(t.index);
          if (once != s->chunk_fails_once.end() && attempt == 1) {
            r.code = once->second;
            r.error = once->second == ec::no_space
                        ? "writing chunk: No space left on device"
                        : "decoding: Invalid data found";
            break;
          }
          for (auto& out : f->outputs)
            std::ofstream{out} << "packets";
          r.stats.frames = 50;
          if (s->hold_first && t.index == 0) {
            self->state.held = self->make_response_promise<task_result>();
            self->state.held_result = r;
            return self->state.held;
          }
          if (s->hold_first && t.index == 2)
            self->state.held.deliver(self->state.held_result);
          break;
        }
        case task_kind::audio:
          std::ofstream{f->audio} << "aac";
          break;
        case task_kind::images:
          fs::create_directories(f->images_dir + "/screenshots");
          for (auto name : {"poster.jpg", "poster_thumb.jpg", "sprite.jpg",
                            "sprite.vtt", "screenshots/1.jpg"})
            std::ofstream{f->images_dir + "/" + name} << "image";
          r.images.screenshots = 1;
          r.images.poster_time_s = 1.5;
          break;
        case task_kind::storyboard:
        case task_kind::import:
        case task_kind::assemble:
          break;
      }
      return r;
    },
    [](stats_atom) -> caf::result<int64_t, int64_t> {
      return {int64_t{0}, int64_t{0}};
    },
    [](caf::delete_atom, const std::string&) {},
  };
}

struct mock_packager_state {
  static inline const char* name = "mock_packager";
};

/// Records what it is handed; the start is playable after chunk 0.
inline packager_actor::behavior_type
mock_packager(packager_actor::stateful_pointer<mock_packager_state>,
              std::shared_ptr<script> s, codec::package_job job) {
  std::filesystem::create_directories(job.out_dir);
  {
    std::lock_guard<std::mutex> g{s->mtx};
    ++s->packagers;
  }
  return {
    [s](caf::add_atom, audio_atom) -> caf::result<bool> {
      s->note("audio");
      return false;
    },
    [s](caf::add_atom, int32_t index) -> caf::result<bool> {
      {
        std::lock_guard<std::mutex> g{s->mtx};
        if (index == s->packager_full_at) {
          s->packager_full_at = -1;
          return make_error(ec::no_space, "writing a segment: No space left");
        }
      }
      s->note("chunk " + std::to_string(index));
      return true;
    },
    [s, job](finish_atom) -> caf::result<codec::package_result> {
      s->note("finish");
      std::ofstream{job.out_dir + "/master-cmaf.m3u8"} << "#EXTM3U\n";
      codec::package_result r;
      codec::rendition rung;
      rung.name = "360p";
      rung.width = 640;
      rung.height = 360;
      r.renditions = {rung};
      return r;
    },
  };
}

/// A packager factory for node_context::make_packager.
inline packager_factory mock_packagers(std::shared_ptr<script> s) {
  return [s](caf::local_actor* parent, codec::package_job job) {
    return parent->spawn<caf::linked>(mock_packager, s, std::move(job));
  };
}

} // namespace reel::testing
