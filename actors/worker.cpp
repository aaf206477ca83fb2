#include "actors/worker.hpp"

#include "ops/log.hpp"

#include <caf/all.hpp>

namespace reel {

const char* to_string(task_kind k) {
  switch (k) {
    case task_kind::probe: return "probe";
    case task_kind::chunk: return "chunk";
    case task_kind::audio: return "audio";
    case task_kind::package: return "package";
  }
  return "unknown";
}

task_result execute(const task& t) {
  task_result r;
  r.id = t.id;
  r.video_id = t.video_id;
  r.kind = t.kind;
  r.index = t.index;
  auto fail = [&](const caf::error& err) { r.error = message_of(err); };
  switch (t.kind) {
    case task_kind::probe: {
      auto p = codec::probe(t.source);
      if (p)
        r.probe = std::move(*p);
      else
        fail(p.error());
      break;
    }
    case task_kind::chunk: {
      auto s = codec::encode_chunk(t.chunk);
      if (s)
        r.stats = std::move(*s);
      else
        fail(s.error());
      break;
    }
    case task_kind::audio: {
      auto s = codec::encode_audio(t.source, t.src, t.audio_output);
      if (!s)
        fail(s.error());
      break;
    }
    case task_kind::package: {
      auto p = codec::package_hls(t.package);
      if (!p) {
        fail(p.error());
        break;
      }
      r.package = std::move(*p);
      // The poster comes from the source, a tenth into the video.
      auto at = t.src.duration_s * 0.1;
      if (auto err = codec::write_poster(t.source, t.src, at, 1080,
                                         t.poster_output))
        fail(err);
      break;
    }
  }
  return r;
}

worker_actor::behavior_type
worker(worker_actor::stateful_pointer<worker_state> self) {
  return {
    [](run_atom, const task& t) -> caf::result<task_result> {
      log::debug("task.start", {{"video", t.video_id},
                                {"kind", to_string(t.kind)},
                                {"index", std::to_string(t.index)}});
      return execute(t);
    },
  };
}

} // namespace reel
